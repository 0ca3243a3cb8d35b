"""Per-core usage: the resources a tile of a population takes, and the network's demand.

Usage model (NL ``LoihiBlock.utilization``, docs/targets.md §3a), per tile and per synaptic term
(see the package docstring for the whole model): neurons, input axons, output axons and
word-aligned synaptic memory, each counted per axis and multiplied (``CoreUsage.usage``). The
demand (``demand``) counts every population unsplit: a lower bound of every valid placement's
usage, resource by resource (``lower_bound``).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from snnc.compiler.placement.axes import rowsum, tmul
from snnc.compiler.placement.axis_stats import AxisStats, axis_stats, tiles
from snnc.compiler.placement.connectivity import Population, halo_helps, weight_bits
from snnc.errors import TargetConstraintError
from snnc.targets.target import TargetSpec

__all__ = ["LIMIT_FIELD", "NOUN", "RESOURCES", "WHOLE_HALO", "CoreUsage", "check_system", "circuit",
           "demand", "group_mem", "lower_bound", "mem_bits", "min_out_axons", "outer"]

RESOURCES = ("neurons", "in_axons", "out_axons", "synapse_bits")
# the TargetSpec core field that limits each resource
LIMIT_FIELD = {"neurons": "max_neurons", "in_axons": "max_in_axons",
               "out_axons": "max_out_axons", "synapse_bits": "synapse_mem_bits"}
NOUN = {"neurons": "neurons", "in_axons": "input axons", "out_axons": "output axons",
        "synapse_bits": "synaptic memory bits"}
WHOLE_HALO = 1 << 20  # halo compartments as wide as any window: one weight set per phase


def circuit(k: int) -> dict[str, int]:
    """Usage inside one AMOS gate of k neurons (docs/amos.md: k input synapses carrying x, and
    k(k-1)/2 inhibitory ones): an input axon for x's list and for each neuron j < k's
    inhibition of the later ones (an output axon back to its own core); none for k = 1."""
    if k <= 1:
        return {"in_axons": 0, "out_axons": 0, "synapses": 0}
    return {"in_axons": k, "out_axons": k - 1, "synapses": k * (k + 1) // 2}


def mem_bits(hc, hr, hx, wbits: int, word: int | None, k_src: int = 1) -> int:
    """Word-aligned synapse lists of one term: per reached input, its synapses x bits,
    rounded up to words; each input ``k_src`` times (one axon per neuron of a source AMOS
    circuit, each with its own weights W d_i)."""
    n = (hc[0][:, None, None] * hr[0][None, :, None] * hx[0][None, None, :]) * wbits
    k = hc[1][:, None, None] * hr[1][None, :, None] * hx[1][None, None, :]
    if word:
        n = -(-n // word) * word
    return int((n * k).sum()) * k_src


def outer(a, b, c) -> np.ndarray:
    return (np.asarray(a, np.int64)[:, None, None] * np.asarray(b, np.int64)[None, :, None]
            * np.asarray(c, np.int64)[None, None, :])


def group_mem(terms, hr, hx, word: int | None) -> np.ndarray:
    """Memory bits (``mem_bits``) per channel tile and (row, column) histogram pair, summed
    over a group of terms with the same row and column histograms ``hr``, ``hx``; ``terms``:
    per term (its channel histograms, each channel tile's histogram id, weight bits, k_src).
    One product of all value pairs, summed per histogram pair by one-hot products (exact in
    integers). Shape (channel tiles, len(hr), len(hx))."""
    rx = [(np.multiply.outer(r[0], x[0]).ravel(), np.multiply.outer(r[1], x[1]).ravel())
          for r in hr for x in hx]
    hc = [h for t in terms for h in t[0]]
    (c_val, c_cnt, c_one), (rx_val, rx_cnt, rx_one) = _flat(hc), _flat(rx)
    n_hc = [len(t[0]) for t in terms]
    wbits = np.repeat([t[2] for t in terms], [sum(len(h[0]) for h in t[0]) for t in terms])
    n = c_val[:, None] * rx_val[None, :] * wbits[:, None].astype(np.int64)
    if word:
        n = -(-n // word) * word
    cells = n * (c_cnt[:, None] * rx_cnt[None, :])
    per_hist = (c_one.T @ cells @ rx_one) * np.repeat([t[3] for t in terms], n_hc)[:, None]
    first = np.cumsum([0, *n_hc])[:-1]  # each term's first histogram
    at = np.stack([f + np.asarray(t[1], np.int64) for f, t in zip(first, terms)])
    return per_hist[at].sum(0).reshape(at.shape[1], len(hr), len(hx))


def _flat(hists) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms concatenated: (values, counts, one-hot (value, histogram) membership)."""
    lens = [len(h[0]) for h in hists]
    val = np.concatenate([np.asarray(h[0], np.int64) for h in hists] or [np.zeros(0, np.int64)])
    cnt = np.concatenate([np.asarray(h[1], np.int64) for h in hists] or [np.zeros(0, np.int64)])
    one = np.eye(len(hists), dtype=np.int64)[np.repeat(np.arange(len(hists)), lens)]
    return val, cnt, one.reshape(len(val), len(hists))


class CoreUsage:
    """Per-tile usage of a population under a tiling, against one target's core limits.

    Caches the per-axis statistics (keyed by the axis's content, tile and halo: terms with
    equal axes share them), per tiling the terms' statistics and the memory of each group of
    terms (``groups``). ``mem_fill``: the share of synaptic memory a tile may take when
    checking (``usage(check=True)``); the slicer lowers it to leave room in each core's
    memory for small slices."""

    def __init__(self, target: TargetSpec):
        c = target.core
        self.limits = {r: getattr(c, LIMIT_FIELD[r]) for r in RESOURCES}
        self.word = c.synapse_word_bits
        self.target = target
        self.cache: dict[tuple, AxisStats] = {}
        self.mem_fill = 1.0
        self.axis_keys: dict[tuple, int] = {}  # axis content -> id
        self.term_axes: dict[int, list[tuple[int, int, int]]] = {}  # per population: axis ids
        self.group_cache: dict[int, list[tuple[bool, list[int]]]] = {}
        self.plans: dict[tuple, list] = {}  # (population, tile, halo) -> term stats
        self.out_cache: dict[int, tuple] = {}

    def axis_ids(self, p: Population) -> list[tuple[int, int, int]]:
        """Per term, per axis: an id equal for equal axes (and population-axon flags), whose
        statistics are then equal."""
        if p.index not in self.term_axes:
            ids = []
            for k, t in enumerate(p.terms):
                row = []
                for ax in t.axes:
                    m = None if ax.m is None else (
                        ax.m.shape, ax.m.dtype.str,
                        hashlib.sha256(np.ascontiguousarray(ax.m).tobytes()).digest())
                    key = (ax.kind, ax.n_out, ax.n_in, m, ax.period, ax.uniform, p.pop_axons[k])
                    row.append(self.axis_keys.setdefault(key, len(self.axis_keys)))
                ids.append(tuple(row))
            self.term_axes[p.index] = ids
        return self.term_axes[p.index]

    def groups(self, p: Population) -> list[tuple[bool, list[int]]]:
        """Terms with the same row and column axes (and population-axon flag), so the same
        row and column statistics: their per-tile counts add along channels first (a
        concatenation's parts through one window)."""
        if p.index not in self.group_cache:
            by: dict[tuple, list[int]] = {}
            for k, ids in enumerate(self.axis_ids(p)):
                by.setdefault((p.pop_axons[k], ids[1], ids[2]), []).append(k)
            self.group_cache[p.index] = [(key[0], ks) for key, ks in by.items()]
        return self.group_cache[p.index]

    def stats(self, p: Population, k: int, axis: int, t) -> AxisStats:
        key = (self.axis_ids(p)[k][axis], t, p.halo)
        if key not in self.cache:
            self.cache[key] = axis_stats(p.terms[k].axes[axis], t, p.pop_axons[k], p.halo)
        return self.cache[key]

    def _plan(self, p: Population, tile) -> list:
        """[per term its 3 axes' statistics, per group its memory table and its channel
        sums (``_channel_sums``; None until needed)] of a tiling, cached: the slicer revisits
        tilings (per memory share, halo)."""
        key = (p.index, tuple(tile), p.halo)
        if key not in self.plans:
            self.plans[key] = [[tuple(self.stats(p, k, a, tile[a]) for a in range(3))
                                for k in range(len(p.terms))], None, None]
        return self.plans[key]

    def usage(self, p: Population, tile, check: bool = False) -> dict[str, np.ndarray] | None:
        """Per-tile usage arrays (shape nC x nR x nX) for tiling ``tile``. With ``check``,
        returns None as soon as one resource exceeds its limit (cheap resources first)."""
        lens = [tiles(n, t)[1] for n, t in zip(p.lay, tile)]
        elements = outer(*lens)
        plan = self._plan(p, tile)
        stats = plan[0]
        use = {"neurons": elements * p.npg}
        if p.halo:  # compartments over the tile and its halo (npg 1)
            (lo_r, hi_r), (lo_x, hi_x) = self.halo_box(p, stats)
            use["neurons"] = outer(lens[0], hi_r - lo_r, hi_x - lo_x)
        if check and self.over("neurons", use["neurons"]):
            return None
        k_src = p.src_npg or [1] * len(p.terms)
        circ = circuit(p.npg)
        ins, syn, imposed = self._inputs(p, plan, elements, circ, k_src)
        if check and self.over("in_axons", ins):
            return None
        out = self._outputs(p, tile, elements, circ)
        if check and self.over("out_axons", out):
            return None
        mem = self._memory(p, plan, elements, k_src)
        if check and self.over("synapse_bits", mem):
            return None
        use.update(in_axons=ins, synapses=syn, synapse_bits=mem, out_axons=out, imposed=imposed)
        return use

    def over(self, r: str, arr: np.ndarray) -> bool:
        """Some tile exceeds the limit of resource ``r`` (memory: its ``mem_fill`` share)."""
        cap = self.mem_fill if r == "synapse_bits" else 1.0
        return self.limits[r] is not None and arr.max() > self.limits[r] * cap

    def _inputs(self, p: Population, plan, elements, circ, k_src):
        """(input axons, synapses, output-axon slots the tile costs its producers). Per group
        of terms (``groups``) the channel counts are summed before the outer product."""
        ins = elements * circ["in_axons"]
        syn = elements * circ["synapses"]
        imposed = ins.copy()
        for (_, ks), (a0, imp0, syn0) in zip(self.groups(p), self._channel_sums(p, plan, k_src)):
            _, s1, s2 = plan[0][ks[0]]
            a = outer(a0, s1.footprint, s2.footprint)
            ins += a
            imposed += a if imp0 is a0 else outer(imp0, s1.footprint, s2.footprint)
            syn += outer(syn0, s1.fanin, s2.fanin)
        return ins, syn, imposed

    def _channel_sums(self, p: Population, plan, k_src) -> list[tuple]:
        """Per group of terms, per channel tile: (input axons, output-axon slots imposed on
        the producers, synapses) per unit of the row and column counts, cached in ``plan``
        for the population's source tiles and AMOS sizes."""
        key = (tuple(p.src_tiles), tuple(k_src))
        if plan[2] is None or plan[2][0] != key:
            sums = []
            for pop, ks in self.groups(p):
                f0 = [np.asarray(plan[0][k][0].footprint, np.int64) for k in ks]
                if pop:  # one axon per source pixel: its channels are the axon's atoms
                    a = sum((f > 0).astype(np.int64) for f in f0)
                    # pop32: 2 slots per source channel tile
                    imp = sum(2 * (f > 0).astype(np.int64) * p.src_tiles[k]
                              for f, k in zip(f0, ks))
                else:
                    a = imp = sum(f * k_src[k] for f, k in zip(f0, ks))
                sums.append((a, imp, sum(np.asarray(plan[0][k][0].fanin, np.int64) * k_src[k]
                                         for k in ks)))
            plan[2] = (key, sums)
        return plan[2][1]

    def out_groups(self, p: Population) -> list[tuple[bool, list[np.ndarray], np.ndarray,
                                                      np.ndarray]]:
        """``p.out_terms`` grouped by equal row and column parts: (population axons?, channel
        parts (discrete axons: summed, as ``np.add.reduceat`` is linear), rows, columns).
        Cached while ``p.out_terms`` is the same, unchanged list."""
        hit = self.out_cache.get(p.index)
        if hit is not None and hit[0] is p.out_terms and hit[1] == len(p.out_terms):
            return hit[2]
        by: dict[tuple, tuple] = {}
        for pop_term, oc, orow, ocol in p.out_terms:
            key = (pop_term, orow.shape, orow.dtype.str, orow.tobytes(), ocol.shape,
                   ocol.dtype.str, ocol.tobytes())
            by.setdefault(key, (pop_term, [], orow, ocol))[1].append(oc)
        merged = [(pop, ocs if pop else [sum(np.asarray(oc, np.int64) for oc in ocs)], r, c)
                  for pop, ocs, r, c in by.values()]
        self.out_cache[p.index] = (p.out_terms, len(p.out_terms), merged)
        return merged

    def _outputs(self, p: Population, tile, elements, circ) -> np.ndarray:
        """Output axons: per consumer term (``Population.out_terms``), the destination tiles
        each of the tile's neurons (or pixels, 2 slots each) reaches."""
        out = elements * circ["out_axons"]
        starts = [tiles(n, t)[0] for n, t in zip(p.lay, tile)]
        for pop_term, ocs, orow, ocol in self.out_groups(p):
            if pop_term:  # 2 slots (pop32) per source pixel and consumer tile reached
                ch = sum(2 * np.logical_or.reduceat(oc, starts[0], axis=1).sum(0) for oc in ocs)
            else:
                ch = np.add.reduceat(ocs[0], starts[0])
            out += outer(ch, np.add.reduceat(orow, starts[1]), np.add.reduceat(ocol, starts[2]))
        return out

    def _memory(self, p: Population, plan, elements, k_src) -> np.ndarray:
        """Synaptic memory bits: each term's word-aligned synapse lists (population axons: one
        weight set per distinct pattern, not per source pixel), plus AMOS circuits'. Per group
        of terms (``groups``, same row and column histograms) the per-channel-tile tables are
        summed first (cached in ``plan``)."""
        stats = plan[0]
        if plan[1] is None:
            plan[1] = []
            for _, ks in self.groups(p):
                (_, hr), (_, hx) = self._row_col_hists(p, ks[0], stats[ks[0]])
                plan[1].append(group_mem([(stats[k][0].hists, stats[k][0].hist_id, p.wbits[k],
                                           k_src[k]) for k in ks], hr, hx, self.word))
        mem = elements * self.circuit_bits(p.npg)
        for (_, ks), table in zip(self.groups(p), plan[1]):
            hr, hx = self._row_col_hists(p, ks[0], stats[ks[0]])
            mem += table[:, hr[0][:, None], hx[0][None, :]]
        return mem

    def _row_col_hists(self, p: Population, k: int, s):
        """Term ``k``'s (ids, histograms) along rows and columns that its memory counts."""
        if p.pop_axons[k]:
            return ([(x.halo_id, x.halo) for x in s[1:]] if p.halo
                    else [(x.shared_id, x.shared) for x in s[1:]])
        return [(x.hist_id, x.hists) for x in s[1:]]

    def halo_box(self, p: Population, stats) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per spatial axis, each tile's compartment range [lo, hi) with halo compartments:
        the union over the population-axon terms (each term's pixels reach only inside it)."""
        box = []
        for a in (1, 2):
            ranges = [(s[a].lo, s[a].hi) for k, s in enumerate(stats) if p.pop_axons[k]]
            box.append((np.min([r[0] for r in ranges], 0), np.max([r[1] for r in ranges], 0)))
        return box

    def circuit_bits(self, k: int) -> int:
        """Synaptic memory inside one AMOS gate of k neurons (``circuit``): lists of k
        (the input x) and k - j (neuron j's inhibition) synapses, each word aligned."""
        if k <= 1:
            return 0
        w = weight_bits(None, True, self.target)
        lists = np.arange(1, k + 1) * w
        if self.word:
            lists = -(-lists // self.word) * self.word
        return int(lists.sum())

    def fits(self, p: Population, tile) -> tuple[bool, dict[str, np.ndarray] | None]:
        use = self.usage(p, tile, check=True)
        return use is not None, use

    def fraction(self, use: dict[str, np.ndarray]) -> np.ndarray:
        """Per tile: the largest fraction of a core it takes in any resource."""
        return np.max([use[r] / self.limits[r] for r in RESOURCES if self.limits[r]], axis=0)


# ---------------------------------------------------------------------------------------------
# demand and the lower bound


def demand(pops: list[Population], cu: CoreUsage) -> dict[str, int]:
    """Slicing-independent totals, each at most what any valid placement uses (see the
    package docstring): each population unsplit for neurons, input axons and synaptic memory
    (the lesser of without and with whole halo compartments); for output axons, per source
    neuron ``min_out_axons``."""
    total = dict.fromkeys((*RESOURCES, "synapses"), 0)
    for p in pops:
        whole = Population(p.node, p.lay, p.terms, p.wbits, -1 - p.index, p.npg, p.src_npg,
                           p.pop_axons, src_tiles=p.src_tiles)
        use = cu.usage(whole, p.lay)
        for r in ("neurons", "in_axons", "synapses"):
            total[r] += int(use[r].sum())
        bits = int(use["synapse_bits"].sum())
        if halo_helps(p):  # halo compartments beyond the layer: one weight set per phase
            whole.halo = WHOLE_HALO
            bits = min(bits, int(cu.usage(whole, p.lay)["synapse_bits"].sum()))
        total["synapse_bits"] += bits
    total["out_axons"] = min_out_axons(pops, cu.limits)
    return total


def min_out_axons(pops: list[Population], limits: dict) -> int:
    """A lower bound of the output axons of any valid placement: a source neuron needs one
    output axon per core holding any of the neurons it reaches (on Loihi, and in this usage
    model, which counts one per destination slice), and those neurons need, on their cores,
    at least their synapses x weight bits of synaptic memory and their compartments, so they
    span at least ceil(that memory / a core's) and ceil(compartments / a core's) cores; at
    least 1 for a neuron with any consumer. Per consumer and source only the term with most
    synapses is counted (terms from one source may overlap), so nothing is counted twice.
    Population axons (``uses_population_axons``) are counted per source pixel: 2 slots per
    core holding any neuron its channels reach, at least ceil(those compartments / a core's)
    and ceil(the pixel's synapses x weight bits / a core's memory): weight sets are shared
    between pixels, but each core a pixel reaches holds its set's synapses onto that core's
    neurons."""
    mem, cap_n = limits["synapse_bits"], limits["neurons"]
    by_name = {p.node.name: p for p in pops}
    bits = {p.node.name: np.zeros(p.lay) for p in pops}
    count = {p.node.name: np.zeros(p.lay) for p in pops}
    pixels = {p.node.name: np.zeros(p.lay[1:]) for p in pops}  # population-axon targets
    pixel_bits = {p.node.name: np.zeros(p.lay[1:]) for p in pops}
    for q in pops:
        best: dict[str, int] = {}
        for k, t in enumerate(q.terms):
            n_syn = math.prod(float(rowsum(a).sum()) for a in t.axes)
            if t.source not in best or n_syn > best[t.source][0]:
                best[t.source] = (n_syn, k)
        chosen = [(k, q.terms[k]) for _, k in best.values()]
        # synaptic memory bits of each neuron of q, as a sum of separable parts
        parts = [(q.wbits[k], [rowsum(a) for a in t.axes]) for k, t in chosen
                 if not q.pop_axons[k]]  # shared weight sets bound no neuron's memory
        for k, t in chosen:
            if t.source not in by_name:
                continue
            reach = [tmul(a, np.ones(a.n_out)) for a in t.axes]
            if q.pop_axons[k]:
                any_ch = float((rowsum(t.axes[0]) > 0).sum())
                pixels[t.source] += any_ch * np.outer(reach[1], reach[2]) * q.npg
                pixel_bits[t.source] += (q.wbits[k] * float(reach[0].sum())
                                         * np.outer(reach[1], reach[2]))
                continue
            count[t.source] += _outer_f(*reach) * q.npg
            for w, rs in parts:
                bits[t.source] += w * _outer_f(*(tmul(a, r) for a, r in zip(t.axes, rs)))
    total = 0
    for name, c in count.items():
        need = (c > 0).astype(float)
        if mem:
            need = np.maximum(need, np.ceil(bits[name] / mem - 1e-9))
        if cap_n:
            need = np.maximum(need, np.ceil(c / cap_n - 1e-9))
        px = pixels[name]
        need_px = (px > 0).astype(float)
        if cap_n:
            need_px = np.maximum(need_px, np.ceil(px / cap_n - 1e-9))
        if mem:
            need_px = np.maximum(need_px, np.ceil(pixel_bits[name] / mem - 1e-9))
        total += int(need.sum()) + 2 * int(need_px.sum())
    return total


def _outer_f(a, b, c) -> np.ndarray:
    return np.asarray(a, float)[:, None, None] * np.asarray(b, float)[None, :, None] \
        * np.asarray(c, float)[None, None, :]


def lower_bound(demand: dict[str, int], limits: dict) -> int:
    """Cores at least: the largest demand / per-core capacity over the resources."""
    return max([math.ceil(demand[r] / limits[r]) for r in RESOURCES if limits[r]] + [1])


def check_system(target, n_cores, demand, limits, pops, uses) -> None:
    """Raise ``TargetConstraintError`` when ``n_cores`` exceed the system, naming the limiting
    resource, the layer with the largest demand of it, demand and limit."""
    c = target.chip
    if c.cores_per_chip is None or c.chips_per_system is None:
        return
    cap = c.cores_per_chip * c.chips_per_system
    if n_cores <= cap:
        return
    r = max((r for r in RESOURCES if limits[r]), key=lambda r: demand[r] / limits[r])
    worst = max(pops, key=lambda p: int(uses[p.node.name][r].sum()))
    raise TargetConstraintError(
        f"network needs {n_cores:,} cores but target '{target.name}' has {cap:,} "
        f"({c.chips_per_system} chips x {c.cores_per_chip} cores, {c.system}); limiting "
        f"resource {NOUN[r]}: {demand[r]:,} demanded vs {cap * limits[r]:,} available, largest "
        f"layer '{worst.node.name}' needs {int(uses[worst.node.name][r].sum()):,}")
