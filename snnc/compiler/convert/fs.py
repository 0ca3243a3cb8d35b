"""convert_fs: ANN -> few-spikes (FS) network (Stöckl & Maass 2021)."""

from __future__ import annotations

import math

import numpy as np
import torch

from snnc.compiler import fs_params
from snnc.compiler.convert.common import is_linear, reject
from snnc.compiler.passes.calibrate import ActivationStats
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph

__all__ = ["DEFAULT_K", "convert_fs", "fs_table_for", "leaky_relu_table"]

DEFAULT_K = 10

_FITTED = {  # activations without a shipped table: fitted once (cached) with the paper's recipe
    "tanh": (np.tanh, (-6.0, 6.0)),
    "hardswish": (lambda x: x * np.clip(x / 6 + 0.5, 0, 1), (-8.0, 8.0)),
    "hard_sigmoid": (None, (-8.0, 8.0)),
    "elu": (None, (-8.0, 8.0)),
    "selu": (None, (-8.0, 8.0)),
    "softplus": (lambda x: np.logaddexp(0.0, x), (-8.0, 8.0)),
    "erf": (lambda x: _torch_fn(torch.erf, x), (-8.0, 8.0)),
    "gelu": (lambda x: _torch_fn(torch.nn.functional.gelu, x), (-8.0, 8.0)),
    "gelu_tanh": (lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
                  (-8.0, 8.0)),
    "mish": (lambda x: x * np.tanh(np.logaddexp(0.0, x)), (-8.0, 8.0)),
}


def _torch_fn(fn, x: np.ndarray) -> np.ndarray:
    return fn(torch.as_tensor(np.asarray(x, np.float64))).numpy()


def fs_table_for(op: ops.Activation, stat: ActivationStats | None, K: int) -> fs_params.FSTable:
    """The FS table emulating ``op``; ReLU-like gates get alpha from the calibrated range."""
    if op.kind == "relu" or (op.kind == "clip" and op.lo == 0.0):
        lam = stat.percentile if stat is not None else 0.0
        lam = min(lam, op.hi) if op.kind == "clip" else lam
        if not math.isfinite(lam) or lam <= 0:
            lam = 1.0
        # alpha(1 - 2^-K) is the largest representable value: make it lambda (ml_genn's rule).
        return fs_params.relu_table(lam / (1.0 - 2.0 ** -K), K)
    if op.kind in ("silu", "sigmoid"):
        return fs_params.table_for(op.kind)
    fn, x_range = _FITTED.get(op.kind, (None, (-8.0, 8.0)))
    if op.kind == "leaky_relu":
        return leaky_relu_table(op.alpha, _leaky_input_bound(op, stat))
    if op.kind in ("elu", "selu"):
        gain = op.beta if op.kind == "selu" else 1.0
        fn = lambda x, a=op.alpha, g=gain: g * np.where(
            x > 0, x, a * np.expm1(np.minimum(x, 0)))
    elif op.kind == "hard_sigmoid":
        fn = lambda x, a=op.alpha, b=op.beta: np.clip(a * x + b, 0, 1)
    elif op.kind == "clip":
        fn = lambda x, lo=op.lo, hi=op.hi: np.clip(x, lo, hi)
    return fs_params.fit(fn, 16, x_range)


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
    K=16 table over the calibrated range; others fitted); max-pool
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
