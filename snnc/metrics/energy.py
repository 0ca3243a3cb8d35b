"""Loihi event energy per inference (docs/targets.md §4b, T2 numbers from the target file).

    E = synops x E_synop + neuron updates x E_neuron_active
        + sum over populations of spikes x (routing energy of one spike from the placement)

A neuron update is counted for every neuron on every step of an image's window
(``throughput_steps``), all as active updates (an upper bound: T2's inactive update is 52 pJ vs
81 pJ), and so is every halo compartment of the placement (population axons: never spiking,
but updated; the synops of their synapses are not counted). The routing energy of a spike is
its population's mean over its slices of ``E_spike_in_tile + hops x E_hop`` summed over the
destination slices it reaches (``Placement.route_pj_per_spike``). Static leakage is left out (it depends on wall time).
"""

from __future__ import annotations

__all__ = ["loihi_energy"]


def loihi_energy(result, manifest: dict, target) -> dict:
    """Energy keys for ``simulate --json`` of an artifact with a placement."""
    e = target.energy
    samples = max(result.samples, 1)
    routes = manifest["placement"]["route_pj_per_spike"]
    mean_route = sum(routes.values()) / max(len(routes), 1)
    synops = sum(result.synops.values()) / samples
    compartments = (sum(result.neurons.values())  # per sample
                    + manifest["placement"].get("halo_compartments", 0))
    updates = compartments * manifest["throughput_steps"]
    routing = sum(count / samples * routes.get(name, mean_route)
                  for name, count in result.spikes.items())
    parts = {"synops": synops * e.E_synop * 1e-6,
             "neuron_updates": updates * e.E_neuron_active * 1e-6,
             "spike_routing": routing * 1e-6}
    return {"energy_uj_per_sample": sum(parts.values()),
            "energy_breakdown_uj": parts,
            "energy_model": f"{target.name} events (synop {e.E_synop} pJ, neuron update "
                            f"{e.E_neuron_active} pJ, hops from the placement)"}
