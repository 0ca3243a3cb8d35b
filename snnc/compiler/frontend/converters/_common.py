"""Helpers shared by converters: window padding (auto_pad), the 2-D-only checks and the lowering
of 1-D windows (Conv1d, 1-D pools over (N, C, L)) to 2-D ones over (N, C, 1, L)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from snnc.ir.ops import Reshape
from snnc.ir.types import Value

__all__ = ["Windows1d", "as_2d", "back_to_1d", "padding_begin_end", "require_2d", "window_padding"]


@dataclass(frozen=True)
class Windows1d:
    """A 1-D window op's input and attributes restated for a 2-D op over (C, 1, L)."""

    x: Value  # the input reshaped to (C, 1, L)
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int] | None  # ONNX order (begin H, begin W, end H, end W)
    dilations: tuple[int, int]


def as_2d(ctx, x: Value, kernel, strides, pads, dilations) -> Windows1d | None:
    """For a 1-D window (kernel of one size) over a (C, L) input: the input as (C, 1, L) and the
    attributes with a height of 1 (a cheap, exact lowering every backend then handles, since a
    (1, k) window over a height of 1 computes the same sums); None for other inputs."""
    if len(kernel) != 1 or len(x.shape) != 2:
        return None
    x2 = ctx.add(Reshape((x.shape[0], 1, x.shape[1])), x, suffix="/as2d")
    return Windows1d(x2, (1, int(kernel[0])), (1, int((strides or (1,))[0])),
                     (0, int(pads[0]), 0, int(pads[1])) if pads else None,
                     (1, int((dilations or (1,))[0])))


def back_to_1d(ctx, y: Value) -> Value:
    """A (C, 1, L') result of a lowered 1-D window op as (C, L')."""
    return ctx.add(Reshape((y.shape[0], y.shape[2])), y)


def require_2d(ctx, x: Value, kernel) -> None:
    if len(kernel) != 2 or len(x.shape) != 3:
        ctx.fail(f"{len(kernel)}-D windows on input of per-sample shape {list(x.shape)} are "
                 "unsupported; snnc supports 2-D (N, C, H, W)")


def padding_begin_end(ctx, x: Value, kernel, strides, pads, dilations,
                      auto_pad: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """ONNX ``pads``/``auto_pad`` over the ``len(kernel)`` spatial axes -> (begins, ends)."""
    n = len(kernel)
    if auto_pad in ("", "NOTSET"):
        p = [int(v) for v in pads] if pads else [0] * (2 * n)
        return tuple(p[:n]), tuple(p[n:])
    if auto_pad == "VALID":
        return (0,) * n, (0,) * n
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        ctx.fail(f"auto_pad={auto_pad!r} unsupported")
    begin, end = [], []
    for i in range(n):
        size = x.shape[1 + i]
        out = math.ceil(size / strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return tuple(begin), tuple(end)


def window_padding(ctx, x: Value, kernel, strides, pads, dilations, auto_pad: str):
    """ONNX ``pads``/``auto_pad`` -> (top, left, bottom, right)."""
    begin, end = padding_begin_end(ctx, x, kernel, strides, pads, dilations, auto_pad)
    return (*begin, *end)
