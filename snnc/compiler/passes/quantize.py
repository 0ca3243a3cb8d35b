"""quantize: converted (float) SNN graph -> fixed-point graph for a Loihi-class target.

Formats come only from the target (TARGETS.md §2 and §5): weights ``mantissa * 2^(scale_shift +
exp)`` with one exponent per synaptic layer, 24-bit state, thresholds ``vth_mant << vth_shift``,
biases ``bias_mant << bias_exp``, graded spike payloads (Loihi 2) or binary spikes (Loihi 1).

How scales are chosen. Every population ``l`` gets a state scale ``sigma_l`` (ANN units per state
integer) of the form ``ref_l * 2^-q_l``: ``ref_l`` is the IF threshold lambda_l, or the FS-ReLU
quantization step alpha 2^-K (so every FS threshold, reset and payload is an exact power of two),
or the range of a general FS table. ``q_l`` is the largest that (1) leaves headroom in the 24-bit
state (IF: v may reach 16x the threshold; FS: 2x alpha), (2) keeps the threshold mantissa in its
bits, (3) lets every incoming synaptic layer reach its largest weight with an exponent <=
exp_max and (4) keeps the bias in 13-bit mantissa << 7. Each incoming layer's weights, expressed
in the destination's state units, then get the exponent that keeps the most mantissa bits without
overflow. On targets with programmable neurons (Loihi 2) IF populations get one scale (and
threshold) per output channel on top (``channel_scales``): each channel's largest weight then
fills the mantissa under the layer's one exponent. Everything that cannot be represented is
counted (``saturated``) in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snnc.errors import SnncError
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES
from snnc.ir.types import TensorType, Value
from snnc.targets.target import TargetSpec, WeightFormat

__all__ = [
    "quantize",
    "quantize_with_report",
    "quantize_weights",
    "mantissa_max",
    "WeightQuantization",
    "synapse_bits",
    "weight_exponent",
    "INPUT_BITS",
    "NotQuantizable",
]

INPUT_BITS = 8  # input encoder: signed 8-bit codes (MNIST-like inputs are 8-bit to begin with)
IF_HEADROOM_BITS = 4  # IF: threshold at 2^(uv_bits-1-4), v may reach 16x it before saturating
FS_HEADROOM_BITS = 1  # FS: alpha (or the table's range) at 2^(uv_bits-2)
FS_PAYLOAD_BITS = 16  # general FS tables: d(t) payloads quantized to at most 16 bits
IF_VTH_MIN_BITS = 14  # per-channel IF scales: thresholds stay >= 2^14 (vth rounding <= 0.2 %)
TTFS_HEADROOM_BITS = 2  # single-spike: the largest threshold at 2^(uv_bits-3)

_ROUTING = (ops.Reshape, ops.Transpose, ops.Identity, ops.Concat, ops.Pad)
_SYNAPTIC = (ops.Conv2d, ops.Dense)
# populations quantized with an integer (h, d, T) table: FS neurons and AMOS circuits (the same
# table unrolled in space, docs/amos.md)
_FS_LIKE = (neurons.FewSpikeNeurons, neurons.AmosNeurons)
# populations that are destinations of synaptic input
_POPULATIONS = (neurons.IFNeurons, *_FS_LIKE, neurons.SingleSpikeNeurons)
_INT = "int32"


class NotQuantizable(SnncError):
    """The converted network uses something the fixed-point pass cannot express yet."""


@dataclass(frozen=True)
class WeightQuantization:
    """Integer mantissas and the shared exponent of one synaptic layer (see quantize_weights)."""

    mantissa: np.ndarray  # int64
    exp: int
    bits: int  # synapse memory bits per weight: magnitude bits + 1 if mixed-sign
    max_abs_error: float  # max |mantissa 2^exp - w| over unsaturated and saturated weights
    saturated: int  # weights clipped to the mantissa range


def _mixed_sign(w: np.ndarray) -> bool:
    return bool((w < 0).any() and (w > 0).any())


def mantissa_max(fmt: WeightFormat, mixed_sign: bool) -> int:
    """Largest weight mantissa magnitude: 2^bits - 1, or 2^(bits-1) - 1 when mixed-sign weights
    spend one of the bits on the sign (Loihi 2; Loihi 1 has an extra sign bit)."""
    bits = fmt.mantissa_bits
    if mixed_sign and not fmt.mixed_sign_extra_bit:
        bits -= 1
    return 2**bits - 1


def quantize_weights(w: np.ndarray, fmt: WeightFormat) -> WeightQuantization:
    """Quantize ``w`` (already in units of ``2^0`` synaptic input) to ``mantissa * 2^exp``.

    Requires: a fixed-point weight format. Ensures: ``|mantissa| <= mantissa_max``,
    ``exp_min <= exp <= exp_max``, ``exp`` the smallest (most mantissa bits) with no overflow;
    where nothing saturates, ``|mantissa 2^exp - w| <= 2^exp / 2`` (round half to even).
    """
    w = np.asarray(w, dtype=np.float64)
    mixed = _mixed_sign(w)
    mmax = mantissa_max(fmt, mixed)
    absmax = float(np.abs(w).max()) if w.size else 0.0
    lo, hi = fmt.exp_min, fmt.exp_max
    if absmax / mmax == 0.0:  # no weights, or so small that the ratio underflows (5e-324)
        exp = lo
    else:
        exp = min(max(math.ceil(math.log2(absmax / mmax)), lo), hi)
        # smallest exponent whose rounded mantissa still fits (the log2 estimate ignores rounding)
        while exp > lo and np.rint(absmax * 2.0 ** -(exp - 1)) <= mmax:
            exp -= 1
        while exp < hi and np.rint(absmax * 2.0**-exp) > mmax:
            exp += 1
    scaled = w * 2.0**-exp
    mant = np.rint(scaled)
    sat = int((np.abs(mant) > mmax).sum())
    if not mixed and (w >= 0).all():
        mant = np.clip(mant, 0, mmax)
    elif not mixed:
        mant = np.clip(mant, -mmax, 0)
    else:
        mant = np.clip(mant, -mmax, mmax)
    mant = mant.astype(np.int64)
    err = float(np.abs(mant * 2.0**exp - w).max()) if w.size else 0.0
    magnitude = int(np.abs(mant).max()).bit_length() if mant.size else 0
    bits = max(magnitude, 1) + int(bool((mant < 0).any() and (mant > 0).any()))
    return WeightQuantization(mant, int(exp), bits, err, sat)


def synapse_bits(node: Node) -> int:
    """Synapse memory bits per weight of a quantized synaptic node (QConv2d, QDense, QScale);
    0 for any other node. For placement: bits per synapse = this + delay/index bits."""
    return int(node.op.weight_bits) if isinstance(node.op, q.QUANTIZED_SYNAPSES) else 0


def weight_exponent(node: Node) -> int | None:
    """The shared weight exponent of a quantized synaptic node, None for other nodes."""
    return int(node.op.weight_exp) if isinstance(node.op, q.QUANTIZED_SYNAPSES) else None


# ---------------------------------------------------------------------------------------------
# analysis: which values are payloads (spikes, input codes) and which are synaptic input


@dataclass
class _Dest:
    """A destination of synaptic input: a population or a graph output (readout)."""

    name: str
    node: Node | None  # the population node (None: graph output)
    synapses: list  # float synaptic nodes feeding it
    skips: list  # (consumer name, input index, sign): payload values entering as 1:1 synapses


def _is_relu_table(op: neurons.FewSpikeNeurons) -> bool:
    K = op.K
    if op.activation not in ("relu", "clip") or not (np.array_equal(op.h, op.T)
                                                    and np.array_equal(op.d, op.T)):
        return False
    step = op.T[-1]
    return bool(step > 0 and np.array_equal(op.T, step * np.exp2(np.arange(K - 1, -1, -1.0))))


def _routed_unit(n: Node, units: list) -> np.ndarray:
    """The per-element payload unit of ``n``'s output when an input's unit is an array
    (single-spike populations: per-channel amplitudes): the op applied to the inputs' unit
    maps (max-pools and routing move units; average pools keep the window's unit, the 1/k
    going into the unit as for scalars). Zero padding pads unit 0 (its payloads are 0)."""
    from snnc.ir.interpret import max_pool2d

    maps = [torch.as_tensor(np.broadcast_to(np.asarray(u, np.float64), v.shape).copy()
                            ).unsqueeze(0) for u, v in zip(units, n.inputs)]
    rule = max_pool2d if isinstance(n.op, ops.MaxPool2d) else ANN_RULES[type(n.op)]
    with torch.no_grad():
        return rule(n.op, *maps)[0].numpy()


def _uniform(u):
    """A unit map whose elements are all equal, as that float; anything else unchanged."""
    a = np.asarray(u, np.float64)
    return float(a.flat[0]) if a.size and (a == a.flat[0]).all() else a


def _analyse(graph: Graph, s_in: float, fs_unit: dict[str, float]):
    """Kind ('payload'/'current') and payload unit of every value (a float, or for values
    downstream of per-channel single-spike amplitudes an array of the value's shape);
    destination of every current."""
    kind: dict[str, str] = {v.name: "payload" for v in graph.inputs}
    unit: dict[str, float | np.ndarray] = {v.name: s_in for v in graph.inputs}
    for n in graph.nodes:
        op, ins = n.op, [v.name for v in n.inputs]
        kinds = [kind[v] for v in ins]
        where = f"layer '{n.name}' ({ops.op_name(op)})"
        arrays = any(isinstance(unit.get(v), np.ndarray) for v in ins)
        if type(op) in (neurons.IFNeurons, *_FS_LIKE):
            kind[n.name] = "payload"
            unit[n.name] = (float(op.amplitude) if isinstance(op, neurons.IFNeurons)
                            else fs_unit[n.name])
        elif type(op) is neurons.SingleSpikeNeurons:
            kind[n.name] = "payload"
            unit[n.name] = _uniform(np.broadcast_to(np.asarray(op.amplitude, np.float64),
                                                    n.output.shape))
        elif type(op) is neurons.HybridInputNeurons:
            if n.inputs[0].name not in {v.name for v in graph.inputs}:
                raise NotQuantizable(f"{where}: the hybrid input encoder must read a graph "
                                     "input")
            kind[n.name], unit[n.name] = "payload", unit[ins[0]]
        elif arrays and (isinstance(op, (ops.AvgPool2d, ops.GlobalAvgPool, ops.MaxPool2d))
                         or isinstance(op, _ROUTING)) and set(kinds) == {"payload"}:
            if isinstance(op, ops.Pad) and (op.mode != "constant" or op.value != 0.0):
                raise NotQuantizable(f"{where}: only zero padding is quantizable")
            if type(op) is ops.AvgPool2d and (any(op.padding) or op.ceil_mode):
                raise NotQuantizable(f"{where}: padded average pooling is not yet quantizable")
            k = (op.kernel[0] * op.kernel[1] if type(op) is ops.AvgPool2d
                 else int(np.prod(n.inputs[0].shape[1:])) if type(op) is ops.GlobalAvgPool
                 else 1)
            kind[n.name] = "payload"
            unit[n.name] = _uniform(_routed_unit(n, [unit[v] for v in ins]) / k)
        elif isinstance(op, neurons.NEURON_OPS) or isinstance(op, q.QUANTIZED_OPS):
            raise NotQuantizable(f"{where}: {type(op).__name__} is not yet quantizable (fixed "
                                 "point supports rate (IF), fs, amos and ttfs populations)")
        elif type(op) in _SYNAPTIC:
            if kinds[0] != "payload":
                raise NotQuantizable(f"{where}: two synaptic layers without a population between "
                                     "them are not yet quantizable")
            kind[n.name] = "current"
        elif type(op) in (ops.AvgPool2d, ops.GlobalAvgPool):
            if kinds[0] != "payload":
                raise NotQuantizable(f"{where}: average pooling of synaptic input is not yet "
                                     "quantizable")
            if type(op) is ops.AvgPool2d and (any(op.padding) or op.ceil_mode):
                raise NotQuantizable(f"{where}: padded average pooling is not yet quantizable")
            k = (op.kernel[0] * op.kernel[1] if type(op) is ops.AvgPool2d
                 else int(np.prod(n.inputs[0].shape[1:])))
            kind[n.name], unit[n.name] = "payload", unit[ins[0]] / k
        elif type(op) in (ops.MaxPool2d, neurons.SpikingMaxPool2d, neurons.FirstSpikeMaxPool2d):
            if kinds[0] != "payload":
                raise NotQuantizable(f"{where}: max-pooling synaptic input is not yet quantizable")
            kind[n.name], unit[n.name] = "payload", unit[ins[0]]
        elif isinstance(op, _ROUTING):
            if isinstance(op, ops.Pad) and (op.mode != "constant" or op.value != 0.0):
                raise NotQuantizable(f"{where}: only zero padding is quantizable")
            if len(set(kinds)) != 1:
                raise NotQuantizable(f"{where}: mixes spikes and synaptic input")
            kind[n.name] = kinds[0]
            if kinds[0] == "payload":
                units = {unit[v] for v in ins}
                if len(units) != 1:
                    raise NotQuantizable(f"{where}: joins populations with different payload "
                                         "scales (not yet quantizable)")
                unit[n.name] = units.pop()
        elif type(op) in (ops.Add, ops.Sub):
            kind[n.name] = "current"
        else:
            raise NotQuantizable(f"{where}: not yet quantizable")
    # destinations, walking consumers backwards
    consumers = graph.consumers()
    outputs = {v.name for v in graph.outputs}
    dest_of: dict[str, str] = {}
    dests: dict[str, _Dest] = {}
    for n in graph.nodes:
        if kind[n.name] == "payload" and type(n.op) in _POPULATIONS:
            dests[n.name] = _Dest(n.name, n, [], [])
    for name in outputs:
        dests.setdefault(f"output:{name}", _Dest(f"output:{name}", None, [], []))
    for n in reversed(graph.nodes):
        if kind[n.name] != "current":
            continue
        targets = set()
        for c in consumers.get(n.name, []):
            targets.add(c.name if c.name in dests else dest_of.get(c.name, f"?{c.name}"))
        if n.name in outputs:
            targets.add(f"output:{n.name}")
        bad = [t for t in targets if t.startswith("?")]
        if bad or len(targets) != 1:
            raise NotQuantizable(f"layer '{n.name}': its synaptic input must reach exactly one "
                                 f"population (reaches {sorted(targets)})")
        dest_of[n.name] = targets.pop()
    for n in graph.nodes:
        if type(n.op) in _SYNAPTIC:
            dests[dest_of[n.name]].synapses.append(n)
        if type(n.op) in (ops.Add, ops.Sub):
            for i, v in enumerate(n.inputs):
                if kind[v.name] == "payload":
                    sign = -1 if (type(n.op) is ops.Sub and i == 1) else 1
                    dests[dest_of[n.name]].skips.append((n.name, i, sign))
    for d in dests.values():  # a population or output fed directly by payloads
        if d.node is not None and kind[d.node.inputs[0].name] == "payload":
            d.skips.append((d.name, 0, 1))
    return kind, unit, dest_of, dests


def _bias_maps(graph: Graph, kind: dict, dest_of: dict) -> dict[str, np.ndarray]:
    """The float bias reaching each current value (its synaptic layers' biases, routed/summed),
    computed by running the current-domain ops on all-zero payloads."""
    maps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for n in graph.nodes:
            if kind[n.name] != "current":
                continue
            args = []
            for v in n.inputs:
                if v.name in maps:
                    args.append(maps[v.name])
                else:
                    args.append(torch.zeros((1, *v.shape), dtype=torch.float64))
            maps[n.name] = ANN_RULES[type(n.op)](n.op, *args).to(torch.float64)
    return {k: v[0].numpy() for k, v in maps.items()}


# ---------------------------------------------------------------------------------------------
# the pass


def _check_target(spec: TargetSpec) -> None:
    if not spec.fixed_point:
        raise SnncError(f"target '{spec.name}' is not fixed-point; nothing to quantize")
    n = spec.neuron
    if n.uv_bits < 8 or n.vth_mant_bits < 1 or n.bias_mant_bits < 2:
        raise SnncError(f"target '{spec.name}': state/threshold/bias formats too narrow to "
                        f"quantize (uv_bits {n.uv_bits}, vth_mant_bits {n.vth_mant_bits}, "
                        f"bias_mant_bits {n.bias_mant_bits})")


def _quantize_bias(b: np.ndarray, spec: TargetSpec) -> tuple[np.ndarray, int, int]:
    """Bias integers b (state units) -> (mantissa, exp, saturated) in bias_mant << exp."""
    n = spec.neuron
    mmax = 2 ** (n.bias_mant_bits - 1) - 1
    absmax = float(np.abs(b).max()) if b.size else 0.0
    exp = 0
    while exp < n.bias_exp_max and absmax > mmax * 2.0**exp:
        exp += 1
    mant = np.rint(b * 2.0**-exp)
    sat = int((np.abs(mant) > mmax).sum())
    return np.clip(mant, -mmax, mmax).astype(np.int32), exp, sat


def quantize(graph: Graph, target: TargetSpec, *, input_absmax: float = 1.0,
             input_signed: bool = True) -> Graph:
    """Requires: a converted graph (convert_rate, convert_fs, convert_amos or convert_ttfs: IF,
    FS, AMOS or single-spike populations, synaptic Conv2d/Dense layers each feeding one
    population or output, routing, pools, Add/Sub) and a fixed-point target.
    ``input_absmax``: the largest |input| (from calibration data), which sets the 8-bit input
    code scale; ``input_signed=False`` (non-negative inputs, e.g. pixels) spends all 8 bits on
    the magnitude.
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
    _check_target(target)
    spec = target
    if not (math.isfinite(input_absmax) and input_absmax > 0):
        input_absmax = 1.0
    code_max = 2 ** (INPUT_BITS - 1) - 1 if input_signed else 2**INPUT_BITS - 1
    s_in = float(input_absmax) / code_max
    nrn, wf = spec.neuron, spec.weights
    act = wf.scale_shift
    is_fs = any(type(n.op) in _FS_LIKE for n in graph.nodes)
    ttfs = any(type(n.op) is neurons.SingleSpikeNeurons for n in graph.nodes)
    reduce = "sum" if is_fs else "integrate" if ttfs else "mean"  # the readout's window
    graded = bool(nrn.graded_spike_bits)
    # FS payload units of general tables must be known before downstream weights are quantized;
    # they depend only on the table, so fix them first.
    fs_payload: dict[str, tuple[np.ndarray, float, int]] = {}
    for n in graph.nodes:
        if type(n.op) in _FS_LIKE:
            op = n.op
            if _is_relu_table(op):
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
                dmax = float(np.abs(op.d).max()) or 1.0
                step = dmax / (2 ** (bits - 1) - 1)
                d_int = np.rint(op.d / step).astype(np.int64)
            if graded and bits > nrn.graded_spike_bits:
                raise NotQuantizable(
                    f"layer '{n.name}': FS payloads need {bits} bits; target '{spec.name}' "
                    f"graded spikes carry {nrn.graded_spike_bits} (lower K)")
            fs_payload[n.name] = (d_int, step, bits)
    kind, unit, dest_of, dests = _analyse(graph, s_in,
                                          {k: v[1] for k, v in fs_payload.items()})
    biases = _bias_maps(graph, kind, dest_of)

    # --- per destination (population or output): state scale, integer neuron parameters
    state_scale: dict[str, float] = {}
    pop_report: list[dict] = []
    new_pop: dict[str, ops.Op] = {}

    def ann_weights(s: Node) -> np.ndarray:
        """Synaptic layer ``s``'s weights times the payload units they multiply (ANN units)."""
        return np.asarray(s.op.weight, np.float64) * _weight_unit(s, unit[s.inputs[0].name])

    def group_ranges(d: _Dest) -> list[tuple[float, bool]]:
        out = []
        for s in d.synapses:
            wu = np.abs(ann_weights(s))
            out.append((float(wu.max()) if wu.size else 0.0, _mixed_sign(s.op.weight)))
        for cname, i, sign in d.skips:
            c = graph.node(cname)
            out.append((float(np.max(unit[c.inputs[i].name])), False))
        return out

    level = _level_max(graph, fs_payload) if ttfs else {}

    def current_bound(d: _Dest) -> float:
        """An upper bound (ANN units) on any neuron's synaptic current |u|: the largest row L1
        norm of each incoming layer's weights x the largest payload level it reads."""
        total = 0.0
        for s in d.synapses:
            wu = np.abs(ann_weights(s))
            rows = wu.reshape(wu.shape[0], -1).sum(1)
            total += float(rows.max() if rows.size else 0.0) * level[s.inputs[0].name]
        for cname, i, sign in d.skips:
            v = graph.node(cname).inputs[i].name
            total += float(np.max(unit[v])) * level[v]
        return total

    def choose_q(ref: float, q0: float, q_min: float, d: _Dest, target_exp: int,
                 bias_absmax: float) -> int:
        qv = q0
        for m, mixed in group_ranges(d):
            ratio = m / (ref * 2.0**act * mantissa_max(wf, mixed))
            if ratio == math.inf:  # weights beyond any scale: the coarsest state scale
                qv = -math.inf
            elif ratio > 0:  # (0: weights so small that the ratio underflows: no bound)
                qv = min(qv, math.floor(target_exp - math.log2(ratio)))
        if bias_absmax > 0 and d.node is not None:
            bmax = (2 ** (nrn.bias_mant_bits - 1) - 1) * 2.0**nrn.bias_exp_max
            ratio = ref * bmax / bias_absmax
            if 0 < ratio < math.inf:
                qv = min(qv, math.floor(math.log2(ratio)))
        qv = max(qv, q_min)
        return int(qv) if math.isfinite(qv) else 0

    def channel_scales(d: _Dest, lo: float, hi: float) -> float | np.ndarray:
        """Per output channel state scales between ``lo`` (the layer's scale) and ``hi`` (the
        coarsest that keeps thresholds >= 2^IF_VTH_MIN_BITS), so that with the layer's one
        weight exponent every channel's largest weight fills the mantissa (Loihi 2 neurons
        take per-neuron thresholds). ``lo`` unchanged where synapses do not map rows to
        channels one to one."""
        shape = d.node.inputs[0].shape
        c = shape[0]
        per_ch = np.zeros(c)  # ANN units per mantissa step, per channel
        for s in d.synapses:
            if type(s.op) not in (ops.Conv2d, ops.Dense) or tuple(s.output.shape) != \
                    tuple(shape) or s.op.weight.shape[0] != c:
                return lo
            wu = np.abs(ann_weights(s)).reshape(c, -1)
            per_ch = np.maximum(per_ch, wu.max(1) / mantissa_max(wf, _mixed_sign(s.op.weight)))
        for cname, i, _ in d.skips:
            v = graph.node(cname).inputs[i]
            if len(v.shape) != 3 or tuple(v.shape) != tuple(shape):
                return lo
            u = np.broadcast_to(np.asarray(unit[v.name], np.float64), v.shape)
            per_ch = np.maximum(per_ch, u.reshape(c, -1).max(1) / mantissa_max(wf, False))
        if hi <= lo or not per_ch.max() > 0:
            return lo
        e = min(max(math.ceil(math.log2(per_ch.max() / (hi * 2.0**act))), wf.exp_min),
                wf.exp_max)
        sig = np.maximum(per_ch / 2.0 ** (act + e), lo)
        return sig.reshape(c, *[1] * (len(shape) - 1))

    for d in dests.values():
        in_name = d.node.inputs[0].name if d.node is not None else d.name[7:]
        if d.node is None and kind[in_name] == "payload":
            continue
        b = biases.get(in_name, np.zeros(d.node.inputs[0].shape if d.node else (1,)))
        babs = float(np.abs(b).max()) if b.size else 0.0
        op = d.node.op if d.node is not None else None
        if op is None:  # output: any scale works (host readout); on binary-spike targets leave
            # room for the per-step exponents e + K - t of folded FS payloads
            ref, q0, q_min, texp = 1.0, math.inf, -math.inf, 0
            if not graded and fs_payload:
                shift = max(int(v[0].max()).bit_length() - 1 for v in fs_payload.values())
                texp = min(0, wf.exp_max - shift)
        elif isinstance(op, neurons.IFNeurons):
            ref = float(op.threshold)
            q0 = min(nrn.uv_bits - 1 - IF_HEADROOM_BITS, nrn.vth_shift + nrn.vth_mant_bits - 1)
            q_min, texp = nrn.vth_shift, wf.exp_max
        elif type(op) is neurons.SingleSpikeNeurons:
            th = np.asarray(op.step_thresholds(), np.float64)
            ref = float(th.max()) if th.size and th.max() > 0 else 1.0
            q0, q_min, texp = nrn.uv_bits - 1 - TTFS_HEADROOM_BITS, -64, wf.exp_max
            bound = current_bound(d)  # the persistent current must never wrap, with room for
            # each step's floor (< 1 unit of synaptic input, 2^act state units) on top
            room = 2 ** (nrn.uv_bits - 1) - 1 - op.timesteps * 2**act
            if bound > 0:
                q0 = min(q0, math.floor(math.log2(ref * room / bound)))
        elif _is_relu_table(op):
            ref = float(op.T[-1])
            q0, q_min, texp = nrn.uv_bits - 1 - FS_HEADROOM_BITS - op.K, 0, wf.exp_max
        else:
            ref = float(max(np.abs(op.T).max(), np.abs(op.h).max(), 1.0))
            q0, q_min, texp = nrn.uv_bits - 1 - FS_HEADROOM_BITS, -64, wf.exp_max
        qv = choose_q(ref, q0, q_min, d, texp, babs)
        sigma = ref * 2.0**-qv
        if isinstance(op, neurons.IFNeurons) and nrn.programmable:
            sigma = channel_scales(d, sigma, ref * 2.0**-IF_VTH_MIN_BITS)
        state_scale[d.name] = sigma
        if op is None:
            continue
        bias_mant, bias_exp, bias_sat = _quantize_bias(b / sigma, spec)
        entry = {"name": d.name, "model": None, "state_scale": _jsonable(sigma),
                 "bias_exp": bias_exp, "bias_saturated": bias_sat}
        if isinstance(op, neurons.IFNeurons):
            vth_mant = np.clip(np.rint(op.threshold / sigma / 2**nrn.vth_shift), 1,
                               2**nrn.vth_mant_bits - 1).astype(np.int64)
            vth_mant = int(vth_mant) if vth_mant.ndim == 0 else vth_mant
            reset = "subtract" if nrn.programmable else nrn.reset
            new_pop[d.name] = q.QIFNeurons(
                op.threshold, op.amplitude, op.timesteps, op.v_init, vth_mant=vth_mant,
                vth_shift=nrn.vth_shift, bias_mant=bias_mant, bias_exp=bias_exp, reset=reset,
                compare=nrn.spike_compare, uv_bits=nrn.uv_bits, u_overflow=nrn.u_overflow,
                v_overflow=nrn.v_overflow, act_shift=act, state_scale=sigma)
            entry.update(model="QIFNeurons", vth_mant=_jsonable(vth_mant),
                         vth=_jsonable(vth_mant << nrn.vth_shift), reset=reset)
        elif type(op) is neurons.SingleSpikeNeurons:
            lim = 2 ** (nrn.uv_bits - 1) - 1
            # float fires on v >= theta; integers on v > vth (or >=): the same crossing
            vth = np.rint(np.asarray(op.step_thresholds(), np.float64) / sigma)
            vth -= 1 if nrn.spike_compare == ">" else 0
            clipped = int((vth > lim).sum())
            new_pop[d.name] = q.QSingleSpikeNeurons(
                op.threshold, op.amplitude, op.timesteps,
                vth=np.clip(vth, 0, lim).astype(np.int64), bias_mant=bias_mant,
                bias_exp=bias_exp, compare=nrn.spike_compare, uv_bits=nrn.uv_bits,
                u_overflow=nrn.u_overflow, v_overflow=nrn.v_overflow, act_shift=act,
                state_scale=sigma, unit=op.amplitude)
            entry.update(model="QSingleSpikeNeurons", timesteps=op.timesteps,
                         thresholds_saturated=clipped,
                         current_bound_bits=math.ceil(math.log2(bound / sigma + 1)))
        else:
            d_int, step, bits = fs_payload[d.name]
            lim = 2 ** (nrn.uv_bits - 1) - 1
            T_int = np.rint(op.T / sigma)
            h_int = np.rint(op.h / sigma)
            clipped = int((np.abs(T_int) > lim).sum() + (np.abs(h_int) > lim).sum())
            qcls = q.QAmosNeurons if type(op) is neurons.AmosNeurons else q.QFewSpikeNeurons
            new_pop[d.name] = qcls(
                np.clip(h_int, -lim, lim).astype(np.int64), d_int,
                np.clip(T_int, -lim, lim).astype(np.int64), op.activation,
                bias_mant=bias_mant, bias_exp=bias_exp, uv_bits=nrn.uv_bits,
                u_overflow=nrn.u_overflow, v_overflow=nrn.v_overflow, act_shift=act,
                graded=graded, payload_bits=bits, state_scale=sigma, unit=step)
            entry.update(model=qcls.__name__, K=op.K, payload_bits=bits, graded=graded,
                         thresholds_saturated=clipped,
                         exact_relu=_is_relu_table(op))
        pop_report.append(entry)

    # --- rebuild the graph
    syn_report: list[dict] = []
    vals: dict[str, Value] = {}
    nodes: list[Node] = []

    def ival(name: str, shape) -> Value:
        return Value(name, TensorType(tuple(shape), _INT))

    producers = graph.producers()

    def fs_steps_exp(src: str, e: int) -> list[int] | None:
        """Per-step exponents on binary-spike targets (d(t) = 2^k folded into the exponent)."""
        p = producers.get(src)
        while p is not None and type(p.op) not in _FS_LIKE and p.inputs:
            p = producers.get(p.inputs[0].name)
        if p is None or graded or p.name not in fs_payload:
            return None
        ks = [int(v).bit_length() - 1 for v in fs_payload[p.name][0] if v > 0]
        return [e + min(ks), e + max(ks)] if ks else None

    def add_synapse(name: str, w_ann: np.ndarray, src: Value, src_name: str, dest: str,
                    make) -> Value:
        """``w_ann``: the weights times the payload units they multiply (ANN units)."""
        sigma = state_scale[dest]
        w_ann = np.asarray(w_ann, dtype=np.float64)
        if np.ndim(sigma):  # per output channel: one scale per weight row
            sigma = np.reshape(sigma, (-1, *[1] * (w_ann.ndim - 1)))
        w_eff = w_ann / (sigma * 2.0**act)
        wq = quantize_weights(w_eff, wf)
        op = make(wq)
        wmax = float(np.abs(w_eff).max()) if w_eff.size else 0.0
        rec = {"layer": name, "destination": dest, "weight_exp": wq.exp,
               "mantissa_bits": wq.bits, "max_rel_error": wq.max_abs_error / wmax if wmax else 0.0,
               "saturated": wq.saturated, "weights": int(w_eff.size)}
        steps = fs_steps_exp(src_name, wq.exp)
        if steps is not None:
            rec["per_step_exp"] = steps
            rec["per_step_exp_in_range"] = bool(wf.exp_min <= steps[0] and steps[1] <= wf.exp_max)
        syn_report.append(rec)
        shape = op.infer(src.shape)
        out = ival(name, shape)
        nodes.append(Node(op, (src,), out))
        return out

    consumers = graph.consumers()
    hybrid = {v.name for v in graph.inputs if consumers.get(v.name) and all(
        type(c.op) is neurons.HybridInputNeurons for c in consumers[v.name])}
    for v in graph.inputs:
        if v.name in hybrid:  # encoded by its QHybridInput node (below)
            vals[v.name] = v
            continue
        code = ival(f"{v.name}/code", v.shape)
        nodes.append(Node(q.InputQuantizer(s_in, INPUT_BITS, bool(input_signed)), (v,), code))
        vals[v.name] = code
    outputs = {v.name for v in graph.outputs}
    for n in graph.nodes:
        op = n.op
        ins = [vals[v.name] for v in n.inputs]
        name = n.name if n.name not in outputs else f"{n.name}/acc"
        if type(op) in (ops.Add, ops.Sub) or n.name in new_pop:
            dest = dest_of.get(n.name, n.name)
            for cname, i, sign in dests[dest].skips:
                if cname != n.name:
                    continue
                sname = f"{n.name}/skip{i}" if n.name not in new_pop else f"{n.name}/in"
                u = unit[n.inputs[i].name]
                if not isinstance(u, np.ndarray) and not np.ndim(state_scale[dest]):
                    ins[i] = add_synapse(
                        sname, np.array(sign * u), ins[i], n.inputs[i].name, dest,
                        lambda wq: q.QScale(int(wq.mantissa), wq.exp, wq.bits))
                    continue
                # per-channel units (single-spike amplitudes): a depthwise 1x1 synapse
                if len(n.inputs[i].shape) != 3:
                    raise NotQuantizable(f"layer '{n.name}': a skip connection with per-"
                                         "feature payload units is not yet quantizable")
                per_ch = _channel_units(np.broadcast_to(np.asarray(u, np.float64),
                                                        n.inputs[i].shape), f"layer '{n.name}'")
                c = per_ch.size
                dw = ops.Conv2d(sign * per_ch.reshape(c, 1, 1, 1), np.zeros(c), groups=c)
                ins[i] = add_synapse(sname, dw.weight, ins[i], n.inputs[i].name, dest,
                                     lambda wq, dw=dw: _integer_synapse(dw, wq))
        if n.name in new_pop:
            new_op = new_pop[n.name]
        elif type(op) in (ops.Conv2d, ops.Dense):
            dest = dest_of[n.name]
            out = add_synapse(name, ann_weights(n), ins[0], n.inputs[0].name, dest,
                              lambda wq, op=op: _integer_synapse(op, wq))
            vals[n.name] = out
            if n.name in outputs:
                _readout(n, out, nodes, state_scale, dest_of, biases, act, reduce)
            continue
        elif type(op) is neurons.HybridInputNeurons:
            code_max = 2 ** (INPUT_BITS - 1) - 1 if input_signed else 2**INPUT_BITS - 1
            spike = int(min(max(round(op.x_max / s_in), 1), code_max))
            new_op = q.QHybridInput(s_in, INPUT_BITS, bool(input_signed), op.timesteps, spike)
        elif type(op) is ops.AvgPool2d:
            new_op = q.SumPool2d(op.kernel, op.stride)
        elif type(op) is ops.GlobalAvgPool:
            new_op = q.GlobalSumPool()
        else:
            new_op = op  # routing, max-pools, Add/Sub: same op on integers
        out = ival(name, n.output.shape)
        nodes.append(Node(new_op, tuple(ins), out))
        vals[n.name] = out
        if n.name in outputs:
            _readout(n, out, nodes, state_scale, dest_of, biases, act, reduce, unit, kind)
    qgraph = graph.replace(nodes=tuple(nodes),
                           outputs=tuple(Value(v.name, TensorType(v.shape, "float32"))
                                         for v in graph.outputs))
    report = {
        "target": spec.name,
        "input": {"scale": s_in, "bits": INPUT_BITS, "signed": bool(input_signed),
                  "absmax": float(input_absmax)},
        "synapses": syn_report,
        "populations": pop_report,
        "weights_saturated": sum(r["saturated"] for r in syn_report),
        "biases_saturated": sum(r["bias_saturated"] for r in pop_report),
        "max_rel_error": max((r["max_rel_error"] for r in syn_report), default=0.0),
    }
    return qgraph, report


def _jsonable(x):
    """A scalar or per-channel report value as JSON (a float/int or a flat list)."""
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a.reshape(-1).tolist()


def _integer_synapse(op, wq):
    """The integer op of a Conv2d/Dense with quantized weights ``wq`` (bias lives in the
    population's integer bias, so the synapse's own bias is zero)."""
    weight = wq.mantissa.astype(np.int16)
    bias = np.zeros(op.weight.shape[0], np.int32)
    if isinstance(op, ops.Conv2d):
        return q.QConv2d(weight, bias, op.stride, op.padding, op.dilation, op.groups, wq.exp,
                         wq.bits)
    return q.QDense(weight, bias, wq.exp, wq.bits)


def _channel_units(u: np.ndarray, where: str) -> np.ndarray:
    """Per-channel units of a (C, H, W) unit map, which must be constant over each channel's
    positions (zero-padded positions aside)."""
    flat = np.asarray(u, np.float64).reshape(u.shape[0], -1)
    per_ch = flat.max(1)
    if not ((flat == per_ch[:, None]) | (flat == 0)).all():
        raise NotQuantizable(f"{where}: payload units vary inside a channel (not yet "
                             "quantizable)")
    return per_ch


def _weight_unit(node: Node, u) -> np.ndarray | float:
    """The payload unit each weight of synaptic ``node`` multiplies, broadcasting like its
    weight: the scalar unit, or from a unit map (Dense: per input feature; Conv2d: per input
    channel of each weight's group)."""
    if not isinstance(u, np.ndarray):
        return float(u)
    op = node.op
    if isinstance(op, ops.Dense):
        return np.asarray(u, np.float64).reshape(1, -1)
    per_ch = _channel_units(u, f"layer '{node.name}'")
    out_ch, in_per_group = op.weight.shape[:2]
    group = np.arange(out_ch)[:, None] // (out_ch // op.groups)
    return per_ch[group * in_per_group + np.arange(in_per_group)[None, :]][:, :, None, None]


def _level_max(graph: Graph, fs_payload: dict) -> dict[str, float]:
    """The largest |level| (payload units) each payload value carries in one step: input
    codes, spikes (1; single-spike populations' switched-on current too), FS payloads, and
    what pools and routing make of them. Values it does not know get 0."""
    code_max = 2**INPUT_BITS - 1
    level: dict[str, float] = {v.name: float(code_max) for v in graph.inputs}
    for n in graph.nodes:
        op, ins = n.op, [level.get(v.name, 0.0) for v in n.inputs]
        if isinstance(op, (neurons.IFNeurons, neurons.SingleSpikeNeurons)):
            level[n.name] = 1.0
        elif type(op) in _FS_LIKE:
            level[n.name] = float(np.abs(fs_payload[n.name][0]).max())
        elif type(op) is ops.AvgPool2d:
            level[n.name] = ins[0] * op.kernel[0] * op.kernel[1]
        elif type(op) is ops.GlobalAvgPool:
            level[n.name] = ins[0] * int(np.prod(n.inputs[0].shape[1:]))
        elif ins and (isinstance(op, (_ROUTING, ops.MaxPool2d))
                      or type(op) is neurons.HybridInputNeurons):
            level[n.name] = max(ins)
    return level


def _readout(n: Node, acc: Value, nodes: list, state_scale: dict, dest_of: dict, biases: dict,
             act: int, reduce: str, unit: dict | None = None, kind: dict | None = None) -> None:
    """Append the host-side decoder of graph output ``n`` (keeps the output's name)."""
    if kind is not None and kind[n.name] == "payload":
        if isinstance(unit[n.name], np.ndarray):
            raise NotQuantizable(f"output '{n.name}': a readout of spikes with per-channel "
                                 "units is not yet quantizable")
        scale, bias = unit[n.name], np.zeros(n.output.shape, np.float32)
    else:
        scale = state_scale[f"output:{n.name}"] * 2.0**act
        bias = biases.get(n.name, np.zeros(n.output.shape)).astype(np.float32)
    nodes.append(Node(q.QReadout(float(scale), bias, reduce), (acc,),
                      Value(n.name, TensorType(n.output.shape, "float32"))))
