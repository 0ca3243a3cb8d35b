"""Conv3d and 3-D pools over (N, C, D, H, W), lowered to 2-D ops over (N, C*D, H, W).

Depth becomes part of the channel axis (a reshape, routing only), so every method, target and
backend runs the result:

* Conv (5-D weight): one ``Conv2d`` whose weight is block-structured over (out channel, out
  depth) x (in channel, in depth): ``W2[o*OD + od, c*D + d] = W[o, c, k]`` where input depth
  ``d = od*sd - pd + k*dd`` falls inside the input, zero elsewhere. Depth strides, pads and
  dilations are thereby exact; groups carry over (a group's channels stay contiguous). The
  weight grows by ``OD * D / kd`` (the zeros outside each depth window): refused past
  ``MAX_WEIGHTS`` elements.
* MaxPool: a 2-D max pool over (H, W) on (C*D, H, W), then a ``(kd, 1)`` max pool over
  (C, D, OH*OW) (max is separable, so this is exact; ceil_mode per axis as in 3-D).
* AveragePool: a 2-D average pool over (H, W), then a ``(kd, 1)`` one over depth (a box
  window's count is the product of its per-axis counts, so count_include_pad carries over
  exactly, ceil_mode too); with padding and count_include_pad (no ceil_mode), one grouped
  ``Conv2d`` instead (weights ``1 / (kd kh kw)`` inside the depth window, zero padding).
* Either pool with a (1, kh, kw) window (no depth stride or padding) is one 2-D pool.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.converters._common import padding_begin_end
from snnc.ir import ops

__all__ = ["MAX_WEIGHTS", "avg_pool3d", "conv3d", "depth_taps", "max_pool3d", "padding3d"]

MAX_WEIGHTS = 1 << 22  # elements of a lowered Conv3d/AvgPool3d weight (16 MiB of float32)


def padding3d(ctx, x, kernel, strides, pads, dilations, auto_pad: str):
    """ONNX ``pads``/``auto_pad`` over (D, H, W) -> (begins, ends), each a 3-tuple."""
    return padding_begin_end(ctx, x, kernel, strides, pads, dilations, auto_pad)


def depth_taps(length: int, k: int, s: int, pb: int, pe: int,
               d: int = 1) -> tuple[int, list[tuple[int, int, int]]]:
    """Output length along one axis and its taps ``(out index, in index, kernel index)`` that
    fall inside the input (taps on padding are left out)."""
    n = (length + pb + pe - (k - 1) * d - 1) // s + 1
    taps = [(o, o * s - pb + j * d, j) for o in range(n) for j in range(k)
            if 0 <= o * s - pb + j * d < length]
    return n, taps


def _check_rank(ctx, x, what: str) -> None:
    if len(x.shape) != 4:
        ctx.fail(f"3-D {what} needs an (N, C, D, H, W) input, got per-sample shape "
                 f"{list(x.shape)}")


def _check_size(ctx, shape, what: str, inflation: float) -> None:
    n = math.prod(shape)
    if n > MAX_WEIGHTS:
        ctx.fail(f"{what} lowered to 2-D needs a weight of {n} elements (shape {list(shape)}, "
                 f"{inflation:.1f}x the 3-D one: zeros outside each depth window); the limit is "
                 f"{MAX_WEIGHTS}: use fewer depth positions or channels")


def conv3d(ctx, x, w: np.ndarray, bias: np.ndarray, strides, pads, dilations, group: int,
           auto_pad: str):
    """Conv with a (O, C/g, kd, kh, kw) weight over (C, D, H, W) as Reshape -> Conv2d ->
    Reshape (see the module docstring)."""
    _check_rank(ctx, x, "convolution")
    c, depth, h, wd = x.shape
    cout, cin_g, kd, kh, kw = w.shape
    s = tuple(int(v) for v in (strides or (1, 1, 1)))
    d = tuple(int(v) for v in (dilations or (1, 1, 1)))
    begin, end = padding3d(ctx, x, w.shape[2:], s, pads, d, auto_pad)
    od, taps = depth_taps(depth, kd, s[0], begin[0], end[0], d[0])
    if od < 1:
        ctx.fail(f"depth {depth} is shorter than the kernel's depth span")
    shape = (cout * od, cin_g * depth, kh, kw)
    _check_size(ctx, shape, "Conv3d", od * depth / kd)
    weight = np.zeros((cout, od, cin_g, depth, kh, kw), np.float64)
    for o, i, j in taps:
        weight[:, o, :, i] += w[:, :, j]
    op = ops.Conv2d(weight.reshape(shape).astype(np.float32),
                    np.repeat(np.asarray(bias, np.float32).reshape(-1), od),
                    s[1:], (begin[1], begin[2], end[1], end[2]), d[1:], int(group))
    x2 = ctx.add(ops.Reshape((c * depth, h, wd)), x, suffix="/as2d")
    y = ctx.add(op, x2, suffix="/2d")
    return ctx.add(ops.Reshape((cout, od, *y.shape[1:])), y)


def max_pool3d(ctx, x, kernel, strides, pads, dilations, auto_pad: str, ceil_mode: bool):
    """3-D max pool as a 2-D max pool over (H, W), then one over depth (exact: max is
    separable)."""
    _check_rank(ctx, x, "max pooling")
    c, depth, h, wd = x.shape
    k = tuple(int(v) for v in kernel)
    s = tuple(int(v) for v in (strides or (1, 1, 1)))
    d = tuple(int(v) for v in (dilations or (1, 1, 1)))
    begin, end = padding3d(ctx, x, k, s, pads, d, auto_pad)
    x2 = ctx.add(ops.Reshape((c * depth, h, wd)), x, suffix="/as2d")
    y = ctx.add(ops.MaxPool2d(k[1:], s[1:], (begin[1], begin[2], end[1], end[2]), d[1:],
                              bool(ceil_mode)), x2, suffix="/hw")
    oh, ow = y.shape[1:]
    if (k[0], s[0], begin[0], end[0]) == (1, 1, 0, 0):  # a (1, kh, kw) window: one 2-D pool
        return ctx.add(ops.Reshape((c, depth, oh, ow)), y)
    y = ctx.add(ops.Reshape((c, depth, oh * ow)), y, suffix="/depth_first")
    y = ctx.add(ops.MaxPool2d((k[0], 1), (s[0], 1), (begin[0], 0, end[0], 0), (d[0], 1),
                              bool(ceil_mode)), y, suffix="/depth")
    return ctx.add(ops.Reshape((c, y.shape[1], oh, ow)), y)


def avg_pool3d(ctx, x, kernel, strides, pads, auto_pad: str, count_include_pad: bool,
               ceil_mode: bool = False):
    """3-D average pool as 2-D pools, or one grouped convolution (see the module docstring)."""
    _check_rank(ctx, x, "average pooling")
    c, depth, h, wd = x.shape
    k = tuple(int(v) for v in kernel)
    s = tuple(int(v) for v in (strides or (1, 1, 1)))
    begin, end = padding3d(ctx, x, k, s, pads, (1, 1, 1), auto_pad)
    hw_pad = (begin[1], begin[2], end[1], end[2])
    x2 = ctx.add(ops.Reshape((c * depth, h, wd)), x, suffix="/as2d")
    if count_include_pad and any(begin + end) and not ceil_mode:  # a grouped conv
        return _avg_pool3d_as_conv(ctx, x2, c, depth, k, s, begin, end)
    y = ctx.add(ops.AvgPool2d(k[1:], s[1:], hw_pad, ceil_mode, bool(count_include_pad)), x2,
                suffix="/hw")
    oh, ow = y.shape[1:]
    if (k[0], s[0], begin[0], end[0]) == (1, 1, 0, 0):  # a (1, kh, kw) window: one 2-D pool
        return ctx.add(ops.Reshape((c, depth, oh, ow)), y)
    y = ctx.add(ops.Reshape((c, depth, oh * ow)), y, suffix="/depth_first")
    y = ctx.add(ops.AvgPool2d((k[0], 1), (s[0], 1), (begin[0], 0, end[0], 0), ceil_mode,
                              bool(count_include_pad)), y, suffix="/depth")
    return ctx.add(ops.Reshape((c, y.shape[1], oh, ow)), y)


def _avg_pool3d_as_conv(ctx, x2, c: int, depth: int, k, s, begin, end):
    """A padded average pool that counts the padding: one convolution of groups ``c`` over
    (C*D, H, W), weight ``1 / (kd kh kw)`` inside each depth window (zero padding in (H, W),
    which loihi targets quantize, where they refuse a padded average pool)."""
    od, taps = depth_taps(depth, k[0], s[0], begin[0], end[0])
    shape = (c * od, depth, k[1], k[2])
    _check_size(ctx, shape, "AveragePool (3-D)", od * depth / k[0])
    weight = np.zeros((c, od, depth), np.float64)
    for o, i, _ in taps:
        weight[:, o, i] = 1.0 / math.prod(k)
    weight = np.broadcast_to(weight.reshape(c * od, depth, 1, 1), shape)
    conv = ops.Conv2d(weight.astype(np.float32), np.zeros(c * od, np.float32), s[1:],
                      (begin[1], begin[2], end[1], end[2]), (1, 1), c)
    y = ctx.add(conv, x2, suffix="/2d")
    return ctx.add(ops.Reshape((c, od, *y.shape[1:])), y)
