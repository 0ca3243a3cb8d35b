"""Per-step spike records of every neuron population, for rasters (``snnc report``).

Quantized graphs use the bit-exact recorder the Lava comparison uses
(``reference_spikes``: payloads per step). Float graphs run the float
simulator's rules with a recording hook: IF populations already produce one output per step;
few-spike populations are re-encoded with their own table to get the (K, ...) spike train that
the simulator only counts. Populations without a per-step record in float mode (amos, ttfs
hybrid input) are left out and named in ``SpikeRecord.missing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from snnc.ir import neurons
from snnc.ir.graph import Graph
from snnc.ir.quantized import is_quantized
from snnc.sim.fixed_rules import FixedRules
from snnc.sim.float_rules import FloatRules
from snnc.sim.fs_coding import FSTable, encode_torch
from snnc.sim.integers import sums_windows
from snnc.sim.run import run_once
from snnc.sim.signals import DTYPE, Counters, Signal

__all__ = ["SpikeRecord", "record_spikes", "reference_spikes"]


@dataclass(frozen=True)
class SpikeRecord:
    """``trains[name]``: bool (steps, N, *shape), spike or not (graded payloads count as one);
    populations in graph order. ``missing``: populations with no per-step record."""

    trains: dict[str, np.ndarray]
    missing: list[str] = field(default_factory=list)


def record_spikes(graph: Graph, x: np.ndarray) -> SpikeRecord:
    """Run ``graph`` on the few samples ``x`` (N, ...) on the CPU and record every population's
    spikes per step."""
    pops = [n.name for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)]
    if is_quantized(graph):
        _, payloads = reference_spikes(graph, x)
        trains = {k: v != 0 for k, v in payloads.items()}
    else:
        trains = _float_trains(graph, x)
    return SpikeRecord({k: trains[k] for k in pops if k in trains},
                       [k for k in pops if k not in trains])


def _float_trains(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    trains: dict[str, np.ndarray] = {}
    rules = FloatRules(Counters(), torch.float32)

    def few_spike(node, sig: Signal) -> Signal:  # records the K steps the rule only counts
        op = node.op
        v = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        _, spikes = encode_torch(FSTable(op.h, op.d, op.T, op.activation), v)
        trains[node.name] = spikes.cpu().numpy() != 0
        return rules.few_spike(node, sig)

    rules[neurons.FewSpikeNeurons] = few_spike

    def observe(node, sig) -> None:
        if isinstance(node.op, neurons.IFNeurons):
            trains[node.name] = sig.x.cpu().numpy() != 0
        elif isinstance(node.op, neurons.SingleSpikeNeurons):  # output holds fired-so-far
            fired = sig.x.cpu().numpy() != 0
            trains[node.name] = np.concatenate([fired[:1], fired[1:] & ~fired[:-1]])

    with torch.no_grad():
        run_once(rules, graph, torch.as_tensor(np.asarray(x), dtype=torch.float32), observe)
    return trains


def reference_spikes(graph: Graph, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the bit-exact rules (as ``simulate_fixed``) on ``x`` (N, ...) on the CPU; return the
    readout (N, ...) and every neuron population's payloads (T, N, *shape) as int64 arrays: what
    the Lava backend must reproduce step for step."""
    rules = FixedRules(Counters(), window_sum=sums_windows(graph))
    trains: dict[str, np.ndarray] = {}

    def observe(node, sig) -> None:
        if isinstance(node.op, neurons.NEURON_OPS):
            trains[node.name] = sig.x.cpu().numpy().astype(np.int64)

    with torch.no_grad():
        outs = run_once(rules, graph, torch.as_tensor(np.asarray(x), dtype=DTYPE), observe)
    return outs[0].x.mean(0).float().numpy(), trains
