"""What NIR export cannot express, checked on the whole graph before anything is written."""

from __future__ import annotations

from collections.abc import Callable

from snnc.ir import ops
from snnc.ir.graph import Graph, Node

__all__ = ["CHECKS", "nir_problems"]


def _conv(n: Node, g: Graph, consumers) -> str | None:
    t, l, b, r = n.op.padding
    return f"asymmetric padding {n.op.padding}" if (t, l) != (b, r) else None


def _avg_pool(n: Node, g: Graph, consumers) -> str | None:
    return "padded or ceil_mode average pooling" if any(n.op.padding) or n.op.ceil_mode else None


def _global_pool(n: Node, g: Graph, consumers) -> str | None:
    shape = n.inputs[0].shape
    return f"global pooling of a {shape} value (only (C, H, W))" if len(shape) != 3 else None


def _reshape(n: Node, g: Graph, consumers) -> str | None:
    return (f"reshape to {n.op.shape} (only flatten to a vector)" if len(n.op.shape) != 1
            else None)


def _batch_norm(n: Node, g: Graph, consumers) -> str | None:
    shape = n.inputs[0].shape
    return (f"batch norm of a {shape} value (only (C, H, W) or vectors)"
            if len(shape) not in (1, 3) else None)


def _add(n: Node, g: Graph, consumers) -> str | None:
    shapes = [x.shape for x in n.inputs]
    return (f"broadcasting sum of {shapes} (NIR sums edges of equal shape)"
            if any(s != n.output.shape for s in shapes) else None)


def _concat(n: Node, g: Graph, consumers) -> str | None:
    if n.op.axis != 0:
        return f"concatenation along axis {n.op.axis} (only channels, axis 0)"
    outputs = {v.name for v in g.outputs}
    bad = [c for c in consumers.get(n.name, [])
           if not (isinstance(c.op, ops.Dense)
                   or (isinstance(c.op, ops.Conv2d) and c.op.groups == 1))]
    if n.name in outputs or bad:
        what = ", ".join(f"'{c.name}' ({type(c.op).__name__})" for c in bad) or "the output"
        return (f"concatenation feeding {what}: NIR expresses a concat only as the split "
                "weights of the Conv2d (groups=1) / Dense that consumes it")
    return None


def _fine(n: Node, g: Graph, consumers) -> str | None:
    return None


# op class -> check of what NIR can express of one node (None: fine)
CHECKS: dict[type[ops.Op], Callable[[Node, Graph, dict], str | None]] = {
    ops.Conv2d: _conv,
    ops.Dense: _fine,
    ops.BatchNorm: _batch_norm,
    ops.AvgPool2d: _avg_pool,
    ops.GlobalAvgPool: _global_pool,
    ops.Reshape: _reshape,
    ops.Identity: _fine,
    ops.Add: _add,
    ops.Concat: _concat,
}


def nir_problems(graph: Graph, handled, refused) -> list[str]:
    """Every node NIR export cannot express, as ``'name' (op): why``: ops outside ``handled``
    with the reason ``refused`` gives, and handled ops whose parameters NIR cannot state."""
    consumers = graph.consumers()
    bad = []
    for n in graph.nodes:
        cls = next((c for c in type(n.op).__mro__ if c in handled), None)
        if cls is None:
            why = ops.refusal(n.op, refused) or "no NIR node for this op"
        else:
            why = CHECKS.get(cls, _fine)(n, graph, consumers)
        if why is not None:
            bad.append(f"'{n.name}' ({type(n.op).__name__}): {why}")
    return bad
