"""Small rate-compiled models for the NIR / netx export tests (built with torch.onnx.export)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from snnc.api import compile_model

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"
TIMESTEPS = 16


def build(tmp: Path, kind: str, method: str = "rate"):
    """Compile a small random MLP ("mlp") or conv net ("cnn"); returns (artifact, x)."""
    torch.manual_seed(0)
    if kind == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(4, 6, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(6 * 3 * 3, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))
        x = torch.rand(32, 1, 8, 8)
    else:
        model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 4))
        x = torch.rand(32, 12)
    onnx_path = tmp / f"{kind}.onnx"
    torch.onnx.export(model, x[:1], str(onnx_path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}})
    np.savez(tmp / f"{kind}_calib.npz", x=x.numpy())
    art = compile_model(onnx_path, method=method, calib=tmp / f"{kind}_calib.npz",
                        timesteps=TIMESTEPS if method == "rate" else None,
                        out=tmp / f"{kind}_{method}.snnc")
    return art, x.numpy()


def snnc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnc.cli", *args], capture_output=True,
                          text=True, timeout=300)


def compile_rate_lenet(tmp: Path) -> Path:
    """LeNet (max-pool) compiled with --method rate through the CLI."""
    art = tmp / "lenet.snnc"
    proc = snnc("compile", str(LENET / "lenet.onnx"), "--calib", str(LENET / "calib.npz"),
                "--method", "rate", "--timesteps", "8", "-o", str(art), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return art


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]
