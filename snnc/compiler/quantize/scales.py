"""State scales and integer neuron parameters, one entry per population type (``SCALES``).

Every destination ``l`` (a population, or a graph output read out on the host) gets a state
scale ``sigma_l`` (ANN units per state integer) of the form ``ref_l * 2^-q_l``: ``ref_l`` is the
IF threshold lambda_l, the FS-ReLU quantization step alpha 2^-K (so every FS threshold, reset
and payload is an exact power of two), the range of a general FS table, or the largest
single-spike threshold. ``q_l`` is the largest that (1) leaves headroom in the 24-bit state (IF:
v may reach 16x the threshold; FS: 2x alpha; single spike: the persistent current never wraps),
(2) keeps the threshold mantissa in its bits, (3) lets every incoming synaptic layer reach its
largest weight with an exponent <= ``target_exp`` and (4) keeps the bias in its mantissa <<
bias_exp_max (``choose_q``). On targets with programmable neurons (Loihi 2) IF populations get
one scale (and threshold) per output channel on top (``channel_scales``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from snnc.compiler.quantize.context import QuantizeContext
from snnc.compiler.quantize.destinations import Dest
from snnc.compiler.quantize.formats import (
    QuantizedBias,
    input_code_max,
    mantissa_max,
    mixed_sign,
    quantize_bias,
)
from snnc.compiler.quantize.payloads import PAYLOAD, is_relu_table
from snnc.compiler.quantize.report import jsonable, population_entry
from snnc.compiler.quantize.units import Unit, ann_weights
from snnc.ir import neurons
from snnc.ir import quantized as q
from snnc.ir.ops import Op

__all__ = [
    "FS_HEADROOM_BITS",
    "IF_HEADROOM_BITS",
    "IF_VTH_MIN_BITS",
    "SCALES",
    "TTFS_HEADROOM_BITS",
    "NeuronScaling",
    "ScaleBounds",
    "Scales",
    "channel_scales",
    "choose_q",
    "current_bound",
    "hybrid_spike_code",
    "plan_scales",
]

IF_HEADROOM_BITS = 4  # IF: threshold at 2^(uv_bits-1-4), v may reach 16x it before saturating
FS_HEADROOM_BITS = 1  # FS: alpha (or the table's range) at 2^(uv_bits-2)
IF_VTH_MIN_BITS = 14  # per-channel IF scales: thresholds stay >= 2^14 (vth rounding <= 0.2 %)
TTFS_HEADROOM_BITS = 2  # single-spike: the largest threshold at 2^(uv_bits-3)


class ScaleBounds(NamedTuple):
    """``sigma = ref * 2^-q`` with ``q_min <= q <= q0``; ``target_exp``: the weight exponent
    the largest incoming weight may need at most."""

    ref: float
    q0: float
    q_min: float
    target_exp: int


# ---------------------------------------------------------------------------------------------
# choosing q


def _group_ranges(ctx: QuantizeContext, d: Dest) -> list[tuple[float, bool]]:
    """(largest |weight| in ANN units, mixed sign) of every synaptic layer and skip into ``d``."""
    out = []
    for s in d.synapses:
        wu = np.abs(ann_weights(s, ctx.payloads.unit))
        out.append((float(wu.max()) if wu.size else 0.0, mixed_sign(s.op.weight)))
    for cname, i, _ in d.skips:
        c = ctx.graph.node(cname)
        out.append((float(np.max(ctx.payloads.unit[c.inputs[i].name])), False))
    return out


def current_bound(ctx: QuantizeContext, d: Dest) -> float:
    """An upper bound (ANN units) on any neuron's synaptic current |u|: the largest row L1
    norm of each incoming layer's weights x the largest payload level it reads."""
    pm = ctx.payloads
    total = 0.0
    for s in d.synapses:
        wu = np.abs(ann_weights(s, pm.unit))
        rows = wu.reshape(wu.shape[0], -1).sum(1)
        total += float(rows.max() if rows.size else 0.0) * pm.level[s.inputs[0].name]
    for cname, i, _ in d.skips:
        v = ctx.graph.node(cname).inputs[i].name
        total += float(np.max(pm.unit[v])) * pm.level[v]
    return total


def choose_q(ctx: QuantizeContext, d: Dest, b: ScaleBounds, bias_absmax: float) -> int:
    """The largest q within ``b`` that every incoming layer's weights and the bias allow."""
    nrn, wf = ctx.nrn, ctx.wf
    qv = b.q0
    for m, mixed in _group_ranges(ctx, d):
        ratio = m / (b.ref * 2.0**ctx.act * mantissa_max(wf, mixed))
        if ratio == math.inf:  # weights beyond any scale: the coarsest state scale
            qv = -math.inf
        elif ratio > 0:  # (0: weights so small that the ratio underflows: no bound)
            qv = min(qv, math.floor(b.target_exp - math.log2(ratio)))
    if bias_absmax > 0 and d.node is not None:
        bmax = (2 ** (nrn.bias_mant_bits - 1) - 1) * 2.0**nrn.bias_exp_max
        ratio = b.ref * bmax / bias_absmax
        if 0 < ratio < math.inf:
            qv = min(qv, math.floor(math.log2(ratio)))
    qv = max(qv, b.q_min)
    return int(qv) if math.isfinite(qv) else 0


def channel_scales(ctx: QuantizeContext, d: Dest, lo: float, hi: float) -> float | np.ndarray:
    """Per output channel state scales between ``lo`` (the layer's scale) and ``hi`` (the
    coarsest that keeps thresholds >= 2^IF_VTH_MIN_BITS), so that with the layer's one
    weight exponent every channel's largest weight fills the mantissa (Loihi 2 neurons
    take per-neuron thresholds). ``lo`` unchanged where synapses do not map rows to
    channels one to one."""
    wf, unit = ctx.wf, ctx.payloads.unit
    shape = d.node.inputs[0].shape
    c = shape[0]
    per_ch = np.zeros(c)  # ANN units per mantissa step, per channel
    for s in d.synapses:  # (Conv2d/Dense)
        if tuple(s.output.shape) != tuple(shape) or s.op.weight.shape[0] != c:
            return lo
        wu = np.abs(ann_weights(s, unit)).reshape(c, -1)
        per_ch = np.maximum(per_ch, wu.max(1) / mantissa_max(wf, mixed_sign(s.op.weight)))
    for cname, i, _ in d.skips:
        v = ctx.graph.node(cname).inputs[i]
        if len(v.shape) != 3 or tuple(v.shape) != tuple(shape):
            return lo
        u = np.broadcast_to(np.asarray(unit[v.name], np.float64), v.shape)
        per_ch = np.maximum(per_ch, u.reshape(c, -1).max(1) / mantissa_max(wf, False))
    if hi <= lo or not per_ch.max() > 0:
        return lo
    e = min(max(math.ceil(math.log2(per_ch.max() / (hi * 2.0**ctx.act))), wf.exp_min),
            wf.exp_max)
    sig = np.maximum(per_ch / 2.0 ** (ctx.act + e), lo)
    return sig.reshape(c, *[1] * (len(shape) - 1))


# ---------------------------------------------------------------------------------------------
# per population type: the bounds on q, and the integer op with its report fields


def _output_bounds(ctx: QuantizeContext) -> ScaleBounds:
    """Outputs: any scale works (host readout); on binary-spike targets leave room for the
    per-step exponents e + K - t of folded FS payloads."""
    texp = 0
    if not ctx.graded and ctx.fs:
        shift = max(int(v.d.max()).bit_length() - 1 for v in ctx.fs.values())
        texp = min(0, ctx.wf.exp_max - shift)
    return ScaleBounds(1.0, math.inf, -math.inf, texp)


def _if_bounds(ctx: QuantizeContext, d: Dest) -> ScaleBounds:
    nrn = ctx.nrn
    q0 = min(nrn.uv_bits - 1 - IF_HEADROOM_BITS, nrn.vth_shift + nrn.vth_mant_bits - 1)
    return ScaleBounds(float(d.node.op.threshold), q0, nrn.vth_shift, ctx.wf.exp_max)


def _if_integer(ctx: QuantizeContext, d: Dest, sigma, bias: QuantizedBias) -> tuple[Op, dict]:
    op, nrn = d.node.op, ctx.nrn
    vth_mant = np.clip(np.rint(op.threshold / sigma / 2**nrn.vth_shift), 1,
                       2**nrn.vth_mant_bits - 1).astype(np.int64)
    vth_mant = int(vth_mant) if vth_mant.ndim == 0 else vth_mant
    reset = "subtract" if nrn.programmable else nrn.reset
    qop = q.QIFNeurons(
        op.threshold, op.amplitude, op.timesteps, op.v_init, vth_mant=vth_mant,
        vth_shift=nrn.vth_shift, bias_mant=bias.mantissa, bias_exp=bias.exp, reset=reset,
        compare=nrn.spike_compare, uv_bits=nrn.uv_bits, u_overflow=nrn.u_overflow,
        v_overflow=nrn.v_overflow, act_shift=ctx.act, state_scale=sigma)
    return qop, {"vth_mant": jsonable(vth_mant), "vth": jsonable(vth_mant << nrn.vth_shift),
                 "reset": reset}


def _fs_bounds(ctx: QuantizeContext, d: Dest) -> ScaleBounds:
    op, nrn, texp = d.node.op, ctx.nrn, ctx.wf.exp_max
    if is_relu_table(op):
        return ScaleBounds(float(op.T[-1]), nrn.uv_bits - 1 - FS_HEADROOM_BITS - op.K, 0, texp)
    ref = float(max(np.abs(op.T).max(), np.abs(op.h).max(), 1.0))
    return ScaleBounds(ref, nrn.uv_bits - 1 - FS_HEADROOM_BITS, -64, texp)


def _fs_integer(ctx: QuantizeContext, d: Dest, sigma, bias: QuantizedBias) -> tuple[Op, dict]:
    """FS neurons and AMOS circuits get the same integer table (only the op class differs)."""
    op, nrn = d.node.op, ctx.nrn
    fs = ctx.fs[d.name]
    lim = 2 ** (nrn.uv_bits - 1) - 1
    T_int = np.rint(op.T / sigma)
    h_int = np.rint(op.h / sigma)
    clipped = int((np.abs(T_int) > lim).sum() + (np.abs(h_int) > lim).sum())
    qcls = q.QAmosNeurons if type(op) is neurons.AmosNeurons else q.QFewSpikeNeurons
    qop = qcls(
        np.clip(h_int, -lim, lim).astype(np.int64), fs.d,
        np.clip(T_int, -lim, lim).astype(np.int64), op.activation,
        bias_mant=bias.mantissa, bias_exp=bias.exp, uv_bits=nrn.uv_bits,
        u_overflow=nrn.u_overflow, v_overflow=nrn.v_overflow, act_shift=ctx.act,
        graded=ctx.graded, payload_bits=fs.bits, state_scale=sigma, unit=fs.unit)
    return qop, {"K": op.K, "payload_bits": fs.bits, "graded": ctx.graded,
                 "thresholds_saturated": clipped, "exact_relu": is_relu_table(op)}


def _single_spike_bounds(ctx: QuantizeContext, d: Dest) -> ScaleBounds:
    op, nrn = d.node.op, ctx.nrn
    th = np.asarray(op.step_thresholds(), np.float64)
    ref = float(th.max()) if th.size and th.max() > 0 else 1.0
    q0 = nrn.uv_bits - 1 - TTFS_HEADROOM_BITS
    bound = current_bound(ctx, d)  # the persistent current must never wrap, with room for
    # each step's floor (< 1 unit of synaptic input, 2^act state units) on top
    room = 2 ** (nrn.uv_bits - 1) - 1 - op.timesteps * 2**ctx.act
    if bound > 0:
        q0 = min(q0, math.floor(math.log2(ref * room / bound)))
    return ScaleBounds(ref, q0, -64, ctx.wf.exp_max)


def _single_spike_integer(ctx: QuantizeContext, d: Dest, sigma,
                          bias: QuantizedBias) -> tuple[Op, dict]:
    op, nrn = d.node.op, ctx.nrn
    lim = 2 ** (nrn.uv_bits - 1) - 1
    # float fires on v >= theta; integers on v > vth (or >=): the same crossing
    vth = np.rint(np.asarray(op.step_thresholds(), np.float64) / sigma)
    vth -= 1 if nrn.spike_compare == ">" else 0
    clipped = int((vth > lim).sum())
    qop = q.QSingleSpikeNeurons(
        op.threshold, op.amplitude, op.timesteps,
        vth=np.clip(vth, 0, lim).astype(np.int64), bias_mant=bias.mantissa,
        bias_exp=bias.exp, compare=nrn.spike_compare, uv_bits=nrn.uv_bits,
        u_overflow=nrn.u_overflow, v_overflow=nrn.v_overflow, act_shift=ctx.act,
        state_scale=sigma, unit=op.amplitude)
    bound = current_bound(ctx, d)
    return qop, {"timesteps": op.timesteps, "thresholds_saturated": clipped,
                 "current_bound_bits": math.ceil(math.log2(bound / sigma + 1))}


@dataclass(frozen=True)
class NeuronScaling:
    """How one population type is quantized: the bounds on its state scale, whether it takes
    one scale per output channel where neurons are programmable, and its integer op (with
    the report fields of its model)."""

    bounds: Callable[[QuantizeContext, Dest], ScaleBounds]
    integer_op: Callable[[QuantizeContext, Dest, Unit, QuantizedBias], tuple[Op, dict]]
    per_channel: bool = False


# keyed like payloads.SENDS: the populations that integrate synaptic input
SCALES: dict[type[Op], NeuronScaling] = {
    neurons.IFNeurons: NeuronScaling(_if_bounds, _if_integer, per_channel=True),
    neurons.FewSpikeNeurons: NeuronScaling(_fs_bounds, _fs_integer),
    neurons.AmosNeurons: NeuronScaling(_fs_bounds, _fs_integer),
    neurons.SingleSpikeNeurons: NeuronScaling(_single_spike_bounds, _single_spike_integer),
}


@dataclass
class Scales:
    """The pass's choices per destination: state scales (by destination name), the integer
    population ops (by node name) and the report's population entries."""

    state_scale: dict[str, Unit] = field(default_factory=dict)
    populations: dict[str, Op] = field(default_factory=dict)
    report: list[dict] = field(default_factory=list)


def _state_scale(ctx: QuantizeContext, d: Dest, bias_absmax: float) -> Unit:
    rule = SCALES[type(d.node.op)] if d.node is not None else None
    b = rule.bounds(ctx, d) if rule is not None else _output_bounds(ctx)
    sigma = b.ref * 2.0 ** -choose_q(ctx, d, b, bias_absmax)
    if rule is not None and rule.per_channel and ctx.nrn.programmable:
        sigma = channel_scales(ctx, d, sigma, b.ref * 2.0**-IF_VTH_MIN_BITS)
    return sigma


def plan_scales(ctx: QuantizeContext) -> Scales:
    """State scale of every destination (outputs read out as payloads need none), and the
    integer op of every population."""
    out = Scales()
    for d in ctx.dests.values():
        in_name = d.input_name
        if d.node is None and ctx.payloads.kind[in_name] == PAYLOAD:
            continue
        b = ctx.biases.get(in_name, np.zeros(d.node.inputs[0].shape if d.node else (1,)))
        sigma = _state_scale(ctx, d, float(np.abs(b).max()) if b.size else 0.0)
        out.state_scale[d.name] = sigma
        if d.node is None:
            continue
        bias = quantize_bias(b / sigma, ctx.spec)
        qop, fields = SCALES[type(d.node.op)].integer_op(ctx, d, sigma, bias)
        out.populations[d.name] = qop
        out.report.append(population_entry(d.name, type(qop).__name__, sigma, bias, fields))
    return out


def hybrid_spike_code(op: neurons.HybridInputNeurons, s_in: float, signed: bool,
                      bits: int) -> int:
    """The input code of the ttfs hybrid encoder's one spike (worth ``x_max``)."""
    return int(min(max(round(op.x_max / s_in), 1), input_code_max(signed, bits)))
