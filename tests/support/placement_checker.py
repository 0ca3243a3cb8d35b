"""Independent placement checker: recomputes every core's usage from an artifact.

The checker does not use the placer's per-axis incidence algebra: it finds each population's
synapses by pushing one-hot source vectors through the graph's own linear ops (ANN interpreter
rules, weights replaced by 1, biases and constants zeroed), then counts per slice the source
neurons reached (input axons), the synapses, their word-aligned memory and the output axons.
It takes from the placer only which nodes own neurons (``populations``) and the resource names.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

from snnc.artifact import load_artifact
from snnc.compiler.placement import RESOURCES, populations
from snnc.ir import neurons, ops
from snnc.ir.interpret import ANN_RULES, max_pool2d
from snnc.targets import load_target

__all__ = [
    "LIMIT",
    "box_index",
    "check_artifact",
    "continued",
    "feeding",
    "halo_box",
    "incidence",
    "layout",
    "population_axon_use",
    "uses_population_axons",
]

LIMIT = {"neurons": "max_neurons", "in_axons": "max_in_axons", "out_axons": "max_out_axons",
         "synapse_bits": "synapse_mem_bits"}


def _positive(op):
    """The op with distinct positive weights (1, 2, ...) and zero bias: its output is nonzero
    exactly where a synapse is stored (quantized mantissas may be 0, but their slots still take
    synaptic memory), and equal values mean the same weight (population axons share a weight
    set only between source pixels whose synapses carry the same weights)."""
    if isinstance(op, (ops.Conv2d, ops.Dense)):
        w = np.arange(1, op.weight.size + 1, dtype=np.float32).reshape(op.weight.shape)
        return dataclasses.replace(op, weight=w, bias=np.zeros_like(op.bias, np.float32))
    if isinstance(op, ops.BatchNorm):
        return dataclasses.replace(op, scale=np.abs(op.scale), bias=np.zeros_like(op.bias),
                                   mean=np.zeros_like(op.mean))
    return op


def _rule(op):
    kind = type(op).__name__
    if isinstance(op, ops.MaxPool2d):  # gates (SpikingMaxPool2d too): max of a window
        return max_pool2d
    if isinstance(op, ops.Conv2d):  # QConv2d too: integer mantissas, same incidence
        return ANN_RULES[ops.Conv2d]
    if isinstance(op, ops.Dense):
        return ANN_RULES[ops.Dense]
    if isinstance(op, (ops.Mul, ops.Div)):  # products/scalings: one synapse per element
        return lambda o, a, b: a.abs() + b.abs()
    if kind == "SumPool2d":
        return lambda o, x: torch.nn.functional.avg_pool2d(x, o.kernel, o.stride)
    if kind == "GlobalSumPool":
        return ANN_RULES[ops.GlobalAvgPool]
    if kind in ("QScale", "InputQuantizer", "QHybridInput", "QReadout"):  # 1:1 / host side
        return lambda o, x: x
    for cls, fn in ANN_RULES.items():
        if type(op) is cls:
            return fn
    raise AssertionError(f"checker has no rule for {kind}")


def incidence(graph, pop, source: str) -> tuple[sparse.csc_matrix, list[str]]:
    """(N_source, N_pop), sparse: the weight (``_positive``'s) of each source neuron's synapse
    onto each neuron, 0 where there is none; and the names of the synaptic ops on the way."""
    prods = graph.producers()
    pops = {p.name for p in populations(graph)}
    sources = pops | {v.name for v in graph.inputs}
    src_shape = next((v.shape for v in graph.inputs if v.name == source), None) or \
        prods[source].output.shape
    n_src = math.prod(src_shape)
    out, touched = [], set()
    for lo in range(0, n_src, 1024):
        k = min(1024, n_src - lo)
        eye = torch.zeros(k, n_src, dtype=torch.float32)
        eye[torch.arange(k), lo + torch.arange(k)] = 1.0
        cache: dict[str, torch.Tensor] = {}

        def value(v):
            if v.name == source:
                return eye.reshape(k, *src_shape)
            if v.name in sources:
                return torch.zeros(k, *v.shape, dtype=torch.float32)
            if v.name not in cache:
                cache[v.name] = node_out(prods[v.name])
            return cache[v.name]

        def node_out(n):
            if isinstance(n.op, ops.Constant):
                return torch.zeros(1, *n.output.shape, dtype=torch.float32)
            op = _positive(n.op)
            y = _rule(op)(op, *(value(v) for v in n.inputs)).to(torch.float32)
            if (y.abs() > 0).any():
                touched.add(n.name)
            return y

        own = pop.name in sources and not isinstance(pop.op, neurons.NEURON_OPS)
        y = node_out(pop) if own or pop.name not in pops else value(pop.inputs[0])
        out.append(sparse.csr_matrix(y.reshape(k, -1).abs().numpy()))
    syn = sorted(t for t in touched if isinstance(prods[t].op, (ops.Conv2d, ops.Dense))
                 or hasattr(prods[t].op, "weight_bits"))
    return sparse.vstack(out).tocsc(), syn


def feeding(graph, pop, sources: set[str]) -> set[str]:
    """Sources with a path of non-population nodes into ``pop``'s synapses."""
    prods = graph.producers()
    own = not isinstance(pop.op, neurons.NEURON_OPS)
    todo = [v.name for v in pop.inputs] if own else [pop.inputs[0].name]
    found, seen = set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in sources:
            found.add(name)
        elif name in prods:
            todo.extend(v.name for v in prods[name].inputs)
    return found


def layout(shape) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (shape[0] if shape else 1, 1, 1)


def box_index(shape, start, stop) -> np.ndarray:
    idx = np.arange(math.prod(layout(shape))).reshape(layout(shape))
    return idx[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]].ravel()


def halo_box(s: dict) -> tuple[list[int], list[int]]:
    """A slice's compartments: its box grown by its halo (rows above, below, columns left,
    right), never-spiking compartments that keep windows whole at the tile's edges."""
    up, down, left, right = s.get("halo", (0, 0, 0, 0))
    (c0, y0, x0), (c1, y1, x1) = s["start"], s["stop"]
    return [c0, y0 - up, x0 - left], [c1, y1 + down, x1 + right]


def _keys(rows, cols, n_cols: int) -> np.ndarray:
    return np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64)


def continued(m: sparse.csc_matrix, src_lay, dst_lay, e: int) -> sparse.csc_matrix:
    """(N_source, C x (H + 2e) x (W + 2e)): the incidence continued ``e`` outputs beyond each
    spatial edge of the layer (halo compartments there), by translation: a window is shift
    invariant, source pixel (y + sy n, x + sx n') reaching output (y' + n, x' + n') through the
    same weight as (y, x) reaches (y', x'). The stride (sy, sx) is the one under which
    translation reproduces the layer's own synapses; asserted for every translation used,
    and that translations agree on every continued synapse."""
    (_, hs, ws), (c, h, w) = src_lay, dst_lay
    coo = m.tocoo()
    ci, ys, xs = np.unravel_index(coo.row, src_lay)
    co, ty, tx = np.unravel_index(coo.col, dst_lay)
    keys = _keys(coo.row, coo.col, m.shape[1])
    order = np.argsort(keys)
    known, known_w = keys[order], coo.data[order]
    near = (ty < e) | (ty >= h - e) | (tx < e) | (tx >= w - e)  # may translate out

    def translate(ny, nx, sy, sx, sel):
        y2, x2, oy, ox = ys[sel] - ny * sy, xs[sel] - nx * sx, ty[sel] - ny, tx[sel] - nx
        ok = (y2 >= 0) & (y2 < hs) & (x2 >= 0) & (x2 < ws)
        inside = (oy >= 0) & (oy < h) & (ox >= 0) & (ox < w)
        src = np.ravel_multi_index((ci[sel], np.clip(y2, 0, hs - 1), np.clip(x2, 0, ws - 1)),
                                   src_lay)
        # inside the layer, translation must find the layer's own synapse and weight
        chk = ok & inside
        key = _keys(src[chk], np.ravel_multi_index(
            (co[sel][chk], oy[chk], ox[chk]), dst_lay), m.shape[1])
        at = np.minimum(np.searchsorted(known, key), len(known) - 1)
        hit = (known[at] == key) & (known_w[at] == coo.data[sel][chk])
        return src, oy, ox, ok & ~inside, int(hit.sum()), int((~hit).sum())

    def stride(axis: int) -> int:  # the step that reproduces the most synapses, none missed
        found = []
        for st in range(1, 5):
            _, _, _, _, good, bad = translate(axis == 0, axis == 1, st, st, near)
            found.append((bad == 0, good, -st))
        ok, good, st = max(found)
        assert ok and good, ("not shift invariant", found)
        return -st

    sy, sx = stride(0) if h > 1 else 1, stride(1) if w > 1 else 1
    rows, cols, vals = [coo.row], [np.ravel_multi_index((co, ty + e, tx + e),
                                                       (c, h + 2 * e, w + 2 * e))], [coo.data]
    for ny in (-e, 0, e):
        for nx in (-e, 0, e):
            if ny or nx:
                src, oy, ox, out, _, bad = translate(ny, nx, sy, sx, near)
                assert bad == 0, (ny, nx, bad)
                rows.append(src[out])
                cols.append(np.ravel_multi_index((co[near][out], oy[out] + e, ox[out] + e),
                                                 (c, h + 2 * e, w + 2 * e)))
                vals.append(coo.data[near][out])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    n_cols = c * (h + 2 * e) * (w + 2 * e)
    key = _keys(rows, cols, n_cols)
    uniq, first = np.unique(key, return_index=True)
    assert len(np.unique(np.stack([key, vals.astype(np.int64)]), axis=1)[0]) == len(uniq)
    return sparse.csc_matrix((vals[first], (rows[first], cols[first])),
                             shape=(m.shape[0], n_cols))


def population_axon_use(sub: sparse.csc_matrix, src_lay, bits: int, word: int) -> tuple[int, int]:
    """(input axons, synaptic memory bits) of population axons from a (C, H, W) source into one
    slice, ``sub`` its (source neurons x slice neurons) weights: one axon per source pixel with
    a synapse there; one weight set per distinct pattern, a pixel's (channel, target offset
    from its first target, weight) triples (the compartment base shifts a set to the pixel's
    targets), each channel's list word aligned."""
    coo = sub.tocoo()
    hw = src_lay[1] * src_lay[2]
    pixel, chan = coo.row % hw, coo.row // hw
    order = np.lexsort((coo.col, chan, pixel))
    pixel, chan, col, val = pixel[order], chan[order], coo.col[order], coo.data[order]
    starts = np.flatnonzero(np.r_[True, pixel[1:] != pixel[:-1]])
    base = np.minimum.reduceat(col, starts) if len(col) else col
    rel = col - np.repeat(base, np.diff(np.r_[starts, len(col)]))
    sets: dict[bytes, int] = {}
    for a, b in zip(starts, np.r_[starts[1:], len(col)]):
        key = np.stack([chan[a:b], rel[a:b], val[a:b].astype(np.int64)]).tobytes()
        if key not in sets:
            per_chan = np.bincount(chan[a:b])
            per_chan = per_chan[per_chan > 0]
            sets[key] = int((-(-per_chan * bits // word) * word).sum())
    return len(starts), sum(sets.values())


def uses_population_axons(target, src_lay, dst_lay) -> bool:
    """The placer's rule (docs/targets.md): spatial source of 2 or more channels
    into a spatial layer, on targets with population axons."""
    return (target.core.population_axons and src_lay[1] * src_lay[2] > 1 and src_lay[0] >= 2
            and dst_lay[1] * dst_lay[2] > 1)


_INCIDENCE: dict[tuple, tuple] = {}


@dataclasses.dataclass
class _Recount:
    """What the checker recounts for one artifact: per slice (by ``id``) its usage."""

    target: object
    graph: object
    by_pop: dict[str, list[dict]]
    recomputed: dict[int, dict[str, int]]
    shapes: dict[str, tuple]
    k_of: dict[str, int]
    structure: tuple

    @property
    def word(self) -> int:
        return self.target.core.synapse_word_bits


def check_artifact(path: Path, structure: tuple = ()) -> dict:
    """Recompute usage per slice and per core; assert limits, coverage and consistency.
    ``structure`` names graphs with the same connectivity (same model and method) so their
    incidence is computed once."""
    art = load_artifact(path)
    target = load_target(art.manifest["target"])
    slices = json.loads((path / "placement.json").read_text())["slices"]
    graph = art.graph
    pops = populations(graph)
    by_pop: dict[str, list[dict]] = {}
    for s in slices:
        by_pop.setdefault(s["population"], []).append(s)
    _check_coverage(pops, by_pop)
    rc = _Recount(
        target, graph, by_pop,
        {id(s): dict.fromkeys(("neurons", "in_axons", "out_axons", "synapse_bits", "synapses"),
                              0) for s in slices},
        {p.name: p.output.shape for p in pops} | {v.name: v.shape for v in graph.inputs},
        {p.name: neurons.neurons_per_gate(p.op) for p in pops}, structure)
    names = {p.name for p in pops} | {v.name for v in graph.inputs}
    for p in pops:
        _count_own(rc, p)
        lay = layout(p.output.shape)  # halo compartments up to e beyond the layer's edges
        e = max([0] + [max(-lo[1], -lo[2], hi[1] - lay[1], hi[2] - lay[2])
                       for lo, hi in map(halo_box, by_pop[p.name])])
        for src in sorted(feeding(graph, p, names)):
            _count_term(rc, p, src, e)
    return _check_cores(rc, art, slices)


def _check_coverage(pops, by_pop) -> None:
    """Every neuron in exactly one slice."""
    for p in pops:
        covered = np.zeros(p.output.type.size, np.int64)
        for s in by_pop[p.name]:
            covered[box_index(p.output.shape, s["start"], s["stop"])] += 1
        assert (covered == 1).all(), p.name


def _count_own(rc: _Recount, p) -> None:
    """A slice's compartments, and its AMOS circuits (docs/amos.md): k neurons per gate, each a
    separate axon with its own synapse to every consumer of the gate; inside a gate, x reaches
    the k neurons (one list of k synapses) and neuron j < k inhibits the k - j later ones (one
    axon each, back into its own core)."""
    word = rc.word
    inh_bits = rc.target.weights.mantissa_bits + int(rc.target.weights.mixed_sign_extra_bit)
    k = rc.k_of[p.name]
    lists = range(1, k + 1) if k > 1 else range(0)  # x: k synapses; neuron j: k - j
    for s in rc.by_pop[p.name]:
        e = len(box_index(p.output.shape, s["start"], s["stop"]))
        r = rc.recomputed[id(s)]
        lo, hi = halo_box(s)  # halo compartments may lie beyond the layer's edges
        assert 0 <= lo[0] < hi[0] <= layout(p.output.shape)[0], s
        r["neurons"] = math.prod(np.subtract(hi, lo)) * k
        r["in_axons"] += e * len(lists)
        r["out_axons"] += e * max(k - 1, 0)
        r["synapses"] += e * sum(lists)
        r["synapse_bits"] += e * sum(-(-j * inh_bits // word) * word for j in lists)


def _count_term(rc: _Recount, p, src: str, e: int) -> None:
    """The synapses from ``src`` into each slice of ``p`` (``e``: halo compartments beyond
    the layer's edges), and the output axons they cost ``src``'s slices."""
    target, graph, word = rc.target, rc.graph, rc.word
    key = (*rc.structure, p.name, src)
    if not rc.structure or key not in _INCIDENCE:
        _INCIDENCE[key] = incidence(graph, p, src)
    m, syn_names = _INCIDENCE[key]
    syn = [graph.producers()[t].op for t in syn_names]
    if not m.nnz:
        return
    # the quantizer's bits per weight where it set them, else the target's format
    mixed = any(np.min(o.weight) < 0 < np.max(o.weight) for o in syn)
    bits = max([int(o.weight_bits) for o in syn if hasattr(o, "weight_bits")] or
               [target.weights.mantissa_bits
                + int(target.weights.mixed_sign_extra_bit and mixed)])
    k_src = rc.k_of.get(src, 1)
    src_shape = rc.shapes[src]
    pop_axons = uses_population_axons(target, layout(src_shape), layout(p.output.shape))
    reached = np.zeros(m.shape[0], np.int64)
    src_slices = rc.by_pop.get(src, [])
    m_ext = None
    if e:  # halo compartments beyond the layer's edges
        assert pop_axons, (p.name, src)
        m_ext = continued(m, layout(src_shape), layout(p.output.shape), e)
    for s in rc.by_pop[p.name]:
        sub = m[:, box_index(p.output.shape, s["start"], s["stop"])]
        per_axon = np.asarray((sub != 0).sum(1)).ravel()
        r = rc.recomputed[id(s)]
        r["synapses"] += int(per_axon.sum()) * k_src
        if not pop_axons:
            r["in_axons"] += int((per_axon > 0).sum()) * k_src
            r["synapse_bits"] += int((-(-per_axon * bits // word) * word).sum()) * k_src
            reached += per_axon > 0
            continue
        _count_population_axons(rc, p, s, src_slices, src_shape,
                                m if m_ext is None else m_ext, e, per_axon, bits, k_src)
    for s in src_slices if not pop_axons else ():
        rc.recomputed[id(s)]["out_axons"] += k_src * int(
            reached[box_index(src_shape, s["start"], s["stop"])].sum())


def _count_population_axons(rc: _Recount, p, s: dict, src_slices: list[dict], src_shape, m,
                            e: int, per_axon, bits: int, k_src: int) -> None:
    """Population axons into slice ``s``: pixels reaching it, with their synapses on its halo
    compartments too (``m``: the incidence, continued ``e`` beyond the layer's edges), and the
    output axons they cost the source's slices ``src_slices``."""
    lay = layout(p.output.shape)
    r = rc.recomputed[id(s)]
    hit = (per_axon > 0).reshape(layout(src_shape))
    pixel_rows = np.tile(hit.any(0).ravel(), layout(src_shape)[0])
    lo, hi = halo_box(s)
    ext_lay = (lay[0], lay[1] + 2 * e, lay[2] + 2 * e)
    cols = (box_index(ext_lay, np.add(lo, (0, e, e)), np.add(hi, (0, e, e))) if e
            else box_index(p.output.shape, lo, hi))
    sub_halo = sparse.diags(pixel_rows.astype(float)) @ m[:, cols]
    axons, mem = population_axon_use(sparse.csc_matrix(sub_halo), layout(src_shape), bits,
                                     rc.word)
    r["in_axons"] += axons
    r["synapse_bits"] += mem * k_src  # k atoms per channel, each its own weights
    # 2 slots (pop32) per source pixel of a source slice and slice it reaches
    for q in src_slices:
        (c0, y0, x0), (c1, y1, x1) = q["start"], q["stop"]
        rc.recomputed[id(q)]["out_axons"] += 2 * int(hit[c0:c1, y0:y1, x0:x1].any(0).sum())


def _check_cores(rc: _Recount, art, slices) -> dict:
    """Recounts equal the placer's; per-core sums within every limit; the manifest's core
    count and lower bound consistent with them."""
    target = rc.target
    cores: dict[tuple, dict] = {}
    for s in slices:
        r = rc.recomputed[id(s)]
        # the placer's structural counts match the interpreter's exactly
        for key in ("neurons", "in_axons", "synapses", "out_axons"):
            assert r[key] == s[key], (s["population"], key, r[key], s[key])
        assert r["synapse_bits"] <= s["synapse_bits"], s
        c = cores.setdefault((s["chip"], s["core"]), dict.fromkeys(RESOURCES, 0))
        for key in RESOURCES:
            c[key] += r[key]
    for (chip, core), use in cores.items():
        for key in RESOURCES:
            assert use[key] <= getattr(target.core, LIMIT[key]), (chip, core, key, use)
        assert 0 <= core < target.chip.cores_per_chip
        assert 0 <= chip < target.chip.chips_per_system
    m = art.manifest
    assert m["cores"] == len(cores) == m["placement"]["cores"]
    assert m["cores_lower_bound"] <= m["cores"]
    # the lower bound's demands are at most what this placement uses, resource by resource
    demand = m["placement"]["demand"]
    for key in RESOURCES:
        used = sum(c[key] for c in cores.values())
        assert demand[key] <= used, (key, demand[key], used)
        limit = getattr(target.core, LIMIT[key])
        assert m["cores_lower_bound"] >= math.ceil(demand[key] / limit)
    return m
