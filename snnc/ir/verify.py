"""``verify(graph)``: the IR's invariants, checked after every pass in tests and with --verify."""

from __future__ import annotations

from snnc.errors import IRVerificationError
from snnc.ir.graph import Graph
from snnc.ir.ops import Op, ShapeError, op_name
from snnc.ir.printer import format_graph

__all__ = ["verify"]


def _fail(graph: Graph, index: int | None, what: str) -> None:
    where = ""
    if index is not None:
        n = graph.nodes[index]
        where = f"node %{n.name} ({op_name(n.op)}): "
    context = format_graph(graph, highlight=index, window=5) if index is not None else ""
    raise IRVerificationError(f"{where}{what}" + (f"\n{context}" if context else ""))


def verify(graph: Graph) -> Graph:
    """Check that the graph is well formed; return it unchanged.

    Invariants: every value is defined exactly once and before its uses; each input value has the
    type its definition declares; each node's declared type equals its op's shape rule; arities
    match; every graph output is defined; every node contributes to some output (no dead nodes).
    """
    defined = {}
    for v in graph.inputs:
        if v.name in defined:
            _fail(graph, None, f"graph input %{v.name} is declared twice")
        defined[v.name] = v
    for i, n in enumerate(graph.nodes):
        if not isinstance(n.op, Op):
            _fail(graph, i, f"op is {type(n.op).__name__}, not an IR op")
        if n.op.arity is not None and len(n.inputs) != n.op.arity:
            _fail(graph, i, f"takes {n.op.arity} inputs, got {len(n.inputs)}")
        for v in n.inputs:
            if v.name not in defined:
                _fail(graph, i, f"uses %{v.name} before it is defined")
            if defined[v.name].type != v.type:
                _fail(graph, i, f"uses %{v.name} as {v.type}, but it is defined as "
                                f"{defined[v.name].type}")
        try:
            shape = tuple(n.op.infer(*(v.shape for v in n.inputs)))
        except (ShapeError, ValueError, IndexError) as e:
            _fail(graph, i, f"shape rule fails: {e}")
        if shape != n.output.shape:
            _fail(graph, i, f"declares shape {n.output.shape}, shape rule gives {shape}")
        if n.name in defined:
            _fail(graph, i, f"redefines %{n.name}")
        defined[n.name] = n.output
    for v in graph.outputs:
        if v.name not in defined:
            _fail(graph, None, f"graph output %{v.name} is never defined")
    used = {v.name for v in graph.outputs}
    for i in range(len(graph.nodes) - 1, -1, -1):
        n = graph.nodes[i]
        if n.name not in used:
            _fail(graph, i, "dead node: no graph output depends on it")
        used.update(v.name for v in n.inputs)
    return graph
