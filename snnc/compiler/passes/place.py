"""place: split a converted SNN into core slices, pack them onto cores, put cores on the mesh.

Requires: a converted graph (convert_rate / convert_fs / convert_amos; quantize before it when
present) and a
``TargetSpec`` with per-core limits (TARGETS.md §3a).

Ensures (for the returned ``Placement``):
    * every neuron of every population lies in exactly one ``CoreSlice`` (a box of the
      population's (C, H, W) layout; 1-D populations are (F, 1, 1));
    * on every core the summed usage of neurons, input axons, output axons and synaptic memory
      is at most the target's limit (the usage model below; an independent
      test recomputes it from the artifact);
    * cores used <= cores_per_chip x chips_per_system; otherwise ``TargetConstraintError``
      naming the limiting resource, the layer with the largest demand of it, demand and limit.

Usage model (NL ``LoihiBlock.utilization``, TARGETS.md §3a), per slice and per synaptic term
(a source population reaching the slice through linear ops):
    neurons      neurons in the slice;
    in_axons     distinct source neurons with a synapse into the slice (one axon each);
    synapse_bits sum over those axons of ceil(n_axon * weight_bits / word) * word, n_axon =
                 the axon's synapses into the slice (its synapse list, word aligned);
    out_axons    sum over destination slices of the slice's neurons that reach it (an upper
                 bound of Loihi's count, one per (source neuron, destination core) pair: equal
                 to it when no two destination slices reached by one neuron share a core).
An AMOS gate (docs/amos.md) is k neurons: a source circuit's k neurons are k axons, each with
its own synapses to every consumer (in_axons, synapses, synaptic memory and out_axons x k), and
each gate adds its own circuit (``_circuit``: x's list of k synapses and neuron j's inhibition
of the k - j later ones, through k input and k - 1 output axons on its own core).
Population axons (targets with ``core.population_axons``, off by default; nengo-loihi's conv
connections): a term between spatial layers from a source of 2 or more channels
(``uses_population_axons``) sends one axon per source pixel, the pixel's channels its atoms:
    in_axons     source pixels with a synapse into the slice;
    synapse_bits one weight set per distinct pattern of the pixels (per axis, input j's targets
                 in the tile relative to j // stride, and j mod stride unless the weights are
                 uniform, as in pooling: ``_shared_hists``), each atom's list word aligned;
                 a pixel's set is shifted onto its targets by its compartment base;
    out_axons    2 slots (pop32) per source pixel of the slice and destination slice reached by
                 any of the slice's channels there;
    neurons      with halo compartments (``_halo_stats``, chosen per layer): the tile grown by
                 never-spiking compartments on which its edge pixels' windows stay whole
                 (patterns are then cut only at the halo's edge; beyond the layer's edges too,
                 where the window continues, ``_continued``), recorded as the slice's ``halo``.
Axes that are not shift-invariant (layout maps, concatenations along space) share nothing.
Per core, each resource is the sum over the core's slices (axons are not shared between slices
on one core: an upper bound of the hardware's per-core count, so every placement that passes
this model fits the chip).
Connectivity is structural (every weight of a conv window counts) and separable per axis
(channel x row x column incidence), so every count is computed per axis and multiplied: no
per-synapse loop. Layout ops that are not separable (a flatten) are treated as all-to-all over
their source footprint: exact when a Dense follows, conservative otherwise. The network input
comes from the host: it costs input axons and synapses but no cores.

Lower bound (``cores_lower_bound``): max over resources of the network's demand / per-core
capacity, the demand counted with every population unsplit. It is a lower bound of every
placement valid under this model: splitting a population only adds input axons (each slice
needs its own axon per source neuron it hears), adds word rounding (ceil of a split synapse
list >= ceil of the whole), and leaves neurons unchanged; output axons are bounded per source
neuron by the cores its targets need (``_min_out_axons``); and per-core usage is additive, so
no core holds more than its capacity of any resource's demand. With population axons the
unsplit memory counts each window pattern once over the whole layer, and where a window
continues beyond the layer one weight set per stride phase (halo compartments there keep the
edge pixels' windows whole): a tile cuts windows at its edges, adding patterns, and every
tap of every channel pair must be stored on some slice of its channel tile (the independent
checker asserts the bound on every placement it sees); and output axons are bounded per
source pixel by its targets' compartments and its own synapses' memory
(``_min_out_axons``). (Were axons shared between
slices on one core, the input-axon term would have to count each source neuron once over all
its consumer populations; the output-axon term would stay valid.)

Algorithm: (1) slice each population (consumers first, so output axons are known): for
near-square spatial tiles, binary search the largest channel tile that fits, also try 1/2 and
1/3 of it, and keep the tiling with the lowest estimated cores (``_Slicer.score``: with the
output axons it costs its producers, per population-axon source pixel once per channel tile
the source needs at least, ``_source_channel_tiles``); the
remainder channel tile is cut in pieces of under half a core, so tiles are uneven along
channels; channel tiles that fill whole memory words (``word_channels``) are tried too; a layer
bound by output axons or neurons is cut into small spatial pieces, or channel pieces where its
tiles are single pixels (``split_out_bound``); a population fed by a concatenation is also cut
in channel tiles within its parts (``_channel_segments``), tried with small spatial tiles of any
aspect: a tile across two parts needs both sources' axons, and each source neuron reaches more
slices (DenseNet-121: 1.31 -> 1.08 x the lower bound);
(2) first-fit-decreasing multi-resource packing of all slices of the network into cores
(slices at most a window of layers apart may share a core; among cores with room, the one
with most room where the slice needs it is taken, then the nearest in layer order). Slicing
runs once per memory share of ``_MEM_FILLS`` (slices that take at most 96 or 92 % of a core's
memory leave room for the small output-axon- or neuron-bound pieces), packing once per
slicing and window of ``_PACK_WINDOWS``;
(3) cores along a boustrophedon path over each chip's mesh, chips filled in order: four
orders are tried, the cores in layer order (a core's layer: the mean of its slices', weighted
by neurons or by synaptic memory) and each of those refined by the barycenter heuristic
(``_barycentric``: cores move toward the traffic-weighted mean place of their partners), the
one with the cheapest routes kept and improved by bounded pairwise swaps. Packings are laid
out fewest cores first, and the first whose route energy is at most that of Lava's sequential
fill of its slices is kept (if none is, the one with fewest cores).

Fan-in beyond a core: a neuron whose synapses need more input axons than one core has is
spread over partial-sum relay populations by ``split_fanin`` (run before this pass) on targets
with graded spikes (Loihi 2). On binary-spike targets (Loihi 1, whose multi-compartment
dendrites join inputs only within one core) and for neurons that need more synaptic memory than
a core, it cannot be placed (``TargetConstraintError`` naming the layer), as in nengo-loihi,
which splits blocks between compartments but never one compartment's inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from snnc.errors import TargetConstraintError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.targets.target import TargetSpec

__all__ = ["RESOURCES", "CoreSlice", "Placement", "place", "weight_bits", "populations",
           "sequential_fill_cost", "core_xy"]

RESOURCES = ("neurons", "in_axons", "out_axons", "synapse_bits")
_LIMIT_FIELD = {"neurons": "max_neurons", "in_axons": "max_in_axons",
                "out_axons": "max_out_axons", "synapse_bits": "synapse_mem_bits"}
_NOUN = {"neurons": "neurons", "in_axons": "input axons", "out_axons": "output axons",
         "synapse_bits": "synaptic memory bits"}
# a slice may share a core with slices at most this many layers away; each window is tried
# (ties keep the first: nearer layers, shorter spike routes; wide windows save cores but can
# lengthen routes, which the layout step checks)
_PACK_WINDOWS = (8, 16, 40)
_ORDER_WEIGHTS = ("neurons", "synapse_bits")  # mesh orders tried: a core's mean layer by these
_REMAINDER_PIECE = 0.45  # remainder channel tiles are cut into pieces of at most this core share
_MEM_FILLS = (1.0, 0.96, 0.92)  # slicings tried: a slice takes at most this share of memory
_OUT_PIECE = 0.2  # output-axon/neuron-bound layers: spatial pieces of at most this core share
_OUT_PIECE_AXONS = 1.05  # ... while their input axons grow by at most this factor
_OUT_PIECE_TRADE = 0.3  # ... or by at most this share of their output axons (cores)
_HALOS = (0, 1, 1 << 20)  # population axons: halo compartments tried (none, one, whole windows)
_SEGMENT_TILE = 8  # concatenations: part-aligned channel tiles tried with tiles this small
_PACK_BIG = 0.3  # packing order: slices above this core share, then out-axon/neuron-bound ones
_ROOM_WEIGHT = 0.5  # tiling score: weight of the room left by tiles over half a core ...
_IMPOSED_WEIGHT = 0.5  # ... and of the output axons a tiling costs its producers
_BARYCENTRIC_ROUNDS = 30  # layout: rounds of the barycenter refinement of a path order
_SWAP_BUDGET = 200_000  # candidate swap evaluations (deterministic, bounds placement time)


@dataclass(frozen=True)
class CoreSlice:
    """A box ``start <= (c, y, x) < stop`` of one population, placed on (chip, core)."""

    population: str
    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    chip: int
    core: int
    neurons: int
    in_axons: int
    out_axons: int
    synapse_bits: int
    synapses: int
    # halo compartments (population axons): rows above, below, columns left, right of the box
    halo: tuple[int, int, int, int] = (0, 0, 0, 0)

    def usage(self) -> dict[str, int]:
        return {r: getattr(self, r) for r in RESOURCES}

    def to_dict(self) -> dict:
        extra = {"halo": list(self.halo)} if any(self.halo) else {}
        return {"population": self.population, "start": list(self.start),
                "stop": list(self.stop), "chip": self.chip, "core": self.core,
                **self.usage(), "synapses": self.synapses, **extra}


@dataclass(frozen=True)
class Placement:
    """Result of ``place``: slices with their cores, and summary numbers."""

    target: str
    slices: tuple[CoreSlice, ...]
    cores: int
    chips: int
    cores_lower_bound: int
    demand: dict[str, int]  # slicing-independent totals used for the lower bound
    traffic: dict[str, float]  # axon routes: intra_core, inter_core, hop_energy_pj
    route_pj_per_spike: dict[str, float]  # per population: routing energy of one spike
    layers: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        """placement.json: population slice -> chip, core (plus its usage)."""
        return {"target": self.target, "slices": [s.to_dict() for s in self.slices]}

    def summary(self) -> dict:
        """The manifest's placement summary."""
        halo = sum(s.neurons for s in self.slices) - self.demand["neurons"]
        return {"cores": self.cores, "chips": self.chips,
                "cores_lower_bound": self.cores_lower_bound, "demand": self.demand,
                "halo_compartments": halo,
                "traffic": self.traffic, "route_pj_per_spike": self.route_pj_per_spike,
                "layers": self.layers}


# ---------------------------------------------------------------------------------------------
# weight bits


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


# ---------------------------------------------------------------------------------------------
# per-axis incidence (output coordinate x input coordinate), composable


@dataclass(frozen=True)
class _Axis:
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


def _eye(n: int) -> _Axis:
    return _Axis("eye", n, n, period=1, uniform=True)


def _full(n_out: int, n_in: int) -> _Axis:
    return _Axis("bcast", n_out, n_in, np.ones(n_in, dtype=bool))


def _mat(m: np.ndarray, period: int = 0, uniform: bool = False) -> _Axis:
    m = np.asarray(m, dtype=bool)
    if m.shape[0] == m.shape[1] and m.sum() == m.shape[0] and np.all(np.diag(m)):
        return _eye(m.shape[0])
    if m.shape[0] > 0 and np.all(m == m[:1]):
        return _Axis("bcast", m.shape[0], m.shape[1], m[0].copy(), period, uniform)
    return _Axis("matrix", m.shape[0], m.shape[1], m, period, uniform)


def _compose(a: _Axis, b: _Axis) -> _Axis:
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
        return _Axis("bcast", a.n_out, b.n_in, fp, period, uni)
    if b.kind == "bcast":
        rows = a.m.any(1)
        if rows.all():
            return _Axis("bcast", a.n_out, b.n_in, b.m, period, uni)
        return _mat(rows[:, None] & b.m[None, :], period, uni)
    return _mat((a.m.astype(np.float32) @ b.m.astype(np.float32)) > 0, period, uni)


def _window(n_out: int, n_in: int, k: int, s: int, pad: int, dil: int,
            uniform: bool = False) -> _Axis:
    m = np.zeros((n_out, n_in), dtype=bool)
    y = np.arange(n_out)[:, None] * s - pad + np.arange(k)[None, :] * dil
    rows = np.repeat(np.arange(n_out), k)
    cols = y.ravel()
    ok = (cols >= 0) & (cols < n_in)
    m[rows[ok], cols[ok]] = True
    return _mat(m, s, uniform)


def _layout(shape: Sequence[int]) -> tuple[int, int, int]:
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


@dataclass(frozen=True)
class _Term:
    """Synapses from population ``source`` (layout axes incidence) into a value."""

    source: str
    axes: tuple[_Axis, _Axis, _Axis]
    mixed: bool
    nodes: tuple[Node, ...]  # synaptic ops on the way (weight bits: the widest)


def _broadcast_axes(in_lay, out_lay) -> tuple[_Axis, ...]:
    return tuple(_eye(o) if i == o else _full(o, i) for i, o in zip(in_lay, out_lay))


# ---------------------------------------------------------------------------------------------
# populations and their synaptic terms


_POOLS = (ops.MaxPool2d, ops.AvgPool2d, ops.GlobalAvgPool)
_POOL_NAMES = ("SumPool2d", "GlobalSumPool")


def _is_pool(node: Node) -> bool:
    return isinstance(node.op, _POOLS) or type(node.op).__name__ in _POOL_NAMES


def _is_population(node: Node) -> bool:
    """Neuron populations, and pooling gates/relays: a pool folded into the next synapses
    would multiply their fan-in by the window (a global pool by H x W, beyond any core's input
    axons), so pooling gets its own compartments that sum (or max) their window."""
    return isinstance(node.op, neurons.NEURON_OPS) or _is_pool(node)


def populations(graph: Graph) -> list[Node]:
    """Nodes that own neurons: neuron populations, pooling gates/relays and linear readouts
    (graph outputs not produced by a population), in topological order."""
    outs = {v.name for v in graph.outputs}
    return [n for n in graph.nodes
            if _is_population(n) or (n.name in outs and not isinstance(n.op, ops.Constant))]


class _Terms:
    def __init__(self, graph: Graph, pops: list[Node]):
        self.producers = graph.producers()
        self.sources = {v.name for v in graph.inputs} | {p.name for p in pops}
        self.memo: dict[str, list[_Term]] = {}

    def of_value(self, v) -> list[_Term]:
        if v.name in self.sources:
            lay = _layout(v.shape)
            return [_Term(v.name, tuple(_eye(d) for d in lay), False, ())]
        if v.name not in self.memo:
            self.memo[v.name] = self.of_node(self.producers[v.name])
        return self.memo[v.name]

    def of_node(self, node: Node) -> list[_Term]:
        """Terms of a node's output computed from its inputs (the node is not a source)."""
        op = node.op
        out_lay = _layout(node.output.shape)
        if isinstance(op, ops.Constant):
            return []
        if isinstance(op, (ops.Reshape, ops.Transpose)):
            return self._layout_chain(node)
        terms: list[_Term] = []
        for i, v in enumerate(node.inputs):
            src = self.producers.get(v.name)
            if src is not None and isinstance(src.op, ops.Constant):
                continue
            axes, mixed, syn = self._op_axes(node, i, _layout(v.shape), out_lay)
            for t in self.of_value(v):
                terms.append(_Term(t.source, tuple(_compose(a, b) for a, b in zip(axes, t.axes)),
                                   t.mixed or mixed, t.nodes + ((syn,) if syn else ())))
        return _merge(terms)

    def _op_axes(self, node: Node, i: int, in_lay, out_lay):
        op = node.op
        if isinstance(op, ops.Conv2d):
            o, cg = op.weight.shape[0], op.weight.shape[1]
            og = o // op.groups
            ch = _mat((np.arange(o)[:, None] // og) == (np.arange(in_lay[0])[None, :] // cg))
            kh, kw = op.weight.shape[2:]
            rows = _window(out_lay[1], in_lay[1], kh, op.stride[0], op.padding[0],
                           op.dilation[0])
            cols = _window(out_lay[2], in_lay[2], kw, op.stride[1], op.padding[1],
                           op.dilation[1])
            return (ch, rows, cols), _mixed(op.weight), node
        if isinstance(op, ops.Dense):
            if in_lay[1:] == (1, 1) and out_lay[1:] == (1, 1):
                return (_full(out_lay[0], in_lay[0]), _eye(1), _eye(1)), _mixed(op.weight), node
            return _all_to_all(in_lay, out_lay), _mixed(op.weight), node
        kind = type(op).__name__
        if isinstance(op, (ops.AvgPool2d, ops.MaxPool2d)) or kind == "SumPool2d":
            dil = getattr(op, "dilation", (1, 1))
            pad = getattr(op, "padding", (0, 0, 0, 0))
            rows = _window(out_lay[1], in_lay[1], op.kernel[0], op.stride[0], pad[0], dil[0],
                           uniform=True)
            cols = _window(out_lay[2], in_lay[2], op.kernel[1], op.stride[1], pad[1], dil[1],
                           uniform=True)
            return (_eye(in_lay[0]), rows, cols), False, node
        if kind == "QScale":  # one-to-one synapses with a shared weight
            return _broadcast_axes(in_lay, out_lay), False, node
        if kind in ("InputQuantizer", "QHybridInput", "QReadout"):  # host-side encode / decode
            return _broadcast_axes(in_lay, out_lay), False, None
        if isinstance(op, ops.GlobalAvgPool) or kind == "GlobalSumPool":
            return (_eye(in_lay[0]), _full(out_lay[1], in_lay[1]),
                    _full(out_lay[2], in_lay[2])), False, node
        if isinstance(op, ops.Concat) and len(node.inputs[0].shape) == 3:
            off = sum(v.shape[op.axis] for v in node.inputs[:i])
            axes = []
            for a in range(3):
                if a == op.axis:
                    m = np.zeros((out_lay[a], in_lay[a]), bool)
                    m[off + np.arange(in_lay[a]), np.arange(in_lay[a])] = True
                    axes.append(_mat(m, 1, True))
                else:
                    axes.append(_eye(out_lay[a]))
            return tuple(axes), False, None
        if isinstance(op, ops.Concat) and len(node.inputs[0].shape) == 1:
            off = sum(v.shape[0] for v in node.inputs[:i])
            m = np.zeros((out_lay[0], in_lay[0]), bool)
            m[off + np.arange(in_lay[0]), np.arange(in_lay[0])] = True
            return (_mat(m), _eye(1), _eye(1)), False, None
        if isinstance(op, ops.Slice):  # channels [start, stop) of the first axis
            m = np.zeros((out_lay[0], in_lay[0]), bool)
            m[np.arange(out_lay[0]), op.start + np.arange(out_lay[0])] = True
            return (_mat(m), _eye(out_lay[1]), _eye(out_lay[2])), False, None
        if isinstance(op, ops.Pad) and len(node.inputs[0].shape) == 3:
            axes = []
            for a in range(3):
                m = np.zeros((out_lay[a], in_lay[a]), bool)
                src = np.arange(out_lay[a]) - op.pads[a]
                ok = (src >= 0) & (src < in_lay[a])
                m[np.arange(out_lay[a])[ok], src[ok]] = True
                axes.append(_mat(m, 1, True))
            return tuple(axes), False, None
        if isinstance(op, (ops.Add, ops.Sub, ops.Mul, ops.Div, ops.BatchNorm, ops.Identity,
                           ops.Activation)):
            # elementwise (scaling, sums, products of populations): one synapse per element
            return _broadcast_axes(in_lay, out_lay), False, None
        return _all_to_all(in_lay, out_lay), True, node  # unknown: dense worst case

    def _layout_chain(self, node: Node) -> list[_Term]:
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
        out_lay, in_lay = _layout(node.output.shape), _layout(u.shape)
        cs, ys, xs = np.unravel_index(idx.reshape(out_lay), in_lay)
        separable = (np.all(cs == cs[:, :1, :1]) and np.all(ys == ys[:1, :, :1])
                     and np.all(xs == xs[:1, :1, :]))
        if separable:
            axes = []
            for a, coord in enumerate((cs[:, 0, 0], ys[0, :, 0], xs[0, 0, :])):
                m = np.zeros((out_lay[a], in_lay[a]), bool)
                m[np.arange(out_lay[a]), coord] = True
                axes.append(_mat(m))
            axes = tuple(axes)
        else:
            axes = _all_to_all(in_lay, out_lay)
        return _merge([_Term(t.source, tuple(_compose(a, b) for a, b in zip(axes, t.axes)),
                             t.mixed, t.nodes) for t in self.of_value(u)])


def _all_to_all(in_lay, out_lay) -> tuple[_Axis, ...]:
    return tuple(_full(o, i) for i, o in zip(in_lay, out_lay))


def _mixed(w: np.ndarray) -> bool:
    return bool(w.size and w.min() < 0 < w.max())


def _contains(a: _Axis, b: _Axis) -> bool:
    """Every incidence of b is one of a."""
    if a.kind == "bcast" and a.m.all():
        return True
    return bool(np.all(a.matrix() | ~b.matrix()))


def _merge(terms: list[_Term]) -> list[_Term]:
    """Drop a term whose synapses another term from the same source already covers (a skip
    connection inside a conv window); others from the same source are kept (an upper bound)."""
    out: list[_Term] = []
    for t in terms:
        if any(o.source == t.source and all(_contains(a, b) for a, b in zip(o.axes, t.axes))
               for o in out):
            continue
        out = [o for o in out if not (o.source == t.source and all(
            _contains(a, b) for a, b in zip(t.axes, o.axes)))]
        out.append(t)
    return out


# ---------------------------------------------------------------------------------------------
# per-tile statistics of one axis


@dataclass
class _AxisStats:
    starts: np.ndarray  # tile starts along the output axis
    lens: np.ndarray  # tile lengths
    footprint: np.ndarray  # distinct inputs reached per tile
    fanin: np.ndarray  # synapses (incidences) per tile
    hist_id: np.ndarray  # per tile: index into hists
    hists: list[tuple[np.ndarray, np.ndarray]]  # (synapses per reached input, how many)
    reach: np.ndarray  # (tiles, n_in) bool: footprint per tile
    # the same over distinct weight-set patterns (``_shared_hists``): a population axon's
    # inputs with one pattern share a weight set
    shared_id: np.ndarray | None = None
    shared: list[tuple[np.ndarray, np.ndarray]] | None = None
    # with halo compartments (``_halo_stats``): the patterns of each tile's inputs over its
    # compartments, and per tile their range [lo, hi)
    halo_id: np.ndarray | None = None
    halo: list[tuple[np.ndarray, np.ndarray]] | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


def _tiles(n: int, t) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the tiles along one axis of length ``n``: ``t`` is a tile size
    (equal tiles, the last one shorter) or a tuple of tile starts (uneven tiles)."""
    if isinstance(t, tuple):
        starts = np.asarray(t, np.int64)
        return starts, np.diff(np.r_[starts, n])
    starts = np.arange(0, n, t)
    return starts, np.minimum(starts + t, n) - starts


def _axis_stats(ax: _Axis, t: int, shared: bool = False, halo: int = 0) -> _AxisStats:
    starts, lens = _tiles(ax.n_out, t)
    if ax.kind == "eye":
        idx = np.arange(ax.n_in)
        reach = (idx[None, :] >= starts[:, None]) & (idx[None, :] < (starts + lens)[:, None])
        st = _AxisStats(starts, lens, lens.copy(), lens.copy(),
                        *_hist_groups([(np.ones(1, np.int64), np.array([ln])) for ln in lens]),
                        reach)
    elif ax.kind == "bcast":
        reach = np.broadcast_to(ax.m, (len(starts), ax.n_in))
        k = int(ax.m.sum())
        hists = [(np.array([ln]), np.array([k])) if k else
                 (np.zeros(0, np.int64), np.zeros(0, np.int64)) for ln in lens]
        st = _AxisStats(starts, lens, np.full(len(starts), k), lens * k,
                        *_hist_groups(hists), reach)
    else:
        counts = np.add.reduceat(ax.m.astype(np.int64), starts, axis=0)
        reach = counts > 0
        st = _AxisStats(starts, lens, reach.sum(1), counts.sum(1),
                        *_tile_hists(np.repeat(np.arange(len(starts)), counts.shape[1]),
                                     counts.ravel(), len(starts)), reach)
    if shared:  # population axons: only they share weight sets
        st.shared_id, st.shared = _shared_hists(ax, starts, lens) or (st.hist_id, st.hists)
        st.halo_id, st.halo, st.lo, st.hi = (
            halo and _halo_stats(ax, starts, lens, reach, halo)
            or (st.shared_id, st.shared, starts, starts + lens))
    return st


def _tile_hists(tile: np.ndarray, value: np.ndarray, n_tiles: int):
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


_SPAN_MAX = 24  # longest run of outputs one input reaches that weight sharing is tracked for


def _shared_hists(ax: _Axis, starts: np.ndarray, lens: np.ndarray):
    """Per tile, the histogram of synapses per distinct weight-set pattern along a
    shift-invariant axis (``period`` p > 0), or None where none is known (no sharing). Input j
    reaches outputs R_j of the tile; its pattern is (j mod p, R_j - j // p): equal patterns
    mean equal relative targets through equal weights, so population axons whose inputs have
    the same pattern (on every axis) use one weight set, offset by their compartment base
    (nengo-loihi ``conv2d_loihi_weights``). Along a ``uniform`` axis (a pooling window) the
    phase j mod p is left out: every synapse has the same weight."""
    if ax.kind == "eye" and ax.period:
        return np.zeros(len(starts), np.int64), [(np.ones(1, np.int64), np.ones(1, np.int64))]
    keys = _pattern_keys(ax, starts, lens)
    return None if keys is None else _distinct(*keys)


def _halo_stats(ax: _Axis, starts: np.ndarray, lens: np.ndarray, reach: np.ndarray,
                halo: int):
    """Halo compartments along a window axis: each tile's compartments extend ``halo``
    outputs beyond it on each side (never-spiking compartments, up to the outputs its inputs
    reach, beyond the layer's edges too where the window continues there, ``_continued``), so
    the inputs' patterns are cut only at the halo's edges: a halo as wide as the window leaves
    one pattern per stride phase. Returns (ids, histograms, lo, hi): per tile the distinct
    patterns of the inputs reaching it and its compartment range [lo, hi) (in layer
    coordinates: below 0 or above n_out outside it); None where the axis is not a
    shift-invariant window."""
    if ax.kind != "matrix" or ax.period == 0:
        return None
    m, e = _continued(ax)
    o = np.arange(-e, ax.n_out + e)[:, None]
    first = np.where(m, o, ax.n_out + e).min(0)  # per input: its first and last output
    last = np.where(m, o, -e - 1).max(0)
    lo = np.minimum(starts, np.maximum(starts - halo, np.where(reach, first, ax.n_out).min(1)))
    hi = np.maximum(starts + lens,
                    np.minimum(starts + lens + halo, np.where(reach, last, -1).max(1) + 1))
    keys = _pattern_keys(replace(ax, n_out=m.shape[0], m=m), lo + e, hi - lo)
    if keys is None:
        return None
    ids, hists = _distinct(keys[0], keys[1], reach)
    return ids, hists, lo, hi


def _continued(ax: _Axis) -> tuple[np.ndarray, int]:
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


def _pattern_keys(ax: _Axis, starts: np.ndarray, lens: np.ndarray):
    """Per tile and input (``_shared_hists``; not an identity axis): a key of the input's
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
    if span > _SPAN_MAX:
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


def _distinct(key: np.ndarray, count: np.ndarray, ok: np.ndarray):
    """(ids per tile, histograms) of the synapses of each tile's distinct keys among ``ok``."""
    n_t = key.shape[0]
    top = int(key.max(initial=0)) + 1
    full = np.arange(n_t)[:, None] * top + key
    uniq, at = np.unique(full[ok], return_index=True)
    return _tile_hists(uniq // top, np.asarray(count[ok][at], np.int64), n_t)


def _hist_groups(hists):
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


def _circuit(k: int) -> dict[str, int]:
    """Usage inside one AMOS gate of k neurons (docs/amos.md: k input synapses carrying x, and
    k(k-1)/2 inhibitory ones): an input axon for x's list and for each neuron j < k's
    inhibition of the later ones (an output axon back to its own core); none for k = 1."""
    if k <= 1:
        return {"in_axons": 0, "out_axons": 0, "synapses": 0}
    return {"in_axons": k, "out_axons": k - 1, "synapses": k * (k + 1) // 2}


def _mem_bits(hc, hr, hx, wbits: int, word: int | None, k_src: int = 1) -> int:
    """Word-aligned synapse lists of one term: per reached input, its synapses x bits,
    rounded up to words; each input ``k_src`` times (one axon per neuron of a source AMOS
    circuit, each with its own weights W d_i)."""
    n = (hc[0][:, None, None] * hr[0][None, :, None] * hx[0][None, None, :]) * wbits
    k = hc[1][:, None, None] * hr[1][None, :, None] * hx[1][None, None, :]
    if word:
        n = -(-n // word) * word
    return int((n * k).sum()) * k_src


# ---------------------------------------------------------------------------------------------
# slicing


@dataclass
class _Pop:
    node: Node
    lay: tuple[int, int, int]
    terms: list[_Term]
    wbits: list[int]
    index: int
    npg: int = 1  # neurons per element (AMOS circuits: K)
    src_npg: list[int] = field(default_factory=list)  # per term: its source's neurons per element
    pop_axons: list[bool] = field(default_factory=list)  # per term: population axons
    # per term: the fewest channel tiles its source can be cut in (``_source_channel_tiles``)
    src_tiles: list[int] = field(default_factory=list)
    halo: int = 0  # halo compartments on each side of each tile (``_halo_stats``)
    tile: tuple[int, int, int] | None = None
    stats: list[tuple[_AxisStats, ...]] = field(default_factory=list)
    # per consumer term: (population axons?, channel part, per source row, per source column):
    # discrete axons: per source channel, the consumer tiles it reaches along channels; population
    # axons: (consumer channel tiles x source channels) reach, counted once per source tile
    out_terms: list[tuple[bool, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class _Slicer:
    def __init__(self, target: TargetSpec):
        c = target.core
        self.limits = {r: getattr(c, _LIMIT_FIELD[r]) for r in RESOURCES}
        self.word = c.synapse_word_bits
        self.target = target
        self.cache: dict[tuple, _AxisStats] = {}
        self.mem_cache: dict[tuple, np.ndarray] = {}
        self.mem_fill = 1.0  # share of synaptic memory a slice may take (``usage`` checks)
        self.fill = 1.0  # the share ``choose`` aims at (``place`` tries each of _MEM_FILLS)

    def stats(self, p: _Pop, k: int, axis: int, t: int) -> _AxisStats:
        key = (p.index, k, axis, t, p.halo)
        if key not in self.cache:
            self.cache[key] = _axis_stats(p.terms[k].axes[axis], t, p.pop_axons[k], p.halo)
        return self.cache[key]

    def usage(self, p: _Pop, tile, check: bool = False) -> dict[str, np.ndarray] | None:
        """Per-tile usage arrays (shape nC x nR x nX) for tiling ``tile``. With ``check``,
        returns None as soon as one resource exceeds its limit (cheap resources first)."""
        lim = self.limits
        lens = [_tiles(n, t)[1] for n, t in zip(p.lay, tile)]
        shape = tuple(len(x) for x in lens)

        def over(r, arr):
            cap = self.mem_fill if r == "synapse_bits" else 1.0
            return check and lim[r] is not None and arr.max() > lim[r] * cap

        elements = _outer(*lens)
        stats = [[self.stats(p, k, a, tile[a]) for a in range(3)] for k in range(len(p.terms))]
        use = {"neurons": elements * p.npg}
        if p.halo:  # compartments over the tile and its halo (npg 1)
            (lo_r, hi_r), (lo_x, hi_x) = self.halo_box(p, stats)
            use["neurons"] = _outer(lens[0], hi_r - lo_r, hi_x - lo_x)
        if over("neurons", use["neurons"]):
            return None
        k_src = p.src_npg or [1] * len(p.terms)
        k_dst = p.npg
        circuit = _circuit(k_dst)
        ins = elements * circuit["in_axons"]
        syn = elements * circuit["synapses"]
        imposed = ins.copy()  # output-axon slots the slice costs its producers
        for k, s in enumerate(stats):
            if p.pop_axons[k]:  # one axon per source pixel: its channels are the axon's atoms
                a = _outer(s[0].footprint > 0, s[1].footprint, s[2].footprint)
                imposed += 2 * a * p.src_tiles[k]  # pop32: 2 slots per source channel tile
            else:
                a = _outer(*(x.footprint for x in s)) * k_src[k]
                imposed += a
            ins += a
            syn += _outer(*(x.fanin for x in s)) * k_src[k]
        if over("in_axons", ins):
            return None
        out = elements * circuit["out_axons"]
        starts = [_tiles(n, t)[0] for n, t in zip(p.lay, tile)]
        for pop_term, oc, orow, ocol in p.out_terms:
            if pop_term:  # 2 slots (pop32) per source pixel and consumer tile reached
                ch = 2 * np.logical_or.reduceat(oc, starts[0], axis=1).sum(0)
            else:
                ch = np.add.reduceat(oc, starts[0])
            out += _outer(ch, np.add.reduceat(orow, starts[1]), np.add.reduceat(ocol, starts[2]))
        if over("out_axons", out):
            return None
        mem = elements * self.circuit_bits(k_dst)
        for k, s in enumerate(stats):
            key = (p.index, k, tuple(tile), p.halo)
            # population axons: one weight set per distinct pattern, not per source pixel
            if p.pop_axons[k]:
                hr, hx = ([(x.halo_id, x.halo) for x in s[1:]] if p.halo
                          else [(x.shared_id, x.shared) for x in s[1:]])
            else:
                hr, hx = [(x.hist_id, x.hists) for x in s[1:]]
            if key not in self.mem_cache:
                self.mem_cache[key] = np.array(
                    [[[_mem_bits(c, r, x, p.wbits[k], self.word, k_src[k]) for x in hx[1]]
                      for r in hr[1]] for c in s[0].hists], dtype=np.int64)
            mem += self.mem_cache[key][np.ix_(s[0].hist_id, hr[0], hx[0])]
        if over("synapse_bits", mem):
            return None
        use.update(in_axons=ins, synapses=syn, synapse_bits=mem, out_axons=out, imposed=imposed)
        return use

    def halo_box(self, p: _Pop, stats) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per spatial axis, each tile's compartment range [lo, hi) with halo compartments:
        the union over the population-axon terms (each term's pixels reach only inside it)."""
        box = []
        for a in (1, 2):
            ranges = [(s[a].lo, s[a].hi) for k, s in enumerate(stats) if p.pop_axons[k]]
            box.append((np.min([r[0] for r in ranges], 0), np.max([r[1] for r in ranges], 0)))
        return box

    def circuit_bits(self, k: int) -> int:
        """Synaptic memory inside one AMOS gate of k neurons (``_circuit``): lists of k
        (the input x) and k - j (neuron j's inhibition) synapses, each word aligned."""
        if k <= 1:
            return 0
        w = weight_bits(None, True, self.target)
        lists = np.arange(1, k + 1) * w
        if self.word:
            lists = -(-lists // self.word) * self.word
        return int(lists.sum())

    def fits(self, p: _Pop, tile) -> tuple[bool, dict[str, np.ndarray] | None]:
        use = self.usage(p, tile, check=True)
        return use is not None, use

    def score(self, use: dict[str, np.ndarray]) -> float:
        """Estimated cores of a tiling: its demand in its binding resource (summed over tiles),
        plus half the room left by tiles over half a core (they cannot pair with each other,
        only with smaller slices), plus half the output axons it costs its producers (one per
        source neuron, or two per source pixel for population axons, tile and channel tile
        the source needs at least, ``_source_channel_tiles``: finer tiles duplicate them)."""
        frac = self.fraction(use)
        total = max(float(use[r].sum()) / self.limits[r] for r in RESOURCES if self.limits[r])
        imposed = float(use["imposed"].sum()) / (self.limits["out_axons"] or np.inf)
        return (total + _ROOM_WEIGHT * float(np.where(frac > 0.5, 1.0 - frac, 0.0).sum())
                + _IMPOSED_WEIGHT * imposed)

    def largest_channels(self, p: _Pop, th: int, tw: int) -> int:
        """Largest channel tile that fits with spatial tile (th, tw); 0 if none."""
        if not self.fits(p, (1, th, tw))[0]:
            return 0
        lo, hi = 1, p.lay[0]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(p, (mid, th, tw))[0]:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def choose(self, p: _Pop) -> tuple[tuple, dict[str, np.ndarray]]:
        """Tiling with the fewest estimated cores (then fewest input axons): near-square
        spatial tiles from the ceil(n/k) sizes, each with its largest channel tile, then
        grown one row/column at a time (tiles may end in a smaller remainder), then the best
        one's channel tile halved and thirded; the remainder channel tile is then cut
        (``split_remainder``); for a concatenation, channel tiles within its parts with spatial
        tiles of at most ``_SEGMENT_TILE`` pixels compete too. Returns per axis a tile size or
        a tuple of tile starts."""
        C, H, W = p.lay
        p.halo = 0
        ok, use = self.fits(p, (C, H, W))
        if ok:
            return (C, H, W), use
        if not self.fits(p, (1, 1, 1))[0]:
            use1 = self.usage(p, (1, 1, 1))
            r = next(r for r in RESOURCES
                     if self.limits[r] is not None and use1[r].max() > self.limits[r])
            hint = ""
            if r == "in_axons" and not self.target.neuron.graded_spike_bits:
                hint = (" (targets with graded spikes, such as loihi2, split such fan-ins over "
                        "partial-sum relay neurons; this one sends binary spikes)")
            raise TargetConstraintError(
                f"layer '{p.node.name}': a single neuron needs {int(use1[r].max()):,} "
                f"{_NOUN[r]}; {self.target.name} core limit {self.limits[r]:,}{hint}")
        best = None
        for halo in _HALOS if _halo_helps(p) else _HALOS[:1]:
            p.halo = halo
            self.mem_fill = self.fill  # room left in each core's memory for small slices
            try:
                tile, use = self._search(p)
            finally:
                self.mem_fill = 1.0
            tile, use = self.split_out_bound(p, tile, use)
            if best is None or self.score(use) < best[0]:
                best = (self.score(use), halo, tile, use)
        _, p.halo, tile, use = best
        return tile, use

    def _search(self, p: _Pop) -> tuple[tuple, dict[str, np.ndarray]]:
        C, H, W = p.lay
        best = None

        def consider(tile):
            nonlocal best
            ok, use = self.fits(p, tile)
            if ok:
                key = (self.score(use), int(use["in_axons"].sum()), -tile[1] * tile[2])
                if best is None or key < best[0]:
                    best = (key, tile, use)
            return ok

        for th in _sizes(H):
            for tw in _near(_sizes(W), th * W / H):
                n_sp = math.ceil(H / th) * math.ceil(W / tw)
                if best is not None and n_sp > 2 * best[0][0] + 1:
                    continue
                tc = self.largest_channels(p, th, tw)
                if tc:
                    consider((tc, th, tw))
        if best is None:  # nothing fits under the memory share: use the whole core
            self.mem_fill = 1.0
            return self._search(p)
        tc, th, tw = best[1]
        for axis in (1, 2):  # grow spatial tiles while they fit, re-fitting channels
            while True:
                t = [tc, th, tw]
                if t[axis] >= p.lay[axis]:
                    break
                t[axis] += 1
                t[0] = self.largest_channels(p, t[1], t[2])
                if not t[0]:
                    break
                before = best[1]
                consider(tuple(t))
                if best[1] == before:
                    break
                tc, th, tw = best[1]
        tc, th, tw = best[1]
        g = self.word_channels(p)
        channels = []
        for k in (2, 3):  # smaller channel tiles pair on a core where large ones cannot
            if tc >= k:
                channels.append(-(-tc // k))
                if tc >= k * g:
                    channels.append(-(-tc // (k * g)) * g)
        if tc > g:  # whole words per synapse list: no memory lost to word rounding
            channels.append(tc // g * g)
        for c in dict.fromkeys(channels):  # each distinct tile once (ties keep the first)
            if c != tc:
                consider((c, th, tw))
        tile, use = self.split_remainder(p, best[1], best[2])
        bounds = _channel_segments(p)
        if len(bounds) > 2:  # a concatenation: its parts come from different sources
            best = (best[0], tile, use)
            shapes = list(dict.fromkeys([(th, tw), *_small_tiles(H, W)]))
            pieces: dict[tuple[int, int], int] = {}  # a larger spatial tile fits no more
            for sp in sorted(shapes, key=lambda t: t[0] * t[1]):
                hi = min([v for (a, b), v in pieces.items() if a <= sp[0] and b <= sp[1]],
                         default=int(np.diff(bounds).max()))
                pieces[sp] = self.largest_segment_piece(p, bounds, sp, hi)
            for sp in shapes:
                piece = pieces[sp]
                for c in dict.fromkeys([piece, -(-piece // 2), piece // g * g]):
                    if c:
                        consider((_segment_cuts(bounds, c), *sp))
            tile, use = best[1], best[2]
        return tile, use

    def largest_segment_piece(self, p: _Pop, bounds, sp, hi: int) -> int:
        """Largest channel piece, at most ``hi``, such that channel tiles cut within each
        segment at most that long fit with spatial tile ``sp``; 0 if none."""
        if hi < 1 or not self.fits(p, (_segment_cuts(bounds, 1), *sp))[0]:
            return 0
        lo = 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(p, (_segment_cuts(bounds, mid), *sp))[0]:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def word_channels(self, p: _Pop) -> int:
        """Channels whose synapses fill whole memory words (8 at 8-bit weights, 64-bit
        words): a channel tile that is a multiple of it rounds no synapse list up."""
        if not self.word:
            return 1
        return max(self.word // math.gcd(self.word, b) for b in p.wbits) if p.wbits else 1

    def split_out_bound(self, p: _Pop, tile, use) -> tuple[tuple, dict[str, np.ndarray]]:
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
        lim = self.limits
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
        while float(self.fraction(use).max()) > _OUT_PIECE:
            if th > 1 or tw > 1:
                t2 = (tc, -(-th // 2), tw) if th >= tw else (tc, th, -(-tw // 2))
            elif isinstance(tc, int) and tc > 1:  # 1-D (or 1x1) tiles: cut channels
                t2 = (-(-tc // 2), th, tw)
            else:
                break
            use2 = self.usage(p, t2)
            grow = {r: float(use2[r].sum()) - b for r, b in base.items()}
            if any(g > (_OUT_PIECE_AXONS - 1) * base[r] and g / (lim[r] or math.inf)
                   > _OUT_PIECE_TRADE * tot["out_axons"] for r, g in grow.items()):
                break
            (tc, th, tw), use = t2, use2
        return (tc, th, tw), use

    def split_remainder(self, p: _Pop, tile, use) -> tuple[tuple, dict[str, np.ndarray]]:
        """Uneven channel tiles: the last channel tile (the remainder) is cut in pieces of at
        most about half a core, so that it can share a core with other slices."""
        C = p.lay[0]
        tc = tile[0]
        r = C - (C // tc) * tc if C > tc else 0
        if r < 2:
            return tile, use
        frac = self.fraction(use)[-1].max()
        k = min(r, math.ceil(frac / _REMAINDER_PIECE))
        if k < 2:
            return tile, use
        starts = list(range(0, C - r, tc))
        pieces = np.diff(np.linspace(0, r, k + 1).round().astype(int))
        starts += list(C - r + np.r_[0, np.cumsum(pieces)[:-1]])
        cuts = (tuple(int(x) for x in starts), tile[1], tile[2])
        return cuts, self.usage(p, cuts)

    def fraction(self, use: dict[str, np.ndarray]) -> np.ndarray:
        """Per tile: the largest fraction of a core it takes in any resource."""
        return np.max([use[r] / self.limits[r] for r in RESOURCES if self.limits[r]], axis=0)


def _halo_helps(p: _Pop) -> bool:
    """Halo compartments are tried for populations of single neurons per element with a
    population-axon term through a shift-invariant window (where tile edges cut patterns),
    not fed by a concatenation (whose part-aligned tiling search is the slow one: DenseNet-121
    places in 4.6 x the time with halos tried, and gains 1 %)."""
    return p.npg == 1 and len(_channel_segments(p)) <= 2 and any(
        pop and any(a.kind == "matrix" and a.period for a in t.axes[1:])
        for t, pop in zip(p.terms, p.pop_axons))


def _channel_segments(p: _Pop) -> np.ndarray:
    """Boundaries of the runs of channels fed by the same set of terms (a concatenation's
    parts): [0, ..., C]."""
    C = p.lay[0]
    fed = np.array([_rowsum(t.axes[0]) > 0 for t in p.terms]).reshape(len(p.terms), C)
    change = np.flatnonzero((fed[:, 1:] != fed[:, :-1]).any(0)) + 1
    return np.r_[0, change, C]


def _small_tiles(H: int, W: int) -> list[tuple[int, int]]:
    """Spatial tiles of at most ``_SEGMENT_TILE`` pixels (any aspect: 3 x 1 strips reach
    fewer tiles through a 3x3 window than 2 x 2 squares cut into channel halves)."""
    return [(a, b) for a in _sizes(H) for b in _sizes(W) if a * b <= _SEGMENT_TILE]


def _segment_cuts(bounds: np.ndarray, piece: int) -> tuple[int, ...]:
    """Channel tile starts: each segment cut in even tiles of at most ``piece``."""
    starts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        k = -(-(int(b) - int(a)) // piece)
        starts += list(int(a) + np.linspace(0, int(b) - int(a), k + 1).round().astype(int)[:-1])
    return tuple(starts)


def _outer(a, b, c) -> np.ndarray:
    return (np.asarray(a, np.int64)[:, None, None] * np.asarray(b, np.int64)[None, :, None]
            * np.asarray(c, np.int64)[None, None, :])


def _sizes(n: int) -> list[int]:
    """Distinct tile sizes ceil(n / k), largest first."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def _near(sizes: list[int], want: float) -> list[int]:
    i = min(range(len(sizes)), key=lambda j: (abs(sizes[j] - want), j))
    return [sizes[i]]


# ---------------------------------------------------------------------------------------------
# the pass


def _build_pops(graph: Graph, target: TargetSpec) -> list[_Pop]:
    nodes = populations(graph)
    finder = _Terms(graph, nodes)
    pops = []
    for i, n in enumerate(nodes):
        if _is_population(n) and not _is_pool(n):
            terms = finder.of_value(n.inputs[0])
        else:  # pooling gate / readout: the node's own op is the synapse
            terms = finder.of_node(n)
        wb = [max([weight_bits(n, t.mixed, target) for n in t.nodes]
                  or [weight_bits(None, t.mixed, target)]) for t in terms]
        lay = _layout(n.output.shape)
        pops.append(_Pop(n, lay, terms, wb, i, _npg(n),
                         pop_axons=[uses_population_axons(t, lay, target) for t in terms]))
    npg = {p.node.name: p.npg for p in pops}
    for p in pops:
        p.src_npg = [npg.get(t.source, 1) for t in p.terms]
    return pops


def uses_population_axons(term: _Term, lay: tuple[int, int, int], target: TargetSpec) -> bool:
    """A term between two spatial layers (H x W > 1) from a source of 2 or more channels
    sends population axons on targets that have them: one axon per source pixel, the pixel's
    channels its atoms (nengo-loihi's conv connections, pop32 axons); 1-D layers keep one axon
    per neuron, as in nengo-loihi."""
    c, h, w = (a.n_in for a in term.axes)
    return bool(target.core.population_axons) and h * w > 1 and c >= 2 and lay[1] * lay[2] > 1


def term_axons(term: _Term, lay: tuple[int, int, int], target: TargetSpec,
               k_src: int = 1) -> int:
    """Input axons the widest single neuron of ``lay`` needs for ``term``: its source pixels
    (population axons) or source neurons, an AMOS source's k per element."""
    fan = [int(_rowsum(a).max()) for a in term.axes]
    if uses_population_axons(term, lay, target):
        return fan[1] * fan[2]
    return math.prod(fan) * k_src


def _npg(node: Node) -> int:
    return getattr(neurons, "neurons_per_gate", lambda op: 1)(node.op)


def place(graph: Graph, target: TargetSpec) -> Placement:
    """Place a converted SNN graph on ``target``'s cores (see the module docstring).

    Raises:
        TargetConstraintError: a single neuron exceeds a core, or the network exceeds the
            system; the one-line message names the layer, the resource, demand and limit.
    """
    pops = _build_pops(graph, target)
    by_name = {p.node.name: p for p in pops}
    slicer = _Slicer(target)
    candidates = []  # (cores, rank, uses, items, offsets, bins, per-population slicing)
    _source_channel_tiles(pops, by_name, slicer)
    for fill in _MEM_FILLS:
        slicer.fill = fill
        for p in pops:
            p.out_terms = []
        uses, items, offsets = _slice_all(pops, by_name, slicer)
        layer_of = np.array([by_name[it[0]].index for it in items], np.int64)
        tiling = [(p.tile, p.stats, p.out_terms, p.halo) for p in pops]
        for window in _PACK_WINDOWS:
            bins = _pack(items, slicer.limits, layer_of, window)
            candidates.append((int(bins.max()) + 1 if len(bins) else 0, len(candidates), uses,
                               items, offsets, bins, tiling))
    candidates.sort(key=lambda c: c[:2])
    demand = _demand(pops, slicer)
    lower = _lower_bound(demand, slicer.limits)
    _check_system(target, candidates[0][0], demand, slicer.limits, pops, candidates[0][2])
    # fewest cores whose spike routes cost no more than Lava's sequential fill of its slices
    # (wide packing windows put distant layers on one core, far from some partners)
    laid = []
    for n_cores, _, _, items, offsets, bins, tiling in candidates:
        for p, (tile, stats, out_terms, halo) in zip(pops, tiling):
            p.tile, p.stats, p.out_terms, p.halo = tile, stats, out_terms, halo
        src, dst, w = _tile_edges(pops, by_name, offsets)
        chip_core, route = _mesh_layout(target, n_cores, items, bins, by_name, src, dst, w)
        laid.append((n_cores, items, offsets, bins, tiling, src, dst, w, chip_core, route))
        if (w * route).sum() <= _sequential_route(target, len(items), src, dst, w):
            break
    else:
        laid = laid[:1]
    n_cores, items, offsets, bins, tiling, src, dst, w, chip_core, route = laid[-1]
    for p, (tile, stats, out_terms, halo) in zip(pops, tiling):
        p.tile, p.stats, p.out_terms, p.halo = tile, stats, out_terms, halo
    ca, cb = bins[src], bins[dst]
    slices = tuple(
        CoreSlice(name, start, stop, int(chip_core[bins[i], 0]), int(chip_core[bins[i], 1]),
                  **{r: use[r] for r in RESOURCES}, synapses=use["synapses"],
                  halo=use["halo"])
        for i, (name, start, stop, use) in enumerate(items))
    per_pop_route = {}
    if len(w):
        energy = np.bincount(src, weights=w * route, minlength=len(items))
        for p in pops:
            o = offsets[p.node.name]
            n_t = int(np.prod([len(_tiles(n, t)[0]) for n, t in zip(p.lay, p.tile)]))
            neurons_p = math.prod(p.lay) * p.npg
            per_pop_route[p.node.name] = float(energy[o:o + n_t].sum() / max(neurons_p, 1))
    same = ca == cb
    traffic = {"routes": float(w.sum()), "intra_core": float(w[same].sum()),
               "inter_core": float(w[~same].sum()),
               "hop_energy_pj": float((w * route).sum())}
    chips = int(chip_core[:, 0].max()) + 1 if n_cores else 0
    layers = []
    by_pop: dict[str, list[CoreSlice]] = {}
    for s in slices:
        by_pop.setdefault(s.population, []).append(s)
    for p in pops:
        sl = by_pop[p.node.name]
        layers.append({"name": p.node.name, "op": ops.op_name(p.node.op),
                       "neurons": math.prod(p.lay) * p.npg,
                       "synapses": sum(s.synapses for s in sl),
                       "slices": len(sl), "cores": len({(s.chip, s.core) for s in sl}),
                       "tile": [int(_tiles(n, t)[1].max()) for n, t in zip(p.lay, p.tile)],
                       "halo": max((max(s.halo) for s in sl), default=0),
                       "utilization": {r: (None if slicer.limits[r] is None else round(
                           sum(getattr(s, r) for s in sl) / (len(sl) * slicer.limits[r]), 4))
                           for r in RESOURCES}})
    return Placement(target.name, slices, n_cores, chips, lower, demand, traffic,
                     per_pop_route, layers)


def _slice_all(pops: list[_Pop], by_name: dict, slicer: _Slicer):
    """Slice every population (consumers first: their slicing fixes producers' output axons).
    Returns per population its tiles' usage, the items (one per tile, in population
    (topological) order, row-major tiles: name, start, stop, usage) and each population's
    first item."""
    uses: dict[str, dict[str, np.ndarray]] = {}
    for p in reversed(pops):
        p.tile, uses[p.node.name] = slicer.choose(p)
        p.stats = [tuple(slicer.stats(p, k, a, p.tile[a]) for a in range(3))
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
        use = uses[p.node.name]
        grid = [_tiles(n, t) for n, t in zip(p.lay, p.tile)]
        box = slicer.halo_box(p, p.stats) if p.halo else None
        for idx in np.ndindex(*use["neurons"].shape):
            start = tuple(int(grid[a][0][idx[a]]) for a in range(3))
            stop = tuple(start[a] + int(grid[a][1][idx[a]]) for a in range(3))
            halo = (0, 0, 0, 0)
            if box is not None:
                (lo_r, hi_r), (lo_x, hi_x) = box
                r, x = idx[1], idx[2]
                halo = (start[1] - int(lo_r[r]), int(hi_r[r]) - stop[1],
                        start[2] - int(lo_x[x]), int(hi_x[x]) - stop[2])
            items.append((p.node.name, start, stop,
                          {**{r: int(use[r][idx]) for r in (*RESOURCES, "synapses")},
                           "halo": halo}))
    return uses, items, offsets


def _source_channel_tiles(pops: list[_Pop], by_name: dict, slicer: _Slicer) -> None:
    """Sets ``src_tiles``: per population-axon term, the fewest channel tiles its source can
    be cut in (its channels over the most that fit a core on one pixel, where its own weight
    set is smallest). Each channel tile of a source sends its own axon per pixel, so a
    consumer tiling costs its producers that many times its footprint in output axons (VGG-19's
    512-channel convs hold at most 28 channels per core: taking 4 channels of the whole layer
    per consumer tile sent each source pixel to 128 tiles from each of 19 source tiles).
    Relies on ``pops`` being in topological order: ``largest_channels`` reads a source's own
    ``src_tiles``, set when the loop passed it."""
    tiles: dict[str, int] = {}
    for p in pops:
        p.src_tiles = []
        for k, t in enumerate(p.terms):
            src = by_name.get(t.source)
            if src is None or not p.pop_axons[k]:
                p.src_tiles.append(1)
                continue
            if t.source not in tiles:
                src.halo = 0  # the stats ``usage`` reads are keyed by it (``choose`` resets it)
                tiles[t.source] = -(-src.lay[0] // max(slicer.largest_channels(src, 1, 1), 1))
            p.src_tiles.append(tiles[t.source])


def _demand(pops: list[_Pop], slicer: _Slicer) -> dict[str, int]:
    """Slicing-independent totals, each at most what any valid placement uses (see the
    module docstring): each population unsplit for neurons, input axons and synaptic memory
    (the lesser of without and with whole halo compartments); for output axons, per source
    neuron ``_min_out_axons``."""
    total = dict.fromkeys((*RESOURCES, "synapses"), 0)
    for p in pops:
        whole = _Pop(p.node, p.lay, p.terms, p.wbits, -1 - p.index, p.npg, p.src_npg,
                     p.pop_axons, src_tiles=p.src_tiles)
        use = slicer.usage(whole, p.lay)
        for r in ("neurons", "in_axons", "synapses"):
            total[r] += int(use[r].sum())
        bits = int(use["synapse_bits"].sum())
        if _halo_helps(p):  # halo compartments beyond the layer: one weight set per phase
            whole.halo = _HALOS[-1]
            bits = min(bits, int(slicer.usage(whole, p.lay)["synapse_bits"].sum()))
        total["synapse_bits"] += bits
    total["out_axons"] = _min_out_axons(pops, slicer.limits)
    return total


def _rowsum(ax: _Axis) -> np.ndarray:
    """Synapses per output coordinate along one axis (A @ 1)."""
    if ax.kind == "eye":
        return np.ones(ax.n_out)
    if ax.kind == "bcast":
        return np.full(ax.n_out, float(ax.m.sum()))
    return ax.m.sum(1).astype(float)


def _tmul(ax: _Axis, v: np.ndarray) -> np.ndarray:
    """A^T v along one axis: per input coordinate, the sum of v over the outputs it reaches."""
    if ax.kind == "eye":
        return v
    if ax.kind == "bcast":
        return ax.m * float(v.sum())
    return ax.m.T.astype(float) @ v


def _min_out_axons(pops: list[_Pop], limits: dict) -> int:
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
            n_syn = math.prod(float(_rowsum(a).sum()) for a in t.axes)
            if t.source not in best or n_syn > best[t.source][0]:
                best[t.source] = (n_syn, k)
        chosen = [(k, q.terms[k]) for _, k in best.values()]
        # synaptic memory bits of each neuron of q, as a sum of separable parts
        parts = [(q.wbits[k], [_rowsum(a) for a in t.axes]) for k, t in chosen
                 if not q.pop_axons[k]]  # shared weight sets bound no neuron's memory
        for k, t in chosen:
            if t.source not in by_name:
                continue
            reach = [_tmul(a, np.ones(a.n_out)) for a in t.axes]
            if q.pop_axons[k]:
                any_ch = float((_rowsum(t.axes[0]) > 0).sum())
                pixels[t.source] += any_ch * np.outer(reach[1], reach[2]) * q.npg
                pixel_bits[t.source] += (q.wbits[k] * float(reach[0].sum())
                                         * np.outer(reach[1], reach[2]))
                continue
            count[t.source] += _outer_f(*reach) * q.npg
            for w, rs in parts:
                bits[t.source] += w * _outer_f(*(_tmul(a, r) for a, r in zip(t.axes, rs)))
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


def _lower_bound(demand: dict[str, int], limits: dict) -> int:
    return max([math.ceil(demand[r] / limits[r]) for r in RESOURCES if limits[r]] + [1])


def _check_system(target, n_cores, demand, limits, pops, uses) -> None:
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
        f"resource {_NOUN[r]}: {demand[r]:,} demanded vs {cap * limits[r]:,} available, largest "
        f"layer '{worst.node.name}' needs {int(uses[worst.node.name][r].sum()):,}")


def _pack(items, limits, layer_of: np.ndarray, window: int) -> np.ndarray:
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
    1.17 / 1.14 at 1.35 / 1.11)."""
    n = len(items)
    caps = np.array([limits[r] or 1 for r in RESOURCES], float)
    use = np.array([[it[3][r] for r in RESOURCES] for it in items], float).reshape(-1, 4)
    use[:, [limits[r] is None for r in RESOURCES]] = 0
    frac = use / caps
    size = np.round(frac.max(1), 6)
    out_bound = np.isin(frac.argmax(1), [RESOURCES.index(r) for r in ("out_axons", "neurons")])
    rank = np.where(size > _PACK_BIG, 2, np.where(out_bound, 1, 0))
    order = np.lexsort((np.arange(n), layer_of, -size, -rank))
    # groups: runs of identical (size, layer, usage) in that order
    key = np.concatenate([size[order, None], layer_of[order, None].astype(float),
                          use[order]], 1)
    starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
    ends = np.r_[starts[1:], n]
    free = np.empty((n, 4))
    layer = np.empty(n, np.int64)
    open_ids = np.empty(0, np.int64)  # cores with room left, sorted by their first layer
    out = np.empty(n, np.int64)
    n_bins = 0
    eps = 1e-9
    for a, b in zip(starts, ends):
        idx = order[a:b]
        u = frac[idx[0]]
        lay = int(layer_of[idx[0]])
        m = len(idx)
        pos = 0
        lo, hi = np.searchsorted(layer[open_ids], [lay - window, lay + window + 1])
        open_ = open_ids[lo:hi]
        need = u > 0
        cand = open_[(free[open_][:, need] + eps >= u[need]).all(1)]  # cheap pre-filter
        cnt = np.floor((free[cand][:, need] + eps) / u[need]).min(1, initial=np.inf)
        cand, cnt = cand[cnt >= 1], cnt[cnt >= 1]
        if len(cand):
            fit = np.round(free[cand] @ u, 4)  # most room where the slice needs it
            pref = np.lexsort((cand, np.abs(layer[cand] - lay), -fit))
            cand, c = cand[pref], np.minimum(cnt[pref], m).astype(np.int64)
            take = np.cumsum(c)
            k = min(int(np.searchsorted(take, m)) + 1, len(take))
            cand, c = cand[:k], c[:k]
            c[-1] -= max(int(take[k - 1]) - m, 0)
            out[idx[:int(c.sum())]] = np.repeat(cand, c)
            free[cand] -= c[:, None] * u
            pos = int(c.sum())
            full = cand[free[cand].min(1) < 0.02]  # full in some resource: stop offering
            if len(full):
                open_ids = open_ids[~np.isin(open_ids, full)]
        if pos < m:  # new cores, each holding as many of the group as fit
            per = int(np.min(np.floor((1 + eps) / u[u > 0]))) if np.any(u > 0) else m
            per = max(per, 1)
            rest = m - pos
            nb = -(-rest // per)
            new = np.arange(n_bins, n_bins + nb)
            cnt_new = np.full(nb, per)
            cnt_new[-1] = rest - per * (nb - 1)
            out[idx[pos:]] = np.repeat(new, cnt_new)
            free[new] = 1.0 - cnt_new[:, None] * u
            layer[new] = lay
            new = new[free[new].min(1) >= 0.02]
            at = int(np.searchsorted(layer[open_ids], lay, side="right"))
            open_ids = np.concatenate([open_ids[:at], new, open_ids[at:]])
            n_bins += nb
    # renumber cores in order of first item (topological), so core ids follow layers
    first = np.full(n_bins, n, np.int64)
    np.minimum.at(first, out, np.arange(n))
    rank = np.empty(n_bins, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_bins)
    return rank[out]


def _tile_edges(pops, by_name, offsets):
    """Axon routes between tiles: (source tile, destination tile, source neurons routed; an
    AMOS circuit's k neurons each)."""
    srcs, dsts, ws = [], [], []
    for p in pops:
        for k, t in enumerate(p.terms):
            if t.source not in by_name:
                continue
            s = by_name[t.source]
            inter, shape_s = [], []
            for a in range(3):
                st = p.stats[k][a]
                starts, _ = _tiles(s.lay[a], s.tile[a])
                inter.append(np.add.reduceat(st.reach.astype(np.int64), starts, axis=1))
                shape_s.append(len(starts))
            nz = [np.nonzero(m) for m in inter]
            dc, dr, dx = (np.asarray(z[0]) for z in nz)
            sc, sr, sx = (np.asarray(z[1]) for z in nz)
            wc, wr, wx = (m[z] for m, z in zip(inter, nz))
            n_d = [len(st.starts) for st in p.stats[k]]
            ic, ir, ix = np.meshgrid(np.arange(len(dc)), np.arange(len(dr)),
                                     np.arange(len(dx)), indexing="ij")
            ic, ir, ix = ic.ravel(), ir.ravel(), ix.ravel()
            d = (dc[ic] * n_d[1] + dr[ir]) * n_d[2] + dx[ix]
            sidx = (sc[ic] * shape_s[1] + sr[ir]) * shape_s[2] + sx[ix]
            srcs.append(sidx + offsets[s.node.name])
            dsts.append(d + offsets[p.node.name])
            ws.append((wc[ic] * wr[ir] * wx[ix]).astype(float) * p.src_npg[k])
    if not srcs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(srcs), np.concatenate(dsts), np.concatenate(ws)


def _core_order(items, bins, by_name, weight: str) -> np.ndarray:
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


def _slots(target: TargetSpec, n_cores: int) -> np.ndarray:
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


def _cost_matrix_fn(target: TargetSpec):
    """Energy (pJ) of one spike route between (chip, core) pairs: spike delivery plus E-W/N-S
    hops; chips sit side by side along E-W."""
    e, c = target.energy, target.chip
    cols = c.mesh_cols or 1

    def xy(cc):
        x, y = core_xy(c, cc[..., 1])
        return x + cc[..., 0] * cols, y

    def cost(a, b):
        xa, ya = xy(a)
        xb, yb = xy(b)
        return e.E_spike_in_tile + np.abs(xa - xb) * e.E_hop_ew + np.abs(ya - yb) * e.E_hop_ns

    return cost


def _mesh_layout(target, n_cores, items, bins, by_name, src, dst, w):
    """Cores along the mesh path: two layer orders (a core's layer as its neurons' mean, and
    as its synaptic memory's: a core that mixes layers sits nearer the slices that take most
    of its input), each also refined by ``_barycentric``; the cheapest of the four is improved
    by swaps (SqueezeNet, 92 % memory share, 40-layer window: 1.40 x the sequential fill's
    route energy in layer order, 0.96 x refined). Returns each core's (chip, core) and each
    route's energy (pJ)."""
    slots = _slots(target, n_cores)
    cost = _cost_matrix_fn(target)
    ca, cb = bins[src], bins[dst]
    adj = _core_graph(n_cores, ca, cb, w)
    best = None
    for weight in _ORDER_WEIGHTS:
        layer_order = _core_order(items, bins, by_name, weight)
        for order in (layer_order, _barycentric(adj, layer_order)):
            pos_of_core = np.empty(n_cores, np.int64)
            pos_of_core[order] = np.arange(n_cores)
            energy = float((w * cost(slots[pos_of_core[ca]], slots[pos_of_core[cb]])).sum())
            if best is None or energy < best[0]:
                best = (energy, pos_of_core)
    pos_of_core = _improve(best[1], adj, slots, cost)
    return slots[pos_of_core], cost(slots[pos_of_core[ca]], slots[pos_of_core[cb]])


def _core_graph(n: int, ca, cb, w):
    """Symmetric core-to-core spike traffic (CSR), routes inside a core left out."""
    from scipy.sparse import coo_matrix

    keep = ca != cb
    a, b, ww = ca[keep], cb[keep], w[keep]
    adj = coo_matrix((np.concatenate([ww, ww]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                     shape=(n, n)).tocsr()
    adj.sum_duplicates()
    return adj


def _barycentric(adj, order: np.ndarray) -> np.ndarray:
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


def _sequential_route(target: TargetSpec, n: int, src, dst, w) -> float:
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


def _improve(pos, adj, slots, cost) -> np.ndarray:
    """Bounded deterministic pairwise swaps of cores at neighbouring path positions."""
    n = len(pos)
    if n < 3 or not adj.nnz:
        return pos
    core_at = np.empty(n, np.int64)
    core_at[pos] = np.arange(n)
    budget = _SWAP_BUDGET

    def local(c, p):
        lo, hi = adj.indptr[c], adj.indptr[c + 1]
        nb = adj.indices[lo:hi]
        return float((adj.data[lo:hi] * cost(slots[np.full(len(nb), p)], slots[pos[nb]])).sum())

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


def sequential_fill_cost(placement: Placement, graph: Graph, target: TargetSpec) -> float:
    """Hop energy of Lava's sequential fill (one slice per core, chip = id // cores_per_chip,
    cores in row-major mesh order) for the same slices: the baseline of the benchmark."""
    pops = _build_pops(graph, target)
    by_name = {p.node.name: p for p in pops}
    slicer = _Slicer(target)
    offsets, n = {}, 0
    for p in pops:
        mine = [x for x in placement.slices if x.population == p.node.name]
        p.tile = tuple(tuple(sorted({x.start[a] for x in mine})) for a in range(3))
        p.stats = [tuple(slicer.stats(p, k, a, p.tile[a]) for a in range(3))
                   for k in range(len(p.terms))]
        offsets[p.node.name] = n
        n += int(np.prod([len(_tiles(m, t)[0]) for m, t in zip(p.lay, p.tile)]))
    return _sequential_route(target, n, *_tile_edges(pops, by_name, offsets))
