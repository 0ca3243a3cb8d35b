"""A tiny local rewrite engine: rules ``(op class, fn)`` applied to a fixpoint.

``fn(node, view)`` returns None (no match), an existing Value (uses of the node's output are
rewired to it), or new Node(s) replacing the node: a Node, or a list whose last Node has the
node's output (same name and type); earlier ones may only use values defined before the node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from snnc.ir.graph import Graph, Node, eliminate_dead_nodes, rename_values
from snnc.ir.types import Value

__all__ = ["Rule", "GraphView", "rewrite"]


class GraphView:
    """Read-only lookups a rule needs: who produces a value, how many nodes use it."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._producers = graph.producers()
        self._uses = {k: len(v) for k, v in graph.consumers().items()}
        for v in graph.outputs:
            self._uses[v.name] = self._uses.get(v.name, 0) + 1

    def producer(self, v: Value) -> Node | None:
        return self._producers.get(v.name)

    def uses(self, v: Value) -> int:
        return self._uses.get(v.name, 0)


@dataclass(frozen=True)
class Rule:
    name: str
    op: type
    fn: Callable[[Node, GraphView], Value | Node | list[Node] | None]


def _apply_once(graph: Graph, rules: Sequence[Rule]) -> Graph | None:
    view = GraphView(graph)
    for i, node in enumerate(graph.nodes):
        for rule in rules:
            if not isinstance(node.op, rule.op):
                continue
            result = rule.fn(node, view)
            if result is None:
                continue
            if isinstance(result, Value):
                nodes = graph.nodes[:i] + graph.nodes[i + 1:]
                return eliminate_dead_nodes(
                    rename_values(graph.replace(nodes=nodes), {node.name: result}))
            new = tuple(result) if isinstance(result, list) else (result,)
            assert new[-1].output == node.output, f"rule {rule.name} changed the output type"
            nodes = graph.nodes[:i] + new + graph.nodes[i + 1:]
            return eliminate_dead_nodes(graph.replace(nodes=nodes))
    return None


def rewrite(graph: Graph, rules: Sequence[Rule], max_steps: int = 100_000) -> Graph:
    """Apply ``rules`` until none matches."""
    for _ in range(max_steps):
        new = _apply_once(graph, rules)
        if new is None:
            return graph
        graph = new
    raise RuntimeError("rewrite did not reach a fixpoint")
