"""place: split a converted SNN into core slices, pack them onto cores, put cores on the mesh.

Requires: a converted graph (convert_rate / convert_fs / convert_amos; quantize before it when
present) and a
``TargetSpec`` with per-core limits (docs/targets.md §3a).

Ensures (for the returned ``Placement``):
    * every neuron of every population lies in exactly one ``CoreSlice`` (a box of the
      population's (C, H, W) layout; 1-D populations are (F, 1, 1));
    * on every core the summed usage of neurons, input axons, output axons and synaptic memory
      is at most the target's limit (the usage model below; an independent
      test recomputes it from the artifact);
    * cores used <= cores_per_chip x chips_per_system; otherwise ``TargetConstraintError``
      naming the limiting resource, the layer with the largest demand of it, demand and limit.

Usage model (NL ``LoihiBlock.utilization``, docs/targets.md §3a; ``usage.CoreUsage``), per slice and
per synaptic term (a source population reaching the slice through linear ops,
``connectivity.Terms``):
    neurons      neurons in the slice;
    in_axons     distinct source neurons with a synapse into the slice (one axon each);
    synapse_bits sum over those axons of ceil(n_axon * weight_bits / word) * word, n_axon =
                 the axon's synapses into the slice (its synapse list, word aligned);
    out_axons    sum over destination slices of the slice's neurons that reach it (an upper
                 bound of Loihi's count, one per (source neuron, destination core) pair: equal
                 to it when no two destination slices reached by one neuron share a core).
An AMOS gate (docs/amos.md) is k neurons: a source circuit's k neurons are k axons, each with
its own synapses to every consumer (in_axons, synapses, synaptic memory and out_axons x k), and
each gate adds its own circuit (``usage.circuit``: x's list of k synapses and neuron j's
inhibition of the k - j later ones, through k input and k - 1 output axons on its own core).
Population axons (targets with ``core.population_axons``, off by default; nengo-loihi's conv
connections): a term between spatial layers from a source of 2 or more channels
(``connectivity.uses_population_axons``) sends one axon per source pixel, the pixel's channels
its atoms:
    in_axons     source pixels with a synapse into the slice;
    synapse_bits one weight set per distinct pattern of the pixels (per axis, input j's targets
                 in the tile relative to j // stride, and j mod stride unless the weights are
                 uniform, as in pooling: ``axis_stats.shared_hists``), each atom's list word
                 aligned; a pixel's set is shifted onto its targets by its compartment base;
    out_axons    2 slots (pop32) per source pixel of the slice and destination slice reached by
                 any of the slice's channels there;
    neurons      with halo compartments (``axis_stats.halo_stats``, chosen per layer): the tile
                 grown by never-spiking compartments on which its edge pixels' windows stay
                 whole (patterns are then cut only at the halo's edge; beyond the layer's edges
                 too, where the window continues, ``axis_stats.continued``), recorded as the
                 slice's ``halo``.
Axes that are not shift-invariant (layout maps, concatenations along space) share nothing.
Per core, each resource is the sum over the core's slices (axons are not shared between slices
on one core: an upper bound of the hardware's per-core count, so every placement that passes
this model fits the chip).
Connectivity is structural (every weight of a conv window counts) and separable per axis
(channel x row x column incidence, ``axes.Axis``), so every count is computed per axis and
multiplied: no per-synapse loop. Layout ops that are not separable (a flatten) are treated as
all-to-all over their source footprint: exact when a Dense follows, conservative otherwise. The
network input comes from the host: it costs input axons and synapses but no cores.

Lower bound (``cores_lower_bound``, ``usage.demand``): max over resources of the network's
demand / per-core capacity, the demand counted with every population unsplit. It is a lower
bound of every placement valid under this model: splitting a population only adds input axons
(each slice needs its own axon per source neuron it hears), adds word rounding (ceil of a split
synapse list >= ceil of the whole), and leaves neurons unchanged; output axons are bounded per
source neuron by the cores its targets need (``usage.min_out_axons``); and per-core usage is
additive, so no core holds more than its capacity of any resource's demand. With population
axons the unsplit memory counts each window pattern once over the whole layer, and where a
window continues beyond the layer one weight set per stride phase (halo compartments there keep
the edge pixels' windows whole): a tile cuts windows at its edges, adding patterns, and every
tap of every channel pair must be stored on some slice of its channel tile (the independent
checker asserts the bound on every placement it sees); and output axons are bounded per
source pixel by its targets' compartments and its own synapses' memory
(``usage.min_out_axons``). (Were axons shared between
slices on one core, the input-axon term would have to count each source neuron once over all
its consumer populations; the output-axon term would stay valid.)

Algorithm: (1) slice each population (``slicing``; consumers first, so output axons are
known): for near-square spatial tiles, binary search the largest channel tile that fits, also
try 1/2 and 1/3 of it, and keep the tiling with the lowest estimated cores (``slicing.score``:
with the output axons it costs its producers, per population-axon source pixel once per channel
tile the source needs at least, ``slicing.source_channel_tiles``); the
remainder channel tile is cut in pieces of under half a core, so tiles are uneven along
channels; channel tiles that fill whole memory words (``slicing.word_channels``) are tried too;
a layer bound by output axons or neurons is cut into small spatial pieces, or channel pieces
where its tiles are single pixels (``slicing.split_out_bound``); a population fed by a
concatenation is also cut in channel tiles within its parts (``connectivity.channel_segments``),
tried with small spatial tiles of any aspect: a tile across two parts needs both sources' axons,
and each source neuron reaches more slices (DenseNet-121: 1.31 -> 1.08 x the lower bound);
(2) first-fit-decreasing multi-resource packing of all slices of the network into cores
(``packing``; slices at most a window of layers apart may share a core; among cores with room,
the one with most room where the slice needs it is taken, then the nearest in layer order).
Slicing runs once per memory share of ``MEM_FILLS`` (slices that take at most 96 or 92 % of a
core's memory leave room for the small output-axon- or neuron-bound pieces), packing once per
slicing and window of ``packing.PACK_WINDOWS``;
(3) cores along a boustrophedon path over each chip's mesh, chips filled in order (``mesh``):
four orders are tried, the cores in layer order (a core's layer: the mean of its slices',
weighted by neurons or by synaptic memory) and each of those refined by the barycenter heuristic
(``mesh.barycentric``: cores move toward the traffic-weighted mean place of their partners), the
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

import numpy as np

from snnc.compiler.placement.axis_stats import tiles
from snnc.compiler.placement.connectivity import build_pops, tile_edges
from snnc.compiler.placement.mesh import mesh_layout, sequential_route
from snnc.compiler.placement.packing import PACK_WINDOWS, pack
from snnc.compiler.placement.result import CoreSlice, Placement, layer_rows
from snnc.compiler.placement.slicing import slice_all, source_channel_tiles
from snnc.compiler.placement.usage import (
    RESOURCES,
    CoreUsage,
    check_system,
    demand,
    lower_bound,
)
from snnc.ir.graph import Graph
from snnc.targets.target import TargetSpec

__all__ = ["MEM_FILLS", "place", "sequential_fill_cost"]

MEM_FILLS = (1.0, 0.96, 0.92)  # slicings tried: a slice takes at most this share of memory


def place(graph: Graph, target: TargetSpec) -> Placement:
    """Place a converted SNN graph on ``target``'s cores (see the module docstring).

    Raises:
        TargetConstraintError: a single neuron exceeds a core, or the network exceeds the
            system; the one-line message names the layer, the resource, demand and limit.
    """
    pops = build_pops(graph, target)
    by_name = {p.node.name: p for p in pops}
    cu = CoreUsage(target)
    source_channel_tiles(pops, by_name, cu)
    candidates = _candidates(pops, by_name, cu)
    need = demand(pops, cu)
    lower = lower_bound(need, cu.limits)
    check_system(target, candidates[0][0], need, cu.limits, pops, candidates[0][2])
    n_cores, items, offsets, bins, src, dst, w, chip_core, route = _lay_out(
        target, pops, by_name, candidates)
    ca, cb = bins[src], bins[dst]
    slices = tuple(
        CoreSlice(name, start, stop, int(chip_core[bins[i], 0]), int(chip_core[bins[i], 1]),
                  **{r: use[r] for r in RESOURCES}, synapses=use["synapses"],
                  halo=use["halo"])
        for i, (name, start, stop, use) in enumerate(items))
    same = ca == cb
    traffic = {"routes": float(w.sum()), "intra_core": float(w[same].sum()),
               "inter_core": float(w[~same].sum()),
               "hop_energy_pj": float((w * route).sum())}
    chips = int(chip_core[:, 0].max()) + 1 if n_cores else 0
    return Placement(target.name, slices, n_cores, chips, lower, need, traffic,
                     _route_per_spike(pops, items, offsets, src, w, route),
                     layer_rows(pops, slices, cu.limits))


def _candidates(pops, by_name, cu: CoreUsage) -> list[tuple]:
    """Every (memory share, packing window) candidate, fewest cores first (then in the order
    tried): (cores, rank, uses, items, offsets, bins, per-population tiling)."""
    candidates = []
    for fill in MEM_FILLS:
        for p in pops:
            p.out_terms = []
        uses, items, offsets = slice_all(pops, by_name, cu, fill)
        layer_of = np.array([by_name[it[0]].index for it in items], np.int64)
        tiling = [(p.tile, p.stats, p.out_terms, p.halo) for p in pops]
        for window in PACK_WINDOWS:
            bins = pack(items, cu.limits, layer_of, window)
            candidates.append((int(bins.max()) + 1 if len(bins) else 0, len(candidates), uses,
                               items, offsets, bins, tiling))
    candidates.sort(key=lambda c: c[:2])
    return candidates


def _set_tiling(pops, tiling) -> None:
    for p, (tile, stats, out_terms, halo) in zip(pops, tiling):
        p.tile, p.stats, p.out_terms, p.halo = tile, stats, out_terms, halo


def _lay_out(target: TargetSpec, pops, by_name, candidates) -> tuple:
    """The fewest-core candidate whose spike routes cost no more than Lava's sequential fill
    of its slices (wide packing windows put distant layers on one core, far from some
    partners), else the fewest-core one, laid out on the mesh; its tiling is left set on
    ``pops``. Returns (cores, items, offsets, bins, route sources, destinations, weights,
    each core's (chip, core), each route's energy)."""
    laid = []
    for n_cores, _, _, items, offsets, bins, tiling in candidates:
        _set_tiling(pops, tiling)
        src, dst, w = tile_edges(pops, by_name, offsets)
        chip_core, route = mesh_layout(target, n_cores, items, bins, by_name, src, dst, w)
        laid.append((n_cores, items, offsets, bins, tiling, src, dst, w, chip_core, route))
        if (w * route).sum() <= sequential_route(target, len(items), src, dst, w):
            break
    else:
        laid = laid[:1]
    n_cores, items, offsets, bins, tiling, src, dst, w, chip_core, route = laid[-1]
    _set_tiling(pops, tiling)
    return n_cores, items, offsets, bins, src, dst, w, chip_core, route


def _route_per_spike(pops, items, offsets, src, w, route) -> dict[str, float]:
    """Per population: the routing energy (pJ) of one spike, averaged over its neurons."""
    per_pop = {}
    if len(w):
        energy = np.bincount(src, weights=w * route, minlength=len(items))
        for p in pops:
            o = offsets[p.node.name]
            n_t = int(np.prod([len(tiles(n, t)[0]) for n, t in zip(p.lay, p.tile)]))
            neurons_p = math.prod(p.lay) * p.npg
            per_pop[p.node.name] = float(energy[o:o + n_t].sum() / max(neurons_p, 1))
    return per_pop


def sequential_fill_cost(placement: Placement, graph: Graph, target: TargetSpec) -> float:
    """Hop energy of Lava's sequential fill (one slice per core, chip = id // cores_per_chip,
    cores in row-major mesh order) for the same slices: the baseline of the benchmark."""
    pops = build_pops(graph, target)
    by_name = {p.node.name: p for p in pops}
    cu = CoreUsage(target)
    offsets, n = {}, 0
    for p in pops:
        mine = [x for x in placement.slices if x.population == p.node.name]
        p.tile = tuple(tuple(sorted({x.start[a] for x in mine})) for a in range(3))
        p.stats = [tuple(cu.stats(p, k, a, p.tile[a]) for a in range(3))
                   for k in range(len(p.terms))]
        offsets[p.node.name] = n
        n += int(np.prod([len(tiles(m, t)[0]) for m, t in zip(p.lay, p.tile)]))
    return sequential_route(target, n, *tile_edges(pops, by_name, offsets))
