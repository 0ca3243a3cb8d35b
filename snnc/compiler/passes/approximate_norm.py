"""approximate_norm: replace each normalization by per-sample statistics (LayerNorm,
InstanceNorm, GroupNorm: ``ir.norm_ops.Normalize``) by a fixed affine map calibrated on data.

``y = (x - mean(x)) / sqrt(var(x) + eps) * scale + bias`` divides each sample by its own
standard deviation: no synapse or neuron computes it. Opt-in (``compile --approximate-norm``,
api ``approximate_norm=True``): the exact ANN runs on the calibration data and every group of
statistics (a GroupNorm group, an InstanceNorm channel, a LayerNorm row) gets the fixed affine
map ``u = a x + b`` closest in least squares to its normalized output ``(x - mean) / std`` over
those samples, i.e. frozen statistics ``mean = -b / a``, ``std = 1 / a`` as a BatchNorm keeps
them. The layer becomes ``x * (scale a) + (scale b + bias)``: a Mul and an Add of constants,
which fold_batchnorm folds into the conv/dense before it where they are per output channel
(GroupNorm, InstanceNorm, LayerNorm over a dense layer's features).

Requires: a canonical ANN graph (after ``canonicalize``, before ``fold_batchnorm``) and
calibration inputs.

Ensures: no Normalize remains; the network equals the original wherever every sample's
statistics equal the calibrated ones; the report gives, per layer, its kind, the number of
statistics groups, the range of the frozen std and the relative L1 error of its output on the
calibration data (each layer fed its exact input), and the top-1 agreement of the approximated
ANN with the exact one there.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from snnc.compiler.passes.fuse_norms import affine_nodes
from snnc.errors import UnsupportedOp
from snnc.ir import norm_ops, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES, run_ann

__all__ = ["approximate_norm", "center_producers", "refuse_norms"]

_FLAG = ("--approximate-norm (api approximate_norm=True) replaces it by a fixed per-channel "
         "affine map calibrated on --calib")


def refuse_norms(graph: Graph) -> None:
    """Raise ``UnsupportedOp`` naming the first normalization by per-sample statistics."""
    for n in graph.nodes:
        if isinstance(n.op, norm_ops.Normalize):
            raise UnsupportedOp(
                f"layer '{n.name}' ({n.op.kind}): normalizes every sample by its own mean and "
                f"standard deviation, which no synapse or neuron computes; {_FLAG}")


def _grouped(op: norm_ops.Normalize, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x`` as (N, G, C/G, *S) and the dims of one group's statistics."""
    g = x.reshape(x.shape[0], op.groups, x.shape[1] // op.groups, *x.shape[2:])
    return g, (2, *(a + 2 for a in op.axes))


def _observe(graph: Graph, norms: list[Node], x: np.ndarray, fn) -> np.ndarray:
    """Run the exact ANN on ``x`` (float64), calling ``fn(node, input)`` at every norm's input;
    return the graph's first output."""
    by_input: dict[str, list[Node]] = {}
    for n in norms:
        by_input.setdefault(n.inputs[0].name, []).append(n)

    def observe(node, out):
        for n in by_input.get(node.name, ()):
            fn(n, out)

    for v in graph.inputs:  # a norm of a graph input: observe it before the run
        for n in by_input.get(v.name, ()):
            fn(n, torch.as_tensor(np.asarray(x), dtype=torch.float64))
    return run_ann(graph, x, dtype=torch.float64, observe=observe)[0]


def _fit(sums: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``u ~ a x + b`` per group from the sums of 1, x, x^2, u, x u."""
    cnt, sx, sxx, su, sxu = sums
    mx, mu = sx / cnt, su / cnt
    var = sxx / cnt - mx * mx
    cov = sxu / cnt - mx * mu
    a = torch.where(var > 1e-12 * (1 + mx * mx), cov / torch.where(var > 0, var, 1.0), 0.0)
    return a, mu - a * mx


def _per_sample(op: norm_ops.Normalize, t: torch.Tensor, shape) -> np.ndarray:
    """A (1, G, 1, *S') group coefficient as an array broadcasting to the per-sample shape."""
    per_group = shape[0] // op.groups
    t = t.expand(1, op.groups, per_group, *t.shape[3:]).reshape(shape[0], *t.shape[3:])
    return t.numpy()


def _coefficients(graph: Graph, norms: list[Node], x: np.ndarray):
    """Per norm: (a, b) of its unit output, as (1, G, 1, *S') tensors."""
    sums: dict[str, list] = {n.name: [0.0] * 5 for n in norms}

    def collect(node, inp):
        g, dims = _grouped(node.op, inp)
        unit = replace(node.op, scale=np.ones((), np.float32), bias=np.zeros((), np.float32))
        u = ANN_RULES[norm_ops.Normalize](unit, inp).reshape(g.shape)
        d = (0, *dims)
        for i, t in enumerate((torch.ones_like(g), g, g * g, u, g * u)):
            sums[node.name][i] = sums[node.name][i] + t.sum(d, keepdim=True)

    exact = _observe(graph, norms, x, collect)
    return exact, {n.name: _fit(sums[n.name]) for n in norms}


def _centerable(producer: Node | None, norm: Node, consumers) -> bool:
    """Whether ``producer`` can give ``norm`` an input of zero group mean by itself: a Dense
    (rank-1 output) or an ungrouped Conv2d feeding only ``norm``, whose statistics run over
    channels alone (per position), so each group mean is a fixed mix of its rows."""
    if producer is None or norm.op.axes or len(consumers.get(producer.name, ())) != 1:
        return False
    op = producer.op
    return ((isinstance(op, ops.Dense) and len(producer.output.shape) == 1)
            or (isinstance(op, ops.Conv2d) and op.groups == 1))


def center_producers(graph: Graph, norms: list[Node]) -> tuple[Graph, set[str]]:
    """Subtract each statistics group's mean row from the weights and bias of the layer that
    feeds a norm (where ``_centerable``): every sample's group mean is then 0 up to float32
    rounding, and a norm is unchanged by subtracting its group mean, so the exact network is
    too. The fit's frozen mean is then exact; only the per-sample std is approximated (a
    random LayerNorm MLP: top-1 agreement 0.945 -> 0.98). Returns the graph and the names of
    the norms whose input is centered."""
    producers, consumers = graph.producers(), graph.consumers()
    new: dict[str, Node] = {}
    for n in norms:
        p = producers.get(n.inputs[0].name)
        if not _centerable(p, n, consumers):
            continue
        w, b = p.op.weight.astype(np.float64), p.op.bias.astype(np.float64)
        wg = w.reshape(n.op.groups, -1, *w.shape[1:])
        bg = b.reshape(n.op.groups, -1)
        w = (wg - wg.mean(1, keepdims=True)).reshape(w.shape).astype(np.float32)
        b = (bg - bg.mean(1, keepdims=True)).reshape(b.shape).astype(np.float32)
        new[p.name] = p.replace(op=replace(p.op, weight=w, bias=b))
    nodes = tuple(new.get(m.name, m) for m in graph.nodes)
    centered = {n.name for n in norms if n.inputs[0].name in new}
    return graph.replace(nodes=nodes), centered


def approximate_norm(graph: Graph, x: np.ndarray) -> tuple[Graph, dict]:
    """Replace every Normalize by its calibrated affine map (see the module docstring), after
    centering its input exactly where the layer before allows (``center_producers``).
    Returns the new graph and the report."""
    norms = [n for n in graph.nodes if isinstance(n.op, norm_ops.Normalize)]
    if not norms:
        return graph, {}
    graph, centered = center_producers(graph, norms)
    exact, coef = _coefficients(graph, norms, x)
    maps = {}
    for n in norms:
        a, b = (_per_sample(n.op, t, n.inputs[0].shape) for t in coef[n.name])
        scale, bias = n.op.scale.astype(np.float64), n.op.bias.astype(np.float64)
        maps[n.name] = ((scale * a).astype(np.float32), (scale * b + bias).astype(np.float32))
    err = {n.name: [0.0, 0.0] for n in norms}  # sum |approx - exact|, sum |exact|

    def error(node, inp):
        want = ANN_RULES[norm_ops.Normalize](node.op, inp)
        m, s = (torch.as_tensor(c, dtype=torch.float64) for c in maps[node.name])
        err[node.name][0] += float((inp * m + s - want).abs().sum())
        err[node.name][1] += float(want.abs().sum())

    _observe(graph, norms, x, error)
    report: dict = {"layers": []}
    replaced = {n.name: affine_nodes(n, *maps[n.name]) for n in norms}
    for n in norms:
        a = coef[n.name][0]
        std = 1.0 / a[a != 0] if bool((a != 0).any()) else torch.zeros(1, dtype=a.dtype)
        report["layers"].append({
            "name": n.name, "kind": n.op.kind, "groups": int(a.numel()),
            "centered": n.name in centered,
            "std_min": float(std.min()), "std_max": float(std.max()),
            "rel_error": err[n.name][0] / max(err[n.name][1], 1e-30)})
    nodes = tuple(m for n in graph.nodes for m in replaced.get(n.name, [n]))
    out = graph.replace(nodes=nodes)
    approx = run_ann(out, x, dtype=torch.float64)[0]
    report["top1_agreement"] = float(np.mean(
        exact.reshape(len(x), -1).argmax(1) == approx.reshape(len(x), -1).argmax(1)))
    report["samples"] = len(x)
    return out, report
