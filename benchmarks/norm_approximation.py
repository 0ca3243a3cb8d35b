"""--approximate-norm (issue 25, item 4): how much a fixed, calibrated affine map in place of a
GroupNorm / InstanceNorm / LayerNorm costs. Small PyTorch models with random (seeded) weights,
exported to ONNX, calibrated on 200 random inputs uniform in [0, 1) and evaluated on 200 other
ones. Prints one markdown row per model: the layer's relative L1 error on the calibration data
(from the manifest), the top-1 agreement of the approximated ANN with the exact ANN on the
held-out inputs, and the SNN's agreement with the exact ANN (onnxruntime) per method and target.

    .venv/bin/python benchmarks/norm_approximation.py [--samples 200]

Nothing is trained: random networks' logits are close together, so top-1 agreement is a harsh
measure here; real data (statistics varying more between samples) may do better or worse.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from architectures import RUNS, agreement_cell
from torch import nn

from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.approximate_norm import approximate_norm
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.ir.interpret import run_ann


def _cnn(norm: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3), norm, nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 5 * 5, 10))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(196, 64), nn.LayerNorm(64), nn.ReLU(),
                         nn.Linear(64, 10))


MODELS = {  # name -> (factory, opset)
    "conv-GroupNorm(2)": (lambda: _cnn(nn.GroupNorm(2, 8)), 13),
    "conv-InstanceNorm2d": (lambda: _cnn(nn.InstanceNorm2d(8, affine=True)), 13),
    "dense-LayerNorm (opset 13)": (_mlp, 13),
    "dense-LayerNorm (opset 17)": (_mlp, 17),
}


def export(name: str) -> bytes:
    factory, opset = MODELS[name]
    torch.manual_seed(0)
    module = factory().eval()
    buf = io.BytesIO()
    torch.onnx.export(module, torch.rand(1, 1, 14, 14), buf, opset_version=opset,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue()


def measure(name: str, samples: int, tmp: Path) -> list[str]:
    model = export(name)
    calib = np.random.default_rng(1).uniform(size=(samples, 1, 14, 14)).astype(np.float32)
    test = np.random.default_rng(2).uniform(size=(samples, 1, 14, 14)).astype(np.float32)
    np.savez(tmp / "calib.npz", x=calib)
    np.savez(tmp / "test.npz", x=test)
    exact = canonicalize(load_onnx(model))
    approx, report = approximate_norm(exact, calib)
    held_out = float(np.mean(run_ann(exact, test)[0].argmax(1)
                             == run_ann(approx, test)[0].argmax(1)))
    cells = [f"{report['layers'][0]['rel_error']:.3f}", f"{report['top1_agreement']:.3f}",
             f"{held_out:.3f}"]
    return cells + [agreement_cell(model, method, target, tmp / "calib.npz", tmp / "test.npz",
                                   tmp / f"{method}-{target}.snnc", approximate_norm=True)
                    for method, target in RUNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    head = ["model", "rel. L1 error (calib)", "ANN approx. agreement (calib)",
            "ANN approx. agreement (held out)", *(f"SNN {m} {t}" for m, t in RUNS)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    with tempfile.TemporaryDirectory() as d:
        for name in MODELS:
            print(f"| {name} | " + " | ".join(measure(name, args.samples, Path(d))) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
