"""Resize (and Upsample) in nearest mode by integer scales: routing, no arithmetic.

Nearest upsampling by an integer factor ``s`` along an axis repeats every element ``s`` times.
That is a reshape to ``(outer, 1, inner)``, a concatenation of ``s`` copies along the middle
axis and a reshape back, per upsampled axis: ops every method, target and backend already
runs (the copies are one population's output sent ``s`` times, no new neurons or weights).
Other modes (linear, cubic), fractional scales and coordinate modes that do not map output
index ``i`` to input index ``i // s`` are refused.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops

__all__ = ["convert_resize", "convert_upsample"]


def _source_index(i: np.ndarray, s: int, length: int, ctm: str, nearest: str) -> np.ndarray:
    """The input index ONNX Resize reads for output index ``i`` (nearest mode)."""
    out_len = length * s
    if ctm in ("half_pixel", "pytorch_half_pixel"):
        x = (i + 0.5) / s - 0.5
    elif ctm == "align_corners":
        x = i * (length - 1) / max(out_len - 1, 1)
    elif ctm == "tf_half_pixel_for_nn":
        x = (i + 0.5) / s
    else:  # asymmetric
        x = i / s
    rounded = {"floor": np.floor(x), "ceil": np.ceil(x),
               "round_prefer_ceil": np.floor(x + 0.5),
               "round_prefer_floor": np.ceil(x - 0.5)}[nearest]
    return np.clip(rounded, 0, length - 1).astype(np.int64)


def _upsample(ctx, x, factors: list[int]):
    """Repeat each element ``factors[a]`` times along per-sample axis ``a``."""
    for a, s in enumerate(factors):
        if s == 1:
            continue
        shape = x.shape
        outer, inner = math.prod(shape[:a + 1]), math.prod(shape[a + 1:])
        col = ctx.add(ops.Reshape((outer, 1, inner)), x, suffix=f"/axis{a}")
        rep = ctx.add(ops.Concat(axis=1), *([col] * s), suffix=f"/axis{a}/repeat")
        x = ctx.add(ops.Reshape((*shape[:a], shape[a] * s, *shape[a + 1:])), rep,
                    suffix=f"/axis{a}/up")
    return x


def _nearest(ctx, x, scales, mode: str, ctm: str, nearest_mode: str):
    if mode != "nearest":
        ctx.fail(f"mode={mode!r} unsupported (only nearest upsampling by integer scales, a "
                 "routing of spikes; linear/cubic interpolation is a weighted synapse snnc "
                 "does not build yet)")
    scales = [float(v) for v in scales]
    if len(scales) != len(x.shape) + 1 or scales[0] != 1.0:
        ctx.fail(f"scales {scales} must keep the batch axis (1) and give one scale per axis")
    factors = [round(v) for v in scales[1:]]
    if any(abs(v - f) > 1e-6 or f < 1 for v, f in zip(scales[1:], factors)):
        ctx.fail(f"scales {scales} unsupported (only integer upsampling factors)")
    for a, s in enumerate(factors):
        if s == 1:
            continue
        i = np.arange(x.shape[a] * s)
        if not np.array_equal(_source_index(i, s, x.shape[a], ctm, nearest_mode), i // s):
            ctx.fail(f"coordinate_transformation_mode={ctm!r} with nearest_mode="
                     f"{nearest_mode!r} does not repeat each element {s} times")
    return _upsample(ctx, x, factors)


@converter("Resize", since=11)
def convert_resize(ctx, x, roi=None, scales=None, sizes=None, *,
                   coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
                   exclude_outside=0, extrapolation_value=0.0, mode="nearest",
                   nearest_mode="round_prefer_floor"):
    if sizes is not None and np.size(sizes):
        sizes = ctx.constant(sizes, "sizes (input 3)")
        full = (1, *x.shape)
        if len(sizes) != len(full) or any(int(o) % i for o, i in zip(sizes, full)):
            ctx.fail(f"sizes {list(map(int, sizes))} are not integer multiples of the input "
                     f"shape {list(full)}")
        scales = [int(o) // i for o, i in zip(sizes, full)]
        scales[0] = 1
    elif scales is not None:
        scales = ctx.constant(scales, "scales (input 2)")
    else:
        ctx.fail("neither scales nor sizes given")
    return _nearest(ctx, x, scales, mode, coordinate_transformation_mode, nearest_mode)


@converter("Upsample", since=9)
def convert_upsample(ctx, x, scales, *, mode="nearest"):
    return _nearest(ctx, x, ctx.constant(scales, "scales (input 1)"), mode, "asymmetric",
                    "floor")
