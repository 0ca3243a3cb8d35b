"""Running a rule table over a graph: one pass over given inputs, or a data set batch by batch
with the readouts and counts gathered into a ``SimulationResult``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import torch

from snnc.ir import neurons
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import Interpreter
from snnc.sim.signals import Buffers, Counters, Signal, SimulationResult

__all__ = ["run_batches", "run_once", "time_steps"]


def run_once(rules: Mapping[type, Callable], graph: Graph, x: torch.Tensor,
             observe: Callable[[Node, Signal], None] | None = None) -> list[Signal]:
    """Run ``rules`` over ``graph`` on the input batch ``x`` (N, ...), constant in time;
    ``observe(node, signal)`` sees every node's output."""
    return Interpreter(rules).run(graph, [Signal(x.unsqueeze(0))], observe=observe)


def time_steps(graph: Graph) -> int:
    """The longest time window of the graph's populations (rate/single-spike T, FS/AMOS K)."""
    return max([n.op.timesteps for n in graph.nodes
                if isinstance(n.op, (neurons.IFNeurons, neurons.SingleSpikeNeurons))]
               + [neurons.neurons_per_gate(n.op) for n in graph.nodes], default=1)


def run_batches(graph: Graph, rules: Mapping[type, Callable], counters: Counters, x: np.ndarray,
                batch_size: int, device: torch.device, dtype: torch.dtype,
                progress: Callable[[int], None] | None,
                buffers: Buffers | None = None) -> SimulationResult:
    """Run ``rules`` (which count into ``counters``) on ``x`` batch by batch; the readout of
    each output is its mean over the time axis. Shared by the float and the bit-exact
    simulator. ``buffers``: the arrays ``rules`` take from it, released after every batch
    (nothing outside this loop sees the batch's signals)."""
    outputs: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    interp = Interpreter(rules)
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[lo:lo + batch_size]), dtype=dtype, device=device)
            outs = interp.run(graph, [Signal(xb.unsqueeze(0))])
            for i, o in enumerate(outs):
                outputs[i].append(o.x.mean(0).float().cpu().numpy())
            del outs
            if buffers is not None:
                buffers.release()
            if progress is not None:
                progress(len(xb))
    wall = time.perf_counter() - start
    neuron_counts = {n.name: n.output.type.size * neurons.neurons_per_gate(n.op)
                     for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)}
    return SimulationResult([np.concatenate(o) for o in outputs], dict(counters.spikes),
                            neuron_counts, dict(counters.synops), len(x), wall,
                            dict(counters.max_spikes))
