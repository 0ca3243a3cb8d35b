"""The placement result: core slices, the summary in the manifest, placement.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from snnc.compiler.placement.axis_stats import tiles
from snnc.compiler.placement.connectivity import Population
from snnc.compiler.placement.usage import RESOURCES
from snnc.ir import ops

__all__ = ["CoreSlice", "Placement", "layer_rows"]


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


def layer_rows(pops: list[Population], slices, limits: dict) -> list[dict]:
    """Per population (tiled): its neurons, synapses, slices, cores, largest tile, halo and
    mean utilization of each resource over its slices."""
    by_pop: dict[str, list[CoreSlice]] = {}
    for s in slices:
        by_pop.setdefault(s.population, []).append(s)
    layers = []
    for p in pops:
        sl = by_pop[p.node.name]
        layers.append({"name": p.node.name, "op": ops.op_name(p.node.op),
                       "neurons": math.prod(p.lay) * p.npg,
                       "synapses": sum(s.synapses for s in sl),
                       "slices": len(sl), "cores": len({(s.chip, s.core) for s in sl}),
                       "tile": [int(tiles(n, t)[1].max()) for n, t in zip(p.lay, p.tile)],
                       "halo": max((max(s.halo) for s in sl), default=0),
                       "utilization": {r: (None if limits[r] is None else round(
                           sum(getattr(s, r) for s in sl) / (len(sl) * limits[r]), 4))
                           for r in RESOURCES}})
    return layers
