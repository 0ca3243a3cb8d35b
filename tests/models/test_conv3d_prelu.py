"""Issue 25's Conv3d/3-D pools and per-channel PRelu end to end: small random-weight nets
compile for every method on cpu and loihi2, simulate (float and bit-exact) with the ANN's top-1,
run on Lava spike for spike with the bit-exact reference, and export where the 2-D version
does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.model_builders import compile_on_random_inputs, export_module
from torch import nn

import snnc
from snnc.api import export_artifact
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.errors import BackendError
from snnc.ir import ops
from snnc.ir import quantized as q


def _prelu(c: int) -> nn.PReLU:
    p = nn.PReLU(c)
    nn.init.uniform_(p.weight, -0.5, 0.8)  # signed, different per channel
    return p


def conv3d_net() -> tuple[nn.Module, tuple[int, ...]]:
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.MaxPool3d(2),
                         nn.Conv3d(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                         nn.ReLU(), nn.AvgPool3d((1, 2, 2)), nn.Conv3d(6, 8, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 10)), (1, 6, 8, 8)


def prelu_mlp() -> tuple[nn.Module, tuple[int, ...]]:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), _prelu(32), nn.Linear(32, 10)), (64,)


def prelu_cnn() -> tuple[nn.Module, tuple[int, ...]]:
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), _prelu(6),
                         nn.Conv2d(6, 8, 3, stride=2, padding=1), _prelu(8), nn.Flatten(),
                         nn.Linear(8 * 5 * 5, 10)), (1, 10, 10)


MODELS = {"conv3d_net": conv3d_net, "prelu_mlp": prelu_mlp, "prelu_cnn": prelu_cnn}


def _compile(tmp_path, name: str, method: str, target: str, n: int = 64):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module, shape = MODELS[name]()
        model = export_module(module, torch.rand(1, *shape))
    return compile_on_random_inputs(model, shape, tmp_path, name, method, target, n)


def test_conv3d_lowers_to_block_structured_conv2d(tmp_path):
    art, _ = _compile(tmp_path, "conv3d_net", "fs", "cpu")
    convs = [n.op for n in art.graph.nodes if isinstance(n.op, ops.Conv2d)]
    assert [c.weight.shape for c in convs[:2]] == [(4 * 6, 6, 3, 3), (6 * 2, 4 * 3, 3, 3)]


def test_per_channel_prelu_is_one_relu_population_of_twice_the_channels(tmp_path):
    art, _ = _compile(tmp_path, "prelu_cnn", "fs", "cpu")
    convs = [n.op for n in art.graph.nodes if isinstance(n.op, ops.Conv2d)]
    # split maps merged into the convolutions before, merge maps into the layers after
    assert [c.weight.shape[:2] for c in convs] == [(12, 1), (16, 12)]


FAST = {("fs", "cpu"), ("fs", "loihi2"), ("rate", "cpu")}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("method,target", [
    pytest.param(m, t, marks=() if (m, t) in FAST else pytest.mark.slow)
    for m in ("fs", "rate", "amos", "ttfs") for t in ("cpu", "loihi2")])
def test_every_method(tmp_path, name, method, target):
    art, _ = _compile(tmp_path, name, method, target)
    m = snnc.simulate(art, tmp_path / "x.npz")  # loihi2: the bit-exact reference
    floor = {"rate": 0.85, "ttfs": 0.6}.get(method, 0.95)
    assert m["samples"] == 64 and m["agreement"] >= floor, m


@pytest.mark.lava
@pytest.mark.parametrize("name,method", [("conv3d_net", "fs"), ("conv3d_net", "rate"),
                                         ("prelu_cnn", "fs"), ("prelu_mlp", "rate")])
def test_lava_spike_for_spike(tmp_path, name, method):
    """Every population's spike trains and the readout equal the bit-exact reference."""
    art, x = _compile(tmp_path, name, method, "loihi2")
    x = x[:2]
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    kinds = (q.QFewSpikeNeurons, q.QIFNeurons)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, kinds)]
    assert sorted(res.spikes) == sorted(pops) and pops
    for p in pops:
        np.testing.assert_array_equal(res.spikes[p], ref[p], err_msg=p)
    np.testing.assert_array_equal(res.outputs, ref_out)


@pytest.mark.parametrize("name", ["prelu_cnn", "prelu_mlp"])
@pytest.mark.parametrize("fmt", ["nir", "netx"])
def test_per_channel_prelu_exports(tmp_path, name, fmt):
    art, _ = _compile(tmp_path, name, "rate", "loihi2")
    assert export_artifact(art, fmt, tmp_path / f"{name}.{fmt}").exists()


@pytest.mark.parametrize("fmt", ["nir", "netx"])
def test_conv3d_export_is_refused_naming_the_reshapes(tmp_path, fmt):
    """NIR and netx have no reshape but flatten, so the (C, D, H, W) <-> (C*D, H, W) reshapes
    of the lowering are refused, each named; no partial file is left."""
    art, _ = _compile(tmp_path, "conv3d_net", "rate", "loihi2")
    out = tmp_path / f"conv3d.{fmt}"
    with pytest.raises(BackendError, match=r"cannot express \d+ layer\(s\): "
                                           r"'/0/Conv_output_0/as2d' \(Reshape\)"):
        export_artifact(art, fmt, out)
    assert not out.exists()
