"""Conv."""

from __future__ import annotations

import numpy as np

from snnc.compiler.frontend.converters._common import require_2d, window_padding
from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


@converter("Conv", since=1)
def convert_conv(ctx, x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1,
                 kernel_shape=None, pads=None, strides=None):
    w = ctx.constant(w, "the weight (input 1)")
    require_2d(ctx, x, w.shape[2:])
    strides = tuple(strides or (1, 1))
    dilations = tuple(dilations or (1, 1))
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        ctx.fail(f"kernel_shape {list(kernel_shape)} disagrees with weight shape {list(w.shape)}")
    padding = window_padding(ctx, x, w.shape[2:], strides, pads, dilations, auto_pad)
    bias = np.zeros(w.shape[0], np.float32) if b is None else ctx.constant(b, "the bias (input 2)")
    op = ops.Conv2d(w.astype(np.float32), bias.astype(np.float32).reshape(-1), strides, padding,
                    dilations, int(group))
    return ctx.add(op, x)
