"""The host side of a Lava run, computed exactly as the bit-exact reference simulator computes
it: the input encoder's codes, and ``simulate``'s counts (spikes, synaptic events) from the
records of a run.

The only module of the Lava backend that uses the spiking simulation layer (``snnc.sim``).
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.lava.network import LavaResult
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Node
from snnc.ir.ops import Role
from snnc.sim.integers import float_twin, hybrid_events, input_code
from snnc.sim.kernels import fanout
from snnc.sim.signals import SimulationResult

__all__ = ["FANOUT_TWINS", "input_codes", "simulation_result"]

# The float op whose fan-out a lowered synaptic op has (the reference counts synaptic events
# as input spikes times fan-out); QScale synapses are one per element.
FANOUT_TWINS = {
    q.QConv2d: float_twin,
    q.QDense: float_twin,
    q.SumPool2d: lambda op: ops.AvgPool2d(op.kernel, op.stride),
    q.GlobalSumPool: lambda op: ops.GlobalAvgPool(),
}


def input_codes(op: q.InputQuantizer | q.QHybridInput, x: np.ndarray) -> np.ndarray:
    """The host-side input encoder, exactly as the bit-exact reference computes it: the 8-bit
    codes (N, ...) of ``InputQuantizer``, or the event payloads (N, T, ...) of
    ``QHybridInput``."""
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if type(op) is q.QHybridInput:
        return np.moveaxis(hybrid_events(op, xt)[0].numpy().astype(np.int64), 0, 1)
    return input_code(op, xt).numpy().astype(np.int64)


def simulation_result(graph, x: np.ndarray, res: LavaResult) -> SimulationResult:
    """``simulate``'s result type from a Lava run of ``graph`` on ``x``: readouts, spike counts
    per population and synaptic events per synapse layer (counted as the reference simulator
    counts them: input spikes times fan-out; the input code is not a spike, the hybrid input's
    spikes are host-side events of the first synapses), so the CLI metrics are the same.

    Requires: ``graph`` passed ``check_supported`` (every op has a lowering)."""
    n = len(x)
    events, producer = _events(graph, x, res)
    synops = _synops(graph, events, producer, n)
    spikes = {k: float(events[k].sum()) for k in res.spikes}
    most = {k: float((v > 0).max()) if v.size else 0.0 for k, v in res.fired_step.items()}
    most.update({node.name: float(events[node.name].max()) for node in graph.nodes
                 if type(node.op) is q.QSingleSpikeNeurons and events[node.name].size})
    counts = {node.name: node.output.type.size * neurons.neurons_per_gate(node.op)
              for node in graph.nodes if isinstance(node.op, neurons.NEURON_OPS)}
    return SimulationResult([res.outputs], spikes, counts, synops, n, res.wall_s, most)


def _events(graph, x: np.ndarray, res: LavaResult):
    """Per value: its spikes (N, size) that synapses see (populations, AMOS neurons, gates,
    the hybrid input's spikes, channel slices of them); and per node: the node whose events
    its value carries (a reshape is free)."""
    n = len(x)
    events = {k: (v != 0).sum(0, dtype=np.float64).reshape(n, -1)
              for k, v in res.spikes.items()}
    events.update({k: (v > 0).sum(1, dtype=np.float64).reshape(n, -1)  # AMOS: every neuron
                   for k, v in res.fired_step.items()})
    events.update(res.events)
    inq = graph.nodes[0]
    if type(inq.op) is q.QHybridInput:
        spikes = hybrid_events(inq.op, torch.as_tensor(np.asarray(x), dtype=torch.float64))[1]
        events[inq.name] = spikes.numpy().reshape(n, -1)
    producer = {}
    for node in graph.nodes:
        src = node.inputs[0].name if node.inputs else None
        producer[node.name] = (producer.get(src, src) if type(node.op) is ops.Reshape
                               else node.name)
        if type(node.op) is ops.Slice and producer.get(src, src) in events:
            # a channel group: its synapses see the events of its channels only
            e = events[producer.get(src, src)].reshape(n, *node.inputs[0].type.shape)
            events[node.name] = e[:, node.op.start:node.op.stop].reshape(n, -1)
    return events, producer


def _synops(graph, events: dict, producer: dict, n: int) -> dict[str, float]:
    """Synaptic events per synaptic layer: input spikes times fan-out, as fixed_point counts."""
    synops = {}
    for node in graph.nodes:
        if node.op.role is not Role.SYNAPTIC:
            continue
        src = producer.get(node.inputs[0].name, node.inputs[0].name)
        if src not in events:
            continue  # the input code (not spikes) or pooled sums (counted at the pool)
        e = torch.as_tensor(events[src]).reshape(n, *node.inputs[0].type.shape)
        if type(node.op) is q.QScale:  # one synapse per element
            synops[node.name] = float(e.sum())
            continue
        twin = Node(FANOUT_TWINS[type(node.op)](node.op), node.inputs, node.output)
        synops[node.name] = float((e * fanout(twin, e)).sum())
    return synops
