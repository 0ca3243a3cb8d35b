"""approximate_lrn: replace each LRN by a calibrated per-channel scale folded into its conv.

Local response normalization, ``b_c = a_c / (k + alpha/n sum_{|c'-c| <= n/2} a_c'^2)^beta``,
divides by a sum of squares: no neuron or synapse computes it. Opt-in (``compile
--approximate-lrn``): the ANN runs on the calibration data and each channel gets the scale that
keeps its total activation, ``s_c = sum b_c / sum a_c`` (1 / k^beta where the channel never
fires), i.e. the denominator frozen at its activation-weighted mean. The LRN then becomes a
multiplication by ``s_c``, folded into the conv upstream: ReLU and max-pool lie between in
AlexNet, ZFNet and GoogLeNet, and commute with a positive per-channel scale.

Requires: a canonical ANN graph (after ``prepare_spiking``) and calibration inputs.

Ensures: no LRN remains; the network equals the original wherever every LRN denominator equals
its channel's calibrated value; the report gives, per LRN, the range of ``s_c`` and the relative
error of its output on the calibration data, and the top-1 agreement of the approximated ANN
with the exact one there. An LRN whose input does not come from a conv through single-use
ReLU / max-pool / identity nodes raises ``UnsupportedOp`` naming it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from snnc.errors import UnsupportedOp
from snnc.ir import ops
from snnc.ir.graph import Graph, eliminate_dead_nodes, rename_values
from snnc.ir.interpret import ANN_RULES, run_ann

__all__ = ["approximate_lrn"]

_COMMUTES = (ops.MaxPool2d, ops.Identity)  # with a positive per-channel scale (and ReLU)


def _upstream_conv(graph: Graph, lrn):
    """The conv whose output channels the LRN scales, through single-use ReLU/max-pool."""
    producers, uses = graph.producers(), graph.consumers()
    v = lrn.inputs[0]
    while True:
        p = producers.get(v.name)
        if p is None or len(uses.get(v.name, [])) != 1:
            return None
        if isinstance(p.op, ops.Conv2d):
            return p
        relu = isinstance(p.op, ops.Activation) and p.op.kind == "relu"
        if not (relu or isinstance(p.op, _COMMUTES)):
            return None
        v = p.inputs[0]


def _at_lrn_inputs(graph: Graph, lrns, x: np.ndarray, fn) -> np.ndarray:
    """Run the exact ANN on ``x``, calling ``fn(lrn, a, b)`` with each LRN's input and output
    (float64, per batch); return the graph's first output."""
    by_input = {n.inputs[0].name: n for n in lrns}

    def observe(node, out):
        lrn = by_input.get(node.name)
        if lrn is not None:
            fn(lrn, out.double(), ANN_RULES[ops.LRN](lrn.op, out.double()))

    return run_ann(graph, x, observe=observe)[0]


def _view(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.reshape(1, -1, *([1] * (like.dim() - 2)))


def approximate_lrn(graph: Graph, x: np.ndarray) -> tuple[Graph, dict]:
    """Replace every LRN by its calibrated per-channel scale (see the module docstring).
    Returns the new graph and the report."""
    lrns = [n for n in graph.nodes if isinstance(n.op, ops.LRN)]
    if not lrns:
        return graph, {}
    convs = {}
    for n in lrns:
        conv = _upstream_conv(graph, n)
        if conv is None:
            raise UnsupportedOp(f"layer '{n.name}' (lrn): --approximate-lrn folds an LRN into "
                                "the conv before it, through ReLU/max-pool only; this one has "
                                "no such conv")
        convs[n.name] = conv
    sums = {n.name: [0.0, 0.0] for n in lrns}  # per LRN: per-channel sums of a and of b
    err = {n.name: [0.0, 0.0] for n in lrns}  # per LRN: sum |a s - b|, sum |b|

    def collect(lrn, a, b):
        dims = (0, *range(2, a.dim()))
        sums[lrn.name][0] = sums[lrn.name][0] + a.sum(dims)
        sums[lrn.name][1] = sums[lrn.name][1] + b.sum(dims)

    exact = _at_lrn_inputs(graph, lrns, x, collect)
    scale = {}
    for n in lrns:
        a_sum, b_sum = (torch.as_tensor(t, dtype=torch.float64) for t in sums[n.name])
        floor = 1.0 / n.op.bias**n.op.beta  # a channel that never fires: the resting scale
        scale[n.name] = torch.where(a_sum > 0, b_sum / torch.where(a_sum > 0, a_sum, 1.0),
                                    torch.full_like(a_sum, floor))

    def error(lrn, a, b):
        err[lrn.name][0] += float((a * _view(scale[lrn.name], a) - b).abs().sum())
        err[lrn.name][1] += float(b.abs().sum())

    _at_lrn_inputs(graph, lrns, x, error)
    report: dict = {"layers": []}
    mapping, new_convs = {}, {}
    for n in lrns:
        s = scale[n.name].numpy()
        conv = convs[n.name]
        w = conv.op.weight * s.reshape(-1, *([1] * (conv.op.weight.ndim - 1)))
        new_convs[conv.name] = replace(conv.op, weight=w.astype(conv.op.weight.dtype),
                                       bias=(conv.op.bias * s).astype(conv.op.bias.dtype))
        mapping[n.name] = n.inputs[0]
        report["layers"].append({"name": n.name, "conv": conv.name,
                                 "scale_min": float(s.min()), "scale_max": float(s.max()),
                                 "rel_error": err[n.name][0] / max(err[n.name][1], 1e-30)})
    nodes = tuple(n.replace(op=new_convs[n.name]) if n.name in new_convs else n
                  for n in graph.nodes)
    out = eliminate_dead_nodes(rename_values(graph.replace(nodes=nodes), mapping))
    approx = run_ann(out, x)[0]
    report["top1_agreement"] = float(np.mean(
        exact.reshape(len(x), -1).argmax(1) == approx.reshape(len(x), -1).argmax(1)))
    report["samples"] = int(len(x))
    return out, report
