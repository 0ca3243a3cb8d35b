"""fuse_norms: canonicalize's rules for normalizations by per-sample statistics (ir/norm_ops.py).

* ``fuse_layer_norm``: LayerNorm exported before opset 17 (torch: ReduceMean, Sub, Pow,
  ReduceMean, Add, Sqrt, Div), which the frontend reads as ``d = x - mean(x)``,
  ``d / sqrt(mean(d * d) + eps)`` with each mean a global average pool or a Dense of weights
  1/n over a trailing block of axes, becomes one ``Normalize``.
* ``absorb_affine``: a Mul/Add of a Normalize's output by a constant (the weight and bias of
  torch's GroupNorm and opset-13 LayerNorm) becomes part of its scale/bias.
* ``fold_constant_norm``: a Normalize whose groups have one element has constant statistics
  (mean = x, variance 0): its output is exactly ``bias``, i.e. ``x * 0 + bias``, a Mul and an
  Add of constants that fold_batchnorm folds into the synapse before it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snnc.compiler.passes.rewrite import GraphView
from snnc.ir import norm_ops, ops
from snnc.ir.graph import Node
from snnc.ir.types import TensorType, Value

__all__ = ["absorb_affine", "affine_nodes", "fold_constant_norm", "fuse_layer_norm"]


def _producer(view: GraphView, v: Value, cls) -> Node | None:
    p = view.producer(v)
    return p if p is not None and isinstance(p.op, cls) else None


def _mean_source(view: GraphView, v: Value) -> tuple[Value, int, float] | None:
    """``(x, k, shift)`` when ``v`` is the frontend's mean of ``x`` over per-sample axes k..
    (keepdims) plus a constant ``shift`` (canonicalize moves an added eps into a Dense's bias)."""
    p = view.producer(v)
    if p is not None and isinstance(p.op, ops.Reshape):
        p = view.producer(p.inputs[0])
    if p is None:
        return None
    if isinstance(p.op, ops.GlobalAvgPool):
        x, k, shift = p.inputs[0], 1, 0.0
    elif isinstance(p.op, ops.Dense) and p.op.weight.shape[0] == 1:
        n, bias = p.op.weight.shape[1], p.op.bias.reshape(-1)
        if not np.all(p.op.weight == np.float32(1.0 / n)) or np.any(bias != bias[0]):
            return None
        flat = p.inputs[0]
        q = _producer(view, flat, ops.Reshape)
        x, k, shift = (q.inputs[0] if q is not None else flat), len(flat.shape) - 1, float(bias[0])
        if x.shape[:k] != flat.shape[:k] or len(x.shape) <= k:
            return None
    else:
        return None
    return (x, k, shift) if v.shape == x.shape[:k] + (1,) * (len(x.shape) - k) else None


def _constant(view: GraphView, v: Value) -> float | None:
    p = _producer(view, v, ops.Constant)
    return float(p.op.value.reshape(-1)[0]) if p is not None and p.op.value.size == 1 else None


def _variance_of(view: GraphView, v: Value) -> tuple[Value, int, float] | None:
    """``(d, k, eps)`` when ``v`` is ``mean(d * d) + eps`` over per-sample axes k.."""
    add = _producer(view, v, ops.Add)
    candidates = [(v, 0.0)]
    if add is not None and len(add.inputs) == 2:
        candidates += [(a, _constant(view, c)) for a, c in (add.inputs, add.inputs[::-1])]
    for var, eps in candidates:
        spread = _mean_source(view, var) if eps is not None else None
        square = _producer(view, spread[0], ops.Mul) if spread is not None else None
        if square is not None and square.inputs[0] == square.inputs[1]:
            return square.inputs[0], spread[1], spread[2] + eps
    return None


def fuse_layer_norm(node: Node, view: GraphView):
    """Div(x - mean(x), Sqrt(mean((x - mean(x))^2) + eps)) -> Normalize(x)."""
    d, s = node.inputs
    sub, sqrt = _producer(view, d, ops.Sub), _producer(view, s, norm_ops.Sqrt)
    if sub is None or sqrt is None:
        return None
    centre, spread = _mean_source(view, sub.inputs[1]), _variance_of(view, sqrt.inputs[0])
    if centre is None or spread is None or centre[0] != sub.inputs[0] or centre[2] != 0.0:
        return None
    (x, k, _), (square_of, k2, eps) = centre, spread
    if square_of != d or k2 != k or eps < 0:
        return None
    groups, axes = norm_ops.layer_norm_layout(x.shape, k)
    op = norm_ops.Normalize(np.array(1.0, np.float32), np.array(0.0, np.float32), groups, axes,
                            eps, "layer_norm")
    return node.replace(op=op, inputs=(x,))


def absorb_affine(node: Node, view: GraphView):
    """Mul/Add of a Normalize's output (used only there) by a constant broadcasting to it: the
    constant joins the Normalize's scale/bias (torch's GroupNorm and opset-13 LayerNorm apply
    their weight and bias so)."""
    if len(node.inputs) != 2:
        return None
    for v, c in (node.inputs, node.inputs[::-1]):
        norm, const = _producer(view, v, norm_ops.Normalize), _producer(view, c, ops.Constant)
        if norm is None or const is None or view.uses(v) != 1:
            continue
        k = const.op.value.astype(np.float64)
        try:
            if np.broadcast_shapes(k.shape, v.shape) != v.shape:
                continue
        except ValueError:
            continue
        op = norm.op
        scale, bias = op.scale.astype(np.float64), op.bias.astype(np.float64)
        scale, bias = (scale * k, bias * k) if isinstance(node.op, ops.Mul) else (scale, bias + k)
        return node.replace(op=replace(op, scale=scale.astype(np.float32),
                                       bias=bias.astype(np.float32)), inputs=norm.inputs)
    return None


def affine_nodes(node: Node, scale: np.ndarray, shift: np.ndarray) -> list[Node]:
    """Nodes computing ``x * scale + shift`` (constants) in place of ``node`` (same output)."""
    x = node.inputs[0]
    out = []
    for what, c in (("scale", scale), ("shift", shift)):
        c = np.asarray(c, np.float32)
        const = Value(f"{node.name}/{what}", TensorType(c.shape, "float32"))
        out.append(Node(ops.Constant(c), (), const))
        op = ops.Mul() if what == "scale" else ops.Add()
        y = node.output if what == "shift" else Value(f"{node.name}/scaled", x.type)
        out.append(Node(op, (x, const), y))
        x = y
    return out


def fold_constant_norm(node: Node, view: GraphView):
    """A Normalize over groups of one element: its output is its bias."""
    x = node.inputs[0]
    if node.op.group_size(x.shape) != 1:
        return None
    return affine_nodes(node, np.zeros((), np.float32), np.asarray(node.op.bias, np.float32))
