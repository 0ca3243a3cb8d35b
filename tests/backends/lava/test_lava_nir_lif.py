"""Imported spiking networks (NIR) on Lava's stock LIF process (backends/lava/leaky.py): spike for
spike equal to the bit-exact reference simulator on 10 samples, for LIF, CubaLIF, convolutional
and LI-readout networks, on both Loihi targets."""

from __future__ import annotations

import itertools

import nir
import numpy as np
import pytest
import torch

from snnc.backends.lava.leaky import check_leaky_supported, run_leaky
from snnc.compiler.frontend import load_nir
from snnc.compiler.quantize.leaky import quantize_leaky
from snnc.errors import BackendError
from snnc.ir import leaky
from snnc.ir.interpret import Interpreter
from snnc.sim import Counters, FixedRules
from snnc.sim.signals import Signal
from snnc.targets import load_target

pytestmark = pytest.mark.lava

RNG = np.random.default_rng(7)


def _graph(nodes: dict, chain: list[str]) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(chain)))


def lif_cuba_mlp() -> nir.NIRGraph:
    return _graph({
        "in": nir.Input(input_type={"input": np.array([24])}),
        "fc1": nir.Affine(weight=RNG.normal(0, 0.5, (32, 24)), bias=RNG.normal(0, 0.05, 32)),
        "lif": nir.LIF(tau=np.full(32, 1e-3), r=np.full(32, 10.0), v_leak=np.zeros(32),
                       v_threshold=np.ones(32)),
        "fc2": nir.Linear(weight=RNG.normal(0, 0.5, (6, 32))),
        "cuba": nir.CubaLIF(tau_syn=np.full(6, 5e-4), tau_mem=np.full(6, 1e-3),
                            r=np.full(6, 10.0), v_leak=np.zeros(6), v_threshold=np.ones(6),
                            w_in=np.full(6, 5.0)),
        "out": nir.Output(output_type={"output": np.array([6])}),
    }, ["in", "fc1", "lif", "fc2", "cuba", "out"])


def conv_li() -> nir.NIRGraph:
    return _graph({
        "in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=RNG.normal(0, 0.6, (4, 1, 3, 3)),
                           stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "if": nir.IF(r=np.ones((4, 4, 4)), v_threshold=np.ones((4, 4, 4))),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 4, 4])}),
        "fc": nir.Linear(weight=RNG.normal(0, 0.4, (5, 64))),
        "li": nir.LI(tau=np.full(5, 2e-3), r=np.full(5, 20.0), v_leak=np.zeros(5)),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }, ["in", "conv", "if", "flat", "fc", "li", "out"])


def conv_pool_lif() -> nir.NIRGraph:
    """Spikes summed by a SumPool2d, then an AvgPool2d, each before a synapse."""
    return _graph({
        "in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=RNG.normal(0.3, 0.6, (3, 1, 3, 3)),
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
        "if": nir.IF(r=np.ones((3, 8, 8)), v_threshold=np.ones((3, 8, 8))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(4, 4), weight=RNG.normal(0.1, 0.4, (4, 3, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "lif": nir.LIF(tau=np.full((4, 4, 4), 1e-3), r=np.full((4, 4, 4), 10.0),
                       v_leak=np.zeros((4, 4, 4)), v_threshold=np.ones((4, 4, 4))),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 2, 2])}),
        "fc": nir.Linear(weight=RNG.normal(0, 0.8, (5, 16))),
        "lif2": nir.LIF(tau=np.full(5, 1e-3), r=np.full(5, 10.0), v_leak=np.zeros(5),
                        v_threshold=np.ones(5)),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }, ["in", "conv", "if", "pool", "conv2", "lif", "avg", "flat", "fc", "lif2", "out"])


def scaled_mlp() -> nir.NIRGraph:
    """A Scale after a synapse (folded into it by the importer)."""
    return _graph({
        "in": nir.Input(input_type={"input": np.array([24])}),
        "fc1": nir.Affine(weight=RNG.normal(0, 0.5, (32, 24)), bias=np.zeros(32)),
        "gain": nir.Scale(scale=RNG.uniform(0.5, 2.0, 32)),
        "lif": nir.LIF(tau=np.full(32, 1e-3), r=np.full(32, 10.0), v_leak=np.zeros(32),
                       v_threshold=np.ones(32)),
        "fc2": nir.Linear(weight=RNG.normal(0, 0.5, (6, 32))),
        "lif2": nir.LIF(tau=np.full(6, 1e-3), r=np.full(6, 10.0), v_leak=np.zeros(6),
                        v_threshold=np.ones(6)),
        "out": nir.Output(output_type={"output": np.array([6])}),
    }, ["in", "fc1", "gain", "lif", "fc2", "lif2", "out"])


def _reference(qg, x) -> dict:
    env = {}
    Interpreter(FixedRules(Counters())).run(
        qg, [Signal(torch.as_tensor(x, dtype=torch.float64).unsqueeze(0))],
        observe=lambda n, s: env.__setitem__(n.name, s.x.numpy()))
    return env


@pytest.mark.slow  # 10 Lava runs per case: 15-60 s each on the shared 2-core machine
@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
@pytest.mark.parametrize("build", [lif_cuba_mlp, conv_li])
def test_stock_lif_equals_bit_exact_reference(build, target):
    _assert_spike_for_spike(build, target, 10)


@pytest.mark.slow  # 4 Lava runs each
@pytest.mark.parametrize("build", [conv_pool_lif, scaled_mlp])
def test_pools_and_scale_equal_bit_exact_reference(build):
    _assert_spike_for_spike(build, "loihi2", 4)


def _assert_spike_for_spike(build, target: str, samples: int) -> None:
    graph = load_nir(build(), timesteps=12)
    qg, _ = quantize_leaky(graph, load_target(target), input_max=1.0)
    x = (RNG.random((samples, *graph.inputs[0].shape)) < 0.4).astype(np.float32)
    lava = run_leaky(qg, x)
    ref = _reference(qg, x)
    assert lava, "no records"
    for name, rec in lava.items():
        if isinstance(qg.node(name).op, leaky.QLeakyReadout):  # LI: the synaptic input
            ref_rec = ref[qg.node(name).inputs[0].name]
        else:
            ref_rec = ref[name]
        np.testing.assert_array_equal(rec, ref_rec, err_msg=name)
    spikes = {n.name: int(lava[n.name].sum()) for n in qg.nodes
              if isinstance(n.op, leaky.QLeakyNeurons)}
    assert sum(spikes.values()) > 25 and all(spikes.values()), spikes  # not vacuous


def test_reset_by_subtraction_is_refused_on_lava():
    g = lif_cuba_mlp()
    g.nodes["lif"].metadata["reset"] = "subtract"
    qg, _ = quantize_leaky(load_nir(g, timesteps=4), load_target("loihi2"))
    with pytest.raises(BackendError, match="'lif' .reset by subtraction"):
        check_leaky_supported(qg)


def _lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def two_branches() -> nir.NIRGraph:
    """Two populations both feeding 'lif2' (two edges into one node, equally deep)."""
    nodes = {
        "in": nir.Input(input_type={"input": np.array([16])}),
        "fa": nir.Affine(weight=RNG.normal(0, 0.6, (12, 16)), bias=np.zeros(12)),
        "lif_a": _lif(12),
        "fb": nir.Linear(weight=RNG.normal(0.1, 0.6, (8, 16))),
        "lif_b": _lif(8),
        "ga": nir.Linear(weight=RNG.normal(0, 0.6, (5, 12))),
        "gb": nir.Affine(weight=RNG.normal(0, 0.9, (5, 8)), bias=RNG.normal(0, 0.05, 5)),
        "lif2": _lif(5),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("in", "fa"), ("fa", "lif_a"), ("in", "fb"), ("fb", "lif_b"), ("lif_a", "ga"),
             ("lif_b", "gb"), ("ga", "lif2"), ("gb", "lif2"), ("lif2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.slow  # 3 Lava runs
def test_two_edges_into_one_population_equal_bit_exact_reference():
    """The two synapses share the population's state unit (their integer currents add in its
    a_in); Lava connects both to the LIF's a_in."""
    qg, report = quantize_leaky(load_nir(two_branches(), timesteps=12), load_target("loihi2"),
                                input_max=1.0)
    (layer,) = [la for la in report["layers"] if la["population"] == "lif2"]
    assert [s["layer"] for s in layer["synapses"]] == ["ga", "gb"]
    assert len({s["state_scale"] for s in layer["synapses"]}) == 1
    _assert_spike_for_spike(two_branches, "loihi2", 3)


def test_edges_of_different_depth_are_refused_on_lava_naming_the_node():
    g = two_branches()
    g.nodes["skip"] = nir.Linear(weight=RNG.normal(0, 0.6, (5, 16)))
    g.edges += [("in", "skip"), ("skip", "lif2")]
    qg, _ = quantize_leaky(load_nir(g, timesteps=4), load_target("loihi2"))
    with pytest.raises(BackendError, match=r"'lif2/sum' \(edges into one population after "
                                           r"\[1, 2\] synapse layers"):
        check_leaky_supported(qg)
