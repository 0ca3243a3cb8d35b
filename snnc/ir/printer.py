"""Stable text form of the IR: one line per node, deterministic. Used in errors, dumps, goldens.

    %conv1 : f32[6,24,24] = conv2d(%x) {weight=f32[6,1,5,5], bias=f32[6], stride=(1, 1), ...}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from snnc.ir.ops import op_name

if TYPE_CHECKING:  # annotations only: graph.py prints itself with this module
    from snnc.ir.graph import Graph, Node

__all__ = ["format_node", "format_graph"]

_SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "int8": "i8",
          "int16": "i16", "uint8": "u8", "bool": "b1"}


def _format_param(v: object) -> str:
    if isinstance(v, np.ndarray):
        dt = _SHORT.get(str(v.dtype), str(v.dtype))
        if v.size <= 4 and v.ndim <= 1:
            return f"{dt}{np.array2string(v.ravel(), separator=',', precision=6)}"
        return f"{dt}[{','.join(map(str, v.shape))}]"
    return repr(v)


def format_node(node: Node) -> str:
    params = [f"{k}={_format_param(v)}" for k, v in node.op.arrays().items()]
    params += [f"{k}={_format_param(v)}" for k, v in node.op.attributes().items()]
    args = ", ".join(str(v) for v in node.inputs)
    attrs = f" {{{', '.join(params)}}}" if params else ""
    return f"%{node.name} : {node.output.type} = {op_name(node.op)}({args}){attrs}"


def format_graph(graph: Graph, highlight: int | None = None, window: int | None = None) -> str:
    """Whole graph, or the ``window`` nodes either side of node index ``highlight`` (marked >>)."""
    ins = ", ".join(f"{v} : {v.type}" for v in graph.inputs)
    lines = [f"graph {graph.name}({ins}) {{"]
    lo, hi = 0, len(graph.nodes)
    if highlight is not None and window is not None:
        lo, hi = max(0, highlight - window), min(len(graph.nodes), highlight + window + 1)
        if lo:
            lines.append("  ...")
    for i in range(lo, hi):
        mark = ">>" if i == highlight else "  "
        lines.append(f"{mark}{format_node(graph.nodes[i])}")
    if hi < len(graph.nodes):
        lines.append("  ...")
    lines.append(f"  return {', '.join(str(v) for v in graph.outputs)}")
    lines.append("}")
    return "\n".join(lines)
