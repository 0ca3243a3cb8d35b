"""ANN reference interpreter: runs an IR graph with torch, one rule per op.

``Interpreter(rules).run(graph, inputs)`` executes node by node; every tensor carries a leading
batch dimension (size N, or 1 for constants, which broadcast). The same class, with other rule
tables, serves calibration (``observe`` sees every node's output) and the spiking simulators.

Example:
    >>> import numpy as np
    >>> from snnc.ir import GraphBuilder, TensorType, ops
    >>> b = GraphBuilder(); x = b.input("x", TensorType((3,)))
    >>> g = b.build([b.add("y", ops.Activation("relu"), x)])
    >>> run_ann(g, np.array([[-1.0, 0.0, 2.0]], np.float32))[0].tolist()
    [[0.0, 0.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from snnc.ir import neurons, norm_ops, ops, quantized
from snnc.ir.graph import Graph, Node

__all__ = ["Interpreter", "ANN_RULES", "REFUSED", "node_rules", "run_ann", "pad2d"]

Rule = Callable[..., torch.Tensor]  # fn(op, *inputs): the ANN rules, keyed by op class
NodeRule = Callable[..., object]  # fn(node, *inputs): what the Interpreter calls


class Interpreter:
    """Executes graphs with a rule table ``{op class: fn(node, *inputs) -> output}``: each rule
    gets the node (its op, name and types) and the values of its inputs."""

    def __init__(self, rules: Mapping[type, NodeRule]) -> None:
        self.rules = rules

    def run(
        self,
        graph: Graph,
        inputs: Sequence[torch.Tensor],
        observe: Callable[[Node, torch.Tensor], None] | None = None,
    ) -> list[torch.Tensor]:
        env: dict[str, torch.Tensor] = {v.name: x for v, x in zip(graph.inputs, inputs, strict=True)}
        keep = {v.name for v in graph.outputs}
        last_use = {v.name: i for i, n in enumerate(graph.nodes) for v in n.inputs}
        for i, n in enumerate(graph.nodes):
            rule = self.rules.get(type(n.op))
            if rule is None:
                raise NotImplementedError(f"no rule for {type(n.op).__name__} (node %{n.name})")
            try:
                out = rule(n, *(env[v.name] for v in n.inputs))
            except Exception as e:
                raise RuntimeError(f"while executing %{n.name} ({type(n.op).__name__}): {e}") from e
            env[n.name] = out
            if observe is not None:
                observe(n, out)
            for v in n.inputs:  # free activations early: zoo models are large
                if last_use.get(v.name) == i and v.name not in keep:
                    env.pop(v.name, None)
        return [env[v.name] for v in graph.outputs]


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


def pad2d(x: torch.Tensor, op, value: float, explicit: float | None = None) -> torch.Tensor:
    """Explicit (top, left, bottom, right) padding with ``explicit`` (default ``value``), then the
    extra bottom/right cells ceil_mode needs, with ``value``."""
    t, l, b, r = op.padding
    out_h, out_w = op.infer(tuple(x.shape[1:]))[1:]
    dil = getattr(op, "dilation", (1, 1))
    extra_h = (out_h - 1) * op.stride[0] + dil[0] * (op.kernel[0] - 1) + 1 - (x.shape[2] + t + b)
    extra_w = (out_w - 1) * op.stride[1] + dil[1] * (op.kernel[1] - 1) + 1 - (x.shape[3] + l + r)
    x = F.pad(x, (l, r, t, b), value=value if explicit is None else explicit)
    return F.pad(x, (0, max(0, extra_w), 0, max(0, extra_h)), value=value)


def conv2d(op: ops.Conv2d, x: torch.Tensor) -> torch.Tensor:
    t, l, b, r = op.padding
    if (t, l) == (b, r):
        pad = (t, l)
    else:
        x, pad = F.pad(x, (l, r, t, b)), (0, 0)
    return F.conv2d(x, _t(op.weight, x), _t(op.bias, x), op.stride, pad, op.dilation, op.groups)


def max_pool2d(op: ops.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(pad2d(x, op, -torch.inf), op.kernel, op.stride, 0, op.dilation)


def avg_pool2d(op: ops.AvgPool2d, x: torch.Tensor) -> torch.Tensor:
    k = op.kernel[0] * op.kernel[1]
    total = F.avg_pool2d(pad2d(x, op, 0.0), op.kernel, op.stride) * k
    if op.count_include_pad:  # as onnxruntime: every window divides by the full kernel size
        return total / k
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    return total / (F.avg_pool2d(pad2d(ones, op, 0.0), op.kernel, op.stride) * k)


def _expand_batch(xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    n = max(x.shape[0] for x in xs)
    return [x.expand(n, *x.shape[1:]) for x in xs]


def pad(op: ops.Pad, x: torch.Tensor) -> torch.Tensor:
    n = x.dim() - 1
    if op.mode == "constant":
        pairs = [p for i in reversed(range(n)) for p in (op.pads[i], op.pads[i + n])]
        return F.pad(x, pairs, value=op.value)
    # reflect/edge: numpy handles any axis; crop (negative pads) first.
    sl = tuple(slice(max(0, -op.pads[i]), x.shape[i + 1] - max(0, -op.pads[i + n]))
               for i in range(n))
    a = x[(slice(None), *sl)].detach().cpu().numpy()
    widths = [(0, 0)] + [(max(0, op.pads[i]), max(0, op.pads[i + n])) for i in range(n)]
    out = np.pad(a, widths, mode={"reflect": "reflect", "edge": "edge"}[op.mode])
    return torch.as_tensor(out, device=x.device)


def batch_norm(op: ops.BatchNorm, x: torch.Tensor) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.dim() - 2)
    inv = _t(op.scale / np.sqrt(op.var.astype(np.float64) + op.eps), x).reshape(shape)
    return (x - _t(op.mean, x).reshape(shape)) * inv + _t(op.bias, x).reshape(shape)


_ACTIVATIONS: dict[str, Callable] = {
    "relu": lambda op, x: torch.relu(x),
    "leaky_relu": lambda op, x: F.leaky_relu(x, op.alpha),
    "clip": lambda op, x: torch.clamp(x, op.lo, op.hi),
    "sigmoid": lambda op, x: torch.sigmoid(x),
    "hard_sigmoid": lambda op, x: torch.clamp(op.alpha * x + op.beta, 0.0, 1.0),
    "hardswish": lambda op, x: x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0),
    "tanh": lambda op, x: torch.tanh(x),
    "silu": lambda op, x: x * torch.sigmoid(x),
    "elu": lambda op, x: F.elu(x, op.alpha),
    "selu": lambda op, x: op.beta * F.elu(x, op.alpha),
    "softplus": lambda op, x: F.softplus(x),
    "erf": lambda op, x: torch.erf(x),
    "gelu": lambda op, x: F.gelu(x),
    "gelu_tanh": lambda op, x: F.gelu(x, approximate="tanh"),
    "mish": lambda op, x: F.mish(x),
}


def lrn(op: ops.LRN, x: torch.Tensor) -> torch.Tensor:
    sq = (x * x).reshape(x.shape[0], 1, x.shape[1], -1)
    sq = F.pad(sq, (0, 0, (op.size - 1) // 2, op.size // 2))
    window_sum = F.avg_pool2d(sq, (op.size, 1), stride=1) * op.size
    return x / (op.bias + op.alpha / op.size * window_sum.reshape(x.shape)) ** op.beta


def normalize(op: norm_ops.Normalize, x: torch.Tensor) -> torch.Tensor:
    """Per-sample statistics over each group's channels and ``op.axes`` (biased variance)."""
    g = x.reshape(x.shape[0], op.groups, x.shape[1] // op.groups, *x.shape[2:])
    dims = (2, *(a + 2 for a in op.axes))
    centred = g - g.mean(dims, keepdim=True)
    var = (centred * centred).mean(dims, keepdim=True)
    y = (centred / torch.sqrt(var + op.eps)).reshape(x.shape)
    return y * _t(op.scale, x) + _t(op.bias, x)


def softmax(op: ops.Softmax, x: torch.Tensor) -> torch.Tensor:
    dim = op.axis + 1 if op.axis >= 0 else op.axis
    return torch.log_softmax(x, dim) if op.log else torch.softmax(x, dim)


ANN_RULES: dict[type, Rule] = {
    ops.Constant: lambda op: torch.as_tensor(op.value).unsqueeze(0),
    ops.Conv2d: conv2d,
    ops.Dense: lambda op, x: F.linear(x, _t(op.weight, x), _t(op.bias, x)),
    ops.Add: lambda op, *xs: sum(xs[1:], xs[0]),
    ops.Sub: lambda op, a, b: a - b,
    ops.Mul: lambda op, a, b: a * b,
    ops.Div: lambda op, a, b: a / b,
    ops.Concat: lambda op, *xs: torch.cat(_expand_batch(xs), dim=op.axis + 1),
    ops.MaxPool2d: max_pool2d,
    ops.AvgPool2d: avg_pool2d,
    ops.GlobalAvgPool: lambda op, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    ops.Reshape: lambda op, x: x.reshape(x.shape[0], *op.shape),
    ops.Transpose: lambda op, x: x.permute(0, *(p + 1 for p in op.perm)),
    ops.Pad: pad,
    ops.BatchNorm: batch_norm,
    ops.Activation: lambda op, x: _ACTIVATIONS[op.kind](op, x),
    ops.Softmax: softmax,
    ops.LRN: lrn,
    ops.Identity: lambda op, x: x,
    ops.Slice: lambda op, x: x[:, op.start:op.stop],
    norm_ops.Normalize: normalize,
    norm_ops.Sqrt: lambda op, x: torch.sqrt(x),
}


# Ops of converted graphs have no ANN meaning: the spiking simulators (snnc.sim) run them.
REFUSED: dict[type[ops.Op], str] = {
    **{cls: "spiking op: runs in the spiking simulators (snnc.sim)" for cls in neurons.SPIKING_OPS},
    **{cls: "integer op of a quantized graph: runs in the bit-exact rules (snnc.sim)"
       for cls in quantized.QUANTIZED_OPS},
}


def node_rules(rules: Mapping[type, Rule]) -> dict[type, NodeRule]:
    """Op-level rules ``fn(op, *inputs)`` as the Interpreter's node-level rules."""
    return {cls: (lambda f: lambda node, *xs: f(node.op, *xs))(f) for cls, f in rules.items()}


def run_ann(
    graph: Graph,
    *inputs: np.ndarray,
    batch_size: int = 256,
    dtype: torch.dtype = torch.float32,
    observe: Callable[[Node, torch.Tensor], None] | None = None,
) -> list[np.ndarray]:
    """Run the ANN graph on numpy inputs (leading batch axis), in chunks of ``batch_size``."""
    interp = Interpreter(node_rules(ANN_RULES))
    n = inputs[0].shape[0]
    chunks: list[list[np.ndarray]] = []
    with torch.no_grad():
        for lo in range(0, max(n, 1), batch_size):
            xs = [torch.as_tensor(np.asarray(x[lo:lo + batch_size]), dtype=dtype) for x in inputs]
            outs = interp.run(graph, xs, observe)
            chunks.append([o.expand(xs[0].shape[0], *o.shape[1:]).cpu().numpy() for o in outs])
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(graph.outputs))]
