"""Fan-in beyond a core's input axons, spread over partial-sum relays (placement/split_fanin.py).

LeNet on a Loihi 2 whose cores have 64 input axons: conv2 (5x5x6 = 150 inputs per neuron), fc1
(256) and the readout (120) do not fit a core unless split."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from support.model_builders import concat_then_relu
from support.placement_checker import check_artifact

from snnc.api import compile_model, float_graph, simulate_artifact
from snnc.artifact import load_artifact
from snnc.backends.reference.record import reference_spikes
from snnc.backends.reference.simulator import simulate
from snnc.compiler.placement import place, relay_levels, split_fanin
from snnc.compiler.placement.split_fanin import part_max, payload_max
from snnc.errors import TargetConstraintError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph
from snnc.ir.verify import verify
from snnc.targets import load_target

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
LENET = EXAMPLES / "lenet"


def narrow_target(tmp: Path, in_axons: int, base: str = "loihi2") -> Path:
    f = tmp / f"{base}-in{in_axons}.toml"
    f.write_text(f'base = "{base}"\nname = "{base}-in{in_axons}"\n[core]\n'
                 f"max_in_axons = {in_axons}\n")
    return f


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("split")


@lru_cache(maxsize=None)
def _compiled(tmp: Path, method: str, in_axons: int | None) -> Path:
    out = tmp / f"lenet-{method}-{in_axons}.snnc"
    compile_model(LENET / "lenet.onnx", method=method, calib=LENET / "calib.npz", out=out,
                  target="loihi2",
                  target_file=narrow_target(tmp, in_axons) if in_axons else None)
    return out


def _relays(graph: Graph) -> list:
    return [n for n in graph.nodes if isinstance(n.op, neurons.PartialSumRelay)]


CONV2, FC1, READOUT = "/conv2/Conv_output_0", "/fc1/Gemm_output_0", "logits/acc"


@pytest.mark.parametrize("method,in_axons,cut", [
    ("fs", 64, {CONV2, FC1, READOUT}),
    ("rate", 64, {CONV2, FC1, READOUT}),
    # AMOS circuits send one axon per circuit neuron (k = 10): the readout needs 1,200
    ("amos", 512, {READOUT}),
])
def test_split_network_fits_and_passes_the_independent_checker(tmp, method, in_axons, cut):
    path = _compiled(tmp, method, in_axons)
    graph = load_artifact(path).graph
    verify(graph)
    split = {n.name.split("/part")[0] for n in graph.nodes if "/part" in n.name}
    assert split == cut
    assert any(isinstance(n.op, ops.Slice) for n in graph.nodes)
    assert relay_levels(graph) >= 1
    manifest = load_artifact(path).manifest
    whole = load_artifact(_compiled(tmp, method, None)).manifest
    assert manifest["fan_in_splits"]["layers"] == sorted(cut)
    assert manifest["latency_steps"] == whole["latency_steps"] + relay_levels(graph)
    assert "fan_in_splits" not in whole
    # every core within every limit, recounted from the artifact by one-hot propagation
    m = check_artifact(path)
    assert m["cores"] >= 2
    # the ideal (float) network is the unsplit one: relays live only in the integer graph
    assert not _relays(float_graph(load_artifact(path)))


@pytest.mark.parametrize("method", ["fs", pytest.param("rate", marks=pytest.mark.slow)])
def test_split_network_keeps_accuracy(tmp, method):
    """Bit-exact accuracy on the 1,000 test images within 0.3 pp of the unsplit network's (each
    group floors its own weight shift; issue #5's bit-exact tolerance; measured equal)."""
    split = simulate_artifact(_compiled(tmp, method, 64), LENET / "test.npz")
    whole = simulate_artifact(_compiled(tmp, method, None), LENET / "test.npz")
    assert split.mode == whole.mode == "bit-exact" and split.samples == 1000
    assert abs(split.accuracy - whole.accuracy) <= 0.003, (split.accuracy, whole.accuracy)
    # relays' graded messages are reported apart: the network's spike statistics stay put
    assert split.neurons == whole.neurons and "relay_neurons" not in whole
    assert abs(split.spikes_per_neuron - whole.spikes_per_neuron) < 0.01 * whole.spikes_per_neuron
    assert split.relay_neurons > 0 and split.relay_messages_per_sample > 0
    assert split.synops_per_sample > whole.synops_per_sample  # the relays' 1:1 synapses
    assert split.agreement >= 0.98


def test_relay_payloads_stay_within_the_proved_bound(tmp):
    """Rate network, per step: every relay payload is at most the bound split_fanin proved
    (row L1 of the group's mantissas x the largest input payload, shifted), which fits the
    24-bit graded payload, and the same run twice gives the same payloads."""
    graph = load_artifact(_compiled(tmp, "rate", 64)).graph
    x = np.load(LENET / "test.npz")["x"][:8]
    _, trains = reference_spikes(graph, x)
    _, again = reference_spikes(graph, x)
    prods = graph.producers()
    for relay in _relays(graph):
        part = prods[relay.inputs[0].name]
        bound = part_max(part.op, 0, part.op.weight.shape[1], 1,
                         payload_max(graph, part.inputs[0]))
        assert 0 < bound <= 2 ** (relay.op.payload_bits - 1) - 1
        got = np.abs(trains[relay.name]).max()
        assert 0 < got <= bound, (relay.name, got, bound)
        assert np.array_equal(trains[relay.name], again[relay.name])


def test_float_graph_split_computes_the_same_network(tmp):
    """On the ideal network the split only reorders sums."""
    art = load_artifact(_compiled(tmp, "fs", None))
    g = float_graph(art)
    t = load_target(narrow_target(tmp, 64))
    s = split_fanin(g, t)
    verify(s)
    assert len(_relays(s)) == 18  # conv2: 6 groups, fc1: 8, the readout: 4 (32 axons each)
    x = np.load(LENET / "test.npz")["x"][:64]
    a = simulate(g, x, dtype=torch.float64).outputs[0]
    b = simulate(s, x, dtype=torch.float64).outputs[0]
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
    place(s, t)  # and it places, where the unsplit graph cannot
    with pytest.raises(TargetConstraintError):
        place(g, t)


def test_binary_spike_target_keeps_the_error_with_a_hint(tmp):
    graph = load_artifact(_compiled(tmp, "fs", None)).graph
    t = load_target(narrow_target(tmp, 64, base="loihi1"))
    assert split_fanin(graph, t) is graph  # no graded spikes: nothing to relay
    # consumers are sliced first: the readout is named
    with pytest.raises(TargetConstraintError, match=r"^layer 'logits': a single neuron needs 120 "
                       r"input axons; loihi1-in64 core limit 64 \(targets with graded spikes"):
        place(graph, t)


def test_nothing_to_split_leaves_the_graph_alone(tmp):
    graph = load_artifact(_compiled(tmp, "fs", None)).graph
    assert split_fanin(graph, load_target("loihi2")) is graph


def test_group_sizes_respect_the_limit(tmp):
    graph = load_artifact(_compiled(tmp, "fs", 64)).graph
    for n in graph.nodes:
        if "/part" in n.name and isinstance(n.op, ops.Conv2d):
            kh, kw = n.op.weight.shape[2:]
            assert n.op.weight.shape[1] * kh * kw <= 64
        elif "/part" in n.name and isinstance(n.op, ops.Dense):
            assert n.op.weight.shape[1] <= 64
    cuts: dict[str, list[tuple[int, int]]] = {}
    for n in graph.nodes:
        if isinstance(n.op, ops.Slice):
            cuts.setdefault(n.name.rsplit("/in", 1)[0], []).append((n.op.start, n.op.stop))
    channels = {"/conv2/Conv_output_0": 6, "/fc1/Gemm_output_0": 16, "logits/acc": 120}
    assert set(cuts) == set(channels)
    for name, c in cuts.items():  # contiguous groups covering every channel once, balanced
        c.sort()
        assert c[0][0] == 0 and c[-1][1] == channels[name]
        assert all(a[1] == b[0] for a, b in zip(c, c[1:]))
        sizes = [b - a for a, b in c]
        assert max(sizes) - min(sizes) <= max(sizes) // 2 + 1


@pytest.mark.slow
def test_residual_network_split_inside_its_blocks(tmp):
    """The residual CNN on 140-axon cores: four 3x3 convs (inside both residual blocks, whose
    parts are added before the skip connection) are split; bit-exact accuracy on the 1,000
    test images is within 0.3 pp of the unsplit network's (measured equal: 97.6 %), and each
    relay level adds one step of latency."""
    resnet = EXAMPLES / "resnet"
    target = tmp / "n140.toml"
    target.write_text('base = "loihi2"\nname = "n140"\n[core]\nmax_in_axons = 140\n'
                      "[chip]\nchips_per_system = 64\n")
    arts = {}
    for name, tf in (("split", target), ("whole", None)):
        arts[name] = compile_model(resnet / "resnet.onnx", method="fs", target="loihi2",
                                   target_file=tf, calib=resnet / "calib.npz",
                                   out=tmp / f"resnet-{name}.snnc")
    splits = arts["split"].manifest["fan_in_splits"]
    assert len(splits["layers"]) == 4 and splits["relay_levels"] == 4
    assert (arts["split"].manifest["latency_steps"]
            == arts["whole"].manifest["latency_steps"] + 4)
    acc = {k: simulate_artifact(a, resnet / "test.npz").accuracy for k, a in arts.items()}
    assert abs(acc["split"] - acc["whole"]) <= 0.003, acc


def test_population_axons_leave_convolutions_whole(tmp):
    """With population axons a conv neuron needs one input axon per source pixel of its window
    (LeNet's conv2: 25, not 6 x 25 = 150), so on 64-axon cores only the dense layers, whose
    inputs are one axon per neuron, are split; channel groups would not cut pixel axons."""
    f = tmp / "loihi2-in64-pop.toml"
    f.write_text('base = "loihi2"\nname = "loihi2-in64-pop"\n[core]\nmax_in_axons = 64\n'
                 "population_axons = true\n")
    out = tmp / "lenet-pop-64.snnc"
    compile_model(LENET / "lenet.onnx", method="fs", calib=LENET / "calib.npz", out=out,
                  target="loihi2", target_file=f)
    graph = load_artifact(out).graph
    split = {n.name.split("/part")[0] for n in graph.nodes if "/part" in n.name}
    assert split == {FC1, READOUT}
    check_artifact(out)


def test_fan_in_behind_a_concatenation_is_split(tmp_path):
    """On 64-axon cores the 3x3 expand branch (8 x 9 = 72 inputs per neuron) is split through
    the Concat in front of its population (it was refused: 'a single neuron needs 72 input
    axons'), the network places, and the bit-exact outputs agree with the unsplit network's."""
    onnx.save(concat_then_relu(), tmp_path / "fire.onnx")
    x = np.random.default_rng(0).uniform(size=(64, 1, 14, 14)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    arts = {name: compile_model(tmp_path / "fire.onnx", method="fs", target="loihi2",
                                target_file=tf, calib=tmp_path / "x.npz",
                                out=tmp_path / f"{name}.snnc")
            for name, tf in (("split", narrow_target(tmp_path, 64)), ("whole", None))}
    e3 = next(n.name for n in arts["whole"].graph.nodes
              if isinstance(n.op, ops.Conv2d) and n.op.weight.shape[2:] == (3, 3)
              and n.op.weight.shape[1] == 8)
    assert e3 in arts["split"].manifest["fan_in_splits"]["layers"]
    check_artifact(arts["split"].path)
    a, b = (simulate(arts[k].graph, x).outputs[0] for k in ("split", "whole"))
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.95
