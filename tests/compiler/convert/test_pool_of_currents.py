"""A max-pool that reads synaptic currents (a conv with no activation before the pool) has no
spiking form in rate or ttfs: one clear error at compile time, not a failure in simulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.cli import assert_user_error, snnc
from torch import nn


@pytest.fixture(scope="module")
def conv_pool_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool_of_currents")
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10)).eval()
    torch.onnx.export(m, torch.rand(1, 1, 8, 8), d / "m.onnx", opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    np.savez(d / "calib.npz", x=np.random.default_rng(0).random((16, 1, 8, 8), np.float32))
    return d


@pytest.mark.parametrize("method", ["rate", "ttfs"])
def test_max_pool_of_a_conv_is_refused_naming_both_layers(conv_pool_model, method):
    d = conv_pool_model
    out = d / f"{method}.snnc"
    proc = snnc("compile", str(d / "m.onnx"), "--method", method, "--calib",
                str(d / "calib.npz"), "-o", str(out), "--quiet")
    assert_user_error(proc, "MaxPool", "max-pooling '/2/Conv_output_0' (conv2d)",
                      f"method {method}", "--method fs")
    assert not out.exists()


def test_fs_runs_the_same_model(conv_pool_model):
    d = conv_pool_model
    proc = snnc("compile", str(d / "m.onnx"), "--method", "fs", "--calib",
                str(d / "calib.npz"), "-o", str(d / "fs.snnc"), "--quiet")
    assert proc.returncode == 0, proc.stderr
