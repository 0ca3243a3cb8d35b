"""MaxPool, AveragePool, GlobalAveragePool (2-D; 1-D lowered to 2-D over (C, 1, L); 3-D
lowered to 2-D ops over (C*D, H, W) in windows3d.py)."""

from __future__ import annotations

from snnc.compiler.frontend.converters._common import (
    as_2d,
    back_to_1d,
    require_2d,
    window_padding,
)
from snnc.compiler.frontend.converters.windows3d import avg_pool3d, max_pool3d
from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


def _pool(ctx, x, op_of, kernel_shape, strides, pads, dilations, auto_pad):
    """Add the pool ``op_of(kernel, strides, padding, dilations)`` over ``x`` (2-D, or 1-D
    through (C, 1, L))."""
    lowered = as_2d(ctx, x, kernel_shape, strides, pads, dilations)
    if lowered is not None:
        x, kernel_shape = lowered.x, lowered.kernel
        strides, pads, dilations = lowered.strides, lowered.pads, lowered.dilations
    require_2d(ctx, x, kernel_shape)
    k, s = tuple(kernel_shape), tuple(strides or (1, 1))
    d = tuple(dilations or (1, 1))
    padding = window_padding(ctx, x, k, s, pads, d, auto_pad)
    op = op_of(k, s, padding, d)
    if lowered is None:
        return ctx.add(op, x)
    return back_to_1d(ctx, ctx.add(op, x, suffix="/2d"))


@converter("MaxPool", since=1)
def convert_max_pool(ctx, x, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None,
                     pads=None, storage_order=0, strides=None):
    if len(kernel_shape) == 3:
        return max_pool3d(ctx, x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
    return _pool(ctx, x, lambda k, s, p, d: ops.MaxPool2d(k, s, p, d, bool(ceil_mode)),
                 kernel_shape, strides, pads, dilations, auto_pad)


@converter("AveragePool", since=1)
def convert_avg_pool(ctx, x, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0,
                     count_include_pad=0, dilations=None, pads=None, strides=None):
    if dilations and any(d != 1 for d in dilations):
        ctx.fail(f"dilations={list(dilations)} unsupported for AveragePool")
    if len(kernel_shape) == 3:
        return avg_pool3d(ctx, x, kernel_shape, strides, pads, auto_pad, bool(count_include_pad),
                          bool(ceil_mode))
    return _pool(ctx, x, lambda k, s, p, d: ops.AvgPool2d(k, s, p, bool(ceil_mode),
                                                          bool(count_include_pad)),
                 kernel_shape, strides, pads, None, auto_pad)


@converter("GlobalAveragePool", since=1)
def convert_global_avg_pool(ctx, x):
    if len(x.shape) == 4:  # (C, D, H, W): the same mean over (C, D*H, W), a 2-D pool
        x2 = ctx.add(ops.Reshape((x.shape[0], x.shape[1] * x.shape[2], x.shape[3])), x,
                     suffix="/as2d")
        y = ctx.add(ops.GlobalAvgPool(), x2, suffix="/2d")
        return ctx.add(ops.Reshape((x.shape[0], 1, 1, 1)), y)
    if len(x.shape) != 2:
        return ctx.add(ops.GlobalAvgPool(), x)
    x2 = ctx.add(ops.Reshape((x.shape[0], 1, x.shape[1])), x, suffix="/as2d")
    y = ctx.add(ops.GlobalAvgPool(), x2, suffix="/2d")
    return ctx.add(ops.Reshape((x.shape[0], 1)), y)
