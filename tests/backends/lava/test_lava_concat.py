"""Concatenation on Lava (issue 25): SqueezeNet-style fire modules (two branches joined along
channels, with different payload units), a concat of branches of different depth (the earlier
stream delayed) and one along the width run as Lava processes spike for spike with the
bit-exact reference."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from snnc.api import compile_model
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.ir import ops
from snnc.ir import quantized as q

pytestmark = [pytest.mark.lava, pytest.mark.slow]


class Fire(nn.Module):
    def __init__(self, deep: bool, axis: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(4, 3, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(4, 3, 3, padding=1), nn.ReLU(),
                               *([nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()] if deep else []))
        self.axis = axis
        self.head = nn.Sequential(nn.Conv2d(3 if axis in (2, 3) else 6, 4, 3, stride=2, padding=1),
                                  nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))

    def forward(self, x):
        h = self.stem(x)
        if self.axis == -1:  # synaptic input joined before one population
            return self.head(torch.relu(torch.cat([self.a[0](h), self.b[0](h)], dim=1)))
        if self.axis != 1:  # along width: one population twice (one payload unit)
            return self.head(torch.cat([self.a(h), self.a(h)], dim=self.axis))
        return self.head(torch.cat([self.a(h), self.b(h)], dim=self.axis))


def _model(tmp_path, deep: bool, axis: int = 1):
    torch.manual_seed(0)
    m = Fire(deep, axis)
    m(torch.rand(1, 1, 12, 12))  # materialize the lazy layer
    for p in m.parameters():
        nn.init.uniform_(p, -0.5, 0.5)
    buf = io.BytesIO()
    torch.onnx.export(m.eval(), torch.rand(1, 1, 12, 12), buf, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    path = tmp_path / "fire.onnx"
    onnx.save(onnx.load_from_string(buf.getvalue()), path)
    x = np.random.default_rng(0).uniform(size=(32, 1, 12, 12)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    return path, x


@pytest.mark.parametrize("method,deep,axis", [("fs", False, 1), ("fs", True, 1),
                                               ("rate", False, 1), ("fs", False, 3),
                                               ("fs", False, -1)])
def test_concat_spike_for_spike(tmp_path, method, deep, axis):
    path, x = _model(tmp_path, deep, axis)
    art = compile_model(path, target="loihi2", method=method, calib=tmp_path / "x.npz",
                        timesteps=16 if method == "rate" else None, out=tmp_path / "a.snnc")
    assert any(isinstance(n.op, ops.Concat) for n in art.graph.nodes)
    x = x[:3]
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    kinds = (q.QFewSpikeNeurons, q.QIFNeurons)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, kinds)]
    assert sorted(res.spikes) == sorted(pops)
    for p in pops:
        assert ref[p].sum() > 0, p
        np.testing.assert_array_equal(res.spikes[p], ref[p], err_msg=p)
    np.testing.assert_array_equal(res.outputs, ref_out)
