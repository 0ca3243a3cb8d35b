"""A constructed (piecewise-linear) FS table on Lava: a GELU MLP compiled for loihi2 runs spike
for spike with the bit-exact reference (32-step graded-payload codes)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from support.model_builders import export_module
from torch import nn

from snnc.api import compile_model
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.ir import quantized as q


@pytest.mark.parametrize("act", [nn.GELU(), nn.Tanh()], ids=["gelu", "tanh"])
def test_constructed_table_spike_for_spike(tmp_path, act):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), act, nn.Linear(16, 4)).eval()
    onnx.save(export_module(m, torch.rand(1, 1, 8, 8)), tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.uniform(size=(64, 1, 8, 8)).astype(np.float32))
    images = rng.uniform(size=(3, 1, 8, 8)).astype(np.float32)
    art = compile_model(tmp_path / "m.onnx", target="loihi2", method="fs",
                        calib=tmp_path / "calib.npz", out=tmp_path / "a.snnc")
    (pop,) = [n for n in art.graph.nodes if isinstance(n.op, q.QFewSpikeNeurons)]
    assert pop.op.K == 32 and pop.op.graded
    res = run(art, images)
    ref_out, ref = reference_spikes(art.graph, images)
    assert (ref[pop.name] != 0).any()
    np.testing.assert_array_equal(res.spikes[pop.name], ref[pop.name])
    np.testing.assert_array_equal(res.outputs, ref_out)
