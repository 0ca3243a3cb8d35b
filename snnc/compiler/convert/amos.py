"""convert_amos: ANN -> AMOS network, at most one spike per neuron (Stöckl & Maass 2019).

An AMOS gate is the FS neuron unrolled in space (ALGORITHMS.md §1.2, docs/amos.md): the k time
steps of the FS neuron become k one-shot neurons with the same (h, d, T) tables, so the
conversion is the FS conversion with every FewSpikeNeurons population turned into a circuit
population.
"""

from __future__ import annotations

from snnc.compiler.passes.calibrate import ActivationStats
from snnc.compiler.convert.common import neuron_depth
from snnc.compiler.convert.fs import DEFAULT_K, convert_fs
from snnc.ir import neurons
from snnc.ir.graph import Graph

__all__ = ["convert_amos", "circuit_depth"]


def convert_amos(graph: Graph, stats: dict[str, ActivationStats], K: int = DEFAULT_K) -> Graph:
    """Requires: a prepared graph (prepare_spiking) and calibration stats of its activations.
    Ensures: every activation is an AmosNeurons population whose circuit uses the FS table of
    convert_fs (ReLU: k = ``K`` neurons, alpha from calibration; SiLU k = 16; sigmoid k = 12);
    decoded values equal the FS network's bit for bit. Max-pool and products of two populations
    act on decoded values, as in FS. Raises UnsupportedOp for other non-linear ops."""
    fs = convert_fs(graph, stats, K)
    nodes = []
    for n in fs.nodes:
        if isinstance(n.op, neurons.FewSpikeNeurons):
            op = n.op
            n = n.replace(op=neurons.AmosNeurons(op.h, op.d, op.T, op.activation))
        nodes.append(n)
    return fs.replace(nodes=tuple(nodes))


def circuit_depth(graph: Graph) -> int:
    """Steps from input to decision of a pipelined AMOS network: the sum of the circuit depths
    k of the gate layers on the longest path (a gate's input arrives in its first step, its
    last neuron fires k steps later and reaches the next layer in the following step).
    Skip connections get the synaptic delay of the depth difference, so every gate sees its
    complete input in one step."""
    return neuron_depth(graph, steps=lambda op: neurons.neurons_per_gate(op))
