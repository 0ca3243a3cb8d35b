"""Graph IR: immutable nodes in topological order. Graphs are values: edits build new graphs.

Example:
    >>> from snnc.ir import GraphBuilder, TensorType, ops
    >>> b = GraphBuilder()
    >>> x = b.input("x", TensorType((4,)))
    >>> y = b.add("y", ops.Activation("relu"), x)
    >>> g = b.build(outputs=[y])
    >>> print(g)
    graph main(%x : f32[4]) {
      %y : f32[4] = activation(%x) {kind='relu', alpha=0.0, beta=0.0, lo=-inf, hi=inf}
      return %y
    }
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from snnc.ir.ops import Op
from snnc.ir.printer import format_graph
from snnc.ir.types import TensorType, Value

__all__ = ["Node", "Graph", "GraphBuilder"]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One op application producing exactly one value, named like the node."""

    op: Op
    inputs: tuple[Value, ...]
    output: Value

    @property
    def name(self) -> str:
        return self.output.name

    def replace(self, **changes) -> Node:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, eq=False)
class Graph:
    """A feed-forward dataflow graph: ``nodes`` in topological order."""

    nodes: tuple[Node, ...]
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    name: str = "main"

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        return format_graph(self)

    def replace(self, **changes) -> Graph:
        return dataclasses.replace(self, **changes)

    def producers(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {v.name: [] for v in self.inputs}
        for n in self.nodes:
            out.setdefault(n.name, [])
            for v in n.inputs:
                out.setdefault(v.name, []).append(n)
        return out

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_networkx(self):
        """A networkx DiGraph over value names (for analysis: depth, partitioning...)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(v.name for v in self.inputs)
        for n in self.nodes:
            g.add_node(n.name, op=n.op)
            g.add_edges_from((v.name, n.name) for v in n.inputs)
        return g


class GraphBuilder:
    """Builds a graph node by node, inferring each output type from the op's shape rule."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self._inputs: list[Value] = []
        self._nodes: list[Node] = []
        self._names: set[str] = set()

    def _fresh(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def input(self, name: str, type: TensorType) -> Value:
        v = Value(self._fresh(name), type)
        self._inputs.append(v)
        return v

    def add(self, name: str, op: Op, *inputs: Value, dtype: str | None = None) -> Value:
        shape = op.infer(*(v.shape for v in inputs))
        dtype = dtype or (inputs[0].type.dtype if inputs else "float32")
        out = Value(self._fresh(name), TensorType(tuple(int(d) for d in shape), dtype))
        self._nodes.append(Node(op, tuple(inputs), out))
        return out

    def build(self, outputs: Iterable[Value]) -> Graph:
        return Graph(tuple(self._nodes), tuple(self._inputs), tuple(outputs), self.name)


def rename_values(graph: Graph, mapping: Mapping[str, Value]) -> Graph:
    """Rewire every use of a value named in ``mapping`` to the mapped value."""

    def sub(v: Value) -> Value:
        while v.name in mapping:
            v = mapping[v.name]
        return v

    nodes = tuple(n.replace(inputs=tuple(sub(v) for v in n.inputs)) for n in graph.nodes)
    return graph.replace(nodes=nodes, outputs=tuple(sub(v) for v in graph.outputs))


def eliminate_dead_nodes(graph: Graph) -> Graph:
    """Drop nodes whose output no graph output depends on."""
    live = {v.name for v in graph.outputs}
    kept: list[Node] = []
    for n in reversed(graph.nodes):
        if n.name in live:
            kept.append(n)
            live.update(v.name for v in n.inputs)
    return graph.replace(nodes=tuple(reversed(kept)))
