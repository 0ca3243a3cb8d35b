"""Resize (and Upsample): nearest mode by integer scales as routing; linear mode as a synapse.

Nearest upsampling by an integer factor ``s`` along an axis repeats every element ``s`` times.
That is a reshape to ``(outer, 1, inner)``, a concatenation of ``s`` copies along the middle
axis and a reshape back, per upsampled axis: ops every method, target and backend already
runs (the copies are one population's output sent ``s`` times, no new neurons or weights).
Nearest mode with fractional scales or coordinate modes that do not map output index ``i`` to
input index ``i // s`` is refused.

Linear mode (bilinear on ``(C, H, W)``, linear on ``(C, L)``), by scales or sizes, with the
coordinate modes half_pixel, pytorch_half_pixel, align_corners and asymmetric, is a fixed linear
map of each channel: per resized axis an interpolation matrix ``M`` (out x in, at most two
non-zero weights per row, summing to 1) computed in float64 from the ONNX formulas (source
coordinate clamped to ``[0, in - 1]`` as onnxruntime does), their Kronecker product ``K`` over
the spatial axes, applied to every channel as one grouped 1x1 convolution over the flattened
map: ``Reshape (C*P, 1, 1) -> Conv2d(weight K per group, groups=C) -> Reshape (C, *out)``. A
convolution is the synapse every method, target and backend runs; between a population and
another weighted layer the ``relay`` pass puts a ReLU population after it (bilinear weights
are non-negative). Cubic mode, tf_crop_and_resize and antialiasing are refused.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops

__all__ = ["convert_resize", "convert_upsample", "linear_matrix"]

LINEAR_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
MAX_WEIGHTS = 1 << 24  # weights of one linear Resize (C x out pixels x in pixels)


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


NEAREST_MODES = ("floor", "ceil", "round_prefer_ceil", "round_prefer_floor")
NEAREST_COORDINATES = ("half_pixel", "pytorch_half_pixel", "align_corners",
                       "tf_half_pixel_for_nn", "asymmetric")


def _nearest(ctx, x, scales, mode: str, ctm: str, nearest_mode: str):
    if mode != "nearest":
        ctx.fail(f"mode={mode!r} unsupported (only nearest and linear)")
    if nearest_mode not in NEAREST_MODES:
        ctx.fail(f"nearest_mode={nearest_mode!r} is not an ONNX rounding mode "
                 f"({', '.join(NEAREST_MODES)})")
    if ctm not in NEAREST_COORDINATES:
        ctx.fail(f"coordinate_transformation_mode={ctm!r} unsupported in nearest mode (only "
                 f"{', '.join(NEAREST_COORDINATES)})")
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


def linear_matrix(n_in: int, n_out: int, scale: float, ctm: str) -> np.ndarray:
    """(n_out, n_in) float64: ONNX Resize in linear mode along one axis, ``scale`` as ONNX
    uses it (given, or n_out / n_in for sizes)."""
    i = np.arange(n_out, dtype=np.float64)
    if ctm == "half_pixel":
        x = (i + 0.5) / scale - 0.5
    elif ctm == "pytorch_half_pixel":
        x = (i + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)
    elif ctm == "align_corners":
        x = i * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    else:  # asymmetric
        x = i / scale
    x = np.clip(x, 0, n_in - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = x - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def _linear(ctx, x, out_shape: list[int], scales: list[float], ctm: str):
    """Linear interpolation of each channel: one grouped 1x1 convolution (module docstring)."""
    if ctm not in LINEAR_MODES:
        ctx.fail(f"coordinate_transformation_mode={ctm!r} unsupported in linear mode (only "
                 f"{', '.join(LINEAR_MODES)})")
    shape = tuple(x.shape)
    first = 0 if len(shape) == 1 else 1  # axis 0 is the channel axis of (C, ...) inputs
    if first and out_shape[0] != shape[0]:
        ctx.fail(f"resizing the channel axis ({shape[0]} -> {out_shape[0]}) unsupported (linear "
                 "mode resizes the axes after the channels of (N, C, ...) inputs)")
    chans = shape[0] if first else 1
    k = np.ones((1, 1))
    for a in range(first, len(shape)):
        k = np.kron(k, linear_matrix(shape[a], out_shape[a], scales[a], ctm))
    n_out, n_in = k.shape
    if chans * n_out * n_in > MAX_WEIGHTS:
        ctx.fail(f"linear resize {list(shape)} -> {list(out_shape)} needs {chans * n_out * n_in} "
                 f"weights (limit {MAX_WEIGHTS})")
    w = np.tile(k, (chans, 1)).reshape(chans * n_out, n_in, 1, 1).astype(np.float32)
    flat = ctx.add(ops.Reshape((chans * n_in, 1, 1)), x, suffix="/flat")
    y = ctx.add(ops.Conv2d(w, np.zeros(chans * n_out, np.float32), groups=chans), flat,
                suffix="/interpolate")
    return ctx.add(ops.Reshape(tuple(out_shape)), y, suffix="/resized")


def _target(ctx, x, scales, sizes,
            what: str = "scales (input 2)") -> tuple[list[int], list[float]]:
    """(per-sample output shape, per-sample scales as ONNX's coordinate formulas use them)."""
    full = (1, *x.shape)
    if sizes is not None and np.size(sizes):
        sizes = [int(v) for v in ctx.constant(sizes, "sizes (input 3)")]
        if len(sizes) != len(full):
            ctx.fail(f"sizes {sizes} must give one size per axis of {list(full)}")
        return sizes[1:], [o / i for o, i in zip(sizes[1:], x.shape)]
    if scales is None or not np.size(scales):
        ctx.fail("neither scales nor sizes given")
    scales = [float(v) for v in ctx.constant(scales, what)]
    if len(scales) != len(full) or scales[0] != 1.0:
        ctx.fail(f"scales {scales} must keep the batch axis (1) and give one scale per axis")
    return [math.floor(i * s) for i, s in zip(x.shape, scales[1:])], scales[1:]


@converter("Resize", since=11)
def convert_resize(ctx, x, roi=None, scales=None, sizes=None, *,
                   coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
                   exclude_outside=0, extrapolation_value=0.0, mode="nearest",
                   nearest_mode="round_prefer_floor", antialias=0):
    if antialias:
        ctx.fail("antialias=1 unsupported")
    if mode == "linear":
        out_shape, axis_scales = _target(ctx, x, scales, sizes)
        return _linear(ctx, x, out_shape, axis_scales, coordinate_transformation_mode)
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
    if mode in ("linear", "bilinear"):
        out_shape, axis_scales = _target(ctx, x, scales, None, "scales (input 1)")
        return _linear(ctx, x, out_shape, axis_scales, "asymmetric")
    return _nearest(ctx, x, ctx.constant(scales, "scales (input 1)"), mode, "asymmetric",
                    "floor")
