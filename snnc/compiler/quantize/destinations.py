"""Where synaptic input goes: every current value reaches exactly one destination (a
population, or a graph output read out on the host), whose state scale its weights are
expressed in; and the float bias each current carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from snnc.compiler.quantize.formats import NotQuantizable
from snnc.compiler.quantize.payloads import CURRENT, PAYLOAD, SENDS, PayloadMap
from snnc.ir import ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES
from snnc.ir.ops import Role

__all__ = ["Dest", "Skip", "bias_maps", "find_destinations"]

OUTPUT_PREFIX = "output:"


class Skip(NamedTuple):
    """A payload value entering a destination through a 1:1 synapse: input ``index`` of
    node ``consumer`` (an Add/Sub, or the population itself), with its ``sign``."""

    consumer: str
    index: int
    sign: int


@dataclass
class Dest:
    """A destination of synaptic input: a population or a graph output (readout)."""

    name: str  # the population's name, or "output:<name>"
    node: Node | None  # the population node (None: graph output)
    synapses: list[Node] = field(default_factory=list)  # float Conv2d/Dense nodes feeding it
    skips: list[Skip] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        """The value holding the synaptic input it integrates."""
        return self.node.inputs[0].name if self.node is not None else self.name[len(
            OUTPUT_PREFIX):]


def _dest_of_currents(graph: Graph, pm: PayloadMap, dests: dict[str, Dest]) -> dict[str, str]:
    """The destination of every current value, walking consumers backwards."""
    consumers = graph.consumers()
    outputs = {v.name for v in graph.outputs}
    dest_of: dict[str, str] = {}
    for n in reversed(graph.nodes):
        if pm.kind[n.name] != CURRENT:
            continue
        targets = set()
        for c in consumers.get(n.name, []):
            targets.add(c.name if c.name in dests else dest_of.get(c.name, f"?{c.name}"))
        if n.name in outputs:
            targets.add(f"{OUTPUT_PREFIX}{n.name}")
        bad = [t for t in targets if t.startswith("?")]
        if bad or len(targets) != 1:
            raise NotQuantizable(f"layer '{n.name}': its synaptic input must reach exactly one "
                                 f"population (reaches {sorted(targets)})")
        dest_of[n.name] = targets.pop()
    return dest_of


def find_destinations(graph: Graph, pm: PayloadMap) -> tuple[dict[str, str], dict[str, Dest]]:
    """(destination of every current value, every destination by name): populations in graph
    order, then outputs, each with its synaptic layers and payload skips."""
    dests = {n.name: Dest(n.name, n) for n in graph.nodes
             if pm.kind[n.name] == PAYLOAD and type(n.op) in SENDS}
    for v in graph.outputs:
        dests.setdefault(f"{OUTPUT_PREFIX}{v.name}", Dest(f"{OUTPUT_PREFIX}{v.name}", None))
    dest_of = _dest_of_currents(graph, pm, dests)
    # after the payload analysis, the synaptic ops carrying current are exactly Conv2d/Dense
    # (pools carry payloads) and the elementwise ops are exactly Add/Sub (REFUSED has the rest)
    for n in graph.nodes:
        if n.op.role is Role.SYNAPTIC and pm.kind[n.name] == CURRENT:
            dests[dest_of[n.name]].synapses.append(n)
        if n.op.role is Role.ELEMENTWISE:
            for i, v in enumerate(n.inputs):
                if pm.kind[v.name] == PAYLOAD:
                    sign = -1 if (type(n.op) is ops.Sub and i == 1) else 1
                    dests[dest_of[n.name]].skips.append(Skip(n.name, i, sign))
    for d in dests.values():  # a population or output fed directly by payloads
        if d.node is not None and pm.kind[d.node.inputs[0].name] == PAYLOAD:
            d.skips.append(Skip(d.name, 0, 1))
    return dest_of, dests


def bias_maps(graph: Graph, pm: PayloadMap) -> dict[str, np.ndarray]:
    """The float bias reaching each current value (its synaptic layers' biases, routed/summed),
    computed by running the current-domain ops on all-zero payloads."""
    maps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for n in graph.nodes:
            if pm.kind[n.name] != CURRENT:
                continue
            args = []
            for v in n.inputs:
                if v.name in maps:
                    args.append(maps[v.name])
                else:
                    args.append(torch.zeros((1, *v.shape), dtype=torch.float64))
            maps[n.name] = ANN_RULES[type(n.op)](n.op, *args).to(torch.float64)
    return {k: v[0].numpy() for k, v in maps.items()}
