"""convert_fs: ANN -> few-spikes (FS) network (Stöckl & Maass 2021)."""

from __future__ import annotations

import math

import numpy as np
import torch

from snnc.compiler import fs_params
from snnc.compiler.convert.common import is_linear, reject
from snnc.compiler.convert.pwl_table import pwl_table
from snnc.compiler.passes.calibrate import ActivationStats
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph
from snnc.ir.interpret import ANN_RULES

__all__ = ["DEFAULT_K", "constructed_K", "convert_fs", "fs_table_for", "leaky_relu_table"]

DEFAULT_K = 10

# Activations without a shipped table get a constructed table over their calibrated input
# range (convert/pwl_table.py); without one (an activation fed directly by a graph input, or
# stats stored by an older artifact) a table fitted once (cached) with the paper's recipe, on
# this range (default [-8, 8]).
_FIT_RANGE = {"tanh": (-6.0, 6.0)}


def constructed_K(K: int) -> int:
    """Steps of a constructed (piecewise-linear) table for the ReLU step count ``K``: ``3 K +
    2`` (32 at the default 10): the steps both place an input's segment and code it within.
    Measured on random-weight nets (benchmarks/architectures.py), 24 steps left GELU nets at
    0.94-0.97 top-1 agreement, 32 reach 0.96-0.99; GELU's RMS error on [-1.2, 1.2] is 0.003."""
    return 3 * K + 2


def _ann_function(op: ops.Activation):
    """``op`` as the ANN computes it (``ir.interpret``), on numpy arrays in float64: the
    function the table approximates."""
    rule = ANN_RULES[ops.Activation]
    return lambda x: rule(op, torch.as_tensor(np.asarray(x, np.float64))).numpy()


def fs_table_for(op: ops.Activation, stat: ActivationStats | None, K: int) -> fs_params.FSTable:
    """The FS table emulating ``op``; ReLU-like gates get alpha from the calibrated range,
    other activations a constructed table over their calibrated input range."""
    if op.kind == "relu" or (op.kind == "clip" and op.lo == 0.0):
        lam = stat.percentile if stat is not None else 0.0
        lam = min(lam, op.hi) if op.kind == "clip" else lam
        if not math.isfinite(lam) or lam <= 0:
            lam = 1.0
        # alpha(1 - 2^-K) is the largest representable value: make it lambda (ml_genn's rule).
        return fs_params.relu_table(lam / (1.0 - 2.0 ** -K), K)
    if op.kind in ("silu", "sigmoid"):
        return fs_params.table_for(op.kind)
    if op.kind == "leaky_relu":
        return leaky_relu_table(op.alpha, _leaky_input_bound(op, stat))
    fn = _ann_function(op)
    lo, hi = _input_range(stat)
    if lo is not None:
        return pwl_table(fn, lo, hi, constructed_K(K), name=op.kind)
    return fs_params.fit(fn, 16, _FIT_RANGE.get(op.kind, (-8.0, 8.0)))


def _input_range(stat: ActivationStats | None) -> tuple[float | None, float | None]:
    """The calibrated input range, widened to a non-empty interval; (None, None) without one."""
    if stat is None or stat.input_min is None or stat.input_max is None:
        return None, None
    lo, hi = float(stat.input_min), float(stat.input_max)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None, None
    pad = 1e-3 * max(hi - lo, abs(lo), abs(hi), 1.0) if hi - lo < 1e-6 else 0.0
    return lo - pad, hi + pad


def _leaky_input_bound(op: ops.Activation, stat: ActivationStats | None) -> float:
    """A bound on |x| over the calibration data, from the leaky ReLU's output range: x > 0 gives
    x, x < 0 gives alpha x. 8.0 (the range fitted tables cover) without a usable bound."""
    if stat is None:
        return 8.0
    a, hi, lo = op.alpha, max(stat.max, 0.0), min(stat.min, 0.0)
    if a > 0:
        bound = max(hi, -lo / a)
    elif a < 0:  # negative inputs give positive outputs too
        bound = max(hi, hi / -a)
    else:
        bound = hi
    return bound if math.isfinite(bound) and bound > 0 else 8.0


def leaky_relu_table(slope: float, bound: float, K: int = 16) -> fs_params.FSTable:
    """A constructed (not fitted) FS table for ``x if x > 0 else slope * x`` on ``[-bound,
    bound]``: three blocks of steps, all exact binary codes as FS-ReLU's.

    * step 1: ``T = -8 bound``, ``h = 0``, ``d = -slope B`` (a constant for every input in range);
    * ``m`` steps: FS-ReLU of range ``A = bound / (1 - 2^-m)``: positive inputs are coded and
      leave a residual in ``[0, A 2^-m)``; negative inputs do not spike and stay as they are;
    * ``n`` steps: FS-ReLU of ``v + S`` (``S = B + A' 2^-(n+1)``, half a step above
      ``B = A' (1 - 2^-n) = bound``), thresholds ``A' 2^-j - S``, output ``slope A' 2^-j``: a
      positive input's residual codes all ones (``slope B``, cancelled by step 1), a negative
      input codes ``x + S`` and outputs ``slope (x + S) - slope B ~ slope x``.

    ``m + n = K - 1`` splits the steps so both sides get about the same output step
    (``bound 2^-m`` vs ``|slope| bound 2^-n``). Inputs above ``bound`` saturate at ``bound``,
    below ``-bound`` at ``-slope bound`` (below ``-8 bound``: 0), as ReLU's alpha clips.
    """
    a, B = float(slope), float(bound)
    if not (math.isfinite(B) and B > 0 and math.isfinite(a)) or K < 4:
        raise ValueError(f"leaky_relu_table needs a finite bound > 0 and K >= 4, got {B}, {K}")
    shift = math.log2(1.0 / abs(a)) if a != 0 else K
    n = int(min(max(round((K - 1 - shift) / 2), 1), K - 2))
    m = K - 1 - n
    pos = (B / (1 - 2.0 ** -m)) * np.exp2(-np.arange(1, m + 1, dtype=np.float64))
    neg = (B / (1 - 2.0 ** -n)) * np.exp2(-np.arange(1, n + 1, dtype=np.float64))
    S = B + neg[-1] / 2
    h = np.concatenate([[0.0], pos, neg])
    d = np.concatenate([[-a * B], pos, a * neg])
    T = np.concatenate([[-8.0 * B], pos, neg - S])
    h[-1] = 0.0  # never used, as in the shipped tables
    return fs_params.FSTable(h=h, d=d, T=T, name=f"leaky_relu(slope={a:g},bound={B:g},K={K})")


def convert_fs(graph: Graph, stats: dict[str, ActivationStats], K: int = DEFAULT_K) -> Graph:
    """Requires: a prepared graph (prepare_spiking) and calibration stats of its activations.
    Ensures: every activation is a FewSpikeNeurons population (ReLU: exact K-bit quantizer with
    alpha from calibration; SiLU K=16 and sigmoid K=12 shipped tables; leaky ReLU a constructed
    K=16 table over the calibrated range; others a constructed piecewise-linear table of
    ``constructed_K(K)`` steps over their calibrated input range, or fitted without one); max-pool
    and products of two populations act on decoded values (max commutes with monotone FS-ReLU;
    products are exact, as in the released FS code). Raises UnsupportedOp for other non-linear
    ops."""
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    producers = graph.producers()
    nodes = []
    for n in graph.nodes:
        op = n.op
        if isinstance(op, ops.Activation):
            t = fs_table_for(op, stats.get(n.name), K)
            n = n.replace(op=neurons.FewSpikeNeurons(t.h, t.d, t.T, op.kind))
        elif not (is_linear(n, producers) or type(op) is ops.MaxPool2d
                  or isinstance(op, ops.Mul)):
            reject(n, "fs", "not expressible with FS neurons and synapses")
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))
