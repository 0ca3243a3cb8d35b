"""Packing: multi-resource first-fit decreasing of all slices of the network into cores."""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from snnc.compiler.placement.usage import RESOURCES

__all__ = ["PACK_WINDOWS", "pack"]

# a slice may share a core with slices at most this many layers away; each window is tried
# (ties keep the first: nearer layers, shorter spike routes; wide windows save cores but can
# lengthen routes, which the layout step checks)
PACK_WINDOWS = (8, 16, 40)
_PACK_BIG = 0.3  # packing order: slices above this core share, then out-axon/neuron-bound ones
_FULL = 0.02  # a core with less room than this in some resource is no longer offered
_EPS = 1e-9


def pack(items, limits, layer_of: np.ndarray, window: int) -> np.ndarray:
    """Multi-resource first-fit decreasing over the whole network. Slices are taken largest
    first (their fraction of a core in their binding resource): those over ``_PACK_BIG`` of a
    core, then the slices bound by output axons or neurons (so that they, not other small
    slices, fill the room memory-bound slices leave), then the rest; identical slices of one
    layer are placed as a group. A slice joins, among the open cores at most ``window`` layers
    away (in topological order) with room in every resource, the one whose room best matches
    it (largest dot product of room and usage: the output-axon pieces go where memory-bound
    slices left output axons free), then the nearest in layer order; else it opens a core.
    The window trades cores for spike routes (before the output-axon pieces, on ShuffleNet /
    Inception v2, loihi2: a window of 2 layers gave 1.22 / 1.17 x the lower bound at 0.57 /
    0.68 x the sequential fill's hop energy, 8 gave 1.18 / 1.15 at 0.76 / 0.72, no window
    1.17 / 1.14 at 1.35 / 1.11). Returns each item's core, numbered in topological order."""
    n = len(items)
    frac, order, starts, ends = _groups(items, limits, layer_of)
    cores = _Cores(n)
    for a, b in zip(starts, ends):
        idx = order[a:b]
        u = frac[idx[0]]
        lay = int(layer_of[idx[0]])
        pos = cores.join(idx, u, lay, window)
        if pos < len(idx):
            cores.open(idx[pos:], u, lay, len(idx))
    return _renumber(cores.out, cores.n_bins, n)


def _groups(items, limits, layer_of: np.ndarray):
    """(per item its fraction of a core per resource, the packing order, and the groups of
    identical (size, layer, usage) items in that order as [start, end) runs)."""
    n = len(items)
    caps = np.array([limits[r] or 1 for r in RESOURCES], float)
    get = itemgetter(*RESOURCES)
    use = np.array([get(it[3]) for it in items], float).reshape(-1, 4)
    use[:, [limits[r] is None for r in RESOURCES]] = 0
    frac = use / caps
    size = np.round(frac.max(1), 6)
    out_bound = np.isin(frac.argmax(1), [RESOURCES.index(r) for r in ("out_axons", "neurons")])
    rank = np.where(size > _PACK_BIG, 2, np.where(out_bound, 1, 0))
    order = np.lexsort((np.arange(n), layer_of, -size, -rank))
    key = np.concatenate([size[order, None], layer_of[order, None].astype(float),
                          use[order]], 1)
    starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
    ends = np.r_[starts[1:], n]
    return frac, order, starts, ends


class _Cores:
    """Cores being filled: per core its free share of each resource and its first layer;
    ``open_ids`` the cores offered, sorted by their first layer, with their layers and free
    shares (one row per resource) alongside (``open_layer``, ``open_free``: a window of them
    is a slice, not a gather over tens of thousands of cores); cores that fill up are marked
    dead (``alive``) and dropped in bulk (``_compact``); ``out`` per item its core."""

    def __init__(self, n: int):
        self.free = np.empty((n, 4))
        self.layer = np.empty(n, np.int64)
        self.open_ids = np.empty(0, np.int64)
        self.open_layer = np.empty(0, np.int64)
        self.open_free = np.empty((4, 0))
        self.alive = np.empty(0, bool)
        self.out = np.empty(n, np.int64)
        self.n_bins = 0

    def join(self, idx: np.ndarray, u: np.ndarray, lay: int, window: int) -> int:
        """Put the group's items on open cores within ``window`` layers that have room, best
        matching room first; returns how many were placed."""
        free, layer, m = self.free, self.layer, len(idx)
        lo, hi = np.searchsorted(self.open_layer, [lay - window, lay + window + 1])
        need = np.flatnonzero(u > 0)
        ok = self.alive[lo:hi].copy()  # cheap pre-filter
        for r in need:
            ok &= self.open_free[r, lo:hi] + _EPS >= u[r]
        at = lo + np.flatnonzero(ok)
        cand = self.open_ids[at]
        if not len(cand):
            return 0
        fit = np.round(free[cand] @ u, 4)  # most room where the slice needs it
        if len(cand) > m:  # at most m cores take the group: sort only the best m by fit (ties)
            top = -fit <= np.partition(-fit, m - 1)[m - 1]
            cand, at, fit = cand[top], at[top], fit[top]
        # how many of the group fit on each: at least 1 (free + eps >= u > 0 above)
        cnt = np.full(len(at), np.inf)
        for r in need:
            cnt = np.minimum(cnt, np.floor((self.open_free[r, at] + _EPS) / u[r]))
        pref = np.lexsort((cand, np.abs(layer[cand] - lay), -fit))
        cand, c, at = cand[pref], np.minimum(cnt[pref], m).astype(np.int64), at[pref]
        take = np.cumsum(c)
        k = min(int(np.searchsorted(take, m)) + 1, len(take))
        cand, c, at = cand[:k], c[:k], at[:k]
        c[-1] -= max(int(take[k - 1]) - m, 0)
        self.out[idx[:int(c.sum())]] = np.repeat(cand, c)
        free[cand] -= c[:, None] * u
        self.open_free[:, at] = free[cand].T
        full = free[cand].min(1) < _FULL  # full in some resource: stop offering
        if full.any():
            self.alive[at[full]] = False
            if 2 * int(self.alive.sum()) < len(self.alive):
                self._compact()
        return int(c.sum())

    def _compact(self) -> None:
        """Drop the dead cores from the open lists (their order is kept)."""
        keep = self.alive
        self.open_ids, self.open_layer = self.open_ids[keep], self.open_layer[keep]
        self.open_free, self.alive = self.open_free[:, keep], self.alive[keep]

    def open(self, idx: np.ndarray, u: np.ndarray, lay: int, group: int) -> None:
        """New cores for the rest ``idx`` of a group of ``group`` items, each holding as many
        of it as fit."""
        per = int(np.min(np.floor((1 + _EPS) / u[u > 0]))) if np.any(u > 0) else group
        per = max(per, 1)
        rest = len(idx)
        nb = -(-rest // per)
        new = np.arange(self.n_bins, self.n_bins + nb)
        cnt_new = np.full(nb, per)
        cnt_new[-1] = rest - per * (nb - 1)
        self.out[idx] = np.repeat(new, cnt_new)
        self.free[new] = 1.0 - cnt_new[:, None] * u
        self.layer[new] = lay
        new = new[self.free[new].min(1) >= _FULL]
        at = int(np.searchsorted(self.open_layer, lay, side="right"))
        ins = (new, np.full(len(new), lay), np.ones(len(new), bool))
        self.open_ids, self.open_layer, self.alive = (
            np.concatenate([a[:at], b, a[at:]])
            for a, b in zip((self.open_ids, self.open_layer, self.alive), ins))
        self.open_free = np.concatenate(
            [self.open_free[:, :at], self.free[new].T, self.open_free[:, at:]], 1)
        self.n_bins += nb


def _renumber(out: np.ndarray, n_bins: int, n: int) -> np.ndarray:
    """Cores renumbered in order of their first item (topological): core ids follow layers."""
    first = np.full(n_bins, n, np.int64)
    np.minimum.at(first, out, np.arange(n))
    rank = np.empty(n_bins, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_bins)
    return rank[out]
