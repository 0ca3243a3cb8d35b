"""1-D networks in their 2-D form, for the exporters.

The frontend lowers Conv1d and 1-D pooling to their 2-D ops between reshapes that add and drop a
unit height axis: ``(C, L) -> (C, 1, L) -> Conv2d -> (C', 1, L') -> (C', L')``. NIR has no 1-D
pooling and no reshape but Flatten, and netx has only 2-D convolutions, so the exporters write
such a network the way the 2-D ops see it: every ``(C, L)`` value as ``(C, 1, L)``, the
reshapes between the two forms gone. The input is then ``(C, 1, L)``: a reader feeds
``x[:, :, None, :]``.
"""

from __future__ import annotations

from snnc.ir import ops
from snnc.ir.graph import Graph
from snnc.ir.types import TensorType, Value

__all__ = ["as_planar", "is_one_dimensional", "planar_shape"]


def planar_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(C, L) -> (C, 1, L)``; every other rank unchanged."""
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)


def _adds_or_drops_height(node) -> bool:
    """Whether ``node`` is a reshape between ``(C, L)`` and ``(C, 1, L)`` (either way)."""
    if not isinstance(node.op, ops.Reshape):
        return False
    a, b = node.inputs[0].shape, node.output.shape
    return len({len(a), len(b)} & {2, 3}) == 2 and planar_shape(a) == planar_shape(b)


def is_one_dimensional(graph: Graph) -> bool:
    """Whether the graph holds 1-D convolutions or pools (lowered through height reshapes)."""
    return any(_adds_or_drops_height(n) for n in graph.nodes)


def as_planar(graph: Graph) -> Graph:
    """The graph with its 1-D layers written as 2-D ones.

    Requires: a float graph; its ops compute the same on ``(C, 1, L)`` as on ``(C, L)``
    (elementwise ops, per-channel ops, 2-D convs and pools, flatten).
    Ensures: unchanged when ``is_one_dimensional`` is false, or when some op's shape rule
    does not give the planar shape on planar inputs (the exporter then names the reshapes it
    cannot express); otherwise every rank-2 value (inputs included) is typed ``planar_shape``
    of its shape, the reshapes between ``(C, L)`` and ``(C, 1, L)`` are removed (their uses
    read the reshape's input), all other nodes keep their ops and names, and the flattened
    order of every value is unchanged.
    """
    if not is_one_dimensional(graph):
        return graph

    def planar(v: Value) -> Value:
        return Value(v.name, TensorType(planar_shape(v.shape), v.type.dtype))

    now = {v.name: planar(v) for v in graph.inputs}
    nodes = []
    for n in graph.nodes:
        inputs = tuple(now[v.name] for v in n.inputs)
        if _adds_or_drops_height(n):
            now[n.name] = inputs[0]
            continue
        out = planar(n.output)
        try:
            same = tuple(n.op.infer(*(v.shape for v in inputs))) == out.shape
        except ops.ShapeError:  # e.g. a transpose of the (C, L) axes
            same = False
        if not same:
            return graph
        now[n.name] = out
        nodes.append(n.replace(inputs=inputs, output=out))
    return graph.replace(nodes=tuple(nodes), inputs=tuple(now[v.name] for v in graph.inputs),
                         outputs=tuple(now[v.name] for v in graph.outputs))
