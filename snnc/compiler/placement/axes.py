"""Per-axis incidence (output coordinate x input coordinate) of synapses, composable.

Connectivity is structural and separable per layout axis (channel x row x column): every count
the placer needs is computed per axis and multiplied, never per synapse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Axis", "Layout", "all_to_all", "broadcast_axes", "compose", "contains", "eye", "full",
           "layout", "mat", "rowsum", "tmul", "window"]

Layout = tuple[int, int, int]  # (C, H, W); 1-D populations are (F, 1, 1)


@dataclass(frozen=True)
class Axis:
    """Boolean incidence along one layout axis. ``kind``: 'eye' (identity), 'bcast' (every
    output row equals the footprint ``m`` of shape (n_in,)), 'matrix' (``m`` is (n_out, n_in)).
    ``period``: the weights are shift-invariant, input j + period reaching output o + 1 through
    the same weight as j reaches o (a window's stride; 1 for shifts); 0 when not known to be
    (all-to-all, layout maps): population axons then share no weight set along this axis.
    ``uniform``: every synapse along the axis has the same weight (pooling windows, shifts)."""

    kind: str
    n_out: int
    n_in: int
    m: np.ndarray | None = None
    period: int = 0
    uniform: bool = False

    def matrix(self) -> np.ndarray:
        if self.kind == "eye":
            return np.eye(self.n_out, dtype=bool)
        if self.kind == "bcast":
            return np.broadcast_to(self.m, (self.n_out, self.n_in))
        return self.m


def eye(n: int) -> Axis:
    return Axis("eye", n, n, period=1, uniform=True)


def full(n_out: int, n_in: int) -> Axis:
    return Axis("bcast", n_out, n_in, np.ones(n_in, dtype=bool))


def mat(m: np.ndarray, period: int = 0, uniform: bool = False) -> Axis:
    m = np.asarray(m, dtype=bool)
    if m.shape[0] == m.shape[1] and m.sum() == m.shape[0] and np.all(np.diag(m)):
        return eye(m.shape[0])
    if m.shape[0] > 0 and np.all(m == m[:1]):
        return Axis("bcast", m.shape[0], m.shape[1], m[0].copy(), period, uniform)
    return Axis("matrix", m.shape[0], m.shape[1], m, period, uniform)


def compose(a: Axis, b: Axis) -> Axis:
    """a after b: out of a <- in of b. Shift-invariant only through a shift (period 1) and a
    window: two windows in a row weigh edge inputs by fewer paths than inner ones."""
    if a.kind == "eye":
        return b
    if b.kind == "eye":
        return a
    period = a.period * b.period if 1 in (a.period, b.period) else 0
    uni = a.uniform and b.uniform
    if a.kind == "bcast":
        fp = b.m if b.kind == "bcast" and a.m.any() else (
            np.zeros(b.n_in, bool) if b.kind == "bcast" else b.m[a.m].any(0))
        return Axis("bcast", a.n_out, b.n_in, fp, period, uni)
    if b.kind == "bcast":
        rows = a.m.any(1)
        if rows.all():
            return Axis("bcast", a.n_out, b.n_in, b.m, period, uni)
        return mat(rows[:, None] & b.m[None, :], period, uni)
    return mat((a.m.astype(np.float32) @ b.m.astype(np.float32)) > 0, period, uni)


def window(n_out: int, n_in: int, k: int, s: int, pad: int, dil: int,
           uniform: bool = False) -> Axis:
    """A ``k``-tap window with stride ``s``, padding ``pad`` and dilation ``dil``."""
    m = np.zeros((n_out, n_in), dtype=bool)
    y = np.arange(n_out)[:, None] * s - pad + np.arange(k)[None, :] * dil
    rows = np.repeat(np.arange(n_out), k)
    cols = y.ravel()
    ok = (cols >= 0) & (cols < n_in)
    m[rows[ok], cols[ok]] = True
    return mat(m, s, uniform)


def layout(shape: Sequence[int]) -> Layout:
    """A value's shape as (C, H, W): leading axes folded into C, missing ones 1."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 0:
        return (1, 1, 1)
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return (math.prod(shape[:-2]), shape[-2], shape[-1])


def all_to_all(in_lay, out_lay) -> tuple[Axis, ...]:
    return tuple(full(o, i) for i, o in zip(in_lay, out_lay))


def broadcast_axes(in_lay, out_lay) -> tuple[Axis, ...]:
    return tuple(eye(o) if i == o else full(o, i) for i, o in zip(in_lay, out_lay))


def contains(a: Axis, b: Axis) -> bool:
    """Every incidence of b is one of a."""
    if a.kind == "bcast" and a.m.all():
        return True
    return bool(np.all(a.matrix() | ~b.matrix()))


def rowsum(ax: Axis) -> np.ndarray:
    """Synapses per output coordinate along one axis (A @ 1)."""
    if ax.kind == "eye":
        return np.ones(ax.n_out)
    if ax.kind == "bcast":
        return np.full(ax.n_out, float(ax.m.sum()))
    return ax.m.sum(1).astype(float)


def tmul(ax: Axis, v: np.ndarray) -> np.ndarray:
    """A^T v along one axis: per input coordinate, the sum of v over the outputs it reaches."""
    if ax.kind == "eye":
        return v
    if ax.kind == "bcast":
        return ax.m * float(v.sum())
    return ax.m.T.astype(float) @ v
