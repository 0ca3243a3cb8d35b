"""Core placement: an independent checker recomputes every core's usage from the artifact.

The checker does not use the placer's per-axis incidence algebra: it finds each population's
synapses by pushing one-hot source vectors through the graph's own linear ops (ANN interpreter
rules, weights replaced by 1, biases and constants zeroed), then counts per slice the source
neurons reached (input axons), the synapses, their word-aligned memory and the output axons.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse

from snnc.api import compile_model
from snnc.artifact import load_artifact
from snnc.compiler.passes.place import RESOURCES, place, populations
from snnc.errors import TargetConstraintError
from snnc.ir import neurons, ops
from snnc.ir.interpret import ANN_RULES, max_pool2d
from snnc.targets import load_target

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
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
    (cs, hs, ws), (c, h, w) = src_lay, dst_lay
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
    """The placer's rule (TARGETS.md, docs/targets.md): spatial source of 2 or more channels
    into a spatial layer, on targets with population axons."""
    return (target.core.population_axons and src_lay[1] * src_lay[2] > 1 and src_lay[0] >= 2
            and dst_lay[1] * dst_lay[2] > 1)


_INCIDENCE: dict[tuple, tuple] = {}


def check_artifact(path: Path, structure: tuple = ()) -> dict:
    """Recompute usage per slice and per core; assert limits, coverage and consistency.
    ``structure`` names graphs with the same connectivity (same model and method) so their
    incidence is computed once."""
    art = load_artifact(path)
    target = load_target(art.manifest["target"])
    word = target.core.synapse_word_bits
    slices = json.loads((path / "placement.json").read_text())["slices"]
    graph = art.graph
    pops = populations(graph)
    by_pop: dict[str, list[dict]] = {}
    for s in slices:
        by_pop.setdefault(s["population"], []).append(s)
    # every neuron in exactly one slice
    for p in pops:
        covered = np.zeros(p.output.type.size, np.int64)
        for s in by_pop[p.name]:
            covered[box_index(p.output.shape, s["start"], s["stop"])] += 1
        assert (covered == 1).all(), p.name
    recomputed = {id(s): dict.fromkeys(("neurons", "in_axons", "out_axons", "synapse_bits",
                                        "synapses"), 0) for s in slices}
    names = {p.name for p in pops} | {v.name for v in graph.inputs}
    shapes = {p.name: p.output.shape for p in pops} | {v.name: v.shape for v in graph.inputs}
    # AMOS circuits (docs/amos.md): k neurons per gate, each a separate axon with its own
    # synapse to every consumer of the gate; inside a gate, x reaches the k neurons (one list
    # of k synapses) and neuron j < k inhibits the k - j later ones (one axon each, back into
    # its own core)
    k_of = {p.name: neurons.neurons_per_gate(p.op) for p in pops}
    inh_bits = target.weights.mantissa_bits + int(target.weights.mixed_sign_extra_bit)
    for p in pops:
        k = k_of[p.name]
        lists = range(1, k + 1) if k > 1 else range(0)  # x: k synapses; neuron j: k - j
        for s in by_pop[p.name]:
            e = len(box_index(p.output.shape, s["start"], s["stop"]))
            r = recomputed[id(s)]
            lo, hi = halo_box(s)  # halo compartments may lie beyond the layer's edges
            assert 0 <= lo[0] < hi[0] <= layout(p.output.shape)[0], s
            r["neurons"] = math.prod(np.subtract(hi, lo)) * k
            r["in_axons"] += e * len(lists)
            r["out_axons"] += e * max(k - 1, 0)
            r["synapses"] += e * sum(lists)
            r["synapse_bits"] += e * sum(-(-j * inh_bits // word) * word for j in lists)
        lay = layout(p.output.shape)  # halo compartments up to e beyond the layer's edges
        e = max([0] + [max(-lo[1], -lo[2], hi[1] - lay[1], hi[2] - lay[2])
                       for lo, hi in map(halo_box, by_pop[p.name])])
        for src in sorted(feeding(graph, p, names)):
            key = (*structure, p.name, src)
            if not structure or key not in _INCIDENCE:
                _INCIDENCE[key] = incidence(graph, p, src)
            m, syn_names = _INCIDENCE[key]
            syn = [graph.producers()[t].op for t in syn_names]
            if not m.nnz:
                continue
            # the quantizer's bits per weight where it set them, else the target's format
            mixed = any(np.min(o.weight) < 0 < np.max(o.weight) for o in syn)
            bits = max([int(o.weight_bits) for o in syn if hasattr(o, "weight_bits")] or
                       [target.weights.mantissa_bits
                        + int(target.weights.mixed_sign_extra_bit and mixed)])
            k_src = k_of.get(src, 1)
            src_shape = shapes[src]
            pop_axons = uses_population_axons(target, layout(src_shape), layout(p.output.shape))
            reached = np.zeros(m.shape[0], np.int64)
            src_slices = by_pop.get(src, [])
            if e:  # halo compartments beyond the layer's edges
                assert pop_axons, (p.name, src)
                ext_lay = (lay[0], lay[1] + 2 * e, lay[2] + 2 * e)
                m_ext = continued(m, layout(src_shape), lay, e)
            for s in by_pop[p.name]:
                sub = m[:, box_index(p.output.shape, s["start"], s["stop"])]
                per_axon = np.asarray((sub != 0).sum(1)).ravel()
                r = recomputed[id(s)]
                r["synapses"] += int(per_axon.sum()) * k_src
                if not pop_axons:
                    r["in_axons"] += int((per_axon > 0).sum()) * k_src
                    r["synapse_bits"] += int((-(-per_axon * bits // word) * word).sum()) * k_src
                    reached += per_axon > 0
                    continue
                # pixels reaching the slice, with their synapses on its halo compartments too
                hit = (per_axon > 0).reshape(layout(src_shape))
                pixel_rows = np.tile(hit.any(0).ravel(), layout(src_shape)[0])
                lo, hi = halo_box(s)
                cols = (box_index(ext_lay, np.add(lo, (0, e, e)), np.add(hi, (0, e, e))) if e
                        else box_index(p.output.shape, lo, hi))
                sub_halo = sparse.diags(pixel_rows.astype(float)) @ (m_ext if e else m)[:, cols]
                axons, mem = population_axon_use(sparse.csc_matrix(sub_halo),
                                                 layout(src_shape), bits, word)
                r["in_axons"] += axons
                r["synapse_bits"] += mem * k_src  # k atoms per channel, each its own weights
                # 2 slots (pop32) per source pixel of a source slice and slice it reaches
                for q in src_slices:
                    (c0, y0, x0), (c1, y1, x1) = q["start"], q["stop"]
                    recomputed[id(q)]["out_axons"] += 2 * int(
                        hit[c0:c1, y0:y1, x0:x1].any(0).sum())
            for s in src_slices if not pop_axons else ():
                recomputed[id(s)]["out_axons"] += k_src * int(
                    reached[box_index(src_shape, s["start"], s["stop"])].sum())
    cores: dict[tuple, dict] = {}
    for s in slices:
        r = recomputed[id(s)]
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


@lru_cache(maxsize=None)
def _compiled(tmp: Path, example: str, target: str, method: str) -> Path:
    out = tmp / f"{example}-{target}-{method}.snnc"
    compile_model(EXAMPLES / example / f"{example}.onnx", target=target, method=method,
                  calib=EXAMPLES / example / "calib.npz", out=out)
    return out


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("place")


@pytest.mark.parametrize("method", ["rate", "fs", "amos", "ttfs"])
@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
@pytest.mark.parametrize("example", ["lenet", "resnet"])
def test_independent_checker(tmp, example, target, method):
    m = check_artifact(_compiled(tmp, example, target, method), (example, method))
    rows = m["placement"]["layers"]
    assert {r["name"] for r in rows} >= {p["name"] for p in m["populations"]}
    assert m["cores"] >= 2  # the examples do not fit one core
    # AMOS circuits are k = 10 neurons per gate, each with its own synapses: several chips
    assert m["chips"] == 1 or method == "amos"


def test_placement_is_deterministic(tmp):
    a = _compiled(tmp, "lenet", "loihi2", "fs")
    b = tmp / "again.snnc"
    compile_model(EXAMPLES / "lenet" / "lenet.onnx", target="loihi2", method="fs",
                  calib=EXAMPLES / "lenet" / "calib.npz", out=b)
    for name in ("placement.json", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def tiny_target(tmp: Path, cores: int, chips: int = 1, extra: str = "") -> Path:
    f = tmp / f"tiny{cores}x{chips}.toml"
    f.write_text(f'base = "loihi2"\n[chip]\ncores_per_chip = {cores}\n'
                 f"physical_cores_per_chip = {cores}\nchips_per_system = {chips}\n"
                 f"mesh_cols = {cores}\nmesh_rows = 1\ncores_per_tile = 1\n{extra}")
    return f


def test_network_larger_than_system_names_resource_and_layer(tmp):
    graph = load_artifact(_compiled(tmp, "resnet", "loihi2", "fs")).graph
    with pytest.raises(TargetConstraintError) as e:
        place(graph, load_target(tiny_target(tmp, 4)))
    msg = str(e.value)
    assert "\n" not in msg and "synaptic memory bits" in msg and "layer '/block1/" in msg
    assert "4 cores" in msg or "has 4" in msg


def test_neuron_fan_in_beyond_a_core_is_an_error(tmp):
    graph = load_artifact(_compiled(tmp, "lenet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 8, extra="[core]\nsynapse_mem_bits = 1024\n"))
    # consumers are sliced first: the readout's 120 input axons each hold one synapse list
    # rounded up to a 64-bit word
    with pytest.raises(TargetConstraintError, match=r"^layer 'logits': a single neuron needs "
                                                    r"7,680 synaptic memory bits; tiny8x1 core "
                                                    r"limit 1,024$"):
        place(graph, t)


def test_unlimited_input_axons_place(tmp):
    """A custom target may leave input axons unbounded: cutting an output-axon-bound layer then
    costs none (it once divided by the missing limit)."""
    graph = load_artifact(_compiled(tmp, "resnet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 64, extra='[core]\nmax_in_axons = "unlimited"\n'))
    pl = place(graph, t)
    assert pl.cores_lower_bound <= pl.cores <= 64
    assert all(s.out_axons <= t.core.max_out_axons for s in pl.slices)


def test_multi_chip_spread_and_traffic(tmp):
    graph = load_artifact(_compiled(tmp, "resnet", "loihi2", "fs")).graph
    t = load_target(tiny_target(tmp, 16, chips=8))
    pl = place(graph, t)
    assert pl.chips == math.ceil(pl.cores / 16) >= 2
    per_chip = {}
    for s in pl.slices:
        per_chip.setdefault(s.chip, set()).add(s.core)
    assert all(len(c) <= 16 for c in per_chip.values())
    assert 0 < pl.traffic["inter_core"] <= pl.traffic["routes"]
    assert pl.cores_lower_bound <= pl.cores


def _arrangement_cost(adj, order) -> float:
    pos = np.empty(len(order))
    pos[order] = np.arange(len(order))
    a = adj.tocoo()
    return float((a.data * np.abs(pos[a.row] - pos[a.col])).sum()) / 2


def test_barycentric_order_shortens_routes_and_keeps_a_good_one():
    from scipy.sparse import coo_matrix

    from snnc.compiler.passes.place import _barycentric

    n = 40  # two chains 0..19 and 20..39, joined end to end
    a = np.r_[np.arange(19), np.arange(20, 39), 19]
    b = a + 1
    adj = coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    straight = np.arange(n)
    assert _arrangement_cost(adj, _barycentric(adj, straight)) == n - 1  # already optimal
    shuffled = np.random.default_rng(0).permutation(n)
    refined = _barycentric(adj, shuffled)
    assert sorted(refined) == list(range(n))  # a permutation of the cores
    assert _arrangement_cost(adj, refined) < 0.5 * _arrangement_cost(adj, shuffled)


def test_word_channels_fill_whole_memory_words(tmp):
    from snnc.compiler.passes.place import _build_pops, _Slicer

    for name, bits in (("loihi2", 8), ("loihi1", 9)):  # loihi1: mixed-sign weights, 9 bits
        graph = load_artifact(_compiled(tmp, "lenet", name, "fs")).graph
        t = load_target(name)
        pops = [p for p in _build_pops(graph, t) if p.wbits and max(p.wbits) == bits]
        assert pops, [p.wbits for p in _build_pops(graph, t)]
        g = _Slicer(t).word_channels(pops[0])
        assert g == {8: 8, 9: 64}[bits] and g * bits % t.core.synapse_word_bits == 0


def pop_target(tmp: Path, base: str) -> Path:
    f = tmp / f"{base}-pop.toml"
    f.write_text(f'base = "{base}"\nname = "{base}-pop"\n[core]\npopulation_axons = true\n')
    return f


@pytest.mark.parametrize("method", ["rate", "fs", "amos", "ttfs"])
@pytest.mark.parametrize("base", ["loihi2", "loihi1"])
@pytest.mark.parametrize("example", ["lenet", "resnet"])
def test_independent_checker_with_population_axons(tmp, example, base, method):
    """Population axons (one per source pixel, weight sets shared between pixels with the same
    window pattern): the checker counts pixels and distinct weight patterns from the weights
    themselves (``population_axon_use``), the placer from the window structure."""
    out = tmp / f"{example}-{base}-pop-{method}.snnc"
    compile_model(EXAMPLES / example / f"{example}.onnx", target=base, method=method,
                  target_file=pop_target(tmp, base), calib=EXAMPLES / example / "calib.npz",
                  out=out)
    m = check_artifact(out, (example, method))
    discrete = load_artifact(_compiled(tmp, example, base, method)).manifest
    assert m["cores"] <= discrete["cores"]
    if example == "resnet" and method != "amos":
        if base == "loihi2":  # 16-32 channels: shared 3x3 weight sets
            assert 2 * m["cores"] <= discrete["cores"], (m["cores"], discrete["cores"])
        else:  # 1,024 compartments per core bound both (40,768 neurons: 40 cores)
            assert m["cores"] >= math.ceil(m["neurons"] / 1024)


def test_shared_weight_patterns_along_an_axis():
    from snnc.compiler.passes.place import _axis_stats, _window

    conv = _window(13, 13, 3, 1, 1, 1)  # 3-tap window, stride 1, padding 1
    whole = _axis_stats(conv, 13, shared=True)
    # edge rows reach 2 outputs, inner rows 3 through the same weights: 3 patterns, not 13
    assert [tuple(map(tuple, h)) for h in whole.shared] == [((2, 3), (2, 1))]
    # tiles [0, 5) [5, 10) [10, 13): cut windows at tile edges
    tiles = _axis_stats(conv, 5, shared=True)
    vals, cnt = tiles.shared[tiles.shared_id[1]]
    assert dict(zip(vals.tolist(), cnt.tolist())) == {1: 2, 2: 2, 3: 1}
    # stride 2: even and odd rows have their own weights
    stride2 = _axis_stats(_window(6, 13, 3, 2, 1, 1), 6, shared=True)
    assert sum(stride2.shared[0][1]) > 2
    # 2x2 pooling: one set
    pool = _axis_stats(_window(6, 12, 2, 2, 0, 1, uniform=True), 6, shared=True)
    assert [tuple(map(tuple, h)) for h in pool.shared] == [((1,), (1,))]
    assert _axis_stats(_window(6, 12, 2, 2, 0, 1), 6, shared=True).shared[0][1].tolist() == [2]


def test_halo_compartments_keep_whole_layer_patterns():
    from snnc.compiler.passes.place import _axis_stats, _window

    def hist(st, t):
        vals, cnt = st.halo[st.halo_id[t]]
        return dict(zip(vals.tolist(), cnt.tolist()))

    conv = _window(13, 13, 3, 1, 1, 1)  # tiles [0,5) [5,10) [10,13)
    whole = _axis_stats(conv, 5, shared=True, halo=1 << 20)
    # inputs 4..10 reach the inner tile: one whole 3-tap pattern (cut at its edges: 5 patterns)
    assert hist(whole, 1) == {3: 1}
    # the window continues beyond the layer (padding): the edge tiles' compartments reach one
    # row outside it, where inputs 0 and 12 keep the inner pattern, so no tile has a 2-tap one
    assert hist(whole, 0) == {3: 1} and hist(whole, 2) == {3: 1}
    assert whole.lo.tolist() == [-1, 3, 8] and whole.hi.tolist() == [7, 12, 14]
    # a halo of one: the outermost inputs' windows are cut at its edges, 3 patterns
    one = _axis_stats(conv, 5, shared=True, halo=1)
    assert hist(one, 1) == {2: 2, 3: 1} and hist(one, 0) == {2: 1, 3: 1}
    assert one.lo.tolist() == [-1, 4, 9] and one.hi.tolist() == [6, 11, 14]
    # stride 2: each phase keeps its own weights; no input's window is cut at the layer's
    # edges here, so no compartment lies beyond them
    s2 = _axis_stats(_window(7, 13, 3, 2, 1, 1), 3, shared=True, halo=1 << 20)
    assert hist(s2, 1) == {1: 1, 2: 1} and hist(s2, 0) == {1: 1, 2: 1}
    assert s2.lo.tolist() == [0, 2, 5] and s2.hi.tolist() == [4, 7, 7]
    # a valid (unpadded) window: edge inputs reach one output, continued to the full 5 taps
    valid = _axis_stats(_window(8, 12, 5, 1, 0, 1), 4, shared=True, halo=1 << 20)
    assert hist(valid, 0) == {5: 1} and valid.lo.tolist() == [-4, 0]
    # where no output sees a whole window (a 5-tap window over 4 rows), nothing continues
    small = _axis_stats(_window(4, 4, 5, 1, 2, 1), 2, shared=True, halo=1 << 20)
    assert small.lo.tolist() == [0, 0] and small.hi.tolist() == [4, 4]


def test_independent_checker_with_halo_compartments(tmp, monkeypatch):
    """A core of 96 kbit: the residual CNN's 3x3 convs tile, and halo compartments (never
    spiking, around each tile, beyond the layer's edges too) keep their windows whole, so fewer
    weight sets per core; the checker recounts the patterns over each slice's compartments,
    halo included (beyond the layer: the incidence continued by translation, ``continued``)."""
    import snnc.compiler.passes.place as place_pass

    f = tmp / "loihi2-pop-96k.toml"
    f.write_text('base = "loihi2"\nname = "loihi2-pop-96k"\n[core]\npopulation_axons = true\n'
                 "synapse_mem_bits = 98304\n")

    def compiled(name: str) -> Path:
        out = tmp / name
        compile_model(EXAMPLES / "resnet" / "resnet.onnx", target="loihi2", method="fs",
                      target_file=f, calib=EXAMPLES / "resnet" / "calib.npz", out=out)
        return out

    halo = compiled("resnet-halo.snnc")
    m = check_artifact(halo, ("resnet", "fs"))
    slices = json.loads((halo / "placement.json").read_text())["slices"]
    assert any(any(s.get("halo", ())) for s in slices)
    # edge tiles' halos reach beyond the layer, where the window continues (no edge weight set)
    lays = {p.name: layout(p.output.shape) for p in populations(load_artifact(halo).graph)}
    assert any(min(halo_box(s)[0]) < 0 or any(np.greater(halo_box(s)[1], lays[s["population"]]))
               for s in slices)
    # the manifest totals them (simulate --json counts their updates)
    real = sum(p.output.type.size for p in populations(load_artifact(halo).graph))
    assert m["placement"]["halo_compartments"] == sum(s["neurons"] for s in slices) - real > 0
    monkeypatch.setattr(place_pass, "_HALOS", (0,))
    plain = load_artifact(compiled("resnet-no-halo.snnc")).manifest
    assert m["cores"] < plain["cores"], (m["cores"], plain["cores"])


def test_producers_channel_tiles_scale_the_output_axons_a_tiling_costs(tmp):
    """Each channel tile of a population-axon source sends its own axon per pixel, so the
    tiling score charges a consumer tile's footprint once per channel tile its producer needs
    at least: its channels over the most that fit a core on one output pixel (3x3 conv on 64
    channels, 64 kbit: 9 one-tap weight sets of 64 word-aligned lists, 8 channels)."""
    from snnc.compiler.passes.place import _build_pops, _Slicer, _source_channel_tiles

    C, H, mem = 64, 8, 65536
    with torch.random.fork_rng(devices=[]):  # leave the global RNG to the other tests
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(2, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(C, 10))
    torch.onnx.export(net, torch.rand(1, 2, H, H), tmp / "chain.onnx", input_names=["x"],
                      output_names=["y"])
    np.savez(tmp / "chain-calib.npz",
             x=np.random.default_rng(0).random((4, 2, H, H)).astype(np.float32))
    f = tmp / "loihi2-pop-64k.toml"
    f.write_text('base = "loihi2"\nname = "loihi2-pop-64k"\n[core]\npopulation_axons = true\n'
                 f"synapse_mem_bits = {mem}\n")
    out = tmp / "chain.snnc"
    compile_model(tmp / "chain.onnx", target="loihi2", method="fs", target_file=f,
                  calib=tmp / "chain-calib.npz", out=out)
    check_artifact(out)
    t = load_target(f)
    pops = _build_pops(load_artifact(out).graph, t)
    by_name = {p.node.name: p for p in pops}
    _source_channel_tiles(pops, by_name, _Slicer(t))
    word = t.core.synapse_word_bits
    checked = 0
    for p in pops:
        for term, pop, tiles in zip(p.terms, p.pop_axons, p.src_tiles):
            src = by_name.get(term.source)
            if not pop or src is None:  # discrete axons, or the host's input
                assert tiles == 1
                continue
            if src.terms[0].axes[0].n_in != C:  # the first conv hears the 2-channel input
                continue
            bits = src.wbits[0]
            fit = max(c for c in range(1, C + 1)
                      if 9 * C * -(-c * bits // word) * word <= mem)
            assert tiles == -(-C // fit) > 1, (p.node.name, tiles, fit)
            checked += 1
    assert checked == 1  # the third conv's term from the second
