"""calibrate: activation statistics of the ANN on calibration data (data-based normalization,
Rueckauer 2017 §4.3): per activation node, the p-th percentile of its nonzero outputs and max.

The ANN runs in float64 and every statistic is rounded to float32: the float32 kernels' sums
depend on the thread count and the machine (oneDNN or not, AVX2 or AVX-512) in the last bits,
and so did every threshold calibrated from them; float64 sums differ far below a float32 ulp,
so the statistics, and the converted graph, are the same on any machine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snnc.errors import PassError
from snnc.ir import ops
from snnc.ir.graph import Graph
from snnc.ir.interpret import run_ann

__all__ = ["ActivationStats", "calibrate", "DEFAULT_PERCENTILE"]

DEFAULT_PERCENTILE = 99.99
_MAX_SAMPLES = 2_000_000  # values kept per layer; a strided subsample beyond that bounds memory


@dataclass(frozen=True)
class ActivationStats:
    percentile: float  # p-th percentile of the nonzero activations (lambda_l)
    max: float
    min: float
    input_min: float | None = None  # range of the activation's input (None: fed by a graph
    input_max: float | None = None  # input, or stats of an older artifact)


def calibrate(graph: Graph, x: np.ndarray, percentile: float = DEFAULT_PERCENTILE,
              batch_size: int = 256, progress=None) -> dict[str, ActivationStats]:
    """Run the ANN on ``x``; return stats for every Activation node's output (and the range of
    its input), keyed by name."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    seen: dict[str, list[np.ndarray]] = {}
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    feeds: dict[str, list[str]] = {}  # producer -> the activations it feeds
    for n in graph.nodes:
        if isinstance(n.op, ops.Activation):
            feeds.setdefault(n.inputs[0].name, []).append(n.name)
    in_lo: dict[str, float] = {}
    in_hi: dict[str, float] = {}

    def observe(node, out):
        # Overflowing weights (finite but huge) make NaN/Inf activations, and those would turn
        # into NaN thresholds: a network that silently computes garbage. Refuse instead.
        if out.is_floating_point() and not bool(torch.isfinite(out.float()).all()):
            raise PassError(f"calibrate: node '{node.name}' ({type(node.op).__name__}) computes "
                            "NaN/Inf on the calibration data (weights or inputs overflow "
                            "float32)")
        for act in feeds.get(node.name, ()):
            in_lo[act] = min(in_lo.get(act, np.inf), float(out.min()))
            in_hi[act] = max(in_hi.get(act, -np.inf), float(out.max()))
        if not isinstance(node.op, ops.Activation):
            return
        a = out.detach().cpu().numpy().ravel()
        lo[node.name] = min(lo.get(node.name, np.inf), float(a.min()))
        hi[node.name] = max(hi.get(node.name, -np.inf), float(a.max()))
        nz = a[a != 0]
        step = max(1, nz.size * len(x) // _MAX_SAMPLES)
        seen.setdefault(node.name, []).append(np.abs(nz[::step]))

    run_ann(graph, x, batch_size=batch_size, dtype=torch.float64, observe=observe)
    stats = {}
    for name, chunks in seen.items():
        vals = np.concatenate(chunks)
        p = float(np.percentile(vals, percentile)) if vals.size else 0.0
        stats[name] = ActivationStats(*(_float32(v) for v in (p, hi[name], lo[name])),
                                      _float32(in_lo.get(name)), _float32(in_hi.get(name)))
    return stats


def _float32(v: float | None) -> float | None:
    return None if v is None else float(np.float32(v))
