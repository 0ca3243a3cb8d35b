"""Leaky and current-based neuron ops of imported spiking networks (NIR: IF, LIF, CubaLIF, LI,
CubaLI), their time-series input, and their integer (Loihi) forms.

The NIR nodes state continuous-time ODEs; the frontend (``compiler/frontend/nir_loader.py``)
discretizes them with forward Euler at step ``dt`` (graph metadata ``dt``, ``--dt``, default
1e-4 s) as snntorch, norse and Lava do:

    alpha = 1 - dt / tau_syn     (current decay; 0 for IF/LIF: no synaptic current state)
    beta  = 1 - dt / tau_mem     (voltage decay; 1 for IF)
    input gain r dt / tau_mem (and w_in dt / tau_syn) folded into the incoming synapse
    bias  = v_leak dt / tau_mem  (per step)

Every parameter array broadcasts to the population's shape. Loihi's CUBA neuron (Lava
``PyLifModelBitAcc``) runs the same update in integers with 12-bit decays ``du``, ``dv``:
``alpha = (4096 - du - 1) / 4096`` (Lava adds 1 to du) and ``beta = (4096 - dv) / 4096``;
``QLeakyNeurons`` states that update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir.ops import Op, Role, ShapeError
from snnc.ir.serialize import register_op_class
from snnc.ir.types import Shape

__all__ = [
    "LEAKY_OPS",
    "RESETS",
    "LeakyIntegrator",
    "LeakyNeurons",
    "QLeakyNeurons",
    "QLeakyReadout",
    "QSpikeTrainInput",
    "SpikeTrainInput",
]

RESETS = ("zero", "subtract")


@register_op_class
@dataclass(frozen=True, eq=False)
class SpikeTrainInput(Op):
    """The time-series input of an imported SNN: each sample is x (``timesteps``, *shape), spike
    counts or currents per step; step t presents x[t] to the first synapses. No state."""

    role: ClassVar[Role] = Role.ENCODER

    timesteps: int

    def infer(self, x: Shape) -> Shape:
        if len(x) < 2 or x[0] != self.timesteps:
            raise ShapeError(f"expects a ({self.timesteps}, ...) time series, got {x}")
        return tuple(x[1:])


@register_op_class
@dataclass(frozen=True, eq=False)
class LeakyNeurons(Op):
    """Current-based leaky integrate-and-fire neurons (CUBA LIF; LIF when ``alpha`` = 0, IF when
    also ``beta`` = 1). For t = 1..T with input current I(t) (weighted spikes plus bias)::

        i(t) = alpha i(t-1) + I(t)                  i(0) = 0
        v(t) = beta v(t-1) + i(t) + bias            v(0) = 0
        s(t) = [v(t) > threshold]
        v(t) = v_reset (reset 'zero')  or  v(t) - threshold (reset 'subtract'),  where s(t)

    Output: the spikes s(t) (0/1). Arrays broadcast to the population's shape."""

    role: ClassVar[Role] = Role.POPULATION

    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    v_reset: np.ndarray
    reset: str = "zero"

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; known: {', '.join(RESETS)}")

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class LeakyIntegrator(Op):
    """Leaky integrator readout (NIR LI, or CubaLI with a current state): no spikes; the output
    is the membrane. For t = 1..T::

        i(t) = alpha i(t-1) + I(t)
        v(t) = beta v(t-1) + i(t) + bias        out(t) = v(t)

    The graph's readout is the mean of v(t) over the T steps (argmax: the class)."""

    role: ClassVar[Role] = Role.READOUT

    alpha: np.ndarray
    beta: np.ndarray
    bias: np.ndarray

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class QSpikeTrainInput(SpikeTrainInput):
    """Integer time-series input: ``p(t) = clip(round_half_even(x[t] / scale), lo, hi)`` with
    ``[lo, hi] = [-(2^(bits-1) - 1), 2^(bits-1) - 1]`` (``signed``) or ``[0, 2^bits - 1]``; spike
    trains (0/1 or counts) pass unchanged with ``scale`` 1. Payloads: graded spikes (Loihi 2) or
    host-injected synaptic input (Loihi 1)."""

    scale: float = 1.0
    bits: int = 8
    signed: bool = False


@register_op_class
@dataclass(frozen=True, eq=False)
class QLeakyNeurons(LeakyNeurons):
    """Integer CUBA LIF neurons: Lava's stock ``LIF`` (``PyLifModelBitAcc``, fixed_pt), for
    t = 1..T with synaptic input a(t)::

        u = wrap24(trunc(u (4096 - du - 1) / 4096) + (a(t) << 6))     # trunc: toward zero
        v = sat24(trunc(v (4096 - dv) / 4096) + u + (bias_mant << bias_exp))
        s(t) = v > (vth_mant << 6)
        v = 0 where s (reset 'zero');  v - (vth_mant << 6) (reset 'subtract', not stock Lava)

    ``du``, ``dv`` and ``vth_mant`` are one per population (Lava's scalars); ``bias_mant``
    broadcasts to the population. ``state_scale``: the float value of one unit of ``a`` (a
    state integer stands for ``state_scale / 64``). The float fields keep the source values."""

    du: int = 4095
    dv: int = 0
    vth_mant: int = 1
    bias_mant: np.ndarray | None = None
    bias_exp: int = 0
    state_scale: float = 1.0

    @property
    def vth(self) -> int:
        return int(self.vth_mant) << 6


@register_op_class
@dataclass(frozen=True, eq=False)
class QLeakyReadout(Op):
    """Host-side integer-to-float readout of an LI/CubaLI output: from the integer synaptic
    input a(t) of the output layer, in float64::

        i(t) = alpha i(t-1) + a(t) scale + current_bias
        v(t) = beta v(t-1) + i(t) + bias        readout: mean over t of v(t)

    ``current_bias`` is the output synapse's float bias (Loihi has no constant synaptic input;
    the host adds it)."""

    role: ClassVar[Role] = Role.READOUT

    alpha: np.ndarray
    beta: np.ndarray
    bias: np.ndarray
    current_bias: np.ndarray
    scale: float = 1.0

    def infer(self, x: Shape) -> Shape:
        return x


LEAKY_OPS = (SpikeTrainInput, LeakyNeurons, LeakyIntegrator, QSpikeTrainInput, QLeakyNeurons,
             QLeakyReadout)
