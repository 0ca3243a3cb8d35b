"""snnc's graph IR: immutable graphs of typed values and frozen-dataclass ops (no torch, onnx or
lava imports here except in ``interpret``, the torch ANN reference)."""

from snnc.ir import ops
from snnc.ir.graph import Graph, GraphBuilder, Node, eliminate_dead_nodes, rename_values
from snnc.ir.printer import format_graph, format_node
from snnc.ir.serialize import graph_from_json, graph_to_json, load_graph, save_graph
from snnc.ir.types import TensorType, Value
from snnc.ir.verify import verify

__all__ = [
    "ops", "Graph", "GraphBuilder", "Node", "TensorType", "Value", "verify", "format_graph",
    "format_node", "graph_to_json", "graph_from_json", "save_graph", "load_graph",
    "eliminate_dead_nodes", "rename_values",
]
