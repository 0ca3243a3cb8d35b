"""Conv (2-D; 1-D lowered to 2-D over (C, 1, L); 3-D to 2-D over (C*D, H, W), windows3d.py)
and ConvTranspose (2-D, lowered to zero insertion and a convolution)."""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.converters._common import (
    as_2d,
    back_to_1d,
    require_2d,
    window_padding,
)
from snnc.compiler.frontend.converters.windows3d import conv3d
from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


@converter("Conv", since=1)
def convert_conv(ctx, x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1,
                 kernel_shape=None, pads=None, strides=None):
    w = ctx.constant(w, "the weight (input 1)")
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        ctx.fail(f"kernel_shape {list(kernel_shape)} disagrees with weight shape {list(w.shape)}")
    if w.ndim == 5:  # Conv3d: one block-structured Conv2d over (C*D, H, W)
        bias = np.zeros(w.shape[0]) if b is None else ctx.constant(b, "the bias (input 2)")
        return conv3d(ctx, x, w, bias, strides, pads, dilations, group, auto_pad)
    lowered = as_2d(ctx, x, w.shape[2:], strides, pads, dilations)
    if lowered is not None:  # Conv1d: a (1, k) kernel over (C, 1, L)
        x, w = lowered.x, w[:, :, None, :]
        strides, pads, dilations = lowered.strides, lowered.pads, lowered.dilations
    require_2d(ctx, x, w.shape[2:])
    strides = tuple(strides or (1, 1))
    dilations = tuple(dilations or (1, 1))
    padding = window_padding(ctx, x, w.shape[2:], strides, pads, dilations, auto_pad)
    bias = np.zeros(w.shape[0], np.float32) if b is None else ctx.constant(b, "the bias (input 2)")
    op = ops.Conv2d(np.array(w, np.float32), bias.astype(np.float32).reshape(-1),
                    strides, padding, dilations, int(group))
    if lowered is None:
        return ctx.add(op, x)
    return back_to_1d(ctx, ctx.add(op, x, suffix="/2d"))


def _zero_insert(ctx, x, axis: int, s: int, k: int):
    """s - 1 zeros between neighbours along per-sample ``axis``: (.., L, ..) -> (.., (L-1)s+1, ..)
    (a reshape, a zero pad of a unit axis, a reshape and a crop: routing only)."""
    shape = x.shape
    outer, n, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    v = ctx.add(ops.Reshape((outer, n, 1, inner)), x, suffix=f"/axis{k}")
    v = ctx.add(ops.Pad((0, 0, 0, 0, 0, 0, s - 1, 0)), v, suffix=f"/axis{k}/zeros")
    v = ctx.add(ops.Reshape((outer, n * s, inner)), v, suffix=f"/axis{k}/spread")
    v = ctx.add(ops.Pad((0, 0, 0, 0, 1 - s, 0)), v, suffix=f"/axis{k}/crop")
    return ctx.add(ops.Reshape((*shape[:axis], (n - 1) * s + 1, *shape[axis + 1:])), v,
                   suffix=f"/axis{k}/inserted")


@converter("ConvTranspose", since=1)
def convert_conv_transpose(ctx, x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1,
                           kernel_shape=None, output_padding=None, output_shape=None, pads=None,
                           strides=None):
    """A transposed convolution as zeros inserted between the input's elements (stride - 1 per
    gap) and an ordinary stride-1 convolution with the kernel flipped and its in/out channels
    swapped, padded by dilation (k - 1) - pad (+ output_padding at the end)."""
    w = ctx.constant(w, "the weight (input 1)")
    if len(x.shape) != 3 or w.ndim != 4:
        ctx.fail(f"only 2-D transposed convolutions (N, C, H, W); input {list(x.shape)}")
    if auto_pad not in ("", "NOTSET") or output_shape is not None:
        ctx.fail("auto_pad and output_shape unsupported (give pads and output_padding)")
    g, k = int(group), w.shape[2:]
    s, d = tuple(strides or (1, 1)), tuple(dilations or (1, 1))
    p, op_ = tuple(pads or (0, 0, 0, 0)), tuple(output_padding or (0, 0))
    conv_pad = tuple(d[i % 2] * (k[i % 2] - 1) - p[i] for i in range(4))
    conv_pad = (conv_pad[0], conv_pad[1], conv_pad[2] + op_[0], conv_pad[3] + op_[1])
    if min(conv_pad) < 0:
        ctx.fail(f"pads {list(p)} larger than dilation x (kernel - 1) unsupported")
    cin_g, cout_g = w.shape[0] // g, w.shape[1]
    flipped = w[:, :, ::-1, ::-1].reshape(g, cin_g, cout_g, *k).transpose(0, 2, 1, 3, 4)
    weight = np.array(flipped.reshape(g * cout_g, cin_g, *k), np.float32)
    bias = np.zeros(g * cout_g, np.float32) if b is None else ctx.constant(b, "the bias (input 2)")
    for axis, stride in ((1, s[0]), (2, s[1])):
        if stride > 1:
            x = _zero_insert(ctx, x, axis, stride, axis)
    op = ops.Conv2d(weight, np.array(bias, np.float32).reshape(-1), (1, 1), conv_pad, d, g)
    return ctx.add(op, x)
