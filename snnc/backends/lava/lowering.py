"""Lowering of a quantized snnc graph to Lava processes: ``LOWERING`` holds one function per op
class that creates and connects the process(es) of one node; ``REFUSED`` names the op classes
the Lava backend deliberately does not run, with the reason. ``build`` is a loop over the graph
dispatching on the table, after ``check_supported`` (derived from it) and the stream timing
(``streams.STREAMS``).

Processes: ``QConv2d`` (snnc ``IntConv``), ``QDense`` (Lava's stock ``Dense``, bit-accurate
model; snnc ``IntDense`` behind folded payloads), ``QScale`` 1:1 synapses (``ScaleSynapse``),
two-input ``Add``/``Sub`` of synaptic input (``AlignedSum``), ``SumPool2d``/``GlobalSumPool``
(``SumPoolGate``), ``Reshape`` (flat C-order ports: nothing to do), channel ``Slice``
(``SliceGate``), ``Concat`` (``ConcatGate``, two inputs a gate, delays aligning them), zero
``Pad`` (``PadGate``), max-pool gates, ``PartialSumRelay`` populations (``RelayNeurons``:
``split_fanin``'s partial sums, graded payloads) and either ``QIFNeurons`` (rate),
``QFewSpikeNeurons`` / ``QAmosNeurons`` (fs / amos; graded payloads on loihi2, binary spikes
with d(t) = 2^k(t) folded into per-step weight exponents on loihi1) or ``QSingleSpikeNeurons``
with first-spike max-pools (ttfs), fed by the input code or the hybrid input's events
(``InputCode`` source) and read by a ``QReadout`` on the last synapse (``ReadoutAcc``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType

import numpy as np

from snnc.backends.lava.host import input_codes
from snnc.backends.lava.network import LavaNetwork, unsupported
from snnc.backends.lava.streams import FS_LIKE, Stream, fold_offsets, plan_streams
from snnc.errors import BackendError
from snnc.ir import leaky, neurons, norm_ops, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Node
from snnc.ir.ops import Op, Role

__all__ = ["LOWERING", "REFUSED", "Lowering", "build", "check_supported"]


@dataclass
class Lowering:
    """One ``build`` in progress: what the lowering functions read (streams, shapes, period)
    and what they add (each value's output port, the processes the runner reads)."""

    proc: ModuleType  # snnc.backends.lava.proc, imported by ``build``
    x: np.ndarray
    streams: dict[str, Stream]
    shapes: dict[str, tuple[int, ...]]
    period: int
    samples: int
    ports: dict[str, object] = field(default_factory=dict)  # value name -> OutPort
    populations: dict[str, object] = field(default_factory=dict)  # spike records
    gates: dict[str, object] = field(default_factory=dict)  # max-pool gates: event records
    source: object = None
    readout: object = None
    readout_op: q.QReadout | None = None

    def size(self, node: Node) -> int:
        return int(np.prod(self.shapes[node.name]))

    def stream_in(self, node: Node) -> Stream:
        return self.streams[node.inputs[0].name]

    def shape_in(self, node: Node) -> tuple[int, ...]:
        return self.shapes[node.inputs[0].name]

    def folded(self, node: Node):
        """A binary few-spike input: (its first local step, per-step exponent offsets k(t))."""
        s = self.stream_in(node)
        return None if s.fold is None else (s.start, fold_offsets(s.fold))

    def wire(self, node: Node, in_port, out_port) -> None:
        """Connect the node's input to ``in_port``; ``out_port`` carries the node's value."""
        self.ports[node.inputs[0].name].connect(in_port)
        self.ports[node.name] = out_port


def _int_bias(node: Node) -> np.ndarray:
    op = node.op
    mant = np.asarray(op.bias_mant, np.int64).reshape(-1)
    if op.bias_exp >= 0:
        return mant << op.bias_exp
    if np.any(mant % (1 << -op.bias_exp)):
        raise unsupported(node, "non-integer bias")
    return mant >> -op.bias_exp


def _source(net: Lowering, node: Node, payload_steps: int) -> None:
    codes = input_codes(node.op, net.x).reshape(net.samples, payload_steps, -1)
    net.source = net.proc.InputCode(codes=codes, period=net.period,
                                    steps=net.streams[node.name].length, name="input")
    net.ports[node.name] = net.source.s_out


def lower_input_quantizer(net: Lowering, node: Node) -> None:
    _source(net, node, 1)  # the 8-bit code: sent once (few-spike) or T times (rate)


def lower_hybrid_input(net: Lowering, node: Node) -> None:
    _source(net, node, node.op.timesteps)  # T steps of signed events


def lower_reshape(net: Lowering, node: Node) -> None:
    net.ports[node.name] = net.ports[node.inputs[0].name]  # flat C-order ports: free


def lower_aligned_sum(net: Lowering, node: Node, sign: int) -> None:
    a, b = (net.streams[v.name] for v in node.inputs)
    later = max(a.start, b.start)  # the earlier stream is delayed to the later one
    proc = net.proc.AlignedSum(size=net.size(node), delays=(later - a.start, later - b.start),
                               sign=sign, name=node.name)
    net.ports[node.inputs[0].name].connect(proc.a_in0)
    net.ports[node.inputs[1].name].connect(proc.a_in1)
    net.ports[node.name] = proc.a_out


def lower_scale(net: Lowering, node: Node) -> None:
    op = node.op
    proc = net.proc.ScaleSynapse(size=net.size(node), weight=int(op.weight),
                                 weight_exp=int(op.weight_exp), fold=net.folded(node),
                                 period=net.period, name=node.name)
    net.wire(node, proc.s_in, proc.a_out)


def _sum_pool(net: Lowering, node: Node, kernel, stride) -> None:
    proc = net.proc.SumPoolGate(in_shape=net.shape_in(node), out_shape=net.shapes[node.name],
                                kernel=kernel, stride=stride, name=node.name)
    net.wire(node, proc.s_in, proc.s_out)


def lower_sum_pool(net: Lowering, node: Node) -> None:
    _sum_pool(net, node, tuple(node.op.kernel), tuple(node.op.stride))


def lower_global_sum_pool(net: Lowering, node: Node) -> None:
    _sum_pool(net, node, None, None)


def lower_slice(net: Lowering, node: Node) -> None:
    proc = net.proc.SliceGate(in_shape=net.shape_in(node), start=int(node.op.start),
                              stop=int(node.op.stop), name=node.name)
    net.wire(node, proc.s_in, proc.s_out)


def lower_concat(net: Lowering, node: Node) -> None:
    """A chain of two-input ``ConcatGate`` s; each delays its earlier input to the later one."""
    axis = node.op.axis
    port, shape, start = (net.ports[node.inputs[0].name], net.shapes[node.inputs[0].name],
                          net.streams[node.inputs[0].name].start)
    for i, v in enumerate(node.inputs[1:], 1):
        s = net.streams[v.name].start
        later = max(start, s)
        proc = net.proc.ConcatGate(shape0=shape, shape1=net.shapes[v.name], axis=axis,
                                   delays=(later - start, later - s), name=f"{node.name}/{i}")
        port.connect(proc.s_in0)
        net.ports[v.name].connect(proc.s_in1)
        shape = (*shape[:axis], shape[axis] + net.shapes[v.name][axis], *shape[axis + 1:])
        port, start = proc.s_out, later
    net.ports[node.name] = port


def lower_pad(net: Lowering, node: Node) -> None:
    pads = tuple(int(p) for p in node.op.pads)
    proc = net.proc.PadGate(in_shape=net.shape_in(node), pads=pads, name=node.name)
    net.wire(node, proc.s_in, proc.s_out)


def lower_conv(net: Lowering, node: Node) -> None:
    op = node.op
    proc = net.proc.IntConv(weight=np.asarray(op.weight, np.int64), weight_exp=op.weight_exp,
                            stride=tuple(op.stride), padding=tuple(op.padding),
                            dilation=tuple(op.dilation), groups=op.groups,
                            in_shape=net.shape_in(node), out_shape=net.shapes[node.name],
                            fold=net.folded(node), period=net.period, name=node.name)
    net.wire(node, proc.s_in, proc.a_out)


def lower_dense(net: Lowering, node: Node) -> None:
    """Lava's stock ``Dense`` (one weight exponent), or ``IntDense`` behind folded payloads
    (a per-step exponent)."""
    op, folded = node.op, net.folded(node)
    if folded is not None:
        proc = net.proc.IntDense(weight=np.asarray(op.weight, np.int64),
                                 weight_exp=int(op.weight_exp), fold=folded, period=net.period,
                                 name=node.name)
    else:
        w = np.asarray(op.weight, np.int64)
        mixed = int(w.min() < 0 < w.max())
        bits = net.stream_in(node).bits
        # Lava truncates (8 - num_weight_bits + mixed) LSBs of the mantissas; snnc's
        # mantissas are exact 8-bit (sign included) integers: truncate nothing
        proc = net.proc.Dense(weights=w.astype(np.int32), weight_exp=int(op.weight_exp),
                              num_weight_bits=8 + mixed,
                              num_message_bits=0 if bits is None else bits, name=node.name)
    net.wire(node, proc.s_in, proc.a_out)


def _population(net: Lowering, node: Node, proc) -> None:
    net.wire(node, proc.a_in, proc.s_out)
    net.populations[node.name] = proc


def _stepped_params(net: Lowering, node: Node) -> dict:
    """The parameters IF and single-spike populations share."""
    op = node.op
    return {"size": net.size(node), "bias": _int_bias(node), "act_shift": op.act_shift,
            "compare": op.compare, "uv_bits": op.uv_bits, "u_overflow": op.u_overflow,
            "v_overflow": op.v_overflow, "period": net.period,
            "start": net.stream_in(node).start, "steps": op.timesteps,
            "samples": net.samples, "name": node.name}


def _flat(net: Lowering, node: Node, th) -> np.ndarray:
    """Thresholds broadcast to the population as in the reference, flat."""
    return np.broadcast_to(np.asarray(th, np.int64), net.shapes[node.name]).reshape(-1)


def lower_if_neurons(net: Lowering, node: Node) -> None:
    params = _stepped_params(net, node)
    vth = _flat(net, node, node.op.vth)  # one threshold, or one per channel
    proc = net.proc.IFNeurons(vth=vth, v_init=np.round(node.op.v_init * vth).astype(np.int64),
                              reset=node.op.reset, **params)
    _population(net, node, proc)


def lower_single_spike(net: Lowering, node: Node) -> None:
    params = _stepped_params(net, node)
    vth = np.stack([_flat(net, node, th) for th in node.op.vth])  # one threshold map per step
    _population(net, node, net.proc.SingleSpikeNeurons(vth=vth, **params))


def _few_spike(net: Lowering, node: Node, process: type) -> None:
    op, s = node.op, net.stream_in(node)
    proc = process(size=net.size(node), h=np.asarray(op.h), d=np.asarray(op.d),
                   T=np.asarray(op.T), bias=_int_bias(node), act_shift=op.act_shift,
                   uv_bits=op.uv_bits, u_overflow=op.u_overflow, v_overflow=op.v_overflow,
                   period=net.period, start=s.start, window=s.length, samples=net.samples,
                   graded=bool(op.graded), name=node.name)
    _population(net, node, proc)


def lower_few_spike(net: Lowering, node: Node) -> None:
    _few_spike(net, node, net.proc.FSNeurons)


def lower_amos(net: Lowering, node: Node) -> None:
    _few_spike(net, node, net.proc.AmosNeurons)


def lower_relay(net: Lowering, node: Node) -> None:
    s = net.stream_in(node)
    proc = net.proc.RelayNeurons(size=net.size(node), payload_bits=int(node.op.payload_bits),
                                 period=net.period, start=s.start, steps=s.length,
                                 samples=net.samples, name=node.name)
    _population(net, node, proc)


def _gate(net: Lowering, node: Node, proc) -> None:
    net.wire(node, proc.s_in, proc.s_out)
    net.gates[node.name] = proc


def _binary_max_pool(net: Lowering, node: Node, process: type) -> None:
    op = node.op
    _gate(net, node, process(in_shape=net.shape_in(node), out_shape=net.shapes[node.name],
                             kernel=tuple(op.kernel), stride=tuple(op.stride),
                             padding=tuple(op.padding), dilation=tuple(op.dilation),
                             period=net.period, samples=net.samples, name=node.name))


def lower_max_pool_gate(net: Lowering, node: Node) -> None:
    _binary_max_pool(net, node, net.proc.MaxPoolGate)


def lower_first_spike_gate(net: Lowering, node: Node) -> None:
    _binary_max_pool(net, node, net.proc.FirstSpikeGate)


def lower_decoded_max_pool(net: Lowering, node: Node) -> None:
    op, s = node.op, net.stream_in(node)
    _gate(net, node, net.proc.DecodedMaxPoolGate(
        in_shape=net.shape_in(node), out_shape=net.shapes[node.name], kernel=tuple(op.kernel),
        stride=tuple(op.stride), dilation=tuple(op.dilation), period=net.period,
        start=s.start, window=s.length, samples=net.samples, step_values=s.fold,
        name=node.name))


def lower_readout(net: Lowering, node: Node) -> None:
    s = net.stream_in(node)
    net.readout = net.proc.ReadoutAcc(size=net.size(node), period=net.period, start=s.start,
                                      steps=s.length, samples=net.samples,
                                      integrate=node.op.reduce == "integrate", name=node.name)
    net.ports[node.inputs[0].name].connect(net.readout.a_in)
    net.readout_op = node.op


# op class -> the function creating and connecting its node's Lava process(es)
LOWERING: dict[type[Op], Callable[[Lowering, Node], None]] = {
    q.InputQuantizer: lower_input_quantizer,
    q.QHybridInput: lower_hybrid_input,
    q.QConv2d: lower_conv,
    q.QDense: lower_dense,
    q.QScale: lower_scale,
    q.SumPool2d: lower_sum_pool,
    q.GlobalSumPool: lower_global_sum_pool,
    ops.Add: partial(lower_aligned_sum, sign=1),
    ops.Sub: partial(lower_aligned_sum, sign=-1),
    ops.Reshape: lower_reshape,
    ops.Slice: lower_slice,
    ops.Concat: lower_concat,
    ops.Pad: lower_pad,
    q.QIFNeurons: lower_if_neurons,
    q.QSingleSpikeNeurons: lower_single_spike,
    q.QFewSpikeNeurons: lower_few_spike,
    q.QAmosNeurons: lower_amos,
    neurons.PartialSumRelay: lower_relay,
    neurons.SpikingMaxPool2d: lower_max_pool_gate,
    neurons.FirstSpikeMaxPool2d: lower_first_spike_gate,
    ops.MaxPool2d: lower_decoded_max_pool,  # on payloads: few-spike graphs
    q.QReadout: lower_readout,
}

_FLOAT = "float op: the Lava backend runs quantized graphs (compile for a fixed-point target)"
_ANN = "ANN op: conversion folds it into synapses or replaces it by neurons"

# op class -> why the Lava backend does not run it
REFUSED: dict[type[Op], str] = {
    ops.Constant: "a constant: conversion folds constants into the ops that use them",
    ops.Conv2d: _FLOAT + "; quantize makes it a QConv2d",
    ops.Dense: _FLOAT + "; quantize makes it a QDense",
    ops.AvgPool2d: _FLOAT + "; quantize makes it a SumPool2d",
    ops.GlobalAvgPool: _FLOAT + "; quantize makes it a GlobalSumPool",
    ops.Mul: _ANN,
    ops.Div: _ANN,
    ops.BatchNorm: _ANN,
    ops.Activation: _ANN,
    ops.Softmax: _ANN,
    ops.LRN: _ANN,
    **{cls: _ANN for cls in norm_ops.NORM_OPS},
    ops.Transpose: "no Lava process permutes a value's flat C-order port",
    ops.Identity: "canonicalization removes identities before conversion",
    neurons.IFNeurons: _FLOAT + "; quantize makes it a QIFNeurons",
    neurons.FewSpikeNeurons: _FLOAT + "; quantize makes it a QFewSpikeNeurons",
    neurons.AmosNeurons: _FLOAT + "; quantize makes it a QAmosNeurons",
    neurons.SingleSpikeNeurons: _FLOAT + "; quantize makes it a QSingleSpikeNeurons",
    neurons.HybridInputNeurons: _FLOAT + "; quantize makes it a QHybridInput",
    # imported SNNs (NIR): bit-exact on the reference simulator; no Lava lowering yet
    **{cls: "imported spiking network (NIR): not lowered to Lava yet (simulate it bit-exactly "
            "with --backend cpu)" for cls in leaky.LEAKY_OPS},
}


def _check_node(node: Node) -> None:
    """The conditions a node with a ``LOWERING`` entry must meet as well."""
    op = node.op
    if op.role is Role.ELEMENTWISE:  # Add/Sub, the lowered elementwise ops: AlignedSum
        if len(node.inputs) != 2:
            raise unsupported(node, f"{len(node.inputs)} inputs (two are supported)")
    elif len(node.inputs) != 1 and not isinstance(op, ops.Concat):
        raise unsupported(node, "more than one input")
    if isinstance(op, ops.Pad) and (op.mode != "constant" or op.value != 0.0):
        raise unsupported(node, "padding other than zeros")
    if isinstance(op, ops.MaxPool2d) and (any(op.padding) or op.ceil_mode):
        raise unsupported(node, "padded or ceil-mode max-pool")
    if type(op) in FS_LIKE and not op.graded and fold_offsets(op.d) is None:
        raise unsupported(node, "payloads folded into weights (binary-spike target) that "
                                "are not powers of two")


def check_supported(graph) -> None:
    """Raise BackendError naming the first layer the Lava backend cannot run: an op without a
    ``LOWERING`` entry, or one whose node fails its conditions (inputs, max-pool padding,
    folded payloads that are not powers of two, populations of two kinds)."""
    if not q.is_quantized(graph):
        raise BackendError("lava backend needs a quantized artifact (compile for a fixed-point "
                           "target such as loihi2)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BackendError("lava backend: only graphs with one input and one output")
    kinds = set()
    for node in graph.nodes:
        if type(node.op) not in LOWERING:
            raise unsupported(node)
        _check_node(node)
        if node.op.role is Role.POPULATION:  # the lowered ones: IF, single-spike, FS, AMOS
            kinds.add("fs" if type(node.op) in FS_LIKE else type(node.op))
            if len(kinds) > 1:
                raise unsupported(node, "IF, single-spike and few-spike/AMOS populations in "
                                        "one network")
    last = graph.nodes[-1]
    if not isinstance(last.op, q.QReadout) or last.name != graph.outputs[0].name:
        raise BackendError("lava backend: the output must be a QReadout")


def build(artifact_or_graph, x: np.ndarray) -> LavaNetwork:
    """The Lava process graph of an artifact (or quantized graph) for the inputs ``x`` (N, ...):
    an ``InputCode`` source with the quantized input codes, one process per synapse / neuron
    population / gate, and a ``ReadoutAcc`` output monitor. Not yet run.

    Requires: ``check_supported`` passes (checked). Ensures: every value's stream starts at a
    constant local step of each sample's period (``streams``); ``delays`` holds it minus one;
    the period ends with the readout's window."""
    # Lava takes seconds to import: loaded when a network is built, not with the backend
    from snnc.backends.lava import proc

    graph = getattr(artifact_or_graph, "graph", artifact_or_graph)
    check_supported(graph)
    populations = [n.op for n in graph.nodes if n.op.role is Role.POPULATION]
    fs = any(type(op) in FS_LIKE for op in populations)
    steps = max(op.K if fs else op.timesteps for op in populations)
    samples = len(x)
    if samples < 1:
        raise BackendError("lava backend: no samples to run")
    first = graph.nodes[0]
    if first.op.role is not Role.ENCODER or first.inputs[0].name != graph.inputs[0].name:
        raise BackendError("lava backend: the graph must start with the input quantizer")
    streams = plan_streams(graph.nodes, fs, steps)
    last = streams[graph.nodes[-1].name]
    shapes = {v.name: tuple(v.type.shape) for n in graph.nodes for v in (n.output, *n.inputs)}
    net = Lowering(proc=proc, x=x, streams=streams, shapes=shapes,
                   period=last.start + last.length - 1, samples=samples)
    for node in graph.nodes:
        LOWERING[type(node.op)](net, node)
    return LavaNetwork(source=net.source, populations=net.populations, readout=net.readout,
                       readout_op=net.readout_op,
                       delays={k: s.start - 1 for k, s in streams.items()}, period=net.period,
                       steps=steps, samples=samples, shapes=shapes, gates=net.gates,
                       window_sum=fs)
