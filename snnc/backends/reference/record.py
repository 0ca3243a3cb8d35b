"""Per-step spike records of every neuron population, for rasters (``snnc report``).

Quantized graphs use the bit-exact recorder the Lava comparison uses
(``snnc.backends.lava.compare.reference_spikes``: payloads per step). Float graphs run the float
simulator's rules with a recording hook: IF populations already produce one output per step;
few-spike populations are re-encoded with their own table to get the (K, ...) spike train that
the simulator only counts. Populations without a per-step record in float mode (amos, ttfs
hybrid input) are left out and named in ``SpikeRecord.missing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from snnc.compiler.fs_params import FSTable, encode_torch
from snnc.ir import neurons
from snnc.ir.graph import Graph
from snnc.ir.interpret import Interpreter

__all__ = ["SpikeRecord", "record_spikes"]


@dataclass(frozen=True)
class SpikeRecord:
    """``trains[name]``: bool (steps, N, *shape), spike or not (graded payloads count as one);
    populations in graph order. ``missing``: populations with no per-step record."""

    trains: dict[str, np.ndarray]
    missing: list[str] = field(default_factory=list)


def record_spikes(graph: Graph, x: np.ndarray) -> SpikeRecord:
    """Run ``graph`` on the few samples ``x`` (N, ...) on the CPU and record every population's
    spikes per step."""
    from snnc.ir.quantized import is_quantized

    pops = [n.name for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)]
    if is_quantized(graph):
        from snnc.backends.lava.compare import reference_spikes

        _, payloads = reference_spikes(graph, x)
        trains = {k: v != 0 for k, v in payloads.items()}
    else:
        trains = _float_trains(graph, x)
    return SpikeRecord({k: trains[k] for k in pops if k in trains},
                       [k for k in pops if k not in trains])


def _float_trains(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    from snnc.backends.reference.simulator import Signal, _Counters, _Rules

    trains: dict[str, np.ndarray] = {}

    class Recording(_Rules):
        def few_spike(self, op: neurons.FewSpikeNeurons, sig: Signal) -> Signal:
            v = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
            _, spikes = encode_torch(FSTable(op.h, op.d, op.T, op.activation), v)
            trains[self.node.name] = spikes.cpu().numpy() != 0
            return super().few_spike(op, sig)

    rules = Recording(_Counters(), torch.float32)
    interp = rules.interp = Interpreter(rules)

    def observe(node, sig) -> None:
        if isinstance(node.op, neurons.IFNeurons):
            trains[node.name] = sig.x.cpu().numpy() != 0
        elif isinstance(node.op, neurons.SingleSpikeNeurons):  # output holds fired-so-far
            fired = sig.x.cpu().numpy() != 0
            trains[node.name] = np.concatenate([fired[:1], fired[1:] & ~fired[:-1]])

    with torch.no_grad():
        xb = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        interp.run(graph, [Signal(xb.unsqueeze(0))], observe=observe)
    return trains
