"""Helpers shared by converters: window padding (auto_pad) and the 2-D-only checks."""

from __future__ import annotations

import math

from snnc.ir.types import Value

__all__ = ["window_padding", "require_2d"]


def require_2d(ctx, x: Value, kernel) -> None:
    if len(kernel) != 2 or len(x.shape) != 3:
        ctx.fail(f"{len(kernel)}-D windows on input of per-sample shape {list(x.shape)} are "
                 "unsupported; snnc supports 2-D (N, C, H, W)")


def window_padding(ctx, x: Value, kernel, strides, pads, dilations, auto_pad: str):
    """ONNX ``pads``/``auto_pad`` -> (top, left, bottom, right)."""
    if auto_pad in ("", "NOTSET"):
        p = list(pads) if pads else [0, 0, 0, 0]
        return (p[0], p[1], p[2], p[3])
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        ctx.fail(f"auto_pad={auto_pad!r} unsupported")
    begin, end = [], []
    for i in range(2):
        size = x.shape[1 + i]
        out = math.ceil(size / strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])
