"""fold_linear: merge two weighted layers with no nonlinearity between them into one.

A spiking network carries values between layers as neuron output (spikes, few-spike codes,
graded payloads); two synaptic layers back to back (Keras' Dense(98->4) -> Dense(4->10), a
bottleneck conv followed by a 1x1 conv) would need a population that passes signed values on
unchanged. The composition of two affine maps is one affine map, so where the merged layer is
not much larger than the two it replaces it is computed once, here, and the question never
reaches conversion or quantization:

* ``Dense -> Dense`` (same leading axes): ``W = W2 W1``, ``b = W2 b1 + b2``;
* ``Conv2d -> [Reshape | Transpose]* -> Dense`` over a flat vector, or ``Dense -> Reshape* ->
  Dense``: one Dense over the flattened input, its matrix the chain's linear map (evaluated on
  the unit vectors in float64) times ``W2``;
* ``Conv2d -> 1x1 Conv2d`` (no padding, one group): one convolution with the first's kernel
  size, padding and dilation, stride ``s1 * s2``;
* ``1x1 Conv2d`` (stride 1, no padding, one group) ``-> Conv2d`` (one group; no padding, or a
  first bias of zero, since padded positions of the second see 0 and not the first's bias);
* ``Conv2d -> AvgPool2d | GlobalAvgPool``: one Dense over the flattened input, reshaped to the
  pool's output (where small enough: a global pool after a conv always is).

A merge happens only when the first layer's output has no other use and the merged layer has at
most ``GROWTH`` times the synapses of the two together (a Dense 4096->64->4096 bottleneck stays
two layers: merged it would be 32 times larger). A pool is merged only into the convolution
before it; a pool of neuron output is a synapse of its own and stays.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from snnc.compiler.passes.rewrite import GraphView, Rule, rewrite
from snnc.ir import ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES
from snnc.ir.types import TensorType, Value

__all__ = ["GROWTH", "fold_linear", "synapses"]

GROWTH = 4.0  # a merged layer may have at most this many times the two layers' synapses
_MAX_BASIS = 1 << 16  # unit vectors evaluated for a chain's linear map (bounds time and memory)


def synapses(node: Node) -> int:
    """Weights applied per sample: output elements x fan-in per output."""
    op = node.op
    if isinstance(op, ops.Conv2d):
        return math.prod(node.output.shape) * math.prod(op.weight.shape[1:])
    if isinstance(op, ops.GlobalAvgPool):
        return math.prod(node.inputs[0].shape)
    if isinstance(op, ops.AvgPool2d):
        return math.prod(node.output.shape) * math.prod(op.kernel)
    return math.prod(node.output.shape) * op.weight.shape[1]


def _single_use_producer(view: GraphView, v: Value, kinds) -> Node | None:
    p = view.producer(v)
    if p is not None and isinstance(p.op, kinds) and view.uses(v) == 1:
        return p
    return None


def _small_enough(merged: int, *parts: Node) -> bool:
    return merged <= GROWTH * sum(synapses(p) for p in parts)


def _chain_map(first: Node, chain: list[Node]) -> tuple[np.ndarray, np.ndarray]:
    """(M, c) with chain(first(x)).flat == M @ x.flat + c, in float64."""
    x = first.inputs[0]
    n = math.prod(x.shape)
    basis = torch.cat([torch.zeros(1, n, dtype=torch.float64),
                       torch.eye(n, dtype=torch.float64)]).reshape(n + 1, *x.shape)
    with torch.no_grad():
        y = ANN_RULES[type(first.op)](first.op, basis)
        for node in chain:
            y = ANN_RULES[type(node.op)](node.op, y)
    y = y.reshape(n + 1, -1).numpy()
    return (y[1:] - y[0]).T, y[0]


def fold_dense(node: Node, view: GraphView):
    """Dense(chain(first(x))) -> Dense(x) or Dense(flatten(x))."""
    second = node.op
    v, chain = node.inputs[0], []
    while (p := _single_use_producer(view, v, (ops.Reshape, ops.Transpose))) is not None:
        chain.insert(0, p)
        v = p.inputs[0]
    first = _single_use_producer(view, v, (ops.Conv2d, ops.Dense))
    if first is None:
        return None
    w2 = second.weight.astype(np.float64)
    x = first.inputs[0]
    if not chain and isinstance(first.op, ops.Dense):
        w1, b1 = first.op.weight.astype(np.float64), first.op.bias.astype(np.float64)
        merged = math.prod(node.output.shape) * w1.shape[1]
        if not _small_enough(merged, first, node):
            return None
        return node.replace(op=_dense(w2 @ w1, w2 @ b1 + second.bias), inputs=(x,))
    n = math.prod(x.shape)
    if len(node.inputs[0].shape) != 1 or n > _MAX_BASIS:
        return None
    if not _small_enough(second.weight.shape[0] * n, first, node):
        return None
    m, c = _chain_map(first, chain)
    flat = x
    made = []
    if len(x.shape) != 1:
        flat = Value(f"{node.name}/flat", TensorType((n,), x.type.dtype))
        made.append(Node(ops.Reshape((n,)), (x,), flat))
    return [*made, node.replace(op=_dense(w2 @ m, w2 @ c + second.bias), inputs=(flat,))]


def fold_pool(node: Node, view: GraphView):
    """avg_pool(conv(x)) -> reshape(Dense(flatten(x))): an average of a convolution's outputs
    is one weighted sum of its inputs (a global average pool after a 1x1 conv: SqueezeNet's
    classifier without its ReLU)."""
    first = _single_use_producer(view, node.inputs[0], ops.Conv2d)
    if first is None:
        return None
    x = first.inputs[0]
    n, m = math.prod(x.shape), math.prod(node.output.shape)
    if n > _MAX_BASIS or not _small_enough(n * m, first, node):
        return None
    w, c = _chain_map(first, [node])
    flat = Value(f"{node.name}/flat", TensorType((n,), x.type.dtype))
    summed = Value(f"{node.name}/dense", TensorType((m,), x.type.dtype))
    return [Node(ops.Reshape((n,)), (x,), flat), Node(_dense(w, c), (flat,), summed),
            node.replace(op=ops.Reshape(node.output.shape), inputs=(summed,))]


def _dense(w: np.ndarray, b: np.ndarray) -> ops.Dense:
    return ops.Dense(w.astype(np.float32), np.asarray(b, np.float64).astype(np.float32))


def _full_weight(op: ops.Conv2d) -> np.ndarray:
    """The weight as one group: (O, C, kh, kw), zero outside each output's group."""
    w = op.weight.astype(np.float64)
    if op.groups == 1:
        return w
    o, cg = w.shape[:2]
    full = np.zeros((o, cg * op.groups, *w.shape[2:]))
    per = o // op.groups
    for g in range(op.groups):
        full[g * per:(g + 1) * per, g * cg:(g + 1) * cg] = w[g * per:(g + 1) * per]
    return full


def _pointwise(op: ops.Conv2d) -> bool:
    return op.weight.shape[2:] == (1, 1) and op.padding == (0, 0, 0, 0) and op.groups == 1


def fold_conv(node: Node, view: GraphView):
    """conv2(conv1(x)) -> conv(x) when one of them is a 1x1 convolution."""
    first = _single_use_producer(view, node.inputs[0], ops.Conv2d)
    if first is None:
        return None
    a, b = first.op, node.op
    x = first.inputs[0]
    if _pointwise(b):  # the 1x1 mixes channels of every window of the first
        w = np.einsum("om,mckl->ockl", b.weight[:, :, 0, 0].astype(np.float64), _full_weight(a))
        bias = b.weight[:, :, 0, 0].astype(np.float64) @ a.bias + b.bias
        op = ops.Conv2d(w.astype(np.float32), bias.astype(np.float32),
                        (a.stride[0] * b.stride[0], a.stride[1] * b.stride[1]), a.padding,
                        a.dilation, 1)
    elif _pointwise(a) and a.stride == (1, 1) and b.groups == 1 and (
            b.padding == (0, 0, 0, 0) or not np.any(a.bias)):
        w = np.einsum("omkl,mc->ockl", b.weight.astype(np.float64),
                      a.weight[:, :, 0, 0].astype(np.float64))
        bias = b.weight.astype(np.float64).sum(axis=(2, 3)) @ a.bias + b.bias
        op = ops.Conv2d(w.astype(np.float32), bias.astype(np.float32), b.stride, b.padding,
                        b.dilation, 1)
    else:
        return None
    merged = math.prod(node.output.shape) * math.prod(op.weight.shape[1:])
    if not _small_enough(merged, first, node) or op.infer(x.shape) != node.output.shape:
        return None
    return node.replace(op=op, inputs=(x,))


RULES = (
    Rule("fold_dense", ops.Dense, fold_dense),
    Rule("fold_conv", ops.Conv2d, fold_conv),
    Rule("fold_pool", (ops.AvgPool2d, ops.GlobalAvgPool), fold_pool),
)


def fold_linear(graph: Graph) -> Graph:
    """Requires: a verified graph. Ensures: no Dense/Conv2d pair of the kinds listed in the
    module docstring whose merged layer has at most ``GROWTH`` times their synapses; outputs
    equal within float rounding (merged in float64, stored as float32)."""
    return rewrite(graph, RULES)
