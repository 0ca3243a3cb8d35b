"""What conversion methods share: the linear ops that become synapses/routing, the check that
names the first node a method cannot convert, and pipeline depth for latency."""

from __future__ import annotations

import networkx as nx

from snnc.errors import UnsupportedOp
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node

__all__ = ["LINEAR_OPS", "is_linear", "reject", "reject_pool_of_currents", "neuron_depth"]

# Ops that are linear in their dynamic inputs: they become synapses (weights) or routing.
LINEAR_OPS = (ops.Conv2d, ops.Dense, ops.AvgPool2d, ops.GlobalAvgPool, ops.BatchNorm, ops.Add,
              ops.Sub, ops.Concat, ops.Reshape, ops.Transpose, ops.Pad, ops.Identity,
              ops.Constant)


def is_linear(node: Node, producers: dict[str, Node]) -> bool:
    if isinstance(node.op, LINEAR_OPS):
        return True
    if isinstance(node.op, (ops.Mul, ops.Div)):  # scaling by a constant
        consts = [isinstance(getattr(producers.get(v.name), "op", None), ops.Constant)
                  for v in node.inputs]
        return consts[1] if isinstance(node.op, ops.Div) else any(consts)
    return False


def reject(node: Node, method: str, why: str) -> None:
    hint = ("; --approximate-lrn replaces it by a per-channel scale calibrated on --calib"
            if isinstance(node.op, ops.LRN) else "")
    raise UnsupportedOp(f"layer '{node.name}' ({ops.op_name(node.op)}): {why} "
                        f"(method {method}){hint}")


# Ops that route values unchanged: a max-pool behind them still reads what is before them.
_ROUTING = (ops.Reshape, ops.Transpose, ops.Pad, ops.Identity, ops.Concat, ops.Slice,
            ops.MaxPool2d)


def reject_pool_of_currents(node: Node, producers: dict[str, Node], method: str) -> None:
    """Refuse a max-pool (``node``, still an ANN MaxPool2d) that reads anything but neuron
    output: a spiking max-pool gate picks the window's most active neuron, so it needs spikes;
    the maximum of synaptic currents (a conv with no activation before the pool) or of the
    analog input has no spiking form in ``method``."""
    todo = list(node.inputs)
    while todo:
        src = producers.get(todo.pop().name)
        if src is not None and isinstance(src.op, _ROUTING):
            todo.extend(v for v in src.inputs
                        if not isinstance(getattr(producers.get(v.name), "op", None),
                                          ops.Constant))
        elif src is None or not isinstance(src.op, ops.Activation):
            what = ("the network input" if src is None
                    else f"'{src.name}' ({ops.op_name(src.op)})")
            reject(node, method, f"max-pooling {what}, not neuron output, has no spiking form; "
                                 "put the activation before the pool, or use --method fs")


def neuron_depth(graph: Graph, steps=None) -> int:
    """Number of neuron populations on the longest input-to-output path; with ``steps`` (op ->
    int), the largest sum of ``steps(op)`` over the populations of one path instead."""
    g = graph.to_networkx()
    weight = {n.name: (steps(n.op) if steps is not None else 1)
              if isinstance(n.op, neurons.NEURON_OPS) else 0 for n in graph.nodes}
    depth: dict[str, int] = {}
    for name in nx.topological_sort(g):
        preds = [depth[p] for p in g.predecessors(name)]
        depth[name] = (max(preds) if preds else 0) + weight.get(name, 0)
    return max((depth[v.name] for v in graph.outputs), default=0)
