"""Slicing: cut each population into tiles that fit a core, fewest estimated cores first.

For near-square spatial tiles, binary search the largest channel tile that fits, also try 1/2
and 1/3 of it (and whole memory words of channels, ``word_channels``), and keep the tiling with
the lowest estimated cores (``score``); the remainder channel tile is cut in pieces of under
half a core (``split_remainder``); a layer bound by output axons or neurons is cut into small
pieces (``split_out_bound``); a population fed by a concatenation is also cut in channel tiles
within its parts (``channel_segments``), tried with small spatial tiles of any aspect.
Populations are sliced consumers first (``slice_all``), so their output axons are known.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from snnc.compiler.placement.axis_stats import tiles
from snnc.compiler.placement.connectivity import Population, channel_segments, halo_helps
from snnc.compiler.placement.usage import NOUN, RESOURCES, WHOLE_HALO, CoreUsage
from snnc.errors import TargetConstraintError

__all__ = ["HALOS", "choose", "largest_channels", "largest_segment_piece", "score", "search",
           "segment_cuts", "sizes", "slice_all", "small_tiles", "source_channel_tiles",
           "split_out_bound", "split_remainder", "word_channels"]

_REMAINDER_PIECE = 0.45  # remainder channel tiles are cut into pieces of at most this core share
_OUT_PIECE = 0.2  # output-axon/neuron-bound layers: spatial pieces of at most this core share
_OUT_PIECE_AXONS = 1.05  # ... while their input axons grow by at most this factor
_OUT_PIECE_TRADE = 0.3  # ... or by at most this share of their output axons (cores)
HALOS = (0, 1, WHOLE_HALO)  # population axons: halo compartments tried (none, one, whole windows)
_SEGMENT_TILE = 8  # concatenations: part-aligned channel tiles tried with tiles this small
_ROOM_WEIGHT = 0.5  # tiling score: weight of the room left by tiles over half a core ...
_IMPOSED_WEIGHT = 0.5  # ... and of the output axons a tiling costs its producers


def score(cu: CoreUsage, use: dict[str, np.ndarray]) -> float:
    """Estimated cores of a tiling: its demand in its binding resource (summed over tiles),
    plus half the room left by tiles over half a core (they cannot pair with each other,
    only with smaller slices), plus half the output axons it costs its producers (one per
    source neuron, or two per source pixel for population axons, tile and channel tile
    the source needs at least, ``source_channel_tiles``: finer tiles duplicate them)."""
    frac = cu.fraction(use)
    total = max(float(use[r].sum()) / cu.limits[r] for r in RESOURCES if cu.limits[r])
    imposed = float(use["imposed"].sum()) / (cu.limits["out_axons"] or np.inf)
    return (total + _ROOM_WEIGHT * float(np.where(frac > 0.5, 1.0 - frac, 0.0).sum())
            + _IMPOSED_WEIGHT * imposed)


def largest_channels(cu: CoreUsage, p: Population, th: int, tw: int) -> int:
    """Largest channel tile that fits with spatial tile (th, tw); 0 if none."""
    if not cu.fits(p, (1, th, tw))[0]:
        return 0
    lo, hi = 1, p.lay[0]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cu.fits(p, (mid, th, tw))[0]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def choose(cu: CoreUsage, p: Population, fill: float = 1.0) -> tuple[tuple, dict[str, np.ndarray]]:
    """Tiling with the fewest estimated cores (then fewest input axons), each tile taking at
    most ``fill`` of a core's memory where it can (``search``), then cut where bound by output
    axons or neurons (``split_out_bound``); with halo compartments (``HALOS``) where they may
    help. Sets ``p.halo``. Returns per axis a tile size or a tuple of tile starts."""
    C, H, W = p.lay
    p.halo = 0
    ok, use = cu.fits(p, (C, H, W))
    if ok:
        return (C, H, W), use
    if not cu.fits(p, (1, 1, 1))[0]:
        raise _single_neuron_error(cu, p)
    best = None
    for halo in HALOS if halo_helps(p) else HALOS[:1]:
        p.halo = halo
        cu.mem_fill = fill  # room left in each core's memory for small slices
        try:
            tile, use = search(cu, p)
        finally:
            cu.mem_fill = 1.0
        tile, use = split_out_bound(cu, p, tile, use)
        if best is None or score(cu, use) < best[0]:
            best = (score(cu, use), halo, tile, use)
    _, p.halo, tile, use = best
    return tile, use


def _single_neuron_error(cu: CoreUsage, p: Population) -> TargetConstraintError:
    use1 = cu.usage(p, (1, 1, 1))
    r = next(r for r in RESOURCES if cu.limits[r] is not None and use1[r].max() > cu.limits[r])
    hint = ""
    if r == "in_axons" and not cu.target.neuron.graded_spike_bits:
        hint = (" (targets with graded spikes, such as loihi2, split such fan-ins over "
                "partial-sum relay neurons; this one sends binary spikes)")
    return TargetConstraintError(
        f"layer '{p.node.name}': a single neuron needs {int(use1[r].max()):,} "
        f"{NOUN[r]}; {cu.target.name} core limit {cu.limits[r]:,}{hint}")


class _Best:
    """The best tiling considered so far, by (score, input axons, -pixels per tile)."""

    def __init__(self, cu: CoreUsage, p: Population):
        self.cu, self.p = cu, p
        self.key: tuple | None = None
        self.tile: tuple | None = None
        self.use: dict[str, np.ndarray] | None = None

    def consider(self, tile) -> bool:
        """Keep ``tile`` if it fits and beats the best; whether it fits."""
        ok, use = self.cu.fits(self.p, tile)
        if ok:
            key = (score(self.cu, use), int(use["in_axons"].sum()), -tile[1] * tile[2])
            if self.key is None or key < self.key:
                self.key, self.tile, self.use = key, tile, use
        return ok


def search(cu: CoreUsage, p: Population) -> tuple[tuple, dict[str, np.ndarray]]:
    """Near-square spatial tiles from the ceil(n/k) sizes, each with its largest channel tile,
    then grown one row/column at a time (tiles may end in a smaller remainder), then the best
    one's channel tile halved and thirded; the remainder channel tile is then cut
    (``split_remainder``); for a concatenation, channel tiles within its parts with spatial
    tiles of at most ``_SEGMENT_TILE`` pixels compete too. Where nothing fits under
    ``cu.mem_fill`` of a core's memory, the whole memory is used."""
    best = _Best(cu, p)
    _near_square(cu, p, best)
    if best.key is None:  # nothing fits under the memory share: use the whole core
        cu.mem_fill = 1.0
        return search(cu, p)
    _grow(cu, p, best)
    g = word_channels(p, cu.word)
    _channel_variants(best, g)
    th, tw = best.tile[1], best.tile[2]
    tile, use = split_remainder(cu, p, best.tile, best.use)
    bounds = channel_segments(p)
    if len(bounds) > 2:  # a concatenation: its parts come from different sources
        best.tile, best.use = tile, use
        _segment_tiles(cu, p, best, bounds, (th, tw), g)
        tile, use = best.tile, best.use
    return tile, use


def _near_square(cu: CoreUsage, p: Population, best: _Best) -> None:
    """Spatial tiles of each size ceil(H/k), near square, with their largest channel tile
    (skipping those with far more tiles than the best's estimated cores)."""
    _, H, W = p.lay
    for th in sizes(H):
        for tw in _near(sizes(W), th * W / H):
            n_sp = math.ceil(H / th) * math.ceil(W / tw)
            if best.key is not None and n_sp > 2 * best.key[0] + 1:
                continue
            tc = largest_channels(cu, p, th, tw)
            if tc:
                best.consider((tc, th, tw))


def _grow(cu: CoreUsage, p: Population, best: _Best) -> None:
    """Grow the best spatial tile a row, then a column, at a time while that improves it,
    re-fitting channels."""
    tc, th, tw = best.tile
    for axis in (1, 2):
        while True:
            t = [tc, th, tw]
            if t[axis] >= p.lay[axis]:
                break
            t[axis] += 1
            t[0] = largest_channels(cu, p, t[1], t[2])
            if not t[0]:
                break
            before = best.tile
            best.consider(tuple(t))
            if best.tile == before:
                break
            tc, th, tw = best.tile


def _channel_variants(best: _Best, g: int) -> None:
    """Smaller channel tiles pair on a core where large ones cannot: 1/2 and 1/3 of the best,
    also in whole words of ``g`` channels, and the best rounded down to whole words (no
    memory lost to word rounding)."""
    tc, th, tw = best.tile
    channels = []
    for k in (2, 3):
        if tc >= k:
            channels.append(-(-tc // k))
            if tc >= k * g:
                channels.append(-(-tc // (k * g)) * g)
    if tc > g:
        channels.append(tc // g * g)
    for c in dict.fromkeys(channels):  # each distinct tile once (ties keep the first)
        if c != tc:
            best.consider((c, th, tw))


def _segment_tiles(cu: CoreUsage, p: Population, best: _Best, bounds, spatial, g: int) -> None:
    """A concatenation: channel tiles cut within its parts, with the best spatial tile and
    every small one (``small_tiles``); per spatial tile the largest piece that fits, its half
    and whole words of it."""
    H, W = p.lay[1:]
    shapes = list(dict.fromkeys([spatial, *small_tiles(H, W)]))
    pieces: dict[tuple[int, int], int] = {}  # a larger spatial tile fits no more
    for sp in sorted(shapes, key=lambda t: t[0] * t[1]):
        hi = min([v for (a, b), v in pieces.items() if a <= sp[0] and b <= sp[1]],
                 default=int(np.diff(bounds).max()))
        pieces[sp] = largest_segment_piece(cu, p, bounds, sp, hi)
    for sp in shapes:
        piece = pieces[sp]
        for c in dict.fromkeys([piece, -(-piece // 2), piece // g * g]):
            if c:
                best.consider((segment_cuts(bounds, c), *sp))


def largest_segment_piece(cu: CoreUsage, p: Population, bounds, sp, hi: int) -> int:
    """Largest channel piece, at most ``hi``, such that channel tiles cut within each
    segment at most that long fit with spatial tile ``sp``; 0 if none."""
    if hi < 1 or not cu.fits(p, (segment_cuts(bounds, 1), *sp))[0]:
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cu.fits(p, (segment_cuts(bounds, mid), *sp))[0]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def word_channels(p: Population, word: int | None) -> int:
    """Channels whose synapses fill whole memory words (8 at 8-bit weights, 64-bit
    words): a channel tile that is a multiple of it rounds no synapse list up."""
    if not word:
        return 1
    return max(word // math.gcd(word, b) for b in p.wbits) if p.wbits else 1


def split_out_bound(cu: CoreUsage, p: Population, tile, use) -> tuple[tuple, dict]:
    """A layer bound by output axons or neurons (in total over its tiles) is cut into
    spatial pieces of at most ``_OUT_PIECE`` of a core while its input axons grow by at
    most ``_OUT_PIECE_AXONS`` (free for a 1x1 conv: its producers' output axons do not
    change) or by at most ``_OUT_PIECE_TRADE`` of its output axons, in cores (DenseNet's
    bottlenecks: 64 input axons per pixel, 29 output axons per neuron); single-pixel
    tiles (a 1-D layer) are cut along channels (free where its inputs are elementwise:
    AlexNet's fc6 behind its partial-sum relays, 128 cores full in output axons, 1.129 ->
    1.101 x the lower bound). Such pieces fill the room that memory-bound slices leave in
    the cores' output axons or compartments (Loihi 1's 1,024 neurons per core: ShuffleNet
    1.218 -> 1.164, SqueezeNet 1.468 -> 1.372 x the lower bound; loihi2 rows unchanged)."""
    lim = cu.limits
    if lim["out_axons"] is None:
        return tile, use
    tot = {r: float(use[r].sum()) / lim[r] for r in RESOURCES if lim[r]}
    if max(tot, key=tot.get) not in ("out_axons", "neurons"):
        return tile, use
    tc, th, tw = tile
    # what a cut grows: input axons, and with population axons memory (fewer pixels share
    # a weight set)
    grows = ("in_axons", "synapse_bits") if any(p.pop_axons) else ("in_axons",)
    base = {r: float(use[r].sum()) for r in grows}
    while float(cu.fraction(use).max()) > _OUT_PIECE:
        if th > 1 or tw > 1:
            t2 = (tc, -(-th // 2), tw) if th >= tw else (tc, th, -(-tw // 2))
        elif isinstance(tc, int) and tc > 1:  # 1-D (or 1x1) tiles: cut channels
            t2 = (-(-tc // 2), th, tw)
        else:
            break
        use2 = cu.usage(p, t2)
        grow = {r: float(use2[r].sum()) - b for r, b in base.items()}
        if any(g > (_OUT_PIECE_AXONS - 1) * base[r] and g / (lim[r] or math.inf)
               > _OUT_PIECE_TRADE * tot["out_axons"] for r, g in grow.items()):
            break
        (tc, th, tw), use = t2, use2
    return (tc, th, tw), use


def split_remainder(cu: CoreUsage, p: Population, tile, use) -> tuple[tuple, dict]:
    """Uneven channel tiles: the last channel tile (the remainder) is cut in pieces of at
    most about half a core, so that it can share a core with other slices."""
    C = p.lay[0]
    tc = tile[0]
    r = C - (C // tc) * tc if C > tc else 0
    if r < 2:
        return tile, use
    frac = cu.fraction(use)[-1].max()
    k = min(r, math.ceil(frac / _REMAINDER_PIECE))
    if k < 2:
        return tile, use
    starts = list(range(0, C - r, tc))
    pieces = np.diff(np.linspace(0, r, k + 1).round().astype(int))
    starts += list(C - r + np.r_[0, np.cumsum(pieces)[:-1]])
    cuts = (tuple(int(x) for x in starts), tile[1], tile[2])
    return cuts, cu.usage(p, cuts)


def small_tiles(H: int, W: int) -> list[tuple[int, int]]:
    """Spatial tiles of at most ``_SEGMENT_TILE`` pixels (any aspect: 3 x 1 strips reach
    fewer tiles through a 3x3 window than 2 x 2 squares cut into channel halves)."""
    return [(a, b) for a in sizes(H) for b in sizes(W) if a * b <= _SEGMENT_TILE]


def segment_cuts(bounds: np.ndarray, piece: int) -> tuple[int, ...]:
    """Channel tile starts: each segment cut in even tiles of at most ``piece``."""
    bounds = np.asarray(bounds, np.int64)
    n = np.diff(bounds)
    k = -(-n // piece)
    seg = np.repeat(np.arange(len(k)), k)
    i = np.arange(len(seg)) - np.repeat(np.cumsum(k) - k, k)  # tile index within its segment
    # as np.linspace(0, n, k + 1)[:-1] per segment (i * (n / k)), all segments at once
    return tuple(bounds[:-1][seg] + (i * (n / k)[seg]).round().astype(np.int64))


def sizes(n: int) -> list[int]:
    """Distinct tile sizes ceil(n / k), largest first."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def _near(options: list[int], want: float) -> list[int]:
    i = min(range(len(options)), key=lambda j: (abs(options[j] - want), j))
    return [options[i]]


# ---------------------------------------------------------------------------------------------
# the whole network


def slice_all(pops: list[Population], by_name: dict, cu: CoreUsage, fill: float = 1.0):
    """Slice every population (consumers first: their slicing fixes producers' output axons).
    Returns per population its tiles' usage, the items (one per tile, in population
    (topological) order, row-major tiles: name, start, stop, usage) and each population's
    first item."""
    uses: dict[str, dict[str, np.ndarray]] = {}
    for p in reversed(pops):
        p.tile, uses[p.node.name] = choose(cu, p, fill)
        p.stats = [tuple(cu.stats(p, k, a, p.tile[a]) for a in range(3))
                   for k in range(len(p.terms))]
        for k, t in enumerate(p.terms):
            if t.source in by_name:
                ax = [s.reach.sum(0).astype(np.int64) for s in p.stats[k]]
                if p.pop_axons[k]:
                    ax[0] = p.stats[k][0].reach
                else:
                    ax[0] = ax[0] * p.src_npg[k]  # one axon per neuron of a source AMOS circuit
                by_name[t.source].out_terms.append((p.pop_axons[k], *ax))
    items, offsets = [], {}
    for p in pops:
        offsets[p.node.name] = len(items)
        items.extend(_items(p, uses[p.node.name], cu))
    return uses, items, offsets


def _items(p: Population, use: dict[str, np.ndarray], cu: CoreUsage) -> list[tuple]:
    """One item per tile of ``p``, row-major: (name, start, stop, usage with its halo)."""
    (sc, lc), (sr, lr), (sx, lx) = ([g.tolist() for g in tiles(n, t)]
                                    for n, t in zip(p.lay, p.tile))
    box = [[b.tolist() for b in ab] for ab in cu.halo_box(p, p.stats)] if p.halo else None
    keys = (*RESOURCES, "synapses")
    cols = [np.asarray(use[r], np.int64).ravel().tolist() for r in keys]  # row-major
    items = []
    idx = itertools.product(range(len(sc)), range(len(sr)), range(len(sx)))
    for (c, r, x), vals in zip(idx, zip(*cols)):
        start, stop = (sc[c], sr[r], sx[x]), (sc[c] + lc[c], sr[r] + lr[r], sx[x] + lx[x])
        halo = (0, 0, 0, 0)
        if box is not None:
            (lo_r, hi_r), (lo_x, hi_x) = box
            halo = (start[1] - lo_r[r], hi_r[r] - stop[1], start[2] - lo_x[x], hi_x[x] - stop[2])
        use_r = dict(zip(keys, vals))
        use_r["halo"] = halo
        items.append((p.node.name, start, stop, use_r))
    return items


def source_channel_tiles(pops: list[Population], by_name: dict, cu: CoreUsage) -> None:
    """Sets ``src_tiles``: per population-axon term, the fewest channel tiles its source can
    be cut in (its channels over the most that fit a core on one pixel, where its own weight
    set is smallest). Each channel tile of a source sends its own axon per pixel, so a
    consumer tiling costs its producers that many times its footprint in output axons (VGG-19's
    512-channel convs hold at most 28 channels per core: taking 4 channels of the whole layer
    per consumer tile sent each source pixel to 128 tiles from each of 19 source tiles).
    Relies on ``pops`` being in topological order: ``largest_channels`` reads a source's own
    ``src_tiles``, set when the loop passed it."""
    found: dict[str, int] = {}
    for p in pops:
        p.src_tiles = []
        for k, t in enumerate(p.terms):
            src = by_name.get(t.source)
            if src is None or not p.pop_axons[k]:
                p.src_tiles.append(1)
                continue
            if t.source not in found:
                src.halo = 0  # the stats ``usage`` reads are keyed by it (``choose`` resets it)
                found[t.source] = -(-src.lay[0] // max(largest_channels(cu, src, 1, 1), 1))
            p.src_tiles.append(found[t.source])
