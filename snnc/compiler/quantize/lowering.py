"""Lowering: each float op of a converted graph -> its integer op(s), one function per op
class (``LOWERING``); the ops the pass refuses, with the reason users see (``REFUSED``).

Synaptic layers get integer weights in their destination's state units (bias moved to the
population), payloads entering a destination directly get 1:1 synapses (``QScale``, or a
depthwise 1x1 ``QConv2d`` for per-channel units), average pools become sum pools, routing,
max-pools and Add/Sub keep their op on integers, and every graph output gets a host readout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from snnc.compiler.quantize.context import QuantizeContext
from snnc.compiler.quantize.formats import (
    NotQuantizable,
    WeightQuantization,
    quantize_weights,
)
from snnc.compiler.quantize.payloads import PAYLOAD
from snnc.compiler.quantize.report import synapse_record
from snnc.compiler.quantize.scales import Scales, hybrid_spike_code
from snnc.compiler.quantize.units import ann_weights, channel_units
from snnc.ir import leaky, neurons, norm_ops, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.types import TensorType, Value

__all__ = [
    "LOWERING",
    "NOT_YET_QUANTIZABLE",
    "REFUSED",
    "IntegerGraph",
    "Lowering",
    "lower_graph",
]

_INT = "int32"
NOT_YET_QUANTIZABLE = "not yet quantizable"


@dataclass
class IntegerGraph:
    """The integer graph being built, handed explicitly to every lowering: ``vals`` maps each
    float value's name to its integer value; ``synapses`` collects the report's records."""

    ctx: QuantizeContext
    scales: Scales
    producers: dict[str, Node]
    nodes: list[Node] = field(default_factory=list)
    vals: dict[str, Value] = field(default_factory=dict)
    synapses: list[dict] = field(default_factory=list)

    def add(self, op: ops.Op, ins, name: str, shape) -> Value:
        out = Value(name, TensorType(tuple(shape), _INT))
        self.nodes.append(Node(op, tuple(ins), out))
        return out


# ---------------------------------------------------------------------------------------------
# synapses


def integer_synapse(op: ops.Conv2d | ops.Dense, wq: WeightQuantization) -> ops.Op:
    """The integer op of a Conv2d/Dense with quantized weights ``wq`` (bias lives in the
    population's integer bias, so the synapse's own bias is zero)."""
    weight = wq.mantissa.astype(np.int16)
    bias = np.zeros(op.weight.shape[0], np.int32)
    if isinstance(op, ops.Conv2d):
        return q.QConv2d(weight, bias, op.stride, op.padding, op.dilation, op.groups, wq.exp,
                         wq.bits)
    return q.QDense(weight, bias, wq.exp, wq.bits)


def scale_synapse(wq: WeightQuantization) -> ops.Op:
    """A 1:1 synapse of one weight (a skip connection with a scalar unit)."""
    return q.QScale(int(wq.mantissa), wq.exp, wq.bits)


def _fs_step_exponents(b: IntegerGraph, src: str, e: int) -> list[int] | None:
    """Per-step exponents on binary-spike targets (d(t) = 2^k folded into the exponent), for
    a synapse reading ``src``: the FS population upstream of it through pools and routing."""
    fs = b.ctx.fs
    p = b.producers.get(src)
    while p is not None and p.name not in fs and p.inputs:
        p = b.producers.get(p.inputs[0].name)
    if p is None or b.ctx.graded or p.name not in fs:
        return None
    ks = [int(v).bit_length() - 1 for v in fs[p.name].d if v > 0]
    return [e + min(ks), e + max(ks)] if ks else None


def add_synapse(b: IntegerGraph, name: str, w_ann: np.ndarray, src: Value, src_name: str,
                dest: str, make: Callable[[WeightQuantization], ops.Op]) -> Value:
    """Quantize ``w_ann`` (the weights times the payload units they multiply: ANN units) in
    ``dest``'s state units and append the synapse ``make`` builds from them."""
    ctx = b.ctx
    sigma = b.scales.state_scale[dest]
    w_ann = np.asarray(w_ann, dtype=np.float64)
    if np.ndim(sigma):  # per output channel: one scale per weight row
        sigma = np.reshape(sigma, (-1, *[1] * (w_ann.ndim - 1)))
    w_eff = w_ann / (sigma * 2.0**ctx.act)
    wq = quantize_weights(w_eff, ctx.wf)
    op = make(wq)
    steps = _fs_step_exponents(b, src_name, wq.exp)
    b.synapses.append(synapse_record(name, dest, wq, w_eff, steps, ctx.wf))
    return b.add(op, (src,), name, op.infer(src.shape))


def _skip_synapses(b: IntegerGraph, n: Node, ins: list[Value]) -> list[Value]:
    """``ins`` with each payload input that enters ``n``'s destination directly replaced by a
    1:1 synapse: ``<n>/skip<i>`` into an Add/Sub, ``<n>/in`` into a population. A Sub keeps
    its op on integers (``lower_sum``), which subtracts its second input itself: that skip's
    synapse keeps a positive weight (negating it too would add the subtrahend)."""
    ctx, ins = b.ctx, list(ins)
    dest = ctx.dest_of.get(n.name, n.name)
    for cname, i, sign in ctx.dests[dest].skips:
        if cname != n.name:
            continue
        if type(n.op) is ops.Sub:
            sign = 1
        sname = f"{n.name}/skip{i}" if n.name not in b.scales.populations else f"{n.name}/in"
        v = n.inputs[i]
        u = ctx.payloads.unit[v.name]
        if not isinstance(u, np.ndarray) and not np.ndim(b.scales.state_scale[dest]):
            ins[i] = add_synapse(b, sname, np.array(sign * u), ins[i], v.name, dest,
                                 scale_synapse)
            continue
        # per-channel units (single-spike amplitudes): a depthwise 1x1 synapse
        if len(v.shape) != 3:
            raise NotQuantizable(f"layer '{n.name}': a skip connection with per-"
                                 "feature payload units is not yet quantizable")
        per_ch = channel_units(np.broadcast_to(np.asarray(u, np.float64), v.shape),
                               f"layer '{n.name}'")
        c = per_ch.size
        dw = ops.Conv2d(sign * per_ch.reshape(c, 1, 1, 1), np.zeros(c), groups=c)
        ins[i] = add_synapse(b, sname, dw.weight, ins[i], v.name, dest,
                             partial(integer_synapse, dw))
    return ins


# ---------------------------------------------------------------------------------------------
# the table: (integer graph, float node, its integer inputs, output name) -> integer value

Lowering = Callable[[IntegerGraph, Node, list[Value], str], Value]


def lower_synaptic(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    return add_synapse(b, name, ann_weights(n, b.ctx.payloads.unit), ins[0], n.inputs[0].name,
                       b.ctx.dest_of[n.name], partial(integer_synapse, n.op))


def lower_population(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    return b.add(b.scales.populations[n.name], _skip_synapses(b, n, ins), name, n.output.shape)


def lower_sum(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    return b.add(n.op, _skip_synapses(b, n, ins), name, n.output.shape)


def lower_hybrid_input(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    ctx = b.ctx
    spike = hybrid_spike_code(n.op, ctx.s_in, ctx.input_signed, ctx.input_bits)
    op = q.QHybridInput(ctx.s_in, ctx.input_bits, bool(ctx.input_signed), n.op.timesteps, spike)
    return b.add(op, ins, name, n.output.shape)


def lower_avg_pool(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    return b.add(q.SumPool2d(n.op.kernel, n.op.stride), ins, name, n.output.shape)


def lower_global_avg_pool(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    return b.add(q.GlobalSumPool(), ins, name, n.output.shape)


def lower_unchanged(b: IntegerGraph, n: Node, ins: list[Value], name: str) -> Value:
    """Routing and max-pools: the same op on integers."""
    return b.add(n.op, ins, name, n.output.shape)


LOWERING: dict[type[ops.Op], Lowering] = {
    ops.Conv2d: lower_synaptic,
    ops.Dense: lower_synaptic,
    ops.Add: lower_sum,
    ops.Sub: lower_sum,
    ops.AvgPool2d: lower_avg_pool,
    ops.GlobalAvgPool: lower_global_avg_pool,
    ops.MaxPool2d: lower_unchanged,
    neurons.SpikingMaxPool2d: lower_unchanged,
    neurons.FirstSpikeMaxPool2d: lower_unchanged,
    ops.Reshape: lower_unchanged,
    ops.Transpose: lower_unchanged,
    ops.Identity: lower_unchanged,
    ops.Concat: lower_unchanged,
    ops.Pad: lower_unchanged,  # zero padding only (payloads.pad_flow)
    neurons.IFNeurons: lower_population,
    neurons.FewSpikeNeurons: lower_population,
    neurons.AmosNeurons: lower_population,
    neurons.SingleSpikeNeurons: lower_population,
    neurons.HybridInputNeurons: lower_hybrid_input,
}

_POPULATIONS_ONLY = ("is not yet quantizable (fixed point supports rate (IF), fs, amos and "
                     "ttfs populations)")

# op class -> the reason in ``layer '<name>' (<op>): <reason>``, raised at the first such layer
REFUSED: dict[type[ops.Op], str] = {
    # a converted graph keeps none of these: conversion folds constants and batch norms
    # (fold_bn) and replaces activations by neurons; products of two signals (Mul/Div: SE
    # attention, silu) have no synapse
    ops.Constant: ("a constant in the data path (an elementwise scale or offset that varies "
                   "inside a channel, e.g. an approximated LayerNorm over [C, H, W], so it folds "
                   "into no synapse) is not yet quantizable; the cpu target runs it"),
    ops.Mul: NOT_YET_QUANTIZABLE,
    ops.Div: NOT_YET_QUANTIZABLE,
    ops.BatchNorm: NOT_YET_QUANTIZABLE,
    ops.Activation: NOT_YET_QUANTIZABLE,
    ops.Softmax: NOT_YET_QUANTIZABLE,
    ops.LRN: NOT_YET_QUANTIZABLE,
    # per-sample normalizations: folded or approximated (approximate_norm) before conversion
    **{cls: NOT_YET_QUANTIZABLE for cls in norm_ops.NORM_OPS},
    # routing in the IR, but split_fanin inserts it only after quantize (on the integer
    # graph): quantize has never handled it, and refuses it as before
    ops.Slice: NOT_YET_QUANTIZABLE,
    # partial-sum relays (split_fanin, after quantize) and already-quantized ops
    neurons.PartialSumRelay: f"PartialSumRelay {_POPULATIONS_ONLY}",
    **{cls: f"{cls.__name__} {_POPULATIONS_ONLY}" for cls in q.QUANTIZED_OPS},
    # imported spiking networks (NIR) have their own pass: compiler/quantize/leaky.py
    **{cls: f"{cls.__name__}: imported SNNs are quantized by quantize_leaky (quantize/leaky.py)"
       for cls in leaky.LEAKY_OPS},
}


def _encode_inputs(b: IntegerGraph) -> None:
    """An InputQuantizer on every graph input, except those only hybrid encoders read (each
    becomes a QHybridInput on the float input)."""
    ctx = b.ctx
    consumers = ctx.graph.consumers()
    for v in ctx.graph.inputs:
        if consumers.get(v.name) and all(type(c.op) is neurons.HybridInputNeurons
                                         for c in consumers[v.name]):
            b.vals[v.name] = v
            continue
        op = q.InputQuantizer(ctx.s_in, ctx.input_bits, bool(ctx.input_signed))
        b.vals[v.name] = b.add(op, (v,), f"{v.name}/code", v.shape)


def _readout(b: IntegerGraph, n: Node, acc: Value) -> None:
    """Append the host-side decoder of graph output ``n`` (keeps the output's name)."""
    ctx = b.ctx
    if ctx.payloads.kind[n.name] == PAYLOAD:
        unit = ctx.payloads.unit[n.name]
        if isinstance(unit, np.ndarray):
            raise NotQuantizable(f"output '{n.name}': a readout of spikes with per-channel "
                                 "units is not yet quantizable")
        scale, bias = unit, np.zeros(n.output.shape, np.float32)
    else:
        scale = b.scales.state_scale[f"output:{n.name}"] * 2.0**ctx.act
        bias = ctx.biases.get(n.name, np.zeros(n.output.shape)).astype(np.float32)
    b.nodes.append(Node(q.QReadout(float(scale), bias, ctx.reduce), (acc,),
                        Value(n.name, TensorType(n.output.shape, "float32"))))


def lower_graph(ctx: QuantizeContext, scales: Scales) -> tuple[Graph, list[dict]]:
    """The integer graph (same value names; ``<output>/acc`` for an output's integer value,
    its readout keeping the name) and the report's synapse records."""
    b = IntegerGraph(ctx, scales, ctx.graph.producers())
    _encode_inputs(b)
    outputs = {v.name for v in ctx.graph.outputs}
    for n in ctx.graph.nodes:
        name = n.name if n.name not in outputs else f"{n.name}/acc"
        out = LOWERING[type(n.op)](b, n, [b.vals[v.name] for v in n.inputs], name)
        b.vals[n.name] = out
        if n.name in outputs:
            _readout(b, n, out)
    qgraph = ctx.graph.replace(nodes=tuple(b.nodes), outputs=tuple(
        Value(v.name, TensorType(v.shape, "float32")) for v in ctx.graph.outputs))
    return qgraph, b.synapses
