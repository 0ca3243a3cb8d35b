"""MaxPool, AveragePool, GlobalAveragePool."""

from __future__ import annotations

from snnc.compiler.frontend.converters._common import require_2d, window_padding
from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


@converter("MaxPool", since=1)
def convert_max_pool(ctx, x, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None,
                     pads=None, storage_order=0, strides=None):
    require_2d(ctx, x, kernel_shape)
    k, s = tuple(kernel_shape), tuple(strides or (1, 1))
    d = tuple(dilations or (1, 1))
    padding = window_padding(ctx, x, k, s, pads, d, auto_pad)
    return ctx.add(ops.MaxPool2d(k, s, padding, d, bool(ceil_mode)), x)


@converter("AveragePool", since=1)
def convert_avg_pool(ctx, x, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0,
                     count_include_pad=0, dilations=None, pads=None, strides=None):
    require_2d(ctx, x, kernel_shape)
    if dilations and any(d != 1 for d in dilations):
        ctx.fail(f"dilations={list(dilations)} unsupported for AveragePool")
    k, s = tuple(kernel_shape), tuple(strides or (1, 1))
    padding = window_padding(ctx, x, k, s, pads, (1, 1), auto_pad)
    return ctx.add(ops.AvgPool2d(k, s, padding, bool(ceil_mode), bool(count_include_pad)), x)


@converter("GlobalAveragePool", since=1)
def convert_global_avg_pool(ctx, x):
    return ctx.add(ops.GlobalAvgPool(), x)
