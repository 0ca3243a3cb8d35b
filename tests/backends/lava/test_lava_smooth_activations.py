"""A constructed (piecewise-linear) FS table on Lava: a GELU MLP compiled for loihi2 runs spike
for spike with the bit-exact reference (32-step graded-payload codes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from snnc.api import compile_model
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.ir import quantized as q


@pytest.mark.parametrize("act", [nn.GELU(), nn.Tanh()], ids=["gelu", "tanh"])
def test_constructed_table_spike_for_spike(tmp_path, act):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), act, nn.Linear(16, 4)).eval()
    buf = io.BytesIO()
    torch.onnx.export(m, torch.rand(1, 1, 8, 8), buf, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    (tmp_path / "m.onnx").write_bytes(buf.getvalue())
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
