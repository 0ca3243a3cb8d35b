"""Pipeline timing of a Lava network: each value is a ``Stream`` of ``length`` steps starting at
a constant local step ``start`` of every sample's period, so every population's train equals
the reference simulator's shifted by a constant (which the runner removes).

The input code starts at local step 1 (``length``: T for rate, 1 for few-spike: the code is
sent once; T event steps of the ttfs hybrid input). Every synapse delivers one step later (its
buffer). IF and single-spike populations, relays, rate and first-spike gates, slices,
concatenations, zero pads and sum-pools pass their input window through in the same step.
Few-spike populations, AMOS circuits and few-spike max-pool gates start their K output steps
in the step in which their last input arrives. A two-input add (and a concatenation) starts
with its later input (the earlier is delayed, a skip connection's synaptic delay). ``STREAMS``
holds one rule per op class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snnc.backends.lava.network import unsupported
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Node
from snnc.ir.ops import Op

__all__ = ["FS_LIKE", "STREAMS", "Stream", "fold_offsets", "plan_streams", "source_stream"]

FS_LIKE = (q.QFewSpikeNeurons, q.QAmosNeurons)  # integer (h, d, T) tables: FS and AMOS


@dataclass(frozen=True, eq=False)
class Stream:
    """A value's steps in each sample's period: ``length`` steps from local step ``start``."""

    start: int
    length: int
    bits: int | None = None  # graded payloads: their bits (None: binary spikes or currents)
    # binary few-spike / AMOS spikes (Loihi 1): the payloads d(t) folded into consumers' weights
    fold: np.ndarray | None = None


def fold_offsets(d) -> np.ndarray | None:
    """k(t) = log2 d(t) of a binary-spike (Loihi 1) few-spike/AMOS table: its payloads are
    folded into the consumers' weight exponents. None unless every d(t) is a power of two."""
    d = np.asarray(d, np.int64)
    if (d <= 0).any() or (d & (d - 1)).any():
        return None
    return np.array([int(v).bit_length() - 1 for v in d], np.int64)


def source_stream(op: q.InputQuantizer | q.QHybridInput, fs: bool, steps: int) -> Stream:
    """The input code's stream (the hybrid input's events are signed: a sign bit more)."""
    hybrid = type(op) is q.QHybridInput  # ttfs: T steps of signed events
    return Stream(1, op.timesteps if hybrid else 1 if fs else steps, op.bits + int(hybrid))


def _pass_through(node: Node, ins: list[Stream]) -> Stream:
    """Routed or integrated within the step; binary spikes (or currents) out."""
    return Stream(ins[0].start, ins[0].length)


def _routed(node: Node, ins: list[Stream]) -> Stream:
    """Reshape, slice, zero pad: the same payloads (graded bits, folded factors) in the same
    steps."""
    return ins[0]


def _synapse(node: Node, ins: list[Stream]) -> Stream:
    return Stream(ins[0].start + 1, ins[0].length)  # the 1-step synaptic buffer


def _aligned_sum(node: Node, ins: list[Stream]) -> Stream:
    a, b = ins
    if a.length != b.length:
        raise unsupported(node, "inputs with different window lengths")
    return Stream(max(a.start, b.start), a.length)


def _concat(node: Node, ins: list[Stream]) -> Stream:
    """A concatenation starts with its latest input (the earlier ones are delayed); its inputs
    must carry the same kind of payload (binary, graded, or the same folded factors)."""
    if len({s.length for s in ins}) != 1:
        raise unsupported(node, "inputs with different window lengths")
    if len({s.bits is None for s in ins}) != 1 or len({
            None if s.fold is None else tuple(s.fold) for s in ins}) != 1:
        raise unsupported(node, "inputs with different payload codes")
    bits = None if ins[0].bits is None else max(s.bits for s in ins)
    return Stream(max(s.start for s in ins), ins[0].length, bits, ins[0].fold)


def _stepped(node: Node, ins: list[Stream]) -> Stream:
    """IF and single-spike populations step with their input, which must last T steps."""
    if ins[0].length != node.op.timesteps:
        raise unsupported(node, "populations with different time steps")
    return _pass_through(node, ins)


def _few_spike(node: Node, ins: list[Stream]) -> Stream:
    """K output steps from the last input step: graded payloads, or binary spikes whose d(t)
    the consumers' weights carry."""
    s, op = ins[0], node.op
    if op.graded:
        return Stream(s.start + s.length - 1, op.K, bits=op.payload_bits)
    return Stream(s.start + s.length - 1, op.K, fold=np.asarray(op.d, np.int64))


def _decoded_max_pool(node: Node, ins: list[Stream]) -> Stream:
    """The few-spike max-pool sends the winners' payloads once its input window is in."""
    s = ins[0]
    return Stream(s.start + s.length - 1, s.length, s.bits, s.fold)


def _relay(node: Node, ins: list[Stream]) -> Stream:
    """A fresh graded stream: the relay's own payloads."""
    return Stream(ins[0].start, ins[0].length, bits=node.op.payload_bits)


def _pooled_sum(s: Stream, fan_in) -> Stream:
    """Sums are graded even of binary spikes; the per-step factor of folded spikes stays."""
    bits = min(24, (1 if s.bits is None else s.bits) + int(fan_in - 1).bit_length())
    return Stream(s.start, s.length, bits, s.fold)


def _sum_pool(node: Node, ins: list[Stream]) -> Stream:
    return _pooled_sum(ins[0], np.prod(node.op.kernel))


def _global_sum_pool(node: Node, ins: list[Stream]) -> Stream:
    return _pooled_sum(ins[0], np.prod(node.inputs[0].type.shape[1:]))


# op class -> its output stream from its input streams (sources: ``source_stream``)
STREAMS: dict[type[Op], Callable[[Node, list[Stream]], Stream]] = {
    q.QConv2d: _synapse,
    q.QDense: _synapse,
    q.QScale: _synapse,
    q.SumPool2d: _sum_pool,
    q.GlobalSumPool: _global_sum_pool,
    ops.Add: _aligned_sum,
    ops.Sub: _aligned_sum,
    ops.Reshape: _routed,
    ops.Slice: _routed,
    ops.Concat: _concat,
    ops.Pad: _routed,
    q.QIFNeurons: _stepped,
    q.QSingleSpikeNeurons: _stepped,
    q.QFewSpikeNeurons: _few_spike,
    q.QAmosNeurons: _few_spike,
    neurons.PartialSumRelay: _relay,
    neurons.SpikingMaxPool2d: _pass_through,
    neurons.FirstSpikeMaxPool2d: _pass_through,
    ops.MaxPool2d: _decoded_max_pool,  # on payloads: few-spike graphs
    q.QReadout: _pass_through,
}


def plan_streams(nodes, fs: bool, steps: int) -> dict[str, Stream]:
    """Every value's stream, in node order (the first node is the input code's source).

    Requires: the nodes passed ``check_supported``. Ensures: one stream per node; a
    BackendError naming the layer where two streams that must agree do not."""
    streams = {nodes[0].name: source_stream(nodes[0].op, fs, steps)}
    for node in nodes[1:]:
        rule = STREAMS.get(type(node.op))
        if rule is None:  # a second input encoder: only the first node is a source
            raise unsupported(node)
        streams[node.name] = rule(node, [streams[v.name] for v in node.inputs])
    return streams
