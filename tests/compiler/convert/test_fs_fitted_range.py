"""Leaky ReLU (and PRelu with one slope) in fs: a constructed table over the calibrated input
range, as ReLU's alpha, instead of a table fitted on [-8, 8] whose resolution is too coarse
for layers whose inputs stay near 0 (a random PRelu CNN agreed 0.525 with its ANN)."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import snnc
from snnc.compiler import fs_params
from snnc.compiler.convert.fs import fs_table_for, leaky_relu_table
from snnc.compiler.passes.calibrate import ActivationStats
from snnc.ir import neurons, ops


@pytest.mark.parametrize("slope", [0.25, 0.01, -0.5, 1.5, 0.0])
@pytest.mark.parametrize("bound", [1.0, 37.5])
def test_table_codes_leaky_relu_on_its_range(slope, bound):
    t = leaky_relu_table(slope, bound)
    assert t.K == 16
    x = np.linspace(-bound, bound, 100_001)
    y = fs_params.encode(t, x)[0]
    err = np.abs(y - np.where(x > 0, x, slope * x)).max()
    assert err <= bound * max(1.0, abs(slope)) * 2.0**-7, err  # 16 steps: 1 + about 7 + 7 bits
    # beyond the range it saturates like FS-ReLU: at bound above, at -slope bound below
    y = fs_params.encode(t, np.array([3.0 * bound, -3.0 * bound]))[0]
    np.testing.assert_allclose(y, [bound, -slope * bound], atol=bound * 2.0**-6)


def test_bound_comes_from_the_calibrated_output_range():
    # x > 0 gives outputs <= 1, x < 0 with slope 0.1 outputs >= -0.05, so x >= -0.5: bound 1
    op = ops.Activation("leaky_relu", alpha=0.1)
    assert fs_table_for(op, ActivationStats(0.9, max=1.0, min=-0.05), 10) == \
        leaky_relu_table(0.1, 1.0)
    quarter = ops.Activation("leaky_relu", alpha=0.25)
    assert fs_table_for(quarter, ActivationStats(0.9, max=1.0, min=-0.5), 10) == \
        leaky_relu_table(0.25, 2.0)
    # a negative slope maps negative inputs to positive outputs: outputs <= 2 bound x >= -4
    neg = ops.Activation("leaky_relu", alpha=-0.5)
    assert fs_table_for(neg, ActivationStats(1.5, max=2.0, min=0.0), 10) == \
        leaky_relu_table(-0.5, 4.0)
    # no usable statistics: the range fitted tables cover
    for stat in (None, ActivationStats(0.0, max=0.0, min=0.0),
                 ActivationStats(1.0, max=float("inf"), min=0.0)):
        assert fs_table_for(op, stat, 10) == leaky_relu_table(0.1, 8.0)


def test_invalid_ranges_are_refused():
    with pytest.raises(ValueError, match="bound"):
        leaky_relu_table(0.1, 0.0)
    with pytest.raises(ValueError, match="bound"):
        leaky_relu_table(0.1, float("nan"))


def _prelu_mlp(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(196, 64), nn.PReLU(), nn.Linear(64, 10)).eval()
    buf = io.BytesIO()
    torch.onnx.export(m, torch.rand(1, 196), buf, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    path = tmp_path / "prelu.onnx"
    onnx.save(onnx.load_from_string(buf.getvalue()), path)
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(1).uniform(
        size=(200, 196)).astype(np.float32))
    return path, tmp_path / "x.npz"


def test_prelu_mlp_agrees_on_cpu_and_bit_exactly_on_loihi2(tmp_path):
    """A random 196-64-10 MLP with nn.PReLU() (one slope): the activation's inputs lie in about
    [-1, 1] and the logit margins are small (median 0.03)."""
    path, data = _prelu_mlp(tmp_path)
    agree = {}
    for target in ("cpu", "loihi2"):
        art = snnc.compile(path, method="fs", target=target, calib=data,
                           out=tmp_path / f"{target}.snnc")
        if target == "cpu":
            (pop,) = [n.op for n in art.graph.nodes
                      if isinstance(n.op, neurons.FewSpikeNeurons)]
            assert pop.activation == "leaky_relu" and len(pop.h) == 16
        agree[target] = snnc.simulate(art, data)["agreement"]
    assert agree["cpu"] >= 0.97 and agree["loihi2"] >= 0.97, agree


@pytest.mark.lava
@pytest.mark.slow
def test_lava_runs_the_leaky_table_spike_for_spike(tmp_path):
    path, data = _prelu_mlp(tmp_path)
    art = snnc.compile(path, method="fs", target="loihi2", calib=data, out=tmp_path / "l.snnc")
    np.savez(tmp_path / "two.npz", x=np.load(data)["x"][:2])
    ref = snnc.simulate(art, tmp_path / "two.npz", backend="cpu")
    lava = snnc.simulate(art, tmp_path / "two.npz", backend="lava")
    assert lava["spikes_per_sample"] == ref["spikes_per_sample"] > 0
    assert lava["agreement"] == ref["agreement"]
