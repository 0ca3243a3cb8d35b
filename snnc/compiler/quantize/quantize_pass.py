"""quantize: converted (float) SNN graph -> fixed-point graph for a Loihi-class target.

Formats come only from the target (docs/targets.md §2 and §5; formats.py). The pass walks the graph
three times, each walk dispatching on the op class through one table: what each value carries
(payloads.PAYLOAD_RULES; lowering.REFUSED names what it refuses), the state scale and integer
parameters of each destination (scales.SCALES), and the integer op(s) of each float op
(lowering.LOWERING). Everything that cannot be represented is counted (``saturated``) in the
report (report.py).
"""

from __future__ import annotations

import math

from snnc.compiler.quantize.context import QuantizeContext
from snnc.compiler.quantize.destinations import bias_maps, find_destinations
from snnc.compiler.quantize.formats import (
    INPUT_BITS,
    INPUT_BITS_MAX,
    NotQuantizable,
    check_target,
    input_code_max,
    mantissa_max,
    mixed_sign,
)
from snnc.compiler.quantize.lowering import NOT_YET_QUANTIZABLE, REFUSED, lower_graph
from snnc.compiler.quantize.payloads import (
    PAYLOAD_RULES,
    SENDS,
    FsPayload,
    PayloadMap,
    Sends,
    coarsen,
    describe,
    fs_payloads,
    is_relu_table,
)
from snnc.compiler.quantize.report import quantization_report
from snnc.compiler.quantize.scales import plan_scales
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.ops import Role
from snnc.targets.target import TargetSpec

__all__ = ["analyse_payloads", "input_bits_headroom", "quantize", "quantize_with_report"]


def analyse_payloads(graph: Graph, s_in: float, fs: dict[str, FsPayload],
                     input_bits: int = INPUT_BITS) -> PayloadMap:
    """What every value carries (``PAYLOAD_RULES``), in graph order; raises NotQuantizable at
    the first layer it cannot express (``REFUSED``'s reason for refused op classes)."""
    pm = PayloadMap.of_inputs(graph, s_in, fs, input_bits)
    for n in graph.nodes:
        rule = PAYLOAD_RULES.get(type(n.op))
        if rule is None:
            raise NotQuantizable(f"{describe(n)}: {REFUSED.get(type(n.op), NOT_YET_QUANTIZABLE)}")
        pm.record(n.name, rule(n, [pm.flow(v.name) for v in n.inputs], pm))
    return pm


def quantize(graph: Graph, target: TargetSpec, *, input_absmax: float = 1.0,
             input_signed: bool = True) -> Graph:
    """Requires: a converted graph (convert_rate, convert_fs, convert_amos or convert_ttfs: IF,
    FS, AMOS or single-spike populations, synaptic Conv2d/Dense layers each feeding one
    population or output, routing, pools, Add/Sub) and a fixed-point target.
    ``input_absmax``: the largest |input| (from calibration data), which sets the input code
    scale: 8-bit codes, on graded-spike targets up to INPUT_BITS_MAX as far as the weights
    reading them allow (``input_bits_headroom``), the scale halved per extra bit;
    ``input_signed=False`` (non-negative inputs, e.g. pixels) spends all bits on the magnitude.
    Ensures: an all-integer graph (``snnc.ir.quantized`` ops): input encoder, QConv2d/QDense
    (per-layer exponent, bias moved to the neurons), QScale 1:1 synapses for skip connections,
    sum-pools, QIFNeurons/QFewSpikeNeurons/QAmosNeurons in 24-bit state units (AMOS circuits get
    exactly the integer table an FS population would), QReadout of each output. ttfs: the
    hybrid encoder becomes a QHybridInput on the graph input, populations QSingleSpikeNeurons
    with per-step thresholds whose current provably never wraps, each per-channel amplitude
    goes into the consumers' weights (a skip with per-channel units becomes a depthwise 1x1
    QConv2d), and the readout integrates (v(T) / T). Every
    stored integer fits its target format (clipped values are counted in the report). Same value
    names as the input graph, plus ``<name>/skip<i>``, ``<name>/in``, ``<input>/code`` and
    ``<output>/acc`` (the output's integer synaptic input; the readout keeps the output's name).
    Raises NotQuantizable (an SnncError) naming the first layer it cannot express."""
    return quantize_with_report(graph, target, input_absmax=input_absmax,
                                input_signed=input_signed)[0]


def quantize_with_report(graph: Graph, target: TargetSpec, *, input_absmax: float = 1.0,
                         input_signed: bool = True) -> tuple[Graph, dict]:
    """``quantize`` plus its report: per synaptic layer the weight exponent, mantissa bits used,
    max |quantization error| relative to the layer's weight range and saturated weights; per
    population its state scale, threshold and bias format and saturated biases."""
    check_target(target)
    if not (math.isfinite(input_absmax) and input_absmax > 0):
        input_absmax = 1.0
    fs = fs_payloads(graph, target)  # first: general FS tables' units are needed downstream
    qgraph, report = _quantize(graph, target, fs, input_absmax, input_signed, INPUT_BITS)
    if not target.neuron.graded_spike_bits:  # binary spikes (Loihi 1): 8-bit codes
        return qgraph, report
    extra = min(input_bits_headroom(qgraph, target), INPUT_BITS_MAX - INPUT_BITS)
    tables = graph.producers()
    general = {name for name in fs if not is_relu_table(tables[name].op)}
    coarser = payload_headroom(qgraph, target, general)
    if extra > 0 or coarser:
        fs = {name: coarsen(p, tables[name].op.d, coarser.get(name, 0))
              for name, p in fs.items()}
        qgraph, report = _quantize(graph, target, fs, input_absmax, input_signed,
                                   INPUT_BITS + extra)
    return qgraph, report


def _quantize(graph: Graph, target: TargetSpec, fs: dict[str, FsPayload], input_absmax: float,
              input_signed: bool, bits: int) -> tuple[Graph, dict]:
    # codes of 8-bit data stay exact: 2^(bits - 8) times the 8-bit code
    s_in = float(input_absmax) / input_code_max(input_signed) / 2.0 ** (bits - INPUT_BITS)
    pm = analyse_payloads(graph, s_in, fs, bits)
    dest_of, dests = find_destinations(graph, pm)
    sends = {SENDS.get(type(n.op)) for n in graph.nodes}
    reduce = ("sum" if Sends.FS_TABLE in sends else "integrate" if Sends.SINGLE_SPIKE in sends
              else "mean")
    ctx = QuantizeContext(graph, target, s_in, bool(input_signed), bits, fs, pm, dest_of, dests,
                          bias_maps(graph, pm), reduce)
    scales = plan_scales(ctx)
    qgraph, synapses = lower_graph(ctx, scales)
    report = quantization_report(target, s_in, input_signed, bits, input_absmax, synapses,
                                 scales.report)
    return qgraph, report


def payload_headroom(qgraph: Graph, target: TargetSpec, general: set[str]) -> dict[str, int]:
    """Per general FS-table population (names in ``general``; FS-ReLU payloads are exact
    powers of two and stay), how many bits coarser its payload unit could be: the fewest free
    mantissa bits among the synapses reading its payloads (through routing, max- and
    sum-pools) whose weight exponent is already the target's smallest. Such weights underflow:
    in state units they are below the mantissa's range, and the exponent cannot drop. A unit
    2^k coarser makes them 2^k larger with the same exponent, while the payloads, 16-bit, lose
    k of their bits. Populations with any other reader are left as they are (absent)."""
    def through(c: Node) -> bool:
        return (c.op.role in (Role.ROUTING, Role.POOLING_GATE)
                or isinstance(c.op, (q.SumPool2d, q.GlobalSumPool)))

    room = {}
    for n in qgraph.nodes:
        if n.name not in general:
            continue
        readers = _readers(qgraph, [n], through)
        if readers and all(isinstance(c.op, (q.QConv2d, q.QDense)) for c in readers):
            room[n.name] = min(_free_bits(c.op, target) for c in readers)
    return {k: v for k, v in room.items() if v > 0}


def _readers(qgraph: Graph, starts: list[Node], through) -> list[Node]:
    """The nodes reading the values of ``starts``, looking through (and not listing) the nodes
    for which ``through(node)`` holds; each node once."""
    consumers = qgraph.consumers()
    frontier, seen, out = list(starts), set(), []
    while frontier:
        for c in consumers.get(frontier.pop().name, ()):
            if c.name not in seen:
                seen.add(c.name)
                (frontier if through(c) else out).append(c)
    return out


def _free_bits(op: q.QConv2d | q.QDense, target: TargetSpec) -> int:
    """Mantissa bits a synapse at the smallest exponent leaves unused (0 above it)."""
    peak = int(abs(op.weight).max()) if op.weight.size else 0
    if op.weight_exp != target.weights.exp_min or peak == 0:
        return 0
    mmax = mantissa_max(target.weights, mixed_sign(op.weight))
    return max(math.floor(math.log2(mmax / peak)), 0)


def input_bits_headroom(qgraph: Graph, target: TargetSpec) -> int:
    """How many bits wider the input codes of ``qgraph`` could be: the fewest exponent steps
    above the target's smallest among the synaptic layers that read them (through routing and
    sum-pools). One bit more halves those weights in state units, i.e. lowers their exponent
    by one with the same mantissas, as long as it stays in range."""
    def through(c: Node) -> bool:  # reshapes, pads, sum-pools
        return (not isinstance(c.op, q.QUANTIZED_SYNAPSES)
                and c.op.role in (Role.ROUTING, Role.SYNAPTIC))

    encoders = [n for n in qgraph.nodes if n.op.role is Role.ENCODER]
    slack = [int(c.op.weight_exp) - target.weights.exp_min
             for c in _readers(qgraph, encoders, through)
             if isinstance(c.op, q.QUANTIZED_SYNAPSES)]
    return max(min(slack, default=0), 0)
