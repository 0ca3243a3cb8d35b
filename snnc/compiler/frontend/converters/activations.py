"""Elementwise activations and (log-)softmax."""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


@converter("Relu", since=1)
def convert_relu(ctx, x, *, consumed_inputs=None):
    return ctx.add(ops.Activation("relu"), x)


@converter("LeakyRelu", since=1)
def convert_leaky_relu(ctx, x, *, alpha=0.01, consumed_inputs=None):
    return ctx.add(ops.Activation("leaky_relu", alpha=float(alpha)), x)


@converter("Sigmoid", since=1)
def convert_sigmoid(ctx, x, *, consumed_inputs=None):
    return ctx.add(ops.Activation("sigmoid"), x)


@converter("Tanh", since=1)
def convert_tanh(ctx, x, *, consumed_inputs=None):
    return ctx.add(ops.Activation("tanh"), x)


@converter("HardSigmoid", since=1)
def convert_hard_sigmoid(ctx, x, *, alpha=0.2, beta=0.5, consumed_inputs=None):
    return ctx.add(ops.Activation("hard_sigmoid", alpha=float(alpha), beta=float(beta)), x)


@converter("HardSwish", since=14)
def convert_hardswish(ctx, x):
    return ctx.add(ops.Activation("hardswish"), x)


@converter("Clip", since=1)
def convert_clip_attr(ctx, x, *, min=-math.inf, max=math.inf, consumed_inputs=None):
    return ctx.add(ops.Activation("clip", lo=float(min), hi=float(max)), x)


@converter("Clip", since=11)
def convert_clip(ctx, x, lo=None, hi=None):
    lo = -math.inf if lo is None else float(ctx.constant(lo, "min"))
    hi = math.inf if hi is None else float(ctx.constant(hi, "max"))
    return ctx.add(ops.Activation("clip", lo=lo, hi=hi), x)


def _coerced_softmax(ctx, x, axis, log):
    """Opset < 13: softmax over the input flattened to 2-D at ``axis``."""
    rank = len(x.shape) + 1
    a = ctx.axis(axis, rank)
    if a == len(x.shape) - 1:
        return ctx.add(ops.Softmax(axis=a, log=log), x)
    flat = ctx.add(ops.Reshape((*x.shape[:a], int(np.prod(x.shape[a:])))), x, suffix="/flat")
    y = ctx.add(ops.Softmax(axis=a, log=log), flat, suffix="/softmax")
    return ctx.add(ops.Reshape(x.shape), y)


@converter("Softmax", since=1)
def convert_softmax_legacy(ctx, x, *, axis=1):
    return _coerced_softmax(ctx, x, axis, log=False)


@converter("LogSoftmax", since=1)
def convert_log_softmax_legacy(ctx, x, *, axis=1):
    return _coerced_softmax(ctx, x, axis, log=True)


@converter("Softmax", since=13)
def convert_softmax(ctx, x, *, axis=-1):
    return ctx.add(ops.Softmax(axis=ctx.axis(axis, len(x.shape) + 1)), x)


@converter("LogSoftmax", since=13)
def convert_log_softmax(ctx, x, *, axis=-1):
    return ctx.add(ops.Softmax(axis=ctx.axis(axis, len(x.shape) + 1), log=True), x)


@converter("Elu", since=1)
def convert_elu(ctx, x, *, alpha=1.0, consumed_inputs=None):
    return ctx.add(ops.Activation("elu", alpha=float(alpha)), x)


@converter("Selu", since=1)
def convert_selu(ctx, x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875,
                 consumed_inputs=None):
    return ctx.add(ops.Activation("selu", alpha=float(alpha), beta=float(gamma)), x)


@converter("Softplus", since=1)
def convert_softplus(ctx, x):
    return ctx.add(ops.Activation("softplus"), x)


@converter("Erf", since=9)
def convert_erf(ctx, x):
    """Erf alone is an activation; GELU's x (1 + erf(x / sqrt 2)) / 2 becomes one ``gelu``
    (passes/canonicalize.py matches the function the elementwise subgraph computes)."""
    return ctx.add(ops.Activation("erf"), x)


@converter("PRelu", since=1)
def convert_prelu(ctx, x, slope, *, consumed_inputs=None):
    """A slope shared by all channels is a leaky ReLU; per-channel slopes are refused."""
    slope = ctx.constant(slope, "the slope (input 1)")
    full = (1, *x.shape)
    try:
        fits = np.broadcast_shapes(slope.shape, full) == full
    except ValueError:
        fits = False
    if not fits:
        ctx.fail(f"slope of shape {list(slope.shape)} does not broadcast to the input "
                 f"{['N', *x.shape]}")
    values = np.unique(np.asarray(slope, np.float64))
    if values.size != 1:
        ctx.fail(f"per-channel slopes ({slope.size} different values) are unsupported: a "
                 "spiking population has one activation function; train with one shared slope "
                 "(nn.PReLU() without num_parameters) or use LeakyRelu")
    return ctx.add(ops.Activation("leaky_relu", alpha=float(values[0])), x)
