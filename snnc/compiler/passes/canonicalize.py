"""canonicalize: local clean-ups that make later passes see one form per concept."""

from __future__ import annotations

import numpy as np

from snnc.compiler.passes.fuse_functions import fuse_function
from snnc.compiler.passes.fuse_norms import absorb_affine, fold_constant_norm, fuse_layer_norm
from snnc.compiler.passes.rewrite import GraphView, Rule, rewrite
from snnc.ir import norm_ops, ops
from snnc.ir.graph import Graph, Node

__all__ = ["RULES", "canonicalize"]


def _const(view: GraphView, v) -> np.ndarray | None:
    p = view.producer(v)
    return p.op.value if p is not None and isinstance(p.op, ops.Constant) else None


def drop_identity(node: Node, view: GraphView):
    return node.inputs[0]


def fuse_silu(node: Node, view: GraphView):
    """x * sigmoid(x) -> silu(x)."""
    a, b = node.inputs
    for x, s in ((a, b), (b, a)):
        p = view.producer(s)
        if p is not None and isinstance(p.op, ops.Activation) and p.op.kind == "sigmoid" \
                and p.inputs[0] == x:
            return node.replace(op=ops.Activation("silu"), inputs=(x,))
    return None


def fuse_dense_bias(node: Node, view: GraphView):
    """Dense(x) + c -> Dense(x) with bias + c, when c broadcasts to the bias (MatMul + Add)."""
    for d, c in (node.inputs, node.inputs[::-1]) if len(node.inputs) == 2 else ():
        p, const = view.producer(d), _const(view, c)
        if p is None or const is None or not isinstance(p.op, ops.Dense) or view.uses(d) != 1:
            continue
        if const.ndim > 1 and any(s != 1 for s in const.shape[:-1]):
            continue
        bias = p.op.bias + np.broadcast_to(const.reshape(-1), p.op.bias.shape)
        return node.replace(op=ops.Dense(p.op.weight, bias.astype(p.op.bias.dtype)),
                            inputs=p.inputs)
    return None


def fold_reshape_chain(node: Node, view: GraphView):
    """reshape(reshape(x)) -> reshape(x); reshape to the input's own shape -> x."""
    x = node.inputs[0]
    if node.op.shape == x.shape:
        return x
    p = view.producer(x)
    if p is not None and isinstance(p.op, ops.Reshape):
        if node.op.shape == p.inputs[0].shape:
            return p.inputs[0]
        return node.replace(inputs=p.inputs)
    return None


RULES = (
    Rule("drop_identity", ops.Identity, drop_identity),
    Rule("fuse_silu", ops.Mul, fuse_silu),
    Rule("fuse_function", ops.Mul, fuse_function),
    Rule("fuse_dense_bias", ops.Add, fuse_dense_bias),
    Rule("fold_reshape_chain", ops.Reshape, fold_reshape_chain),
    Rule("fuse_layer_norm", ops.Div, fuse_layer_norm),
    Rule("absorb_norm_scale", ops.Mul, absorb_affine),
    Rule("absorb_norm_shift", ops.Add, absorb_affine),
    Rule("fold_constant_norm", norm_ops.Normalize, fold_constant_norm),
)


def canonicalize(graph: Graph) -> Graph:
    """Requires: a verified graph. Ensures: no Identity nodes; x*sigmoid(x) is one silu; an
    elementwise subgraph of one value computing GELU (erf or tanh form) or Mish is one
    activation (fuse_functions.py);
    Dense followed by a constant Add carries that constant in its bias; no reshape chains.
    A LayerNorm exported as ReduceMean/Sub/Pow/Sqrt/Div is one Normalize, with the constant
    Mul/Add after it in its scale/bias; a Normalize over groups of one element is its bias as
    x * 0 + bias (fuse_norms.py).
    Outputs equal the input graph's (float rounding aside)."""
    return rewrite(graph, RULES)
