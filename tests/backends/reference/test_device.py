"""``snnc simulate --device``: where the reference simulator runs (cuda by default when torch
sees one); the metrics do not depend on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support.cli import assert_user_error, snnc

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def lenet_rate(tmp_path_factory):
    out = tmp_path_factory.mktemp("dev") / "lenet.snnc"
    proc = snnc("compile", EXAMPLES / "lenet" / "lenet.onnx", "--method", "rate",
                "--timesteps", "16", "--calib", EXAMPLES / "lenet" / "calib.npz", "-o", out,
                "-q")
    assert proc.returncode == 0, proc.stderr
    return out


def _metrics(art, *extra):
    proc = snnc("simulate", art, "--data", EXAMPLES / "lenet" / "test.npz", "--limit", "8",
                "--json", "-q", *extra)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    m.pop("wall_s")
    return m


def test_device_cpu_gives_the_default_metrics(lenet_rate):
    default = _metrics(lenet_rate)
    assert _metrics(lenet_rate, "--device", "cpu") == default
    if torch.cuda.is_available():  # (float convolutions on the GPU round differently)
        gpu = _metrics(lenet_rate, "--device", "cuda")
        assert gpu.keys() == default.keys() and gpu["samples"] == 8


def test_unknown_or_missing_device_is_a_user_error(lenet_rate):
    proc = snnc("simulate", lenet_rate, "--data", EXAMPLES / "lenet" / "test.npz",
                "--device", "tpu")
    assert_user_error(proc, "unknown device 'tpu'", "cpu, cuda")
    if not torch.cuda.is_available():
        proc = snnc("simulate", lenet_rate, "--data", EXAMPLES / "lenet" / "test.npz",
                    "--device", "cuda")
        assert_user_error(proc, "--device cuda", "no CUDA device")
