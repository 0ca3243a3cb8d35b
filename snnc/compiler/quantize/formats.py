"""Target number formats of the quantized graph (docs/targets.md §2 and §5): weights ``mantissa *
2^(scale_shift + exp)`` with one exponent per synaptic layer, biases ``bias_mant << bias_exp``,
8-bit input codes; and the pass's error for what it cannot express."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from snnc.errors import SnncError
from snnc.ir import quantized as q
from snnc.ir.graph import Node
from snnc.targets.target import TargetSpec, WeightFormat

__all__ = [
    "INPUT_BITS",
    "INPUT_BITS_MAX",
    "NotQuantizable",
    "QuantizedBias",
    "WeightQuantization",
    "check_target",
    "input_code_max",
    "mantissa_max",
    "mixed_sign",
    "quantize_bias",
    "quantize_weights",
    "synapse_bits",
    "weight_exponent",
]

INPUT_BITS = 8  # input encoder: 8-bit codes (MNIST-like inputs are 8-bit to begin with)
# Graded-spike targets widen the codes by whole bits, up to this, as far as the weights that
# read them keep their mantissa (quantize_pass.input_bits_headroom): 8-bit images stay exact (their codes
# become multiples of 2^extra), finer inputs (normalized CIFAR pixels) lose less.
INPUT_BITS_MAX = 16


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


class QuantizedBias(NamedTuple):
    """A population's integer bias ``mantissa << exp`` (state units) and how many clipped."""

    mantissa: np.ndarray  # int32
    exp: int
    saturated: int


def mixed_sign(w: np.ndarray) -> bool:
    """True when ``w`` holds both negative and positive values."""
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
    mixed = mixed_sign(w)
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


def quantize_bias(b: np.ndarray, spec: TargetSpec) -> QuantizedBias:
    """Bias integers ``b`` (state units) -> ``bias_mant << exp``, the smallest exponent that
    fits (or the largest there is; what still does not fit is clipped and counted)."""
    n = spec.neuron
    mmax = 2 ** (n.bias_mant_bits - 1) - 1
    absmax = float(np.abs(b).max()) if b.size else 0.0
    exp = 0
    while exp < n.bias_exp_max and absmax > mmax * 2.0**exp:
        exp += 1
    mant = np.rint(b * 2.0**-exp)
    sat = int((np.abs(mant) > mmax).sum())
    return QuantizedBias(np.clip(mant, -mmax, mmax).astype(np.int32), exp, sat)


def input_code_max(signed: bool, bits: int = INPUT_BITS) -> int:
    """Largest input code magnitude of ``bits``-bit codes: 127 for signed 8-bit inputs, 255 for
    non-negative ones."""
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def check_target(spec: TargetSpec) -> None:
    """Raise SnncError unless ``spec`` is fixed-point with formats wide enough to quantize."""
    if not spec.fixed_point:
        raise SnncError(f"target '{spec.name}' is not fixed-point; nothing to quantize")
    n = spec.neuron
    if n.uv_bits < 8 or n.vth_mant_bits < 1 or n.bias_mant_bits < 2:
        raise SnncError(f"target '{spec.name}': state/threshold/bias formats too narrow to "
                        f"quantize (uv_bits {n.uv_bits}, vth_mant_bits {n.vth_mant_bits}, "
                        f"bias_mant_bits {n.bias_mant_bits})")


def synapse_bits(node: Node) -> int:
    """Synapse memory bits per weight of a quantized synaptic node (QConv2d, QDense, QScale);
    0 for any other node. For placement: bits per synapse = this + delay/index bits."""
    return int(node.op.weight_bits) if isinstance(node.op, q.QUANTIZED_SYNAPSES) else 0


def weight_exponent(node: Node) -> int | None:
    """The shared weight exponent of a quantized synaptic node, None for other nodes."""
    return int(node.op.weight_exp) if isinstance(node.op, q.QUANTIZED_SYNAPSES) else None
