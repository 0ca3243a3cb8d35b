"""BatchNormalization (inference), LRN, and the normalizations by per-sample statistics:
LayerNormalization, InstanceNormalization (also torch's GroupNorm: Reshape, InstanceNorm,
Reshape), GroupNormalization, and the ReduceMean, Pow and Sqrt of LayerNorm before opset 17."""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import norm_ops, ops
from snnc.ir.types import Value


@converter("BatchNormalization", since=1)
def convert_batch_norm(ctx, x, scale, bias, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1,
                       is_test=1, training_mode=0, consumed_inputs=None):
    if not spatial:
        ctx.fail("spatial=0 (per-element statistics) unsupported")
    if training_mode:
        ctx.fail("training_mode=1 unsupported (export the model in eval mode)")
    arrays = [ctx.constant(a, name).astype(np.float32).reshape(-1)
              for a, name in ((scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var"))]
    return ctx.add(ops.BatchNorm(*arrays, eps=float(epsilon)), x)


@converter("LRN", since=1)
def convert_lrn(ctx, x, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    return ctx.add(ops.LRN(int(size), float(alpha), float(beta), float(bias)), x)


# ---- normalizations by per-sample statistics (ir/norm_ops.py); canonicalize folds the exact
# cases and fuses the decomposed LayerNorm (compiler/passes/fuse_norms.py)
def _affine(ctx, array, what: str, default: float) -> np.ndarray:
    if array is None:
        return np.array(default, np.float32)
    return ctx.constant(array, what).astype(np.float32)


@converter("LayerNormalization", since=17)
def convert_layer_norm(ctx, x, scale, bias=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    a = ctx.axis(axis, len(x.shape) + 1)
    groups, axes = norm_ops.layer_norm_layout(x.shape, a)
    return ctx.add(norm_ops.Normalize(
        _affine(ctx, scale, "Scale", 1.0), _affine(ctx, bias, "B", 0.0), groups, axes,
        float(epsilon), "layer_norm"), x)


def _grouped_source(ctx, x: Value) -> Value | None:
    """The (C, *S) value a GroupNorm export reshaped to ``x`` = (G, C/G * prod(S)), if any."""
    p = ctx.builder.build([]).producers().get(x.name)
    if p is None or not isinstance(p.op, ops.Reshape) or len(x.shape) != 2:
        return None
    u = p.inputs[0]
    if len(u.shape) < 2 or u.shape[0] % x.shape[0]:
        return None
    return u


@converter("InstanceNormalization", since=1)
def convert_instance_norm(ctx, x, scale, bias, *, epsilon=1e-5, consumed_inputs=None):
    """InstanceNorm; after a Reshape (N, C, *S) -> (N, G, -1), as torch exports GroupNorm, a
    GroupNorm of the (C, *S) value (reshaped back to (G, -1) for the nodes that follow)."""
    s = _affine(ctx, scale, "scale", 1.0).reshape(-1)
    b = _affine(ctx, bias, "B", 0.0).reshape(-1)
    u = _grouped_source(ctx, x)
    if u is None:
        c, spatial = x.shape[0], len(x.shape) - 1
        op = norm_ops.Normalize(s.reshape(c, *[1] * spatial), b.reshape(c, *[1] * spatial), c,
                                tuple(range(1, len(x.shape))), float(epsilon), "instance_norm")
        return ctx.add(op, x)
    g, per_group, rest = x.shape[0], u.shape[0] // x.shape[0], [1] * (len(u.shape) - 1)
    op = norm_ops.Normalize(np.repeat(s, per_group).reshape(-1, *rest),
                            np.repeat(b, per_group).reshape(-1, *rest), g,
                            tuple(range(1, len(u.shape))), float(epsilon), "group_norm")
    return ctx.add(ops.Reshape(x.shape), ctx.add(op, u, suffix="/group_norm"))


@converter("GroupNormalization", since=21)
def convert_group_norm(ctx, x, scale, bias, *, num_groups, epsilon=1e-5, stash_type=1):
    """ONNX GroupNormalization (opset 21: scale and bias per channel; the opset-18 form, per
    group, is deprecated and refused by the onnx checker)."""
    c, rest = x.shape[0], [1] * (len(x.shape) - 1)
    if num_groups < 1 or c % num_groups:
        ctx.fail(f"num_groups={num_groups} does not divide the {c} channels")
    s, b = (_affine(ctx, a, name, 0.0).reshape(c, *rest) for a, name in ((scale, "scale"),
                                                                          (bias, "bias")))
    return ctx.add(norm_ops.Normalize(s, b, int(num_groups), tuple(range(1, len(x.shape))),
                                      float(epsilon), "group_norm"), x)


def _reduce_mean(ctx, x, axes, keepdims: int) -> Value:
    """Mean over a trailing block of per-sample axes: a global average pool over all spatial
    axes of a (C, *S) map, otherwise a Dense with weights 1/n over the flattened block."""
    rank = len(x.shape) + 1
    if axes is None or len(axes) == 0:
        ctx.fail("a mean over every axis (batch included) is unsupported")
    per = sorted({ctx.axis(int(a), rank) for a in axes})
    k = per[0]
    if per != list(range(k, len(x.shape))):
        ctx.fail(f"mean over axes {list(axes)}: only a trailing block of axes is supported")
    kept = x.shape[:k] + ((1,) * (len(x.shape) - k) if keepdims else ())
    if not kept:
        ctx.fail("a mean over every per-sample axis without keepdims leaves no axis")
    if k == 1 and len(x.shape) >= 2:
        y = ctx.add(ops.GlobalAvgPool(), x, suffix="/mean")
    else:
        n = math.prod(x.shape[k:])
        flat = x if len(x.shape) - k == 1 else ctx.add(
            ops.Reshape((*x.shape[:k], n)), x, suffix="/flat")
        y = ctx.add(ops.Dense(np.full((1, n), 1.0 / n, np.float32), np.zeros(1, np.float32)),
                    flat, suffix="/mean")
    return y if y.shape == kept else ctx.add(ops.Reshape(kept), y)


@converter("ReduceMean", since=1)
def convert_reduce_mean(ctx, x, *, axes=None, keepdims=1):
    return _reduce_mean(ctx, x, axes, keepdims)


@converter("ReduceMean", since=18)
def convert_reduce_mean_18(ctx, x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    axes = None if axes is None else ctx.constant(axes, "axes").reshape(-1).tolist()
    return _reduce_mean(ctx, x, axes, keepdims)


@converter("Pow", since=1)
def convert_pow(ctx, x, exponent):
    """x^2 (a LayerNorm's variance) as x * x, x^0.5 as a square root; other powers refused."""
    e = ctx.constant(exponent, "the exponent")
    if e.size == 1 and float(e.reshape(-1)[0]) == 2.0:
        return ctx.add(ops.Mul(), x, x)
    if e.size == 1 and float(e.reshape(-1)[0]) == 0.5:
        return ctx.add(norm_ops.Sqrt(), x)
    ctx.fail(f"exponent {e.reshape(-1)[:4].tolist()} unsupported (only 2 and 0.5)")


@converter("Sqrt", since=1)
def convert_sqrt(ctx, x, *, consumed_inputs=None):
    return ctx.add(norm_ops.Sqrt(), x)
