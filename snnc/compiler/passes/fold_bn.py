"""fold_batchnorm: merge inference BatchNorm (also exported as Mul/Add by per-channel constants)
into the preceding Conv2d/Dense (ALGORITHMS.md §0.1: W' = W γ/σ, b' = β + (b − μ) γ/σ)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snnc.compiler.passes.rewrite import GraphView, Rule, rewrite
from snnc.ir import ops
from snnc.ir.graph import Graph, Node

__all__ = ["fold_batchnorm"]


def _foldable_producer(view: GraphView, v):
    p = view.producer(v)
    if p is not None and isinstance(p.op, (ops.Conv2d, ops.Dense)) and view.uses(v) == 1:
        return p
    return None


def _per_channel(layer: ops.Op, out_shape, c: np.ndarray) -> np.ndarray | None:
    """``c`` as a vector over the layer's output channels, if it broadcasts like one."""
    n = layer.weight.shape[0]
    target = (n, 1, 1) if isinstance(layer, ops.Conv2d) else (1,) * (len(out_shape) - 1) + (n,)
    if c.ndim > len(target):
        return None
    try:
        if np.broadcast_shapes(c.shape, target) != target:
            return None
    except ValueError:
        return None
    return np.broadcast_to(c, target).reshape(-1)


def _scaled(layer, scale: np.ndarray, shift: np.ndarray):
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    w = (layer.weight.astype(np.float64) * scale.reshape(shape)).astype(np.float32)
    b = (layer.bias.astype(np.float64) * scale + shift).astype(np.float32)
    return replace(layer, weight=w, bias=b)


def fold_bn_node(node: Node, view: GraphView):
    p = _foldable_producer(view, node.inputs[0])
    if p is None:
        return None
    bn = node.op
    inv = bn.scale.astype(np.float64) / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    return node.replace(op=_scaled(p.op, inv, bn.bias - bn.mean * inv), inputs=p.inputs)


def _fold_constant(node: Node, view: GraphView, multiply: bool):
    for v, c in (node.inputs, node.inputs[::-1]):
        p, cp = _foldable_producer(view, v), view.producer(c)
        if p is None or cp is None or not isinstance(cp.op, ops.Constant):
            continue
        vec = _per_channel(p.op, v.shape, cp.op.value.astype(np.float64))
        if vec is None:
            continue
        n = vec.shape[0]
        op = _scaled(p.op, vec, np.zeros(n)) if multiply else _scaled(p.op, np.ones(n), vec)
        return node.replace(op=op, inputs=p.inputs)
    return None


RULES = (
    Rule("fold_batchnorm", ops.BatchNorm, fold_bn_node),
    Rule("fold_scale", ops.Mul, lambda n, v: _fold_constant(n, v, multiply=True)),
    Rule("fold_shift", ops.Add, lambda n, v: _fold_constant(n, v, multiply=False)
         if len(n.inputs) == 2 else None),
)


def fold_batchnorm(graph: Graph) -> Graph:
    """Requires: a verified graph. Ensures: no BatchNorm, Mul-by-constant or Add-of-constant
    directly after a Conv2d/Dense whose output has no other use and whose constant is per output
    channel; outputs equal within float rounding (1e-5 relative)."""
    return rewrite(graph, RULES)
