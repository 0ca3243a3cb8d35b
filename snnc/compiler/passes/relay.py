"""relay: an identity population between two weighted layers that ``fold_linear`` leaves apart.

Spiking layers talk through populations; a synaptic layer whose output feeds another synaptic
layer directly (a Dense 4096->64->4096 bottleneck, which merged would be 32 times larger; a
conv followed by a 3x3 conv; an average pool of a conv's output too large to merge; a linear
``Resize`` between a population and a conv) has no population to carry its signed output
``z``. This pass builds one from the ReLUs every conversion method already turns into
neurons (rate, fs, amos, ttfs), since ``z = relu(z) - relu(-z)``:

    x -> S1 -> chain -> S2           becomes
    x -> S1  -> chain -> relu -> S2 ---------.
    x -> -S1 -> chain -> relu -> S2 (-W, no bias) -> Add

``-S1`` is S1 with its weights and bias negated; ``chain`` is zero or more single-use routing
ops (Reshape, Transpose, zero Pad) that commute with the split. S1 is a Dense or Conv2d, or an
Add/Sub of such layers' outputs (the ``Add`` a relayed pair leaves, so a chain of three
weighted layers is relayed twice). An average pool S2 becomes the depthwise convolution it is
(weights 1/k) where every window has the same divisor. Where ``z`` cannot be negative (S1 is
one layer with non-negative weights and bias reading a ReLU-like population: bilinear
resizing after a ReLU) one ReLU population is enough: ``x -> S1 -> chain -> relu -> S2``.
ReLU commutes with the routing, so the relay sits right before S2, in the shape S2 reads.
Both rewrites are exact on the ANN; the relay populations are calibrated, converted and
quantized like any other layer, so the pair runs on every target, method and backend.

Rejected alternative (docs/decisions.md): a graded relay (Loihi 2 ``PartialSumRelay``, a
signed integer payload per element) would be exact and half the neurons, but needs the
quantizer to carry a synaptic current's unit as a payload unit and does not exist on Loihi 1's
binary spikes.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.passes.rewrite import GraphView, Rule, rewrite
from snnc.ir import ops
from snnc.ir.graph import Graph, Node
from snnc.ir.types import TensorType, Value

__all__ = ["relay"]

WEIGHTED = (ops.Dense, ops.Conv2d)  # the layers whose output is relayed (S1)
POOLS = (ops.AvgPool2d, ops.GlobalAvgPool)
CONSUMERS = (*WEIGHTED, *POOLS)  # synaptic layers that need a population before them (S2)


def _chain_op(op: ops.Op) -> bool:
    """Routing that commutes with relu and with splitting into two signs."""
    if isinstance(op, ops.Pad):
        return op.mode == "constant" and op.value == 0.0
    return isinstance(op, (ops.Reshape, ops.Transpose))


def _non_negative_source(view: GraphView, v: Value) -> bool:
    """Whether ``v`` is >= 0 by construction: a ReLU-like activation's output, possibly
    routed, max-pooled or average-pooled."""
    p = view.producer(v)
    while p is not None and (_chain_op(p.op) or isinstance(p.op, (ops.MaxPool2d, *POOLS))):
        p = view.producer(p.inputs[0])
    if p is None or not isinstance(p.op, ops.Activation):
        return False
    a = p.op
    return a.kind in ("relu", "sigmoid", "hard_sigmoid", "softplus") or (
        a.kind == "clip" and a.lo >= 0)


def _non_negative(view: GraphView, first: Node) -> bool:
    op = first.op
    return (not np.any(op.weight < 0) and not np.any(op.bias < 0)
            and _non_negative_source(view, first.inputs[0]))


def _negated(op: ops.Op) -> ops.Op:
    return type(op)(**{**op.attributes(), "weight": -op.weight, "bias": -op.bias})


def _negated_unbiased(op: ops.Op) -> ops.Op:
    return type(op)(**{**op.attributes(), "weight": -op.weight,
                       "bias": np.zeros_like(op.bias)})


def _pool_as_conv(node: Node) -> ops.Conv2d | None:
    """An average pool as the depthwise convolution it is (weights 1/k), where the divisor
    is the same for every window: no padding (or padding counted), no partial ceil windows."""
    c = node.inputs[0].shape[0]
    if isinstance(node.op, ops.GlobalAvgPool):
        if len(node.inputs[0].shape) != 3:
            return None
        kernel, stride, padding = node.inputs[0].shape[1:], (1, 1), (0, 0, 0, 0)
    else:
        op = node.op
        kernel, stride, padding = op.kernel, op.stride, op.padding
        if any(padding) and not op.count_include_pad:
            return None
    w = np.full((c, 1, *kernel), 1.0 / math.prod(kernel), np.float32)
    conv = ops.Conv2d(w, np.zeros(c, np.float32), tuple(stride), tuple(padding), (1, 1), c)
    if conv.infer(node.inputs[0].shape) != node.output.shape:
        return None  # a ceil_mode window hanging over the edge
    return conv


def _linear_source(view: GraphView, v: Value) -> list[Node] | None:
    """The nodes computing ``v`` as a synaptic current, in order: a Dense or Conv2d, or an
    Add/Sub of such currents each used only there (what relaying an earlier pair leaves);
    None for anything else."""
    p = view.producer(v)
    if p is None:
        return None
    if isinstance(p.op, WEIGHTED):
        return [p]
    if not isinstance(p.op, (ops.Add, ops.Sub)):
        return None
    nodes = []
    for u in p.inputs:
        part = _linear_source(view, u) if u.shape == p.output.shape else None
        if part is None or view.uses(u) != 1:
            return None
        nodes += part
    return [*nodes, p]


def _find_pair(node: Node, view: GraphView) -> tuple[list[Node], list[Node]] | None:
    """(the nodes of S1, the routing chain from S1 to ``node``, first to last), or None."""
    if isinstance(node.op, POOLS) and _pool_as_conv(node) is None:
        return None
    v, chain = node.inputs[0], []
    while True:
        p = view.producer(v)
        if p is None or view.uses(v) != 1:
            return None
        if not _chain_op(p.op):
            first = _linear_source(view, v)
            return None if first is None else (first, chain)
        chain.insert(0, p)
        v = p.inputs[0]


def _value(name: str, like: Value) -> Value:
    return Value(name, TensorType(like.shape, like.type.dtype))


def _branch(first: list[Node], chain: list[Node], negate: bool,
            tag: str) -> tuple[list[Node], Value]:
    """S1 (its weighted layers negated with ``negate``) on S1's inputs, a copy of the chain,
    and a ReLU: the relay population has the shape S2 reads (a Resize's flat map reshaped back
    to channels)."""
    made: dict[str, Value] = {}
    nodes = []
    for n in [*first, *chain]:
        op = _negated(n.op) if negate and isinstance(n.op, WEIGHTED) else n.op
        out = _value(f"{n.name}/relay{tag}/syn", n.output)
        nodes.append(Node(op, tuple(made.get(u.name, u) for u in n.inputs), out))
        made[n.name] = out
    last = nodes[-1].output
    nodes.append(Node(ops.Activation("relu"), (last,), _value(f"{first[-1].name}/relay{tag}",
                                                               last)))
    return nodes, nodes[-1].output


def relay_pair(node: Node, view: GraphView):
    """S2(chain(S1(x))) -> S2 fed by one or two ReLU relay populations (module docstring)."""
    found = _find_pair(node, view)
    if found is None:
        return None
    first, chain = found
    if len(first) == 1 and _non_negative(view, first[0]):
        pos, u = _branch(first, chain, False, "")
        return [*pos, node.replace(inputs=(u,))]
    pos, u_pos = _branch(first, chain, False, "_pos")
    neg, u_neg = _branch(first, chain, True, "_neg")
    second = node.op if isinstance(node.op, WEIGHTED) else _pool_as_conv(node)
    a = Node(second, (u_pos,), _value(f"{node.name}/from_pos", node.output))
    b = Node(_negated_unbiased(second), (u_neg,), _value(f"{node.name}/from_neg", node.output))
    return [*pos, *neg, a, b, node.replace(op=ops.Add(), inputs=(a.output, b.output))]


RULES = (Rule("relay_pair", CONSUMERS, relay_pair),)


def relay(graph: Graph) -> Graph:
    """Requires: a verified graph after ``fold_linear``. Ensures: no Dense, Conv2d, AvgPool2d
    or GlobalAvgPool (pools: where every window has the same divisor) reads, directly or through
    Reshape/Transpose/zero Pad used once, the output of a Dense or Conv2d used only there (the
    input graph is not changed; the same graph is returned when nothing matches); each such pair
    has one ReLU population between its
    layers where the first's output is non-negative by construction, else two (``relu(z)``,
    ``relu(-z)``) whose second layers are summed; outputs equal within float rounding."""
    return rewrite(graph, RULES)

