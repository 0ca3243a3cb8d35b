"""A constructed FS table for any scalar activation: the function's piecewise-linear interpolant
on its calibrated input range, each segment coded with exact binary steps (no fitting by
gradient descent, so no minutes-long fit and no cache)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snnc.sim.fs_coding import FSTable, encode

__all__ = ["kinks", "pwl_table"]

_GRID = 4001  # points of the [lo, hi] grid the knots and the readout are chosen on


def pwl_table(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, K: int,
              name: str = "pwl") -> FSTable:
    """A K-step FS table for ``fn`` on ``[lo, hi]``.

    * step 1: ``T`` far below ``lo``, ``h = 0``: the constant ``f(lo)``;
    * then, top segment first, one block of ``m_k`` binary steps per segment ``[b_{k-1}, b_k]``
      of width ``w_k``: thresholds ``b_{k-1} + a_k 2^-j``, ``h = a_k 2^-j`` with ``a_k = w_k /
      (1 - 2^-m_k)`` (all ones sum to ``w_k``), outputs ``s_k a_k 2^-j`` (``s_k`` the
      segment's slope). An input in segment k codes ``x - b_{k-1}`` there, leaving a residual
      below the block's last step, and every lower block codes all ones: the output is
      ``f(lo) + sum_k s_k clip(x - b_{k-1}, 0, w_k)``, the interpolant, to within one step of
      the input's segment.
    * the readout ``d`` is then refitted by least squares on the grid (the codes are fixed, so
      the best readout is linear): it removes the truncation bias of binary codes.

    Knots are spaced by ``sqrt|f''|`` (the spacing that minimises linear interpolation's error)
    with a floor, so straight parts get few segments, and a kink (a jump of the slope, as
    SELU's at 0) gets a knot exactly on it. Steps go to the
    segment with the largest output step ``|s_k| w_k 2^-m_k``, one at a time; of 2..K/2
    segments the one with the lowest RMS error on the grid is kept. Inputs above ``hi``
    saturate at about ``f(hi)`` and below ``lo`` at ``f(lo)`` (below ``lo - (hi - lo)``: 0),
    as FS-ReLU's alpha clips.
    """
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi) or K < 3:
        raise ValueError(f"pwl_table needs finite lo < hi and K >= 3, got [{lo}, {hi}], K={K}")
    x = np.linspace(lo, hi, _GRID)
    y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        raise ValueError("fn must map the grid to finite values of the same shape")
    # the readout also sees a margin on both sides where the target saturates, so inputs just
    # outside the calibrated range get f(lo) and f(hi) (the all-ones code occurs only there)
    margin = 0.05 * (hi - lo) * np.linspace(1.0 / 64, 1.0, 64)
    fit_x = np.concatenate([lo - margin[::-1], x, hi + margin])
    fit_y = np.concatenate([np.full(64, y[0]), y, np.full(64, y[-1])])
    mass = _curvature_mass(x, y)
    knots_at = kinks(x, y)
    best = None
    for segments in range(2, K // 2 + 1):
        table = _construct(x, y, mass, knots_at, fit_x, fit_y, K, segments)
        err = float(np.sqrt(np.mean((encode(table, fit_x)[0] - fit_y) ** 2)))
        if best is None or err < best[0]:
            best = (err, table)
    table = best[1]
    return FSTable(h=table.h, d=table.d, T=table.T, name=f"{name}(pwl,[{lo:.4g},{hi:.4g}],K={K})")


def _curvature_mass(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cumulative knot density ``sqrt|f''|`` (with a floor) over the grid, from 0 to 1."""
    curvature = np.sqrt(np.abs(np.gradient(np.gradient(y, x), x)))
    density = curvature + 0.05 * curvature.mean() + 1e-12
    mass = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return mass / mass[-1]


def kinks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Grid points where the slope jumps (SELU at 0, clip at its bounds): the change of slope
    there is over 20 times that at the grid points two to three cells away on both sides,
    which smooth curvature cannot give. ``sqrt|f''|`` gives such a point almost no knot mass
    (the root of a spike integrates to nearly nothing), so the knots are put there directly."""
    jump = np.abs(np.diff(np.diff(y) / np.diff(x)))  # at x[1:-1]
    if len(jump) < 7:
        return np.empty(0)
    near = np.maximum.reduce([np.roll(jump, r) for r in (-3, -2, 2, 3)])
    idx = [i for i in range(3, len(jump) - 3)
           if jump[i] > 20 * near[i] and jump[i] > 1e-9 and jump[i] >= jump[i - 1:i + 2].max()]
    return x[np.asarray(idx, dtype=int) + 1]


def _construct(x: np.ndarray, y: np.ndarray, mass: np.ndarray, knots_at: np.ndarray,
               fit_x: np.ndarray, fit_y: np.ndarray, K: int, segments: int) -> FSTable:
    b = np.interp(np.linspace(0.0, 1.0, segments + 1), mass, x)
    b[0], b[-1] = x[0], x[-1]
    for k in knots_at[:segments - 1]:  # each kink takes the interior knot nearest to it
        free = [i for i in range(1, segments) if b[i] not in knots_at]
        if free:
            b[min(free, key=lambda i: abs(b[i] - k))] = k
    b = np.sort(b)
    fb = np.interp(b, x, y)
    width = np.diff(b)
    slope = np.diff(fb) / width
    bits = np.ones(segments, dtype=int)
    for _ in range(K - 1 - segments):  # each further step halves its segment's output step
        bits[int(np.argmax(np.abs(slope) * width * np.exp2(-bits)))] += 1
    h, d, T = [0.0], [fb[0]], [x[0] - (x[-1] - x[0])]
    for k in reversed(range(segments)):
        step = width[k] / (1 - 2.0 ** -bits[k]) * np.exp2(-np.arange(1, bits[k] + 1))
        h += list(step)
        d += list(slope[k] * step)
        T += list(b[k] + step)
    h, T = np.array(h), np.array(T)
    spikes = encode(FSTable(h=h, d=np.array(d), T=T), fit_x)[1].reshape(K, -1).T
    readout, *_ = np.linalg.lstsq(spikes.astype(np.float64), fit_y, rcond=None)
    h[-1] = 0.0  # never used, as in the shipped tables
    return FSTable(h=h, d=readout, T=T)
