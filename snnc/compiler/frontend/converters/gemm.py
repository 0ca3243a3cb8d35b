"""Gemm and MatMul (with a constant right-hand side) lower to Dense."""

from __future__ import annotations

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops
from snnc.ir.types import Value


@converter("Gemm", since=1)
def convert_gemm(ctx, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=None):
    if not isinstance(a, Value):
        ctx.fail("input A must depend on the model input (a constant A times a dynamic B is "
                 "unsupported)")
    if transA:
        ctx.fail("transA=1 unsupported (A would be laid out with the batch on axis 1)")
    w = ctx.constant(b, "input B").astype(np.float64)
    w = (w if transB else w.T) * alpha  # -> (out, in)
    bias = np.zeros(w.shape[0])
    if c is not None:
        c = ctx.constant(c, "input C").astype(np.float64)
        if c.ndim == 2 and c.shape[0] != 1:
            ctx.fail(f"bias C of shape {list(c.shape)} varies along the batch axis")
        bias = np.broadcast_to(c.reshape(-1) if c.ndim else c, (w.shape[0],)) * beta
    return ctx.add(ops.Dense(w.astype(np.float32), bias.astype(np.float32)), a)


@converter("MatMul", since=1)
def convert_matmul(ctx, a, b):
    if not isinstance(a, Value) or isinstance(b, Value):
        ctx.fail("only (input) x (constant 2-D matrix) is supported")
    if b.ndim != 2:
        ctx.fail(f"right-hand side of rank {b.ndim} unsupported (needs a 2-D matrix)")
    if len(a.shape) < 1:
        ctx.fail("left-hand side must have a feature axis after the batch axis")
    w = b.T.astype(np.float32)
    return ctx.add(ops.Dense(w, np.zeros(w.shape[0], np.float32)), a)
