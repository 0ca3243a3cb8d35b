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

__all__ = ["DEFAULT_K", "convert_fs", "fs_table_for"]

DEFAULT_K = 10

_FITTED = {  # activations without a shipped table: fitted once (cached) with the paper's recipe
    "tanh": (np.tanh, (-6.0, 6.0)),
    "leaky_relu": (None, (-8.0, 8.0)),
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
        fn = lambda x, a=op.alpha: np.where(x >= 0, x, a * x)
    elif op.kind in ("elu", "selu"):
        gain = op.beta if op.kind == "selu" else 1.0
        fn = lambda x, a=op.alpha, g=gain: g * np.where(
            x > 0, x, a * np.expm1(np.minimum(x, 0)))
    elif op.kind == "hard_sigmoid":
        fn = lambda x, a=op.alpha, b=op.beta: np.clip(a * x + b, 0, 1)
    elif op.kind == "clip":
        fn = lambda x, lo=op.lo, hi=op.hi: np.clip(x, lo, hi)
    return fs_params.fit(fn, 16, x_range)


def convert_fs(graph: Graph, stats: dict[str, ActivationStats], K: int = DEFAULT_K) -> Graph:
    """Requires: a prepared graph (prepare_spiking) and calibration stats of its activations.
    Ensures: every activation is a FewSpikeNeurons population (ReLU: exact K-bit quantizer with
    alpha from calibration; SiLU K=16 and sigmoid K=12 shipped tables; others fitted); max-pool
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
