"""Populations and their synaptic terms: which source neurons reach which neurons, per axis.

A population owns neurons (a neuron population, a pooling gate or relay, a linear readout); its
synaptic input is a list of terms, one per source population (or network input) reaching it
through linear ops, each a per-axis incidence (``axes.Axis``). ``AXES`` is the per-op table of
how one op maps its input's incidence to its output's; ``REFUSED`` lists the op classes that
never reach it, with the reason. ``tile_edges`` turns the terms into axon routes between tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.compiler.placement.axes import (
    Axis,
    Layout,
    all_to_all,
    broadcast_axes,
    compose,
    contains,
    eye,
    full,
    layout,
    mat,
    rowsum,
    window,
)
from snnc.compiler.placement.axis_stats import AxisStats, tiles
from snnc.compiler.placement.index_chains import index_chain_axes
from snnc.ir import leaky, neurons, norm_ops, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.targets.target import TargetSpec

__all__ = ["AXES", "POOL_OPS", "REFUSED", "AxesRule", "Population", "Term", "Terms", "axes_rule",
           "build_pops", "channel_segments", "dense_worst_case", "halo_helps", "is_pool",
           "is_population", "npg", "populations", "term_axons", "tile_edges",
           "uses_population_axons", "weight_bits"]


def weight_bits(node: Node | None, mixed_sign: bool, target: TargetSpec) -> int:
    """Stored bits per synapse of one synaptic term. Until the quantize pass annotates ops with
    their bits, this is the target's mantissa (+1 sign bit for mixed-sign weights where the
    target needs it); the single place to read a quantized op's bits later."""
    bits = getattr(getattr(node, "op", None), "weight_bits", None)
    if bits is not None:
        return int(bits)
    w = target.weights
    if w.mantissa_bits is None:
        return 32  # float target: one float32 per synapse
    return w.mantissa_bits + int(bool(w.mixed_sign_extra_bit and mixed_sign))


@dataclass(frozen=True)
class Term:
    """Synapses from population ``source`` (layout axes incidence) into a value."""

    source: str
    axes: tuple[Axis, Axis, Axis]
    mixed: bool
    nodes: tuple[Node, ...]  # synaptic ops on the way (weight bits: the widest)


# Pools get compartments of their own (``is_population``). Not a role: Conv2d, Dense and QScale
# share the pools' SYNAPTIC role, MaxPool2d is a POOLING_GATE.
POOL_OPS = (ops.MaxPool2d, ops.AvgPool2d, ops.GlobalAvgPool, q.SumPool2d, q.GlobalSumPool)


def is_pool(node: Node) -> bool:
    return isinstance(node.op, POOL_OPS)


def is_population(node: Node) -> bool:
    """Neuron populations, and pooling gates/relays: a pool folded into the next synapses
    would multiply their fan-in by the window (a global pool by H x W, beyond any core's input
    axons), so pooling gets its own compartments that sum (or max) their window."""
    return isinstance(node.op, neurons.NEURON_OPS) or is_pool(node)


def populations(graph: Graph) -> list[Node]:
    """Nodes that own neurons: neuron populations, pooling gates/relays and linear readouts
    (graph outputs not produced by a population), in topological order."""
    outs = {v.name for v in graph.outputs}
    return [n for n in graph.nodes
            if is_population(n) or (n.name in outs and not isinstance(n.op, ops.Constant))]


# ---------------------------------------------------------------------------------------------
# per-op table: input i's incidence through one op -> (axes, mixed-sign weights, synaptic node)

AxesRule = Callable[[Node, int, Layout, Layout], tuple[tuple[Axis, ...], bool, Node | None]]


def _mixed(w: np.ndarray) -> bool:
    return bool(w.size and w.min() < 0 < w.max())


def dense_worst_case(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    """Ops without a structural rule: all-to-all, mixed-sign synapses (an upper bound)."""
    return all_to_all(in_lay, out_lay), True, node


def _conv(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    op = node.op
    o, cg = op.weight.shape[0], op.weight.shape[1]
    og = o // op.groups
    ch = mat((np.arange(o)[:, None] // og) == (np.arange(in_lay[0])[None, :] // cg))
    kh, kw = op.weight.shape[2:]
    rows = window(out_lay[1], in_lay[1], kh, op.stride[0], op.padding[0], op.dilation[0])
    cols = window(out_lay[2], in_lay[2], kw, op.stride[1], op.padding[1], op.dilation[1])
    return (ch, rows, cols), _mixed(op.weight), node


def _dense(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    op = node.op
    if in_lay[1:] == (1, 1) and out_lay[1:] == (1, 1):
        return (full(out_lay[0], in_lay[0]), eye(1), eye(1)), _mixed(op.weight), node
    return all_to_all(in_lay, out_lay), _mixed(op.weight), node


def _pool_window(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    op = node.op
    dil = getattr(op, "dilation", (1, 1))
    pad = getattr(op, "padding", (0, 0, 0, 0))
    rows = window(out_lay[1], in_lay[1], op.kernel[0], op.stride[0], pad[0], dil[0],
                  uniform=True)
    cols = window(out_lay[2], in_lay[2], op.kernel[1], op.stride[1], pad[1], dil[1],
                  uniform=True)
    return (eye(in_lay[0]), rows, cols), False, node


def _scale(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    """One-to-one synapses with a shared weight."""
    return broadcast_axes(in_lay, out_lay), False, node


def _host_side(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    """Host-side encode / decode: no synapses of their own."""
    return broadcast_axes(in_lay, out_lay), False, None


def _global_pool(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    return (eye(in_lay[0]), full(out_lay[1], in_lay[1]), full(out_lay[2], in_lay[2])), False, node


def _concat(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    op = node.op
    rank = len(node.inputs[0].shape)
    if rank == 3:
        off = sum(v.shape[op.axis] for v in node.inputs[:i])
        axes = []
        for a in range(3):
            if a == op.axis:
                m = np.zeros((out_lay[a], in_lay[a]), bool)
                m[off + np.arange(in_lay[a]), np.arange(in_lay[a])] = True
                axes.append(mat(m, 1, True))
            else:
                axes.append(eye(out_lay[a]))
        return tuple(axes), False, None
    if rank == 1:
        off = sum(v.shape[0] for v in node.inputs[:i])
        m = np.zeros((out_lay[0], in_lay[0]), bool)
        m[off + np.arange(in_lay[0]), np.arange(in_lay[0])] = True
        return (mat(m), eye(1), eye(1)), False, None
    return dense_worst_case(node, i, in_lay, out_lay)


def _slice(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    """Channels [start, stop) of the first axis."""
    m = np.zeros((out_lay[0], in_lay[0]), bool)
    m[np.arange(out_lay[0]), node.op.start + np.arange(out_lay[0])] = True
    return (mat(m), eye(out_lay[1]), eye(out_lay[2])), False, None


def _pad(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    if len(node.inputs[0].shape) != 3:
        return dense_worst_case(node, i, in_lay, out_lay)
    axes = []
    for a in range(3):
        m = np.zeros((out_lay[a], in_lay[a]), bool)
        src = np.arange(out_lay[a]) - node.op.pads[a]
        ok = (src >= 0) & (src < in_lay[a])
        m[np.arange(out_lay[a])[ok], src[ok]] = True
        axes.append(mat(m, 1, True))
    return tuple(axes), False, None


def _elementwise(node: Node, i: int, in_lay: Layout, out_lay: Layout):
    """Scaling, sums, products of populations: one synapse per element."""
    return broadcast_axes(in_lay, out_lay), False, None


# Subclasses (QConv2d, the spiking max-pools) are listed with their base's rule so the table is
# complete; ``axes_rule`` also finds an unlisted subclass's base through its MRO.
AXES: dict[type[ops.Op], AxesRule] = {
    ops.Conv2d: _conv, q.QConv2d: _conv,
    ops.Dense: _dense, q.QDense: _dense,
    ops.AvgPool2d: _pool_window, ops.MaxPool2d: _pool_window, q.SumPool2d: _pool_window,
    neurons.SpikingMaxPool2d: _pool_window, neurons.FirstSpikeMaxPool2d: _pool_window,
    q.QScale: _scale,
    q.InputQuantizer: _host_side, q.QHybridInput: _host_side, q.QReadout: _host_side,
    **{cls: _host_side for cls in (leaky.SpikeTrainInput, leaky.QSpikeTrainInput,
                                   leaky.LeakyIntegrator, leaky.QLeakyReadout)},
    ops.GlobalAvgPool: _global_pool, q.GlobalSumPool: _global_pool,
    ops.Concat: _concat, ops.Slice: _slice, ops.Pad: _pad,
    ops.Add: _elementwise, ops.Sub: _elementwise, ops.Mul: _elementwise, ops.Div: _elementwise,
    ops.BatchNorm: _elementwise, ops.Identity: _elementwise, ops.Activation: _elementwise,
    # no structure known: every input may reach every output
    ops.Softmax: dense_worst_case, ops.LRN: dense_worst_case,
    **{cls: dense_worst_case for cls in norm_ops.NORM_OPS},
}

_SOURCE = "a population: the source of terms, never traversed"
REFUSED: dict[type[ops.Op], str] = {
    ops.Constant: "adds no synapses (a constant input is skipped)",
    ops.Reshape: "layout chains map indices over the whole chain (Terms.layout_chain)",
    ops.Transpose: "layout chains map indices over the whole chain (Terms.layout_chain)",
    **{cls: _SOURCE for cls in (
        neurons.IFNeurons, neurons.FewSpikeNeurons, neurons.AmosNeurons,
        neurons.SingleSpikeNeurons, neurons.HybridInputNeurons, neurons.PartialSumRelay,
        q.QIFNeurons, q.QFewSpikeNeurons, q.QAmosNeurons, q.QSingleSpikeNeurons,
        leaky.LeakyNeurons, leaky.QLeakyNeurons)},
}


def axes_rule(op: ops.Op) -> AxesRule:
    """The op's rule in ``AXES`` (nearest class in its MRO); the dense worst case for none."""
    for cls in type(op).__mro__:
        rule = AXES.get(cls)
        if rule is not None:
            return rule
    return dense_worst_case


# ---------------------------------------------------------------------------------------------
# terms


def _through(axes, t: Term, mixed: bool, syn: Node | None) -> Term:
    """Term ``t`` continued through one op whose incidence is ``axes``."""
    return Term(t.source, tuple(compose(a, b) for a, b in zip(axes, t.axes)),
                t.mixed or mixed, t.nodes + ((syn,) if syn else ()))


class Terms:
    """Synaptic terms of a graph's values, memoized: a value's terms are those of the sources
    (network inputs and populations) reaching it through linear ops."""

    def __init__(self, graph: Graph, pops: list[Node]):
        self.producers = graph.producers()
        self.sources = {v.name for v in graph.inputs} | {p.name for p in pops}
        # a time-series input (T, *shape) feeds its steps through the same *shape axons
        self.sources |= {n.name for n in graph.nodes if isinstance(n.op, leaky.SpikeTrainInput)}
        self.memo: dict[str, list[Term]] = {}

    def of_value(self, v) -> list[Term]:
        if v.name in self.sources:
            lay = layout(v.shape)
            return [Term(v.name, tuple(eye(d) for d in lay), False, ())]
        if v.name not in self.memo:
            self.memo[v.name] = self.of_node(self.producers[v.name])
        return self.memo[v.name]

    def of_node(self, node: Node) -> list[Term]:
        """Terms of a node's output computed from its inputs (the node is not a source)."""
        op = node.op
        out_lay = layout(node.output.shape)
        if isinstance(op, ops.Constant):
            return []
        if isinstance(op, (ops.Reshape, ops.Transpose)):
            exact = index_chain_axes(node, self.producers, self.sources)  # Resize lowerings
            return [Term(*exact)] if exact is not None else self.layout_chain(node)
        rule = axes_rule(op)
        terms: list[Term] = []
        for i, v in enumerate(node.inputs):
            src = self.producers.get(v.name)
            if src is not None and isinstance(src.op, ops.Constant):
                continue
            axes, mixed, syn = rule(node, i, layout(v.shape), out_lay)
            terms.extend(_through(axes, t, mixed, syn) for t in self.of_value(v))
        return merge(terms)

    def layout_chain(self, node: Node) -> list[Term]:
        """Maximal chain of Reshape/Transpose ending at ``node``: exact index map."""
        chain = [node]
        while True:
            v = chain[0].inputs[0]
            p = self.producers.get(v.name)
            if v.name in self.sources or p is None or not isinstance(p.op, (ops.Reshape,
                                                                            ops.Transpose)):
                break
            chain.insert(0, p)
        u = chain[0].inputs[0]
        idx = np.arange(math.prod(u.shape) or 1).reshape(u.shape)
        for n in chain:
            idx = idx.reshape(n.op.shape) if isinstance(n.op, ops.Reshape) else \
                idx.transpose(n.op.perm)
        out_lay, in_lay = layout(node.output.shape), layout(u.shape)
        cs, ys, xs = np.unravel_index(idx.reshape(out_lay), in_lay)
        separable = (np.all(cs == cs[:, :1, :1]) and np.all(ys == ys[:1, :, :1])
                     and np.all(xs == xs[:1, :1, :]))
        if separable:
            axes = []
            for a, coord in enumerate((cs[:, 0, 0], ys[0, :, 0], xs[0, 0, :])):
                m = np.zeros((out_lay[a], in_lay[a]), bool)
                m[np.arange(out_lay[a]), coord] = True
                axes.append(mat(m))
            axes = tuple(axes)
        else:
            axes = all_to_all(in_lay, out_lay)
        return merge([Term(t.source, tuple(compose(a, b) for a, b in zip(axes, t.axes)),
                           t.mixed, t.nodes) for t in self.of_value(u)])


def merge(terms: list[Term]) -> list[Term]:
    """Drop a term whose synapses another term from the same source already covers (a skip
    connection inside a conv window); others from the same source are kept (an upper bound)."""
    out: list[Term] = []
    for t in terms:
        if any(o.source == t.source and all(contains(a, b) for a, b in zip(o.axes, t.axes))
               for o in out):
            continue
        out = [o for o in out if not (o.source == t.source and all(
            contains(a, b) for a, b in zip(t.axes, o.axes)))]
        out.append(t)
    return out


# ---------------------------------------------------------------------------------------------
# populations as the placer sees them


@dataclass
class Population:
    """One population's terms, weight bits and (once sliced) its tiling."""

    node: Node
    lay: Layout
    terms: list[Term]
    wbits: list[int]
    index: int
    npg: int = 1  # neurons per element (AMOS circuits: K)
    src_npg: list[int] = field(default_factory=list)  # per term: its source's neurons per element
    pop_axons: list[bool] = field(default_factory=list)  # per term: population axons
    # per term: the fewest channel tiles its source can be cut in (``source_channel_tiles``)
    src_tiles: list[int] = field(default_factory=list)
    halo: int = 0  # halo compartments on each side of each tile (``halo_stats``)
    tile: tuple | None = None
    stats: list[tuple[AxisStats, ...]] = field(default_factory=list)
    # per consumer term: (population axons?, channel part, per source row, per source column):
    # discrete axons: per source channel, the consumer tiles it reaches along channels; population
    # axons: (consumer channel tiles x source channels) reach, counted once per source tile
    out_terms: list[tuple[bool, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


def npg(node: Node) -> int:
    """Neurons per element of a population node (AMOS circuits: K)."""
    return neurons.neurons_per_gate(node.op)


def build_pops(graph: Graph, target: TargetSpec) -> list[Population]:
    """Every population of ``graph`` with its terms, in topological order."""
    nodes = populations(graph)
    finder = Terms(graph, nodes)
    pops = []
    for i, n in enumerate(nodes):
        if is_population(n) and not is_pool(n):
            terms = finder.of_value(n.inputs[0])
        else:  # pooling gate / readout: the node's own op is the synapse
            terms = finder.of_node(n)
        wb = [max([weight_bits(n, t.mixed, target) for n in t.nodes]
                  or [weight_bits(None, t.mixed, target)]) for t in terms]
        lay = layout(n.output.shape)
        pops.append(Population(n, lay, terms, wb, i, npg(n),
                               pop_axons=[uses_population_axons(t, lay, target) for t in terms]))
    per = {p.node.name: p.npg for p in pops}
    for p in pops:
        p.src_npg = [per.get(t.source, 1) for t in p.terms]
    return pops


def uses_population_axons(term: Term, lay: Layout, target: TargetSpec) -> bool:
    """A term between two spatial layers (H x W > 1) from a source of 2 or more channels
    sends population axons on targets that have them: one axon per source pixel, the pixel's
    channels its atoms (nengo-loihi's conv connections, pop32 axons); 1-D layers keep one axon
    per neuron, as in nengo-loihi."""
    c, h, w = (a.n_in for a in term.axes)
    return bool(target.core.population_axons) and h * w > 1 and c >= 2 and lay[1] * lay[2] > 1


def term_axons(term: Term, lay: Layout, target: TargetSpec, k_src: int = 1) -> int:
    """Input axons the widest single neuron of ``lay`` needs for ``term``: its source pixels
    (population axons) or source neurons, an AMOS source's k per element."""
    fan = [int(rowsum(a).max()) for a in term.axes]
    if uses_population_axons(term, lay, target):
        return fan[1] * fan[2]
    return math.prod(fan) * k_src


def halo_helps(p: Population) -> bool:
    """Halo compartments are tried for populations of single neurons per element with a
    population-axon term through a shift-invariant window (where tile edges cut patterns),
    not fed by a concatenation (whose part-aligned tiling search is the slow one: DenseNet-121
    places in 4.6 x the time with halos tried, and gains 1 %)."""
    return p.npg == 1 and len(channel_segments(p)) <= 2 and any(
        pop and any(a.kind == "matrix" and a.period for a in t.axes[1:])
        for t, pop in zip(p.terms, p.pop_axons))


def channel_segments(p: Population) -> np.ndarray:
    """Boundaries of the runs of channels fed by the same set of terms (a concatenation's
    parts): [0, ..., C]."""
    C = p.lay[0]
    fed = np.array([rowsum(t.axes[0]) > 0 for t in p.terms]).reshape(len(p.terms), C)
    change = np.flatnonzero((fed[:, 1:] != fed[:, :-1]).any(0)) + 1
    return np.r_[0, change, C]


def tile_edges(pops: list[Population], by_name: dict, offsets: dict):
    """Axon routes between tiles: (source tile, destination tile, source neurons routed; an
    AMOS circuit's k neurons each)."""
    srcs, dsts, ws = [], [], []
    for p in pops:
        for k, t in enumerate(p.terms):
            if t.source not in by_name:
                continue
            s = by_name[t.source]
            sidx, d, w = _term_edges(p, k, s)
            srcs.append(sidx + offsets[s.node.name])
            dsts.append(d + offsets[p.node.name])
            ws.append(w * p.src_npg[k])
    if not srcs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(srcs), np.concatenate(dsts), np.concatenate(ws)


def _term_edges(p: Population, k: int, s: Population):
    """Routes of term ``k`` of ``p`` from its source ``s``, tiles numbered within each
    population: (source tile, destination tile, source neurons routed)."""
    inter, shape_s = [], []
    for a in range(3):
        st = p.stats[k][a]
        starts, _ = tiles(s.lay[a], s.tile[a])
        inter.append(np.add.reduceat(st.reach.astype(np.int64), starts, axis=1))
        shape_s.append(len(starts))
    nz = [np.nonzero(m) for m in inter]
    dc, dr, dx = (np.asarray(z[0]) for z in nz)
    sc, sr, sx = (np.asarray(z[1]) for z in nz)
    wc, wr, wx = (m[z] for m, z in zip(inter, nz))
    n_d = [len(st.starts) for st in p.stats[k]]
    ic, ir, ix = np.meshgrid(np.arange(len(dc)), np.arange(len(dr)), np.arange(len(dx)),
                             indexing="ij")
    ic, ir, ix = ic.ravel(), ir.ravel(), ix.ravel()
    d = (dc[ic] * n_d[1] + dr[ir]) * n_d[2] + dx[ix]
    sidx = (sc[ic] * shape_s[1] + sr[ir]) * shape_s[2] + sx[ix]
    return sidx, d, (wc[ic] * wr[ir] * wx[ix]).astype(float)
