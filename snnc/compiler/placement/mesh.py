"""Mesh layout: cores along a boustrophedon path over each chip's mesh, chips filled in order.

Four orders are tried, the cores in layer order (a core's layer: the mean of its slices',
weighted by neurons or by synaptic memory) and each of those refined by the barycenter
heuristic (``barycentric``: cores move toward the traffic-weighted mean place of their
partners); the one with the cheapest routes is kept and improved by bounded pairwise swaps.
"""

from __future__ import annotations

import numpy as np

from snnc.targets.target import TargetSpec

__all__ = ["ORDER_WEIGHTS", "barycentric", "core_graph", "core_order", "core_xy", "improve",
           "mesh_layout", "route_cost", "sequential_route", "slots"]

ORDER_WEIGHTS = ("neurons", "synapse_bits")  # mesh orders tried: a core's mean layer by these
_BARYCENTRIC_ROUNDS = 30  # layout: rounds of the barycenter refinement of a path order
_SWAP_BUDGET = 200_000  # candidate swap evaluations (deterministic, bounds placement time)


def core_order(items, bins, by_name, weight: str) -> np.ndarray:
    """Cores sorted by the mean layer index of their slices, each slice weighted by its
    ``weight`` usage (then by first slice): a greedy layer-by-layer path, with cores that mix
    layers between them."""
    n = int(bins.max()) + 1
    w = np.array([max(it[3][weight], 1) for it in items], float)
    layer = np.array([by_name[it[0]].index for it in items], float)
    mean = np.bincount(bins, weights=w * layer, minlength=n) / np.bincount(bins, weights=w,
                                                                          minlength=n)
    first = np.full(n, len(items))
    np.minimum.at(first, bins, np.arange(len(items)))
    return np.lexsort((first, np.round(mean, 9)))


def slots(target: TargetSpec, n_cores: int) -> np.ndarray:
    """(chip, core) of the first ``n_cores`` usable cores, chips filled in order."""
    per_chip = target.chip.cores_per_chip or max(n_cores, 1)
    i = np.arange(n_cores)
    return np.stack([i // per_chip, i % per_chip], 1)


def core_xy(chip, core) -> tuple[np.ndarray, np.ndarray]:
    """Mesh position (x along E-W, y along N-S) of core index ``core`` on its chip (a
    ``ChipSpec``): cores fill tiles along a boustrophedon path, row by row."""
    cols, per_tile, rows = chip.mesh_cols or 1, chip.cores_per_tile or 1, chip.mesh_rows or 1
    tile = np.asarray(core) // per_tile
    y = tile // cols
    return np.where(y % 2 == 0, tile % cols, cols - 1 - tile % cols), np.minimum(y, rows - 1)


def route_cost(target: TargetSpec, at: np.ndarray):
    """Energy (pJ) of one spike route between path positions (``at``: each position's (chip,
    core)): spike delivery plus E-W/N-S hops; chips sit side by side along E-W. Positions are
    placed on the mesh once: millions of routes are costed per layout."""
    e, c = target.energy, target.chip
    x, y = core_xy(c, at[:, 1])
    x = x + at[:, 0] * (c.mesh_cols or 1)

    def cost(a, b):
        return (e.E_spike_in_tile + np.abs(x[a] - x[b]) * e.E_hop_ew
                + np.abs(y[a] - y[b]) * e.E_hop_ns)

    return cost


def mesh_layout(target, n_cores, items, bins, by_name, src, dst, w):
    """Cores along the mesh path: two layer orders (a core's layer as its neurons' mean, and
    as its synaptic memory's: a core that mixes layers sits nearer the slices that take most
    of its input), each also refined by ``barycentric``; the cheapest of the four is improved
    by swaps (SqueezeNet, 92 % memory share, 40-layer window: 1.40 x the sequential fill's
    route energy in layer order, 0.96 x refined). Returns each core's (chip, core) and each
    route's energy (pJ)."""
    at = slots(target, n_cores)
    cost = route_cost(target, at)
    ca, cb = bins[src], bins[dst]
    adj = core_graph(n_cores, ca, cb, w)
    best = None
    for weight in ORDER_WEIGHTS:
        layer_order = core_order(items, bins, by_name, weight)
        for order in (layer_order, barycentric(adj, layer_order)):
            pos_of_core = np.empty(n_cores, np.int64)
            pos_of_core[order] = np.arange(n_cores)
            energy = float((w * cost(pos_of_core[ca], pos_of_core[cb])).sum())
            if best is None or energy < best[0]:
                best = (energy, pos_of_core)
    pos_of_core = improve(best[1], adj, cost)
    return at[pos_of_core], cost(pos_of_core[ca], pos_of_core[cb])


def core_graph(n: int, ca, cb, w):
    """Symmetric core-to-core spike traffic (CSR), routes inside a core left out."""
    # scipy.sparse takes ~0.3 s to import; only the layout needs it, while the report and the
    # api import this package for small helpers
    from scipy.sparse import coo_matrix

    keep = ca != cb
    a, b, ww = ca[keep], cb[keep], w[keep]
    adj = coo_matrix((np.concatenate([ww, ww]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                     shape=(n, n)).tocsr()
    adj.sum_duplicates()
    return adj


def barycentric(adj, order: np.ndarray) -> np.ndarray:
    """A path order refined toward short spike routes: each core moves toward the traffic-
    weighted mean position of its partners (half its own place), cores re-ranked, repeated
    ``_BARYCENTRIC_ROUNDS`` times (the barycenter heuristic for linear arrangement)."""
    deg = np.asarray(adj.sum(1)).ravel()
    rank = np.empty(len(order))
    rank[order] = np.arange(len(order))
    for _ in range(_BARYCENTRIC_ROUNDS):
        x = (adj @ rank + deg * rank) / np.maximum(2 * deg, 1e-12)
        rank[np.argsort(np.where(deg > 0, x, rank), kind="stable")] = np.arange(len(order))
    return np.argsort(rank, kind="stable")


def sequential_route(target: TargetSpec, n: int, src, dst, w) -> float:
    """Hop energy of Lava's sequential fill of ``n`` slices (one per core, chip = id //
    cores_per_chip, cores in row-major mesh order)."""
    per_chip = target.chip.cores_per_chip or n
    ids = np.arange(n)
    chip, core = ids // per_chip, ids % per_chip
    per_tile, cols = target.chip.cores_per_tile or 1, target.chip.mesh_cols or 1
    tile = core // per_tile
    x, y = tile % cols + chip * cols, tile // cols  # row-major, no boustrophedon
    e = target.energy
    route = e.E_spike_in_tile + np.abs(x[src] - x[dst]) * e.E_hop_ew + \
        np.abs(y[src] - y[dst]) * e.E_hop_ns
    return float((w * route).sum())


def improve(pos, adj, cost) -> np.ndarray:
    """Bounded deterministic pairwise swaps of cores at neighbouring path positions (``cost``:
    a route's energy between two path positions, ``route_cost``)."""
    n = len(pos)
    if n < 3 or not adj.nnz:
        return pos
    core_at = np.empty(n, np.int64)
    core_at[pos] = np.arange(n)
    budget = _SWAP_BUDGET

    def local(c, p):
        lo, hi = adj.indptr[c], adj.indptr[c + 1]
        nb = adj.indices[lo:hi]
        return float((adj.data[lo:hi] * cost(np.full(len(nb), p), pos[nb])).sum())

    for _ in range(3):
        improved = False
        for p in range(n - 1):
            for q in (p + 1, p + 2):
                if q >= n or budget <= 0:
                    continue
                budget -= max(1, adj.indptr[core_at[p] + 1] - adj.indptr[core_at[p]])
                x, y = core_at[p], core_at[q]
                before = local(x, p) + local(y, q)
                pos[x], pos[y] = q, p
                after = local(x, q) + local(y, p)
                if after < before - 1e-9:
                    core_at[p], core_at[q] = y, x
                    improved = True
                else:
                    pos[x], pos[y] = p, q
        if not improved or budget <= 0:
            break
    return pos
