"""Placement at scale on a light zoo model (graph level: frontend -> conversion with synthetic
statistics; placement does not depend on them). benchmarks/compile_scaling.py prints the full
per-model table."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
# benchmarks/ is not a package: its zoo builder (``snn_graph``) is shared through sys.path
sys.path.insert(0, str(ROOT / "benchmarks"))

from compile_scaling import LIGHT, big_target, snn_graph  # noqa: E402

from snnc.compiler.placement import (  # noqa: E402
    RESOURCES,
    place,
    populations,
    relay_levels,
    sequential_fill_cost,
    split_fanin,
)
from snnc.compiler.placement.connectivity import build_pops, channel_segments  # noqa: E402
from snnc.errors import TargetConstraintError  # noqa: E402
from snnc.ir import neurons  # noqa: E402

LIMIT = {"neurons": "max_neurons", "in_axons": "max_in_axons", "out_axons": "max_out_axons",
         "synapse_bits": "synapse_mem_bits"}


def _check_limits(graph, pl, target) -> None:
    """Every neuron in one slice; per-core sums within every limit."""
    for p in populations(graph):
        n = sum(s.neurons for s in pl.slices if s.population == p.name)
        assert n == math.prod(p.output.shape), p.name
    cores: dict[tuple, np.ndarray] = {}
    for s in pl.slices:
        key = (s.chip, s.core)
        cores[key] = cores.get(key, 0) + np.array([getattr(s, r) for r in RESOURCES])
    caps = np.array([getattr(target.core, LIMIT[r]) for r in RESOURCES])
    assert all((u <= caps).all() for u in cores.values())
    assert len(cores) == pl.cores and pl.chips == math.ceil(pl.cores / 120)


@pytest.mark.slow
@pytest.mark.parametrize("model, route_share", [("shufflenet", 0.9), ("squeezenet", 1.0),
                                               ("bvlc_alexnet", 0.5)])
def test_zoo_places_fast_within_limits_and_bound(tmp_path, model, route_share):
    """Measured (README "Core placement"): cores / lower bound 1.074 / 1.064 / 1.091 (issue #5's
    goal: 1.10), spike route energy 0.84 / 0.79 / 0.34 x Lava's sequential fill of the same
    slices (place keeps the fewest-core packing whose routes are at most the fill's)."""
    graph = snn_graph(next(p for p in LIGHT if model in p.stem))
    target = big_target("loihi2", None, tmp_path)
    t0 = time.perf_counter()
    graph = split_fanin(graph, target)  # AlexNet's fc6: 9,216 inputs, over relays
    pl = place(graph, target)
    seconds = time.perf_counter() - t0
    assert seconds < 60, seconds
    _check_limits(graph, pl, target)
    assert pl.cores <= 1.10 * pl.cores_lower_bound, (pl.cores, pl.cores_lower_bound)
    fill = sequential_fill_cost(pl, graph, target)
    assert pl.traffic["hop_energy_pj"] < route_share * fill, pl.traffic["hop_energy_pj"] / fill


@pytest.mark.slow
def test_resnet50_fan_in_is_split_over_relays(tmp_path):
    """ResNet-50's 3x3 convs on 512 channels need 4,608 input axons per neuron: on Loihi 2
    (4,096) they are cut in three channel groups (at most half a core's input axons each) with
    partial-sum relays, then placed."""
    graph = snn_graph(next(p for p in LIGHT if "resnet50" in p.stem))
    target = big_target("loihi2", None, tmp_path)
    with pytest.raises(TargetConstraintError, match=r"^layer 'r\d+': a single neuron needs "
                                                    r"4,608 input axons"):
        place(graph, target)
    t0 = time.perf_counter()
    split = split_fanin(graph, target)
    pl = place(split, target)
    seconds = time.perf_counter() - t0
    assert seconds < 60, seconds  # measured 18 s
    relays = [n for n in split.nodes if isinstance(n.op, neurons.PartialSumRelay)]
    assert len(relays) == 9 and relay_levels(split) == 3  # 3 convs x 3 groups, in series
    _check_limits(split, pl, target)
    # measured 1.090 (issue #5's goal: 1.10) at 0.89 x the sequential fill's route energy
    # (place keeps the fewest-core packing whose routes beat the fill)
    assert pl.cores <= 1.10 * pl.cores_lower_bound, (pl.cores, pl.cores_lower_bound)
    assert pl.traffic["hop_energy_pj"] < sequential_fill_cost(pl, split, target)


class _DenseBlock(torch.nn.Module):
    """DenseNet's block: each layer BN-ReLU-conv1x1-BN-ReLU-conv3x3 on the concatenation of
    the block input and all earlier layers' outputs."""

    def __init__(self, c0: int = 64, growth: int = 32, width: int = 128, layers: int = 3):
        super().__init__()
        nn = torch.nn
        self.layers = nn.ModuleList(nn.Sequential(
            nn.BatchNorm2d(c0 + i * growth), nn.ReLU(), nn.Conv2d(c0 + i * growth, width, 1),
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, growth, 3, padding=1))
            for i in range(layers))
        self.head = nn.Sequential(nn.BatchNorm2d(c0 + layers * growth), nn.ReLU(),
                                  nn.Conv2d(c0 + layers * growth, 4, 1))

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return self.head(x)


def test_concatenation_tiles_follow_its_parts(tmp_path):
    """A population fed by a concatenation (DenseNet: each layer's BN-ReLU reads all earlier
    outputs) is cut in channel tiles within its parts, tried with small spatial tiles of any
    aspect (3 x 1 strips of a whole 32-channel part), so each source neuron reaches few
    slices. DenseNet-121 (README "Core placement"): 1.306 -> 1.081 x the lower bound."""
    torch.manual_seed(0)
    path = tmp_path / "dense_block.onnx"
    torch.onnx.export(_DenseBlock().eval(), torch.zeros(1, 64, 8, 8), str(path),
                      opset_version=17)
    graph = snn_graph(path)
    # DenseNet-121's block 1 (on 8 x 8 pixels): a core holds 113 neurons' 3x3 windows over the
    # 128-channel bottleneck (9,216 bits each)
    t = big_target("loihi2", None, tmp_path)
    pl = place(graph, t)
    concat = [p for p in build_pops(graph, t) if len(channel_segments(p)) > 2]
    assert len(concat) == 3  # the BN-ReLU of the 2nd and 3rd layers and of the head
    for p in concat:
        bounds = channel_segments(p)
        assert list(bounds) == [0, *range(64, p.lay[0] + 1, 32)], bounds
        for s in pl.slices:
            if s.population == p.node.name:
                part = np.searchsorted(bounds, s.start[0], side="right")
                assert s.stop[0] <= bounds[part], (p.node.name, s.start, s.stop, bounds)
    _check_limits(graph, pl, t)
    # measured: 119 cores, lower bound 111 (before: 8 x 4 x 4 / 16 x 2 x 2 tiles, 136 cores)
    assert pl.cores <= 1.10 * pl.cores_lower_bound, (pl.cores, pl.cores_lower_bound)


@pytest.mark.slow
def test_densenet121_concatenations_place_within_bound(tmp_path):
    """DenseNet-121 (16 M neurons): every layer of a dense block reads all earlier outputs
    through its own BN-ReLU of the concatenation. Channel tiles within the concatenation's
    parts (3 x 1 strips of a whole 32-channel part) and bottlenecks cut into small pieces
    place it in 68,592 cores, 1.081 x the lower bound (1.306 with tiles across parts), at
    0.36 x the sequential fill's route energy; placed in 132 s on this 2-core machine."""
    graph = snn_graph(next(p for p in LIGHT if "densenet121" in p.stem))
    target = big_target("loihi2", None, tmp_path)
    pl = place(graph, target)
    _check_limits(graph, pl, target)
    assert pl.cores <= 1.10 * pl.cores_lower_bound, (pl.cores, pl.cores_lower_bound)
    assert pl.traffic["hop_energy_pj"] < 0.5 * sequential_fill_cost(pl, graph, target)
