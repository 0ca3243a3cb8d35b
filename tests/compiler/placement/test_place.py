"""Core placement: an independent checker (tests/support/placement_checker.py) recomputes
every core's usage from the artifact; errors name the layer and resource; slicing details."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from support.examples import compiled_example
from support.placement_checker import check_artifact, halo_box, layout

from snnc.api import compile_model
from snnc.artifact import load_artifact
from snnc.compiler.placement import place, populations, slicing
from snnc.compiler.placement.connectivity import build_pops
from snnc.compiler.placement.slicing import source_channel_tiles, word_channels
from snnc.compiler.placement.usage import CoreUsage
from snnc.errors import TargetConstraintError
from snnc.targets import load_target

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("place")


@pytest.mark.parametrize("method", ["rate", "fs", "amos", "ttfs"])
@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
@pytest.mark.parametrize("example", ["lenet", pytest.param("resnet", marks=pytest.mark.slow)])
def test_independent_checker(tmp, example, target, method):
    m = check_artifact(compiled_example(example, target, method), (example, method))
    rows = m["placement"]["layers"]
    assert {r["name"] for r in rows} >= {p["name"] for p in m["populations"]}
    assert m["cores"] >= 2  # the examples do not fit one core
    # AMOS circuits are k = 10 neurons per gate, each with its own synapses: several chips
    assert m["chips"] == 1 or method == "amos"


def test_placement_is_deterministic(tmp):
    a = compiled_example("lenet", "loihi2", "fs")
    b = tmp / "again.snnc"
    compile_model(EXAMPLES / "lenet" / "lenet.onnx", target="loihi2", method="fs",
                  calib=EXAMPLES / "lenet" / "calib.npz", out=b)
    for name in ("placement.json", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def tiny_target(tmp: Path, cores: int, chips: int = 1, extra: str = "") -> Path:
    f = tmp / f"tiny{cores}x{chips}.toml"
    f.write_text(f'base = "loihi2"\n[chip]\ncores_per_chip = {cores}\n'
                 f"physical_cores_per_chip = {cores}\nchips_per_system = {chips}\n"
                 f"mesh_cols = {cores}\nmesh_rows = 1\ncores_per_tile = 1\n{extra}")
    return f


def test_network_larger_than_system_names_resource_and_layer(tmp):
    graph = load_artifact(compiled_example("resnet", "loihi2", "fs")).graph
    with pytest.raises(TargetConstraintError) as e:
        place(graph, load_target(tiny_target(tmp, 4)))
    msg = str(e.value)
    assert "\n" not in msg and "synaptic memory bits" in msg and "layer '/block1/" in msg
    assert "4 cores" in msg or "has 4" in msg


def test_neuron_fan_in_beyond_a_core_is_an_error(tmp):
    graph = load_artifact(compiled_example("lenet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 8, extra="[core]\nsynapse_mem_bits = 1024\n"))
    # consumers are sliced first: the readout's 120 input axons each hold one synapse list
    # rounded up to a 64-bit word
    with pytest.raises(TargetConstraintError, match=r"^layer 'logits': a single neuron needs "
                                                    r"7,680 synaptic memory bits; tiny8x1 core "
                                                    r"limit 1,024$"):
        place(graph, t)


def test_unlimited_input_axons_place(tmp):
    """A custom target may leave input axons unbounded: cutting an output-axon-bound layer then
    costs none (it once divided by the missing limit)."""
    graph = load_artifact(compiled_example("resnet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 64, extra='[core]\nmax_in_axons = "unlimited"\n'))
    pl = place(graph, t)
    assert pl.cores_lower_bound <= pl.cores <= 64
    assert all(s.out_axons <= t.core.max_out_axons for s in pl.slices)


def test_multi_chip_spread_and_traffic(tmp):
    graph = load_artifact(compiled_example("resnet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 16, chips=8))
    pl = place(graph, t)
    assert pl.chips == math.ceil(pl.cores / 16) >= 2
    per_chip = {}
    for s in pl.slices:
        per_chip.setdefault(s.chip, set()).add(s.core)
    assert all(len(c) <= 16 for c in per_chip.values())
    assert 0 < pl.traffic["inter_core"] <= pl.traffic["routes"]
    assert pl.cores_lower_bound <= pl.cores


def test_word_channels_fill_whole_memory_words(tmp):
    for name, bits in (("loihi2", 8), ("loihi1", 9)):  # loihi1: mixed-sign weights, 9 bits
        graph = load_artifact(compiled_example("lenet", name, "fs")).graph
        t = load_target(name)
        pops = [p for p in build_pops(graph, t) if p.wbits and max(p.wbits) == bits]
        assert pops, [p.wbits for p in build_pops(graph, t)]
        g = word_channels(pops[0], t.core.synapse_word_bits)
        assert g == {8: 8, 9: 64}[bits] and g * bits % t.core.synapse_word_bits == 0


def pop_target(tmp: Path, base: str) -> Path:
    f = tmp / f"{base}-pop.toml"
    f.write_text(f'base = "{base}"\nname = "{base}-pop"\n[core]\npopulation_axons = true\n')
    return f


@pytest.mark.parametrize("method", ["rate", "fs", "amos", "ttfs"])
@pytest.mark.parametrize("base", ["loihi2", "loihi1"])
@pytest.mark.parametrize("example", ["lenet", pytest.param("resnet", marks=pytest.mark.slow)])
def test_independent_checker_with_population_axons(tmp, example, base, method):
    """Population axons (one per source pixel, weight sets shared between pixels with the same
    window pattern): the checker counts pixels and distinct weight patterns from the weights
    themselves (``population_axon_use``), the placer from the window structure."""
    out = tmp / f"{example}-{base}-pop-{method}.snnc"
    compile_model(EXAMPLES / example / f"{example}.onnx", target=base, method=method,
                  target_file=pop_target(tmp, base), calib=EXAMPLES / example / "calib.npz",
                  out=out)
    m = check_artifact(out, (example, method))
    discrete = load_artifact(compiled_example(example, base, method)).manifest
    assert m["cores"] <= discrete["cores"]
    if example == "resnet" and method != "amos":
        if base == "loihi2":  # 16-32 channels: shared 3x3 weight sets
            assert 2 * m["cores"] <= discrete["cores"], (m["cores"], discrete["cores"])
        else:  # 1,024 compartments per core bound both (40,768 neurons: 40 cores)
            assert m["cores"] >= math.ceil(m["neurons"] / 1024)


def test_independent_checker_with_halo_compartments(tmp, monkeypatch):
    """A core of 96 kbit: the residual CNN's 3x3 convs tile, and halo compartments (never
    spiking, around each tile, beyond the layer's edges too) keep their windows whole, so fewer
    weight sets per core; the checker recounts the patterns over each slice's compartments,
    halo included (beyond the layer: the incidence continued by translation, ``continued``)."""
    f = tmp / "loihi2-pop-96k.toml"
    f.write_text('base = "loihi2"\nname = "loihi2-pop-96k"\n[core]\npopulation_axons = true\n'
                 "synapse_mem_bits = 98304\n")

    def compiled(name: str) -> Path:
        out = tmp / name
        compile_model(EXAMPLES / "resnet" / "resnet.onnx", target="loihi2", method="fs",
                      target_file=f, calib=EXAMPLES / "resnet" / "calib.npz", out=out)
        return out

    halo = compiled("resnet-halo.snnc")
    m = check_artifact(halo, ("resnet", "fs"))
    slices = json.loads((halo / "placement.json").read_text())["slices"]
    assert any(any(s.get("halo", ())) for s in slices)
    # edge tiles' halos reach beyond the layer, where the window continues (no edge weight set)
    lays = {p.name: layout(p.output.shape) for p in populations(load_artifact(halo).graph)}
    assert any(min(halo_box(s)[0]) < 0 or any(np.greater(halo_box(s)[1], lays[s["population"]]))
               for s in slices)
    # the manifest totals them (simulate --json counts their updates)
    real = sum(p.output.type.size for p in populations(load_artifact(halo).graph))
    assert m["placement"]["halo_compartments"] == sum(s["neurons"] for s in slices) - real > 0
    monkeypatch.setattr(slicing, "HALOS", (0,))
    plain = load_artifact(compiled("resnet-no-halo.snnc")).manifest
    assert m["cores"] < plain["cores"], (m["cores"], plain["cores"])


def test_producers_channel_tiles_scale_the_output_axons_a_tiling_costs(tmp):
    """Each channel tile of a population-axon source sends its own axon per pixel, so the
    tiling score charges a consumer tile's footprint once per channel tile its producer needs
    at least: its channels over the most that fit a core on one output pixel (3x3 conv on 64
    channels, 64 kbit: 9 one-tap weight sets of 64 word-aligned lists, 8 channels)."""
    C, H, mem = 64, 8, 65536
    with torch.random.fork_rng(devices=[]):  # leave the global RNG to the other tests
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(2, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(C, 10))
    torch.onnx.export(net, torch.rand(1, 2, H, H), tmp / "chain.onnx", input_names=["x"],
                      output_names=["y"])
    np.savez(tmp / "chain-calib.npz",
             x=np.random.default_rng(0).random((4, 2, H, H)).astype(np.float32))
    f = tmp / "loihi2-pop-64k.toml"
    f.write_text('base = "loihi2"\nname = "loihi2-pop-64k"\n[core]\npopulation_axons = true\n'
                 f"synapse_mem_bits = {mem}\n")
    out = tmp / "chain.snnc"
    compile_model(tmp / "chain.onnx", target="loihi2", method="fs", target_file=f,
                  calib=tmp / "chain-calib.npz", out=out)
    check_artifact(out)
    t = load_target(f)
    pops = build_pops(load_artifact(out).graph, t)
    by_name = {p.node.name: p for p in pops}
    source_channel_tiles(pops, by_name, CoreUsage(t))
    word = t.core.synapse_word_bits
    checked = 0
    for p in pops:
        for term, pop, tiles in zip(p.terms, p.pop_axons, p.src_tiles):
            src = by_name.get(term.source)
            if not pop or src is None:  # discrete axons, or the host's input
                assert tiles == 1
                continue
            if src.terms[0].axes[0].n_in != C:  # the first conv hears the 2-channel input
                continue
            bits = src.wbits[0]
            fit = max(c for c in range(1, C + 1)
                      if 9 * C * -(-c * bits // word) * word <= mem)
            assert tiles == -(-C // fit) > 1, (p.node.name, tiles, fit)
            checked += 1
    assert checked == 1  # the third conv's term from the second
