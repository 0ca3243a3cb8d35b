"""What every value of a converted graph carries, one rule per op class (``PAYLOAD_RULES``):
integer payloads (input codes, spikes, FS d(t), pooled or routed) with their unit (the ANN value
one integer stands for) and their largest level per step, or synaptic input ('current', which
only a population or a graph output may integrate). ``SENDS``: what each population type sends;
``FsPayload``: the integer d(t) of an FS table (FS neurons, AMOS circuits)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from snnc.compiler.quantize.formats import NotQuantizable, input_code_max
from snnc.compiler.quantize.units import Unit, routed_unit, uniform
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.targets.target import TargetSpec

__all__ = [
    "CURRENT",
    "FS_PAYLOAD_BITS",
    "PAYLOAD",
    "PAYLOAD_RULES",
    "SENDS",
    "Flow",
    "FsPayload",
    "PayloadMap",
    "PayloadRule",
    "Sends",
    "describe",
    "fs_payloads",
    "is_relu_table",
]

PAYLOAD, CURRENT = "payload", "current"
FS_PAYLOAD_BITS = 16  # general FS tables: d(t) payloads quantized to at most 16 bits


class Sends(enum.Enum):
    """What a population sends each step."""

    SPIKE = "spike"  # binary spikes worth the population's amplitude (rate-coded IF)
    FS_TABLE = "fs_table"  # d(t) of an integer (h, d, T) table: FS neurons and AMOS circuits
    # (the same table unrolled in space, docs/amos.md)
    SINGLE_SPIKE = "single_spike"  # one spike worth its (per-channel) amplitude (ttfs)


# the populations fixed point expresses: each integrates synaptic input in its own state scale
# (a destination, scales.py) and sends payloads downstream
SENDS: dict[type[ops.Op], Sends] = {
    neurons.IFNeurons: Sends.SPIKE,
    neurons.FewSpikeNeurons: Sends.FS_TABLE,
    neurons.AmosNeurons: Sends.FS_TABLE,
    neurons.SingleSpikeNeurons: Sends.SINGLE_SPIKE,
}


class FsPayload(NamedTuple):
    """The integer payloads of an FS table: ``d`` (int64, d(t) in units of ``unit``) in
    ``bits`` signed bits."""

    d: np.ndarray
    unit: float
    bits: int


def describe(n: Node) -> str:
    """How errors name a layer: ``layer 'fc1' (dense)``."""
    return f"layer '{n.name}' ({ops.op_name(n.op)})"


def is_relu_table(op: neurons.FewSpikeNeurons) -> bool:
    """True for the FS-ReLU table T = h = d = step 2^(K-1..0): every threshold, reset and
    payload an exact power of two of its step."""
    K = op.K
    if op.activation not in ("relu", "clip") or not (np.array_equal(op.h, op.T)
                                                    and np.array_equal(op.d, op.T)):
        return False
    step = op.T[-1]
    return bool(step > 0 and np.array_equal(op.T, step * np.exp2(np.arange(K - 1, -1, -1.0))))


def _fs_payload(n: Node, spec: TargetSpec) -> FsPayload:
    op, nrn = n.op, spec.neuron
    graded = bool(nrn.graded_spike_bits)
    if is_relu_table(op):
        step = float(op.T[-1])
        d_int = np.rint(op.d / step).astype(np.int64)
        bits = int(d_int.max()).bit_length() + 1
    else:
        if not graded:
            raise NotQuantizable(
                f"layer '{n.name}' ({ops.op_name(op)}, {op.activation}): target "
                f"'{spec.name}' has binary spikes only; folding an arbitrary d(t) into "
                "8-bit weights per step is not yet quantizable (FS-ReLU is)")
        bits = min(FS_PAYLOAD_BITS, nrn.graded_spike_bits)
        # The unit spans the table's whole output range (sum |d|), not its largest step: a
        # constructed table's many small steps would otherwise make the unit so fine that
        # the next layer's weights, in state units, underflow the weight exponent.
        reach = float(np.abs(op.d).sum()) or 1.0
        step = reach / (2 ** (bits - 1) - 1)
        d_int = np.rint(op.d / step).astype(np.int64)
    if graded and bits > nrn.graded_spike_bits:
        raise NotQuantizable(
            f"layer '{n.name}': FS payloads need {bits} bits; target '{spec.name}' "
            f"graded spikes carry {nrn.graded_spike_bits} (lower K)")
    return FsPayload(d_int, step, bits)


def coarsen(p: FsPayload, d: np.ndarray, k: int) -> FsPayload:
    """The payloads of ``p`` (the table's float steps ``d``) in a unit 2^k coarser."""
    if k <= 0:
        return p
    unit = p.unit * 2.0**k
    return FsPayload(np.rint(np.asarray(d, np.float64) / unit).astype(np.int64), unit, p.bits)


def fs_payloads(graph: Graph, spec: TargetSpec) -> dict[str, FsPayload]:
    """The integer payloads of every FS-table population. They depend only on the table, and
    the units of general tables must be known before downstream weights are quantized, so the
    pass fixes them first (and refuses a table the target cannot send before anything else)."""
    return {n.name: _fs_payload(n, spec) for n in graph.nodes
            if SENDS.get(type(n.op)) is Sends.FS_TABLE}


@dataclass(frozen=True)
class Flow:
    """What one value carries: its kind (PAYLOAD or CURRENT), for payloads their unit, and
    the largest |level| (in units) it carries in one step (0 where unknown or current)."""

    kind: str
    unit: Unit | None = None
    level: float = 0.0


@dataclass
class PayloadMap:
    """``Flow`` of every value, by value name, filled in graph order (``record``)."""

    kind: dict[str, str] = field(default_factory=dict)
    unit: dict[str, Unit] = field(default_factory=dict)
    level: dict[str, float] = field(default_factory=dict)
    graph_inputs: frozenset[str] = frozenset()
    fs: dict[str, FsPayload] = field(default_factory=dict)

    @classmethod
    def of_inputs(cls, graph: Graph, s_in: float, fs: dict[str, FsPayload],
                  bits: int) -> PayloadMap:
        """Graph inputs carry ``bits``-bit input codes of unit ``s_in`` (|code| <= 2^bits - 1)."""
        names = [v.name for v in graph.inputs]
        level = float(input_code_max(False, bits))
        return cls({v: PAYLOAD for v in names}, {v: s_in for v in names},
                   {v: level for v in names}, frozenset(names), fs)

    def flow(self, name: str) -> Flow:
        return Flow(self.kind[name], self.unit.get(name), self.level.get(name, 0.0))

    def record(self, name: str, f: Flow) -> None:
        self.kind[name] = f.kind
        if f.unit is not None:
            self.unit[name] = f.unit
        self.level[name] = f.level


PayloadRule = Callable[[Node, list[Flow], PayloadMap], Flow]


def _routed(n: Node, ins: list[Flow], k: int, level: float) -> Flow | None:
    """Pools and routing of payloads (every input a payload) where some unit is a map: the op
    applied to the unit maps (``routed_unit``), the 1/k of average pools going into the unit;
    None where every unit is a float."""
    if not any(isinstance(f.unit, np.ndarray) for f in ins):
        return None
    return Flow(PAYLOAD, uniform(routed_unit(n, [f.unit for f in ins]) / k), level)


def avg_pool_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Average pools of payloads become sum pools: the unit takes the 1/k."""
    if ins[0].kind != PAYLOAD:
        raise NotQuantizable(f"{describe(n)}: average pooling of synaptic input is not yet "
                             "quantizable")
    if any(n.op.padding) or n.op.ceil_mode:
        raise NotQuantizable(f"{describe(n)}: padded average pooling is not yet quantizable")
    k = n.op.kernel[0] * n.op.kernel[1]
    routed = _routed(n, ins, k, ins[0].level * k)
    return routed if routed is not None else Flow(PAYLOAD, ins[0].unit / k, ins[0].level * k)


def global_avg_pool_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    if ins[0].kind != PAYLOAD:
        raise NotQuantizable(f"{describe(n)}: average pooling of synaptic input is not yet "
                             "quantizable")
    k = int(np.prod(n.inputs[0].shape[1:]))
    routed = _routed(n, ins, k, ins[0].level * k)
    return routed if routed is not None else Flow(PAYLOAD, ins[0].unit / k, ins[0].level * k)


def max_pool_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Max-pools (ANN and spiking) pass payloads on, unit unchanged."""
    if ins[0].kind != PAYLOAD:
        raise NotQuantizable(f"{describe(n)}: max-pooling synaptic input is not yet quantizable")
    level = max(f.level for f in ins)
    routed = _routed(n, ins, 1, level)
    return routed if routed is not None else Flow(PAYLOAD, ins[0].unit, level)


def routing_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Routing moves payloads (all of one unit) or synaptic input, never both."""
    kinds = {f.kind for f in ins}
    if len(kinds) != 1:
        raise NotQuantizable(f"{describe(n)}: mixes spikes and synaptic input")
    level = max(f.level for f in ins)
    if kinds != {PAYLOAD}:
        return Flow(CURRENT, None, level)
    routed = _routed(n, ins, 1, level)
    if routed is not None:
        return routed
    units = {f.unit for f in ins}
    if len(units) != 1 and isinstance(n.op, ops.Concat):  # a unit map: per input's elements
        return Flow(PAYLOAD, uniform(routed_unit(n, [f.unit for f in ins])), level)
    if len(units) != 1:
        raise NotQuantizable(f"{describe(n)}: joins populations with different payload "
                             "scales (not yet quantizable)")
    return Flow(PAYLOAD, units.pop(), level)


def pad_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Zero padding is routing (padded payloads are 0); other padding is not."""
    if n.op.mode != "constant" or n.op.value != 0.0:
        raise NotQuantizable(f"{describe(n)}: only zero padding is quantizable")
    return routing_flow(n, ins, pm)


def synaptic_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Conv2d/Dense turn payloads into synaptic input for one population (or output)."""
    if ins[0].kind != PAYLOAD:
        raise NotQuantizable(f"{describe(n)}: two synaptic layers without a population between "
                             "them are not yet quantizable unless merged into one, and this pair "
                             "does not merge exactly within 4x the synapses of the two "
                             "(Dense->Dense, conv->Flatten->Dense, conv->1x1 conv merge); put an "
                             "activation between them")
    return Flow(CURRENT)


def sum_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """Add/Sub join synaptic input (payload operands enter through 1:1 skip synapses)."""
    return Flow(CURRENT)


def spike_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    return Flow(PAYLOAD, float(n.op.amplitude), 1.0)


def fs_table_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    fs = pm.fs[n.name]
    return Flow(PAYLOAD, fs.unit, float(np.abs(fs.d).max()))


def single_spike_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """One spike (level 1; the switched-on current too) worth the per-channel amplitude."""
    amplitude = np.broadcast_to(np.asarray(n.op.amplitude, np.float64), n.output.shape)
    return Flow(PAYLOAD, uniform(amplitude), 1.0)


def hybrid_input_flow(n: Node, ins: list[Flow], pm: PayloadMap) -> Flow:
    """The ttfs hybrid encoder sends the input codes' unit."""
    if n.inputs[0].name not in pm.graph_inputs:
        raise NotQuantizable(f"{describe(n)}: the hybrid input encoder must read a graph input")
    return Flow(PAYLOAD, ins[0].unit, max(f.level for f in ins))


PAYLOAD_RULES: dict[type[ops.Op], PayloadRule] = {
    ops.Conv2d: synaptic_flow,
    ops.Dense: synaptic_flow,
    ops.Add: sum_flow,
    ops.Sub: sum_flow,
    ops.AvgPool2d: avg_pool_flow,
    ops.GlobalAvgPool: global_avg_pool_flow,
    ops.MaxPool2d: max_pool_flow,
    neurons.SpikingMaxPool2d: max_pool_flow,
    neurons.FirstSpikeMaxPool2d: max_pool_flow,
    # routing; Slice is not here (REFUSED, lowering.py)
    ops.Reshape: routing_flow,
    ops.Transpose: routing_flow,
    ops.Identity: routing_flow,
    ops.Concat: routing_flow,
    ops.Pad: pad_flow,
    neurons.IFNeurons: spike_flow,
    neurons.FewSpikeNeurons: fs_table_flow,
    neurons.AmosNeurons: fs_table_flow,
    neurons.SingleSpikeNeurons: single_spike_flow,
    neurons.HybridInputNeurons: hybrid_input_flow,
}
