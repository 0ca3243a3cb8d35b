"""fuse_functions: an elementwise subgraph of one value that computes a known activation
becomes that activation.

Exporters spell activations without an ONNX op of their own as small elementwise graphs, in
operand orders that vary: torch writes GELU as ``Mul(Mul(x, Add(Erf(Div(x, 1.414)), 1)), 0.5)``,
its tanh approximation with ``Mul(x, x)``, ``Tanh`` and five constants, Mish as
``Mul(x, Tanh(Softplus(x)))``. Instead of one structural pattern per spelling, the rule collects
the subgraph above a ``Mul`` (Add, Sub, Mul, Div, Activation and scalar constants, one
non-constant source ``x``, intermediates used only inside it), evaluates it in float64 on
``x`` in [-8, 8], and replaces it when it equals one of ``FUNCTIONS`` there.
"""

from __future__ import annotations

import torch

from snnc.compiler.passes.rewrite import GraphView
from snnc.ir import ops
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES

__all__ = ["FUNCTIONS", "fuse_function"]

FUNCTIONS = {  # activation kind -> its float64 definition (torch)
    "gelu": lambda x: torch.nn.functional.gelu(x),
    "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "mish": lambda x: torch.nn.functional.mish(x),
}
_ELEMENTWISE = (ops.Add, ops.Sub, ops.Mul, ops.Div, ops.Activation)
_MAX_NODES = 24  # constants included (GELU-tanh: 14)
_PROBE = torch.linspace(-8.0, 8.0, 1601, dtype=torch.float64)
_RTOL = 1e-5  # float32 constants (1.4142135, 0.7978846) are exact to ~1e-7


def _ancestors(root: Node, view: GraphView) -> list:
    """Values feeding the elementwise nodes above ``root`` (bounded), latest first."""
    seen, values, stack = {root.name}, [], [root]
    while stack and len(seen) < _MAX_NODES:
        for v in stack.pop().inputs:
            p = view.producer(v)
            if v.name not in {u.name for u in values} and v.shape == root.output.shape:
                values.append(v)
            if p is not None and isinstance(p.op, _ELEMENTWISE) and p.name not in seen:
                seen.add(p.name)
                stack.append(p)
    return values


def _subgraph_of(root: Node, view: GraphView, x) -> list[Node] | None:
    """The nodes between source ``x`` and ``root`` (topological order) when every other leaf is
    a scalar constant and no intermediate is used outside; else None."""
    nodes, stack = {root.name: root}, [root]
    while stack:
        for v in stack.pop().inputs:
            if v.name == x.name:
                continue
            p = view.producer(v)
            if p is None or len(nodes) >= _MAX_NODES:
                return None
            if isinstance(p.op, ops.Constant):
                if p.op.value.size != 1:
                    return None
                nodes[p.name] = p
            elif isinstance(p.op, _ELEMENTWISE) and v.shape == root.output.shape:
                if p.name not in nodes:
                    nodes[p.name] = p
                    stack.append(p)
            else:
                return None
    inside = {n: sum(v.name == n for m in nodes.values() for v in m.inputs) for n in nodes}
    if any(view.uses(n.output) != inside[n.name] for n in nodes.values() if n is not root):
        return None  # an intermediate is used outside: fusing would duplicate work
    return [n for n in view.graph.nodes if n.name in nodes]


def _evaluate(order: list[Node], x) -> torch.Tensor:
    env = {x.name: _PROBE}
    with torch.no_grad():
        for n in order:
            if isinstance(n.op, ops.Constant):
                env[n.name] = torch.tensor(float(n.op.value.reshape(-1)[0]), dtype=torch.float64)
            else:
                env[n.name] = ANN_RULES[type(n.op)](n.op, *(env[v.name] for v in n.inputs))
    return env[order[-1].name]


def fuse_function(node: Node, view: GraphView):
    """The subgraph ending in ``node`` as one Activation, when it computes one of FUNCTIONS."""
    for x in _ancestors(node, view):
        order = _subgraph_of(node, view, x)
        if order is None or not any(isinstance(n.op, ops.Activation) for n in order):
            continue  # polynomials stay as they are
        try:
            y = _evaluate(order, x)
        except (RuntimeError, ValueError, TypeError):
            continue
        if y.shape != _PROBE.shape or not torch.isfinite(y).all():
            continue
        for kind, fn in FUNCTIONS.items():
            ref = fn(_PROBE)
            if float((y - ref).abs().max()) <= _RTOL * max(1.0, float(ref.abs().max())):
                return node.replace(op=ops.Activation(kind), inputs=(x,))
    return None

