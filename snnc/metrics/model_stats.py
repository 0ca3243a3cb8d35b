"""Per-layer statistics of an ANN graph: parameter counts and multiply-accumulates (MACs)."""

from __future__ import annotations

import math

from snnc.ir import ops
from snnc.ir.graph import Graph, Node

__all__ = ["parameter_count", "macs", "layer_table"]


def parameter_count(op: ops.Op) -> int:
    """Trainable parameters held by the op (Constant operands count too: they are weights)."""
    return sum(int(a.size) for a in op.arrays().values())


def macs(node: Node) -> int:
    """Multiply-accumulates per sample of the layer; 0 for ops without synaptic weights."""
    op, out = node.op, node.output.type
    if isinstance(op, ops.Conv2d):
        return out.size * int(math.prod(op.weight.shape[1:]))
    if isinstance(op, ops.Dense):
        return out.size * op.weight.shape[1]
    return 0


def layer_table(graph: Graph) -> list[dict]:
    """One JSON-able row per node: name, op, input shapes, output shape, params, MACs."""
    return [
        {
            "name": n.name,
            "op": ops.op_name(n.op),
            "inputs": [v.name for v in n.inputs],
            "input_shapes": [list(v.shape) for v in n.inputs],
            "shape": list(n.output.shape),
            "params": parameter_count(n.op),
            "macs": macs(n),
        }
        for n in graph.nodes
    ]
