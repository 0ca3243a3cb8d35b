"""Resize lowerings book the synapses that exist: a 16-channel 14x14 -> 28x28 upsampling is a
grouped 1x1 convolution over the flattened map (bilinear: a Kronecker interpolation matrix,
mostly zeros) or repeat concatenations (nearest) between reshapes; placement follows the chain
element by element (compiler/placement/index_chains.py) instead of booking every output as
reading every input (397 loihi2 cores, 39 M synapses booked for 47 k non-zero weights)."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import snnc
from snnc.compiler.placement.placer import place
from snnc.ir import quantized as q
from snnc.targets import load_target


class _Up(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.a = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.b = nn.Conv2d(16, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        h = nn.functional.interpolate(torch.relu(self.a(x)), scale_factor=2, mode=self.mode, **kw)
        return self.fc(torch.flatten(torch.relu(self.b(torch.relu(h))), 1))


@pytest.fixture(scope="module")
def placed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resize")
    x = np.random.default_rng(1).uniform(size=(16, 1, 28, 28)).astype(np.float32)
    np.savez(tmp / "x.npz", x=x)
    out = {}
    for mode in ("nearest", "bilinear"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            m = _Up(mode)
            for p in m.parameters():
                nn.init.uniform_(p, -0.5, 0.5)
            buf = io.BytesIO()
            torch.onnx.export(m.eval(), torch.rand(1, 1, 28, 28), buf, opset_version=13,
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        onnx.save(onnx.load_from_string(buf.getvalue()), tmp / f"{mode}.onnx")
        art = snnc.compile(tmp / f"{mode}.onnx", target="loihi2", method="fs",
                           calib=tmp / "x.npz", out=tmp / f"{mode}.snnc")
        out[mode] = art.graph, place(art.graph, load_target("loihi2"))
    return out


def _booked(pl, population: str) -> int:
    return sum(s.synapses for s in pl.slices if s.population == population)


def test_bilinear_places_like_nearest(placed):
    (_, near), (_, lin) = placed["nearest"], placed["bilinear"]
    assert lin.cores <= near.cores + 2 and lin.cores <= 10, (lin.cores, near.cores)


def test_booked_synapses_are_the_non_zero_weights(placed):
    g, pl = placed["bilinear"]
    (interp,) = [n for n in g.nodes if isinstance(n.op, q.QConv2d) and n.output.shape[1:] == (1, 1)]
    nnz = int((interp.op.weight != 0).sum())
    assert nnz < interp.op.weight.size // 50  # mostly zeros: at most 4 of 196 per output
    assert _booked(pl, "/Relu_1_output_0") == nnz
    g, pl = placed["nearest"]
    assert _booked(pl, "/Relu_1_output_0") == 16 * 28 * 28  # one repeated input each
