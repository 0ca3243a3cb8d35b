"""Bring your own PyTorch model: train a small CNN, convert it with ``snnc.from_torch``, simulate.

    .venv/bin/python examples/from_pytorch.py [--method fs] [--epochs 30] [--limit 0]

The data are scikit-learn's bundled 8x8 digits (1,797 images, no download): 1,397 to train,
400 to test. ``snnc.from_torch(module, example_input, calib=...)`` exports the module with
``torch.onnx.export`` (opset 13, dynamic batch axis) and compiles it like ``snnc.compile``;
``calib`` and the simulation data may be arrays (no .npz needed). The network avoids max-pool
(a strided conv instead) so that a ``--method rate`` artifact of it can also be exported to
NIR and netx (examples/export.py reuses ``digits`` and ``train``). The last line printed is
``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import snnc


def digits(n_test: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits as float32 (N, 1, 8, 8) in [0, 1]: (x_train, y_train, x_test,
    y_test), split by a fixed permutation."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def digits_cnn() -> torch.nn.Module:
    """conv(1->8, 3x3, pad 1)-ReLU, conv(8->16, 3x3, stride 2)-ReLU, flatten, dense(144->10)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 3 * 3, 10))


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 30,
          seed: int = 0) -> torch.nn.Module:
    """Plain Adam on cross-entropy, batch 64, deterministic for a seed."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="fs", choices=["rate", "fs", "amos", "ttfs"])
    p.add_argument("--target", default="cpu", help="cpu, loihi1 or loihi2")
    p.add_argument("--epochs", type=int, default=30, help="training epochs of the torch model")
    p.add_argument("--limit", type=int, default=0, help="test images to simulate (0: all 400)")
    p.add_argument("--out", type=Path, default=Path("out/examples/digits.snnc"))
    args = p.parse_args(argv)
    torch.manual_seed(0)

    x_train, y_train, x_test, y_test = digits()
    t0 = time.perf_counter()
    model = train(digits_cnn(), x_train, y_train, epochs=args.epochs)
    with torch.no_grad():
        torch_acc = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    print(f"trained the torch CNN in {time.perf_counter() - t0:.1f} s: test accuracy "
          f"{torch_acc:.2%}")

    art = snnc.from_torch(model, torch.zeros(1, 1, 8, 8), calib=x_train[:256],
                          method=args.method, target=args.target, out=args.out)
    print("compiled:", json.dumps(art.summary()))

    limit = args.limit or None
    m = art.simulate((x_test, y_test), limit=limit)
    print(f"{m.samples} test images: SNN accuracy {m.accuracy:.2%} (ONNX ANN "
          f"{m.ann_accuracy:.2%}, agreement {m.agreement:.2%}), {m.spikes_per_neuron:.2f} "
          f"spikes per neuron, latency {m.latency_steps} steps")
    result = {"torch_accuracy": torch_acc, "samples": m.samples, "accuracy": m.accuracy,
              "ann_accuracy": m.ann_accuracy, "agreement": m.agreement,
              "spikes_per_neuron": m.spikes_per_neuron, "latency_steps": m.latency_steps,
              "artifact": str(art.path)}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
