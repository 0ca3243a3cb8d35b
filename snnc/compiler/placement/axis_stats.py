"""Per-tile statistics of one axis: footprints, fan-in and synapse-list histograms.

For a tiling of a population's output along one layout axis, each tile's distinct inputs
(input axons), synapses, and the histogram of synapses per reached input (synapse lists, word
aligned in memory); with population axons, the histograms over distinct weight-set patterns
(``shared_hists``), and with halo compartments over each tile's grown compartment range
(``halo_stats``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from snnc.compiler.placement.axes import Axis

__all__ = ["SPAN_MAX", "AxisStats", "axis_stats", "continued", "distinct", "halo_stats",
           "hist_groups", "pattern_keys", "shared_hists", "tile_hists", "tiles"]

SPAN_MAX = 24  # longest run of outputs one input reaches that weight sharing is tracked for


@dataclass
class AxisStats:
    starts: np.ndarray  # tile starts along the output axis
    lens: np.ndarray  # tile lengths
    footprint: np.ndarray  # distinct inputs reached per tile
    fanin: np.ndarray  # synapses (incidences) per tile
    hist_id: np.ndarray  # per tile: index into hists
    hists: list[tuple[np.ndarray, np.ndarray]]  # (synapses per reached input, how many)
    reach: np.ndarray  # (tiles, n_in) bool: footprint per tile
    # the same over distinct weight-set patterns (``shared_hists``): a population axon's
    # inputs with one pattern share a weight set
    shared_id: np.ndarray | None = None
    shared: list[tuple[np.ndarray, np.ndarray]] | None = None
    # with halo compartments (``halo_stats``): the patterns of each tile's inputs over its
    # compartments, and per tile their range [lo, hi)
    halo_id: np.ndarray | None = None
    halo: list[tuple[np.ndarray, np.ndarray]] | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


def tiles(n: int, t) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the tiles along one axis of length ``n``: ``t`` is a tile size
    (equal tiles, the last one shorter) or a tuple of tile starts (uneven tiles)."""
    if isinstance(t, tuple):
        starts = np.asarray(t, np.int64)
        return starts, np.diff(np.r_[starts, n])
    starts = np.arange(0, n, t)
    return starts, np.minimum(starts + t, n) - starts


def axis_stats(ax: Axis, t: int, shared: bool = False, halo: int = 0) -> AxisStats:
    """Statistics of tiling ``t`` (see ``tiles``) along ``ax``; with ``shared`` (population
    axons) also the weight-set patterns, over ``halo`` compartments beyond each tile."""
    starts, lens = tiles(ax.n_out, t)
    if ax.kind == "eye":
        idx = np.arange(ax.n_in)
        reach = (idx[None, :] >= starts[:, None]) & (idx[None, :] < (starts + lens)[:, None])
        st = AxisStats(starts, lens, lens.copy(), lens.copy(),
                       *hist_groups([(np.ones(1, np.int64), np.array([ln])) for ln in lens]),
                       reach)
    elif ax.kind == "bcast":
        reach = np.broadcast_to(ax.m, (len(starts), ax.n_in))
        k = int(ax.m.sum())
        hists = [(np.array([ln]), np.array([k])) if k else
                 (np.zeros(0, np.int64), np.zeros(0, np.int64)) for ln in lens]
        st = AxisStats(starts, lens, np.full(len(starts), k), lens * k,
                       *hist_groups(hists), reach)
    else:
        counts = np.add.reduceat(ax.m, starts, axis=0, dtype=np.int64)  # no int64 copy of m
        reach = counts > 0
        st = AxisStats(starts, lens, reach.sum(1), counts.sum(1),
                       *tile_hists(np.repeat(np.arange(len(starts)), counts.shape[1]),
                                   counts.ravel(), len(starts)), reach)
    if shared:  # population axons: only they share weight sets
        st.shared_id, st.shared = shared_hists(ax, starts, lens) or (st.hist_id, st.hists)
        st.halo_id, st.halo, st.lo, st.hi = (
            halo and halo_stats(ax, starts, lens, reach, halo)
            or (st.shared_id, st.shared, starts, starts + lens))
    return st


def tile_hists(tile: np.ndarray, value: np.ndarray, n_tiles: int):
    """(ids per tile, distinct histograms) of the positive ``value``s counted per ``tile``:
    one bincount over (tile, value) pairs."""
    ok = value > 0
    tile, value = tile[ok], value[ok]
    top = int(value.max()) + 1 if len(value) else 1
    h = np.bincount(value + top * tile, minlength=top * n_tiles).reshape(n_tiles, top)[:, 1:]
    keys: dict[bytes, int] = {}
    hists, ids = [], np.zeros(n_tiles, np.int64)
    for k in range(n_tiles):
        key = h[k].tobytes()
        if key not in keys:
            keys[key] = len(hists)
            vals = np.flatnonzero(h[k])
            hists.append((vals + 1, h[k][vals]))
        ids[k] = keys[key]
    return ids, hists


def shared_hists(ax: Axis, starts: np.ndarray, lens: np.ndarray):
    """Per tile, the histogram of synapses per distinct weight-set pattern along a
    shift-invariant axis (``period`` p > 0), or None where none is known (no sharing). Input j
    reaches outputs R_j of the tile; its pattern is (j mod p, R_j - j // p): equal patterns
    mean equal relative targets through equal weights, so population axons whose inputs have
    the same pattern (on every axis) use one weight set, offset by their compartment base
    (nengo-loihi ``conv2d_loihi_weights``). Along a ``uniform`` axis (a pooling window) the
    phase j mod p is left out: every synapse has the same weight."""
    if ax.kind == "eye" and ax.period:
        return np.zeros(len(starts), np.int64), [(np.ones(1, np.int64), np.ones(1, np.int64))]
    keys = pattern_keys(ax, starts, lens)
    return None if keys is None else distinct(*keys)


def halo_stats(ax: Axis, starts: np.ndarray, lens: np.ndarray, reach: np.ndarray, halo: int):
    """Halo compartments along a window axis: each tile's compartments extend ``halo``
    outputs beyond it on each side (never-spiking compartments, up to the outputs its inputs
    reach, beyond the layer's edges too where the window continues there, ``continued``), so
    the inputs' patterns are cut only at the halo's edges: a halo as wide as the window leaves
    one pattern per stride phase. Returns (ids, histograms, lo, hi): per tile the distinct
    patterns of the inputs reaching it and its compartment range [lo, hi) (in layer
    coordinates: below 0 or above n_out outside it); None where the axis is not a
    shift-invariant window."""
    if ax.kind != "matrix" or ax.period == 0:
        return None
    m, e = continued(ax)
    o = np.arange(-e, ax.n_out + e)[:, None]
    first = np.where(m, o, ax.n_out + e).min(0)  # per input: its first and last output
    last = np.where(m, o, -e - 1).max(0)
    lo = np.minimum(starts, np.maximum(starts - halo, np.where(reach, first, ax.n_out).min(1)))
    hi = np.maximum(starts + lens,
                    np.minimum(starts + lens + halo, np.where(reach, last, -1).max(1) + 1))
    keys = pattern_keys(replace(ax, n_out=m.shape[0], m=m), lo + e, hi - lo)
    if keys is None:
        return None
    ids, hists = distinct(keys[0], keys[1], reach)
    return ids, hists, lo, hi


def continued(ax: Axis) -> tuple[np.ndarray, int]:
    """(incidence, e): the window axis continued ``e`` outputs beyond each edge of the layer
    (rows -e .. n_out + e - 1), the offsets of its widest output's inputs repeated with the
    stride, where that reproduces every row inside the layer; else the axis itself (e = 0).
    Compartments there hear a layer-edge input through the same weights as an inner one, so
    a tile at the edge needs no weight set of its own for the edge."""
    p, m = ax.period, ax.m
    ref = int(np.argmax(m.sum(1)))
    offsets = np.flatnonzero(m[ref]) - p * ref
    e = -(-int(offsets.max() - offsets.min() + 1) // p)  # outputs an input reaches at most
    o = np.arange(-e, ax.n_out + e)
    ext = np.isin(np.arange(ax.n_in)[None, :] - p * o[:, None], offsets)
    if not np.array_equal(ext[e:e + ax.n_out], m):
        return m, 0
    return ext, e


def pattern_keys(ax: Axis, starts: np.ndarray, lens: np.ndarray):
    """Per tile and input (``shared_hists``; not an identity axis): a key of the input's
    weight-set pattern in the tile, its synapses there, and whether it reaches the tile; None
    without sharing."""
    p = ax.period
    q = 1 if ax.uniform else p  # phases with their own weights
    if p == 0:
        return None
    m = np.ascontiguousarray(ax.matrix())
    n_out, n_in = m.shape
    o = np.arange(n_out)
    # per output row and input: the first output at or after it that the input reaches
    nxt = np.minimum.accumulate(np.where(m, o[:, None], n_out)[::-1], axis=0)[::-1]
    last = np.where(m.any(0), n_out - 1 - np.argmax(m[::-1], axis=0), -1)
    span = int((last - nxt[0] + 1).max(initial=0))
    if span > SPAN_MAX:
        return None
    first = nxt[starts]  # (tiles, n_in)
    stop = (starts + lens)[:, None]
    ok = first < stop
    pattern = np.zeros(first.shape, np.int64)
    for d in range(span):
        y = first + d
        pattern |= ((y < stop) & m[np.minimum(y, n_out - 1), np.arange(n_in)]).astype(
            np.int64) << d
    j = np.arange(n_in)[None, :]
    rel = first - j // p + n_in // p + 1  # >= 0
    r = n_out + n_in // p + 2
    key = (((j % q) * r + rel) << span) | pattern
    count = sum((pattern >> d) & 1 for d in range(span))
    return key, np.asarray(count, np.int64), ok


def distinct(key: np.ndarray, count: np.ndarray, ok: np.ndarray):
    """(ids per tile, histograms) of the synapses of each tile's distinct keys among ``ok``."""
    n_t = key.shape[0]
    top = int(key.max(initial=0)) + 1
    full = np.arange(n_t)[:, None] * top + key
    uniq, at = np.unique(full[ok], return_index=True)
    return tile_hists(uniq // top, np.asarray(count[ok][at], np.int64), n_t)


def hist_groups(hists):
    """(ids per tile, distinct histograms) for a list of per-tile histograms."""
    keys: dict[tuple, int] = {}
    out, ids = [], np.zeros(len(hists), np.int64)
    for k, (vals, cnt) in enumerate(hists):
        key = (vals.tobytes(), cnt.tobytes())
        if key not in keys:
            keys[key] = len(out)
            out.append((vals, cnt))
        ids[k] = keys[key]
    return ids, out
