"""split_fanin: spread a fan-in wider than a core over partial-sum relay populations.

A neuron's synapses must all sit on its own core, behind at most ``max_in_axons`` input axons
(one per source neuron it hears). ResNet-50's 3x3 convolutions on 512 channels need 4,608 and
VGG-19's fc6 25,088, more than a Loihi core's 4,096. On a target with graded spikes (Loihi 2) the
sum can be computed in parts: channel group g of the input feeds its own copy of the synapses
into a population of ``PartialSumRelay`` neurons, which send their part as a graded payload,
and the consumer adds the G parts through 1:1 synapses of weight 1.

Requires: a converted graph, float or quantized (``quantize`` runs first on fixed-point
targets), and a target.

Ensures:
    * for every population whose single neuron would need more input axons than a core has,
      the synaptic op S with the widest fan-in that feeds it (a ``Conv2d`` with ``groups=1`` or
      a ``Dense``, directly or through Add/Sub/Concat) is replaced by G channel groups (the fewest
      whose relays need at most half a core's input axons)
      ``x -> Slice -> [Reshape, when S read a flattened (C, H, W) value] -> S_g ->
      PartialSumRelay`` whose parts are added (quantized graphs: through ``QScale(1, 2^0)``)
      by a chain of two-input ``Add`` nodes into S's output value; each relay neuron needs at
      most ``max_in_axons`` input axons (half of it where a channel allows) and the consumer at
      most ``max_in_axons``;
    * float graphs compute the same sums (in another order). Integer graphs round each group's
      weight shift on its own, so a neuron's synaptic input can differ from the unsplit
      network's by less than G units per step; and every part any step can carry (the row L1
      norm of the group's mantissas x the largest payload its input can send, shifted) fits
      the target's signed graded payload, so relays never saturate (groups are made smaller
      until it fits);
    * on Loihi each relay level adds one step of latency (the relays' outgoing synapses);
    * the graph is unchanged when no neuron exceeds the limit, when the target sends binary
      spikes (Loihi 1: ``place`` then names the layer), or when no such S can be found.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from snnc.compiler.placement.axes import layout
from snnc.compiler.placement.connectivity import (
    Terms,
    is_pool,
    is_population,
    npg,
    populations,
    term_axons,
    uses_population_axons,
)
from snnc.compiler.quantize.formats import input_code_max
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.types import TensorType, Value
from snnc.targets.target import TargetSpec

__all__ = ["part_max", "payload_max", "relay_levels", "split_fanin", "split_summary"]

_RELAY_SHARE = 2  # a relay neuron takes at most 1 / this of a core's input axons (see _plan)


def _widest_synapse(graph: Graph, value: Value, finder, per: dict,
                    target: TargetSpec) -> tuple[Node, int] | None:
    """The Conv2d (groups=1) / Dense feeding ``value`` (through Add/Sub, or a channel Concat:
    SqueezeNet's branches concatenated before their ReLU) with the widest single-neuron fan-in
    (axons: an AMOS source sends one per circuit neuron), and that fan-in."""
    producers = graph.producers()
    best, todo = None, [value]
    while todo:
        node = producers.get(todo.pop().name)
        if node is None:
            continue
        if isinstance(node.op, (ops.Add, ops.Sub, ops.Concat)):
            todo.extend(node.inputs)
        elif ((isinstance(node.op, ops.Conv2d) and node.op.groups == 1)
              or isinstance(node.op, ops.Dense)):
            fan = _discrete_fan(node, finder, per, target)
            if fan and (best is None or fan > best[1]):
                best = (node, fan)
    return best


def _discrete_fan(node: Node, finder, per: dict, target: TargetSpec) -> int:
    """Input axons of the widest neuron fed by ``node``'s op, 0 if any of them are
    population axons (one per source pixel: channel groups would not cut them)."""
    lay = layout(node.output.shape)
    terms = finder.of_node(node)
    if any(uses_population_axons(t, lay, target) for t in terms):
        return 0
    return sum(term_axons(t, lay, target, per.get(t.source, 1)) for t in terms)


def payload_max(graph: Graph, value: Value) -> int | None:
    """The largest |payload| one step of a quantized value can carry; None if unknown."""
    node = graph.producers().get(value.name)
    if node is None:
        return None
    op = node.op
    if isinstance(op, q.InputQuantizer):
        return input_code_max(op.signed, op.bits)
    if isinstance(op, q.QHybridInput):  # events: the code, its take-back, the spike code
        return max(op.spike_code, input_code_max(op.signed, op.bits))
    if isinstance(op, (q.QIFNeurons, q.QSingleSpikeNeurons)):
        return 1
    if isinstance(op, (q.QFewSpikeNeurons, q.QAmosNeurons)):
        return int(np.abs(np.asarray(op.d, np.int64)).max())
    if isinstance(op, neurons.PartialSumRelay):
        return 2 ** (op.payload_bits - 1) - 1
    if isinstance(op, (ops.MaxPool2d, ops.Reshape, ops.Slice, ops.Identity, ops.Pad)):
        return payload_max(graph, node.inputs[0])
    if isinstance(op, q.SumPool2d):
        m = payload_max(graph, node.inputs[0])
        return None if m is None else m * int(np.prod(op.kernel))
    if isinstance(op, q.GlobalSumPool):
        m = payload_max(graph, node.inputs[0])
        return None if m is None else m * int(np.prod(node.inputs[0].shape[1:]))
    if isinstance(op, ops.Concat):
        ms = [payload_max(graph, v) for v in node.inputs]
        return None if None in ms else max(ms)
    return None


def _shifted(v: np.ndarray, e: int) -> np.ndarray:
    return v * 2**e if e >= 0 else v // 2**-e  # |floor| of a magnitude: arithmetic shift


def _cuts(channels: int, groups: int) -> list[tuple[int, int]]:
    m = -(-channels // groups)
    return [(lo, min(lo + m, channels)) for lo in range(0, channels, m)]


def _group_weights(op, lo: int, hi: int, per: int) -> np.ndarray:
    """S's weights over input channels [lo, hi) (``per`` columns per channel for a Dense
    reading a flattened (C, H, W) value)."""
    return op.weight[:, lo * per:hi * per]


def split_fanin(graph: Graph, target: TargetSpec) -> Graph:
    """Split every fan-in wider than a core over partial-sum relays (see the module
    docstring for what is guaranteed)."""
    limit = target.core.max_in_axons
    bits = target.neuron.graded_spike_bits
    if not limit or not bits:
        return graph
    while True:  # all splits a round finds, then a check that nothing is left
        plans = _plans(graph, target)
        if not plans:
            return graph
        quantized = q.is_quantized(graph)
        for s, plan in plans.values():
            graph = _rewrite(graph, s, *plan, target=target, quantized=quantized)


def _plans(graph: Graph, target: TargetSpec) -> dict[str, tuple]:
    """Per synaptic op to split (by name): the op and its plan (``_plan``)."""
    limit, bits = target.core.max_in_axons, target.neuron.graded_spike_bits
    nodes = populations(graph)
    finder = Terms(graph, nodes)
    quantized = q.is_quantized(graph)
    per = {n.name: npg(n) for n in nodes}
    plans: dict[str, tuple] = {}
    for pop in nodes:
        if is_pool(pop) or not pop.inputs:
            continue  # a pool's window is its own synapse: nothing to cut here
        terms = (finder.of_value(pop.inputs[0]) if is_population(pop)
                 else finder.of_node(pop))  # a linear readout: its own op is host-side
        lay = layout(pop.output.shape)
        total = sum(term_axons(t, lay, target, per.get(t.source, 1)) for t in terms)
        if total <= limit:
            continue
        if not is_population(pop) and (
                (isinstance(pop.op, ops.Conv2d) and pop.op.groups == 1)
                or isinstance(pop.op, ops.Dense)):  # a float graph's readout is its synapse
            found = (pop, total) if _discrete_fan(pop, finder, per, target) else None
        else:
            found = _widest_synapse(graph, pop.inputs[0], finder, per, target)
        if found is None:
            continue
        s, fan = found
        plan = _plan(graph, s, fan, total, limit, bits, quantized)
        if plan is not None and s.name not in plans:
            plans[s.name] = (s, plan)
    return plans


def _plan(graph: Graph, s: Node, fan: int, total: int, limit: int, bits: int,
          quantized: bool):
    """(source value to slice, channels per flattened feature, channel cuts) or None."""
    producers = graph.producers()
    x = s.inputs[0]
    src, per = x, 1
    flat = producers.get(x.name)
    if (isinstance(s.op, ops.Dense) and flat is not None and isinstance(flat.op, ops.Reshape)
            and len(x.shape) == 1 and len(flat.inputs[0].shape) == 3):
        src = flat.inputs[0]  # a flatten: cut whole channels of the (C, H, W) value
        per = math.prod(src.shape[1:])
    channels = src.shape[0]
    # channels per group (fan-in ~ channels): at most half a core's input axons, so that two
    # relay slices can share a core (at the limit each relay slice takes a core of its own
    # and leaves its memory partly empty); the whole limit where half is not one channel
    m = (limit // _RELAY_SHARE) * channels // fan or limit * channels // fan
    if m < 1:
        return None
    groups = -(-channels // m)
    pmax = payload_max(graph, x) if quantized else None
    if quantized and pmax is None:
        return None
    lim = 2 ** (bits - 1) - 1
    while groups <= channels:
        cuts = _cuts(channels, groups)
        if total - fan + len(cuts) > limit:
            return None  # the consumer cannot take that many parts
        if not quantized or all(part_max(s.op, lo, hi, per, pmax) <= lim for lo, hi in cuts):
            return src, per, cuts
        groups += 1
    return None


def part_max(op, lo: int, hi: int, per: int, pmax: int) -> int:
    """The largest |part| relay group [lo, hi) of ``op`` can carry in one step: the row L1
    norm of its mantissas x the largest input payload ``pmax``, shifted by the weight exponent."""
    w = np.abs(_group_weights(op, lo, hi, per).astype(np.int64))
    rows = w.reshape(w.shape[0], -1).sum(1)
    return int(_shifted(rows * pmax, op.weight_exp).max()) if rows.size else 0


def _rewrite(graph: Graph, s: Node, src: Value, per: int, cuts, *, target: TargetSpec,
             quantized: bool) -> Graph:
    dtype = s.output.type.dtype
    made: list[Node] = []

    def add(name: str, op, *inputs: Value) -> Value:
        out = Value(name, TensorType(tuple(int(d) for d in op.infer(*(v.shape for v in inputs))),
                                     dtype if not isinstance(op, (ops.Slice, ops.Reshape))
                                     else inputs[0].type.dtype))
        made.append(Node(op, inputs, out))
        return out

    parts = []
    for g, (lo, hi) in enumerate(cuts):
        part = add(f"{s.name}/in{g}", ops.Slice(lo, hi), src)
        if per > 1:
            part = add(f"{s.name}/flat{g}", ops.Reshape(((hi - lo) * per,)), part)
        w = _group_weights(s.op, lo, hi, per)
        bias = s.op.bias if g == 0 else np.zeros_like(s.op.bias)  # the bias once (float)
        part = add(f"{s.name}/part{g}", replace(s.op, weight=np.ascontiguousarray(w),
                                                 bias=bias), part)
        relay = add(f"{s.name}/relay{g}",
                    neurons.PartialSumRelay(payload_bits=target.neuron.graded_spike_bits), part)
        if quantized:  # weight 1 = mantissa 1 x 2^0, stored in the target's mantissa bits
            relay = add(f"{s.name}/relay{g}/syn",
                        q.QScale(1, 0, target.weights.mantissa_bits or 8), relay)
        parts.append(relay)
    acc = parts[0]
    for g, part in enumerate(parts[1:], 1):
        name = s.name if g == len(parts) - 1 else f"{s.name}/sum{g}"
        acc = add(name, ops.Add(), acc, part)
    assert acc.shape == s.output.shape
    made[-1] = Node(made[-1].op, made[-1].inputs, s.output)
    nodes = []
    for n in graph.nodes:
        nodes.extend(made if n is s else [n])
    used = {v.name for v in graph.outputs}  # drop what only S read (a flatten)
    for n in reversed(nodes):
        if n.name in used:
            used.update(v.name for v in n.inputs)
    return graph.replace(nodes=tuple(n for n in nodes if n.name in used))


def relay_levels(graph: Graph) -> int:
    """Relay populations on the longest path: the extra steps of latency they add on Loihi."""
    depth: dict[str, int] = {v.name: 0 for v in graph.inputs}
    for n in graph.nodes:
        d = max((depth.get(v.name, 0) for v in n.inputs), default=0)
        depth[n.name] = d + int(isinstance(n.op, neurons.PartialSumRelay))
    return max(depth.values(), default=0)


def split_summary(graph: Graph) -> dict | None:
    """What ``split_fanin`` did to a graph (for the manifest): the split layers, the relay
    populations and relay levels; None when nothing was split."""
    relays = [n for n in graph.nodes if isinstance(n.op, neurons.PartialSumRelay)]
    if not relays:
        return None
    return {"layers": sorted({n.name.rsplit("/relay", 1)[0] for n in relays}),
            "relay_populations": len(relays), "relay_levels": relay_levels(graph)}
