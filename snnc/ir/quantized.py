"""Quantized (fixed-point) ops: what ``quantize(graph, target)`` produces for Loihi-class targets.

Every parameter is an integer (numpy int arrays) with its exponent; every value between ops holds
integers. Two kinds of integer values flow through a quantized graph:

* **payloads**: what populations (and the input encoder) send, one integer per neuron per step:
  0/1 for binary spikes (IF), ``d(t)`` for few-spike neurons (a graded spike payload on Loihi 2;
  on binary-spike targets the same integer is folded into a per-step weight, see
  ``QFewSpikeNeurons``), the 8-bit input code for the input encoder;
* **synaptic input** ``a``: what a synapse delivers, before the neuron's fixed ``act_shift``
  (Lava ``PyDenseModelBitAcc``: ``a = acc << e`` for ``e >= 0``, ``acc >> -e`` otherwise, an
  arithmetic shift, i.e. floor). Synaptic inputs into the same population are summed.

Float meaning: a payload p of a population stands for ``p * unit`` in ANN units; a state or
threshold integer of a population stands for ``integer * state_scale``. These floats are kept on
the ops (``unit``, ``state_scale``) for reports and tests; the bit-exact simulator never uses them
except in the host-side ``InputQuantizer`` and ``QReadout``.

The quantized synapses and neurons subclass their float counterparts (``QConv2d`` is a ``Conv2d``,
``QIFNeurons`` an ``IFNeurons``...) so that structure-level code (layer tables, MAC counts,
pipeline depth, placement) treats them alike; simulators dispatch on the exact class, so a float
rule never runs on integer parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir import neurons
from snnc.ir.ops import Conv2d, Dense, Op, Role, ShapeError, spatial_out
from snnc.ir.serialize import register_op_class
from snnc.ir.types import Shape

__all__ = [
    "InputQuantizer",
    "QConv2d",
    "QDense",
    "QScale",
    "SumPool2d",
    "GlobalSumPool",
    "QIFNeurons",
    "QFewSpikeNeurons",
    "QAmosNeurons",
    "QHybridInput",
    "QSingleSpikeNeurons",
    "QReadout",
    "QUANTIZED_OPS",
    "QUANTIZED_SYNAPSES",
    "is_quantized",
]


@register_op_class
@dataclass(frozen=True, eq=False)
class InputQuantizer(Op):
    """Host-side input encoder: ``p = clip(round_half_even(x / scale), -m, m)`` with
    ``m = 2^(bits-1) - 1`` (``signed``), or ``clip(..., 0, 2^bits - 1)`` for non-negative inputs.
    The payload is presented once (few-spike) or every step (rate), as a graded spike (Loihi 2)
    or as a host-injected synaptic input of the first layer (Loihi 1)."""

    role: ClassVar[Role] = Role.ENCODER

    scale: float
    bits: int = 8
    signed: bool = True

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class QConv2d(Conv2d):
    """Integer convolution: ``a = shift(W (*) p, weight_exp)`` where ``shift(v, e) = v * 2^e`` for
    ``e >= 0`` and ``floor(v * 2^-|e|)`` otherwise (Lava's arithmetic right shift). ``weight``
    holds the integer mantissas; ``bias`` is all zeros (biases live on the neurons, as on Loihi).
    ``weight_bits``: synapse memory bits per weight (magnitude bits + 1 if mixed-sign)."""

    weight_exp: int = 0
    weight_bits: int = 8


@register_op_class
@dataclass(frozen=True, eq=False)
class QDense(Dense):
    """Integer dense synapses, same arithmetic as ``QConv2d``: ``a = shift(W p, weight_exp)``."""

    weight_exp: int = 0
    weight_bits: int = 8


@register_op_class
@dataclass(frozen=True, eq=False)
class QScale(Op):
    """One-to-one synapses with a shared integer weight (identity/skip connections):
    ``a = shift(weight * p, weight_exp)`` elementwise."""

    role: ClassVar[Role] = Role.SYNAPTIC

    weight: int
    weight_exp: int = 0
    weight_bits: int = 8

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class SumPool2d(Op):
    """Sum of payloads over windows (an average pool whose 1/k went into the next synapse's
    weights): the fan-in of the next layer, routed. No padding."""

    role: ClassVar[Role] = Role.SYNAPTIC

    kernel: tuple[int, int]
    stride: tuple[int, int]

    def infer(self, x: Shape) -> Shape:
        return (x[0], *spatial_out(x, self.kernel, self.stride, (0, 0, 0, 0), (1, 1)))


@register_op_class
@dataclass(frozen=True, eq=False)
class GlobalSumPool(Op):
    """Sum of payloads over all spatial positions: (C, *spatial) -> (C, 1, ...)."""

    role: ClassVar[Role] = Role.SYNAPTIC

    def infer(self, x: Shape) -> Shape:
        if len(x) < 2:
            raise ShapeError(f"expects a (C, spatial...) input, got {x}")
        return (x[0],) + (1,) * (len(x) - 1)


@register_op_class
@dataclass(frozen=True, eq=False)
class QIFNeurons(neurons.IFNeurons):
    """Integer IF neurons (Lava ``PyLifModelBitAcc`` with du = dv = 4095 + 1 i.e. no memory in u
    and no leak in v), for t = 1..timesteps with synaptic input a(t)::

        u    = wrap_{uv_bits}(a(t) << act_shift)                # current, wraps
        v    = sat_{uv_bits}(v + u + (bias_mant << bias_exp))   # voltage, saturates at +-(2^23-1)
        s(t) = v > (vth_mant << vth_shift)                      # ``compare``: '>' or '>='
        v    = v - vth  if reset == 'subtract' else 0   (where s)

    Payload out: s(t) (binary). ``threshold``/``amplitude`` keep the float lambda (one spike stands
    for ``amplitude`` ANN units); ``state_scale`` is the ANN value of one state unit.
    ``bias_mant`` has the population's shape (one bias per neuron, as on Loihi)."""

    vth_mant: int | np.ndarray = 1  # per channel (shape (C, 1, ...)) on targets that allow it
    vth_shift: int = 6
    bias_mant: np.ndarray | None = None
    bias_exp: int = 0
    reset: str = "subtract"
    compare: str = ">"
    uv_bits: int = 24
    u_overflow: str = "wrap"
    v_overflow: str = "saturate"
    act_shift: int = 6
    state_scale: float = 1.0

    @property
    def vth(self) -> int | np.ndarray:
        """The threshold in state units: one, or one per channel (broadcasting like bias)."""
        if np.ndim(self.vth_mant):
            return np.asarray(self.vth_mant, np.int64) << int(self.vth_shift)
        return int(self.vth_mant) << int(self.vth_shift)


@dataclass(frozen=True, eq=False)
class _IntegerGateFormat:
    """The integer formats shared by few-spike neurons and AMOS circuits (the same table):
    bias, state width and overflow modes, input shift, and how the payload d is sent
    (``graded``: a ``payload_bits`` graded spike; else binary spikes with d folded into the
    downstream weights). ``state_scale``/``unit``: ANN value of one state / payload unit."""

    bias_mant: np.ndarray | None = None
    bias_exp: int = 0
    uv_bits: int = 24
    u_overflow: str = "wrap"
    v_overflow: str = "saturate"
    act_shift: int = 6
    graded: bool = True
    payload_bits: int = 24
    state_scale: float = 1.0
    unit: float = 1.0


@register_op_class
@dataclass(frozen=True, eq=False)
class QFewSpikeNeurons(_IntegerGateFormat, neurons.FewSpikeNeurons):
    """Integer few-spike neurons (a custom microcode neuron on Loihi 2). ``h``, ``d``, ``T`` are
    int64 arrays: reset amounts and thresholds in state units, output payloads in payload units.
    Over the K-step window the synaptic inputs are accumulated, then::

        v(1) = sat(wrap(sum_t a(t) << act_shift) + (bias_mant << bias_exp))
        for t = 1..K:
            z(t) = v(t) > T(t)
            out(t) = d(t) z(t)                      # payload
            v(t+1) = sat(v(t) - h(t) z(t))

    ``graded``: True sends d(t) as a graded spike payload (``payload_bits`` wide, sign included);
    False (binary-spike targets, Loihi 1) sends 0/1 spikes and folds d(t) into the downstream
    weights as a per-step factor: the downstream integer ``W * d(t) * z(t)`` is the same, so the
    simulated integers are identical. ``unit`` is the ANN value of one payload unit."""



@register_op_class
@dataclass(frozen=True, eq=False)
class QAmosNeurons(_IntegerGateFormat, neurons.AmosNeurons):
    """Integer AMOS circuits: the integer FS table of ``QFewSpikeNeurons`` unrolled in space
    (k = len(h) one-shot neurons per gate, docs/amos.md). ``h``, ``T`` are in state units, ``d``
    in payload units. The gate input is formed as the FS neuron's ``v(1)``; neuron i (1..k)
    receives it and the inhibition of every earlier neuron, all in circuit step i, into a membrane
    that was 0::

        x   = sat(wrap(sum_t a(t) << act_shift) + (bias_mant << bias_exp))
        u_i = sat(x - sum_{j<i} h_j z_j)            # one saturation: all inputs arrive together
        z_i = u_i > T_i                              # fires at most once (in step i)
        out(i) = d_i z_i                             # payload of neuron i's spike

    For tables whose partial sums never leave the state range (FS-ReLU: u_i only decreases from
    x while it stays above 0) this equals ``QFewSpikeNeurons`` bit for bit; elsewhere the FS
    neuron saturates after every step and the circuit once per neuron. ``graded``: the payload
    d_i is sent with the spike (Loihi 2); False: binary spikes and d_i folded into neuron i's
    outgoing weights, as for FS on Loihi 1 (the same integers downstream)."""


@register_op_class
@dataclass(frozen=True, eq=False)
class QHybridInput(Op):
    """Host-side hybrid input encoder of single-spike (ttfs) networks: the integer form of
    ``neurons.HybridInputNeurons``. Each pixel's code is ``p = clip(round_half_even(x /
    scale), lo, hi)`` as in ``InputQuantizer``; its spike step (pixels with p > 0 only) is::

        t_p = 2 + min((spike_code - min(p, spike_code)) * (timesteps - 1) // spike_code,
                      timesteps - 2)

    The payloads are *events* that consumers integrate into a persistent current (as every
    single-spike population's): step 1 carries the analog code p, step 2 takes it back and
    step t_p switches on the spike's current ``spike_code``::

        e(1) = p,   e(2) = spike_code [t_p == 2] - p,   e(t) = spike_code [t_p == t] (t > 2)

    so the current after step t is p in step 1 and ``spike_code [t >= t_p]`` afterwards, the
    float encoder's a(t) in payload units. Events are signed (one bit wider than the code).
    Graded payloads on Loihi 2, host-injected synaptic input on Loihi 1, as the rate/fs input
    codes. Spikes counted: one per pixel with p > 0."""

    role: ClassVar[Role] = Role.ENCODER

    scale: float
    bits: int = 8
    signed: bool = False
    timesteps: int = 5
    spike_code: int = 255

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class QSingleSpikeNeurons(neurons.SingleSpikeNeurons):
    """Integer single-spike neurons (time to first spike; a microcode neuron on Loihi 2, a
    CUBA compartment with no current decay and per-step thresholds). Inputs are events: a(t)
    is the synaptic input of the spikes (and encoder events) arriving in step t. For
    t = 1..timesteps::

        u = wrap(u + (a(t) << act_shift))              # persistent synaptic current
        v = sat(v + u + (bias_mant << bias_exp))       # no leak
        s(t) = (v > vth[t]) and not fired              # ``compare``; one spike at most
        fired |= s(t)

    Payload out: s(t), the spike event (binary; its amplitude is folded into the consumers'
    weights, per channel). ``vth`` (timesteps, *b) holds the per-step thresholds in state units
    (b broadcasts to the population: per channel (C, 1, 1)); the quantizer proves that u
    never wraps (row L1 norm of the incoming weights x the largest input current).
    ``threshold``/``amplitude`` keep the float values; ``state_scale`` is the ANN value of one
    state unit, ``unit`` (broadcasting like ``amplitude``) the ANN value of one spike."""

    vth: np.ndarray | None = None
    bias_mant: np.ndarray | None = None
    bias_exp: int = 0
    compare: str = ">"
    uv_bits: int = 24
    u_overflow: str = "wrap"
    v_overflow: str = "saturate"
    act_shift: int = 6
    state_scale: float = 1.0
    unit: np.ndarray | float = 1.0


@register_op_class
@dataclass(frozen=True, eq=False)
class QReadout(Op):
    """Host-side decoding of the output layer's synaptic input: over the window,
    ``y = reduce_t(a(t)) * scale + bias`` with ``reduce`` 'sum' (few-spike: the value is sent
    once per window), 'mean' (rate) or 'integrate' (single-spike: a(t) are events switching
    persistent currents on, so the mean over t of the running sum ``sum_{t' <= t} a(t')``, the
    membrane v(T) / T). The bias stays float: it is added on the host."""

    role: ClassVar[Role] = Role.READOUT

    scale: float
    bias: np.ndarray
    reduce: str = "mean"

    def infer(self, x: Shape) -> Shape:
        return x


QUANTIZED_SYNAPSES = (QConv2d, QDense, QScale)
QUANTIZED_OPS = (InputQuantizer, QConv2d, QDense, QScale, SumPool2d, GlobalSumPool, QIFNeurons,
                 QFewSpikeNeurons, QAmosNeurons, QHybridInput, QSingleSpikeNeurons, QReadout)


def is_quantized(graph) -> bool:
    """True for graphs produced by ``quantize`` (they hold integer ops)."""
    return any(isinstance(n.op, QUANTIZED_OPS) for n in graph.nodes)
