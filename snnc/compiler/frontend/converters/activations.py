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


def _prelu_per_channel(ctx, x, slopes: np.ndarray):
    """relu(x) - a_c relu(-x) = PRelu(x), exactly, from a linear map x -> (x, -x) over the
    channels, one ReLU population of twice the channels and a linear map back, ``[I, -diag(a)]``.
    Both maps are 1x1 convolutions (dense layers on (F,) inputs) without bias, so fold_linear
    merges the first into the layer producing ``x`` (its weights and bias stacked with their
    negation) and the second into the next weighted layer: every method converts the ReLU."""
    c, shape = x.shape[0], x.shape
    eye = np.eye(c, dtype=np.float32)
    split = np.concatenate([eye, -eye])
    merge = np.concatenate([eye, -np.diag(slopes).astype(np.float32)], axis=1)
    if len(shape) == 1:
        pos = ctx.add(ops.Dense(split, np.zeros(2 * c, np.float32)), x, suffix="/split")
        pos = ctx.add(ops.Activation("relu"), pos, suffix="/relu")
        return ctx.add(ops.Dense(merge, np.zeros(c, np.float32)), pos)
    if len(shape) != 3:
        x = ctx.add(ops.Reshape((c, 1, int(np.prod(shape[1:])))), x, suffix="/as2d")
    pos = ctx.add(ops.Conv2d(split[:, :, None, None], np.zeros(2 * c, np.float32)), x,
                  suffix="/split")
    pos = ctx.add(ops.Activation("relu"), pos, suffix="/relu")
    if len(shape) == 3:
        return ctx.add(ops.Conv2d(merge[:, :, None, None], np.zeros(c, np.float32)), pos)
    y = ctx.add(ops.Conv2d(merge[:, :, None, None], np.zeros(c, np.float32)), pos,
                suffix="/merge")
    return ctx.add(ops.Reshape(shape), y)


@converter("PRelu", since=1)
def convert_prelu(ctx, x, slope, *, consumed_inputs=None):
    """A slope shared by all channels is a leaky ReLU; per-channel slopes (nn.PReLU(C)) are
    relu(x) - a_c relu(-x) (``_prelu_per_channel``); slopes that vary along other axes are
    refused."""
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
    if values.size == 1:
        return ctx.add(ops.Activation("leaky_relu", alpha=float(values[0])), x)
    per_channel = np.broadcast_to(np.asarray(slope, np.float32), full)[0].reshape(x.shape[0], -1)
    if np.any(per_channel != per_channel[:, :1]):
        ctx.fail(f"slope of shape {list(slope.shape)} varies along other axes than the channel "
                 "axis; only one slope, or one per channel, is supported")
    return _prelu_per_channel(ctx, x, per_channel[:, 0])
