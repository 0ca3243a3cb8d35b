"""Beyond 2-D image classifiers (issue 25): small PyTorch models of the new kinds, exported to
ONNX (opset 13), compiled with fs on cpu and loihi2 and rate on cpu, and simulated on random
inputs. Prints one markdown row per model: top-1 agreement with the ANN, or the error line a
user would see.

    .venv/bin/python benchmarks/architectures.py [--samples 200] [--only NAME ...]

Random weights (seeded) and inputs uniform in [0, 1); calibration on the same inputs.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import snnc
from snnc.errors import SnncError


def _cnn(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), act, nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), type(act)(), nn.Flatten(),
                         nn.Linear(8 * 7 * 7, 10))


def _mlp(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(196, 64), act, nn.Linear(64, 10))


class _Upsample(nn.Module):
    """Conv down, nearest upsampling back (Resize, scale 2), conv, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 14 * 14, 10))

    def forward(self, x):
        return self.dec(nn.functional.interpolate(self.enc(x), scale_factor=2, mode="nearest"))


class _Fire(nn.Module):
    """SqueezeNet's fire module: squeeze 1x1, expand 1x1 and 3x3 branches concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(12, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        h = self.squeeze(x)
        return self.head(torch.cat([self.e1(h), self.e3(h)], dim=1))


MODELS = {  # name -> (module factory, per-sample input shape)
    "conv1d_temporal": (lambda: nn.Sequential(
        nn.Conv1d(4, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.AvgPool1d(2),
        nn.Conv1d(16, 16, 3, stride=2, padding=1, groups=4), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 4, 10)), (4, 28)),
    "dense_dense_head": (lambda: nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(8, 2, 3, stride=2,
                                                                    padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(98, 4), nn.Linear(4, 10)), (1, 28, 28)),
    "conv_1x1_bottleneck": (lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
        nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)), (1, 14, 14)),
    "prelu_cnn": (lambda: _cnn(nn.PReLU()), (1, 14, 14)),
    "elu_mlp": (lambda: _mlp(nn.ELU()), (1, 14, 14)),
    "selu_mlp": (lambda: _mlp(nn.SELU()), (1, 14, 14)),
    "softplus_mlp": (lambda: _mlp(nn.Softplus()), (1, 14, 14)),
    "gelu_mlp": (lambda: _mlp(nn.GELU()), (1, 14, 14)),
    "gelu_tanh_cnn": (lambda: _cnn(nn.GELU(approximate="tanh")), (1, 14, 14)),
    "mish_cnn": (lambda: _cnn(nn.Mish()), (1, 14, 14)),
    "upsample_cnn": (_Upsample, (1, 14, 14)),
    "deconv_cnn": (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 14 * 14, 10)), (1, 14, 14)),
    "squeezenet_fire": (_Fire, (1, 14, 14)),
}
RUNS = (("fs", "cpu"), ("fs", "loihi2"), ("rate", "cpu"))


def export(name: str, seed: int = 0) -> tuple[bytes, tuple[int, ...]]:
    factory, shape = MODELS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = factory().eval()
        buf = io.BytesIO()
        torch.onnx.export(module, torch.rand(1, *shape), buf, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue(), shape


def measure(name: str, samples: int, tmp: Path) -> list[str]:
    model, shape = export(name)
    path = tmp / f"{name}.onnx"
    path.write_bytes(model)
    x = np.random.default_rng(1).uniform(size=(samples, *shape)).astype(np.float32)
    np.savez(tmp / "x.npz", x=x)
    cells = []
    for method, target in RUNS:
        t0 = time.perf_counter()
        try:
            art = snnc.compile(path, target=target, method=method, calib=tmp / "x.npz",
                               out=tmp / f"{name}-{method}-{target}.snnc")
            m = snnc.simulate(art, tmp / "x.npz")
            cells.append(f"{m['agreement']:.3f} ({time.perf_counter() - t0:.0f} s)")
        except SnncError as e:
            cells.append(f"refused: {str(e)[:90]}")
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    names = args.only or list(MODELS)
    print("| model | " + " | ".join(f"{m} {t}" for m, t in RUNS) + " |")
    print("|---|" + "---|" * len(RUNS))
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            print(f"| {name} | " + " | ".join(measure(name, args.samples, Path(d))) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
