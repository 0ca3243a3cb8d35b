"""Placement on Loihi-class cores: fan-in splits, slicing, packing, mesh layout.

``split_fanin`` spreads a fan-in wider than a core over partial-sum relays; ``place`` cuts each
population into core slices and puts them on cores and the mesh (the usage model, lower bound
and algorithm are in ``placer``'s docstring). Modules, by concern:

    axes          per-axis synapse incidence, composable
    connectivity  populations and their synaptic terms (per-op table ``AXES``), tile edges
    axis_stats    per-tile statistics of one axis (footprints, synapse-list histograms)
    usage         per-core usage of a tiling, the network's demand and lower bound
    slicing       the tiling search, per population and over the network
    packing       first-fit-decreasing packing of slices into cores
    mesh          cores along the mesh path, route energy
    result        ``CoreSlice``, ``Placement`` (summary, placement.json)
    placer        the pass: ``place``, ``sequential_fill_cost``
    split_fanin   the fan-in pass: ``split_fanin``, ``split_summary``, ``relay_levels``
"""

from snnc.compiler.placement.connectivity import AXES, REFUSED, populations, weight_bits
from snnc.compiler.placement.mesh import core_xy
from snnc.compiler.placement.placer import place, sequential_fill_cost
from snnc.compiler.placement.result import CoreSlice, Placement
from snnc.compiler.placement.split_fanin import relay_levels, split_fanin, split_summary
from snnc.compiler.placement.usage import LIMIT_FIELD, RESOURCES

__all__ = ["AXES", "LIMIT_FIELD", "REFUSED", "RESOURCES", "CoreSlice", "Placement", "core_xy",
           "place", "populations", "relay_levels", "sequential_fill_cost", "split_fanin",
           "split_summary", "weight_bits"]
