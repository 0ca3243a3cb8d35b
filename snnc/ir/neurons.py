"""Spiking ops of the IR: neuron populations and spiking gates that replace ANN activations.

A converted graph keeps the ANN's linear ops (Conv2d, Dense, pools, Add, Concat, layout ops) as
synapses and routing, and replaces each activation by a neuron population. Every neuron op's
docstring gives the discrete-time update that snnc simulates; each backend implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir import leaky
from snnc.ir.ops import MaxPool2d, Op, Role
from snnc.ir.serialize import register_op_class
from snnc.ir.types import Shape

__all__ = ["IFNeurons", "FewSpikeNeurons", "SpikingMaxPool2d", "NEURON_OPS", "AmosNeurons",
           "SingleSpikeNeurons", "HybridInputNeurons", "FirstSpikeMaxPool2d",
           "PartialSumRelay", "SPIKING_OPS", "neurons_per_gate"]


@register_op_class
@dataclass(frozen=True, eq=False)
class IFNeurons(Op):
    """Rate-coded integrate-and-fire neurons, no leak, reset by subtraction (Rueckauer 2017).

    For t = 1..``timesteps``, with input current I(t) (weighted spikes plus bias, every step)::

        v(t) = v(t-1) + I(t)
        s(t) = [v(t) >= threshold]
        v(t) = v(t) - threshold * s(t)
        out(t) = amplitude * s(t)

    v(0) = ``v_init`` * threshold. ``threshold`` and ``amplitude`` are the layer's normalization
    scale lambda_l (ANN units): a spike stands for lambda_l of activation, so the rate times
    amplitude approximates relu(x) clipped at lambda_l. This is Rueckauer's weight normalization
    W' = W lambda_{l-1}/lambda_l with threshold 1, written per population.
    """

    role: ClassVar[Role] = Role.POPULATION

    threshold: float
    amplitude: float
    timesteps: int
    v_init: float = 0.0

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class FewSpikeNeurons(Op):
    """Few-spikes (FS) neurons (Stöckl & Maass 2021), K = len(h) steps per image.

    The pre-activation x is loaded once; then for t = 1..K::

        v(1) = x
        z(t) = [v(t) > T(t)]
        y   += d(t) z(t)
        v(t+1) = v(t) - h(t) z(t)

    The population's output is the decoded y = sum_t d(t) z(t), which approximates
    ``activation``(x) (for ReLU with T = h = d = alpha 2^-t it is exactly a K-bit quantizer).
    Downstream synapses see the spikes weighted by d(t) (graded spikes on Loihi 2).
    """

    role: ClassVar[Role] = Role.POPULATION

    h: np.ndarray
    d: np.ndarray
    T: np.ndarray
    activation: str = "relu"

    def infer(self, x: Shape) -> Shape:
        return x

    @property
    def K(self) -> int:
        return int(self.h.shape[0])


@register_op_class
@dataclass(frozen=True, eq=False)
class SpikingMaxPool2d(MaxPool2d):
    """Rate-coded max-pool gate (Rueckauer 2017, toolbox ``fir_max``): each step, each window
    passes the spike of the input neuron with the most input spikes so far (ties: first in
    row-major window order). Input spikes are counted including the current step."""


@register_op_class
@dataclass(frozen=True, eq=False)
class AmosNeurons(Op):
    """AMOS circuits (Stöckl & Maass 2019): every gate is a circuit of k = len(h) neurons that
    each fire at most once per image -- the FS tables unrolled in space (docs/amos.md).

    Neuron i (1..k) of a gate receives the gate input x (weight 1, synaptic delay i-1), an
    inhibitory synapse -h_j from every neuron j < i (delay i-j-1, so all of its inputs arrive in
    step i) and has threshold T_i. For circuit steps t = 1..k, with I_i(t) the input arriving at
    neuron i in step t::

        u_i(t) = u_i(t-1) + I_i(t)                          u_i(0) = 0
        z_i(t) = [u_i(t) > T_i] * [t >= i] * (1 - fired_i(t-1))
        fired_i(t) = fired_i(t-1) + z_i(t)                  # one-shot: refractory for good

    so u_i(i) = x - sum_{j<i} h_j z_j and the circuit computes exactly the FS neuron. Neuron i's
    outgoing synapse to consumer m has weight W_{m,gate} d_i: the value seen downstream is
    y = sum_i d_i z_i. A gate layer takes k steps; images are pipelined one per step.
    """

    role: ClassVar[Role] = Role.POPULATION

    h: np.ndarray
    d: np.ndarray
    T: np.ndarray
    activation: str = "relu"

    def infer(self, x: Shape) -> Shape:
        return x

    @property
    def K(self) -> int:
        return int(self.h.shape[0])


@register_op_class
@dataclass(frozen=True, eq=False)
class SingleSpikeNeurons(Op):
    """Single-spike integrate-and-fire neurons (Datta et al. 2021): at most one spike per image,
    fed by non-decaying current synapses (a Loihi CUBA neuron with current and voltage decay 0).

    For t = 1..``timesteps``, with input current I(t) = W a(t) + b from the layer before::

        v(t) = v(t-1) + I(t)                         v(0) = 0
        s(t) = [v(t) >= theta(t)] * (1 - fired(t-1))
        fired(t) = fired(t-1) + s(t)                 # infinite refractory period
        a(t) = amplitude * fired(t)                  # what the next synapses carry

    A spike switches on a synaptic current that stays on for the rest of the image, so a
    consumer integrates amplitude * (T + 1 - t_spike) from it: earlier spikes stand for larger
    values (time-to-first-spike code, linearly decoded by the next membrane). Each spike is
    still one synaptic event per synapse; the persistence is the consumer's current state.

    ``threshold`` is a float (theta(t) = threshold) or an array (T, *b) of per-step thresholds,
    ``amplitude`` a float or an array b, where b broadcasts to the population's shape
    (per-channel values: (C, 1, 1)). A per-channel threshold or amplitude is a per-neuron scale
    of the incoming or outgoing synapses. Per-step thresholds make the decoded value
    amplitude * (T + 1 - t_spike) linear in a constant input current (with one fixed threshold
    an integrator fires at t ~ threshold / current). Both come from layer-wise calibration
    (convert_ttfs, docs/decisions.md).
    """

    role: ClassVar[Role] = Role.POPULATION

    threshold: float | np.ndarray
    amplitude: float | np.ndarray
    timesteps: int

    def infer(self, x: Shape) -> Shape:
        return x

    def step_thresholds(self) -> np.ndarray:
        """theta(t) for t = 1..T as an array (T, *b); b = () for a layer-wide threshold."""
        th = np.asarray(self.threshold, dtype=np.float64)
        return np.broadcast_to(th, (self.timesteps,)) if th.ndim == 0 else th


@register_op_class
@dataclass(frozen=True, eq=False)
class HybridInputNeurons(Op):
    """Single-spike hybrid input encoding (Datta et al. 2021) of the analog input x.

    Step 1 passes the analog values (the first synaptic layer does MACs once); in steps
    2..``timesteps`` every pixel with x > 0 emits one spike at::

        t(x) = 2 + floor((1 - min(x, x_max) / x_max) * (timesteps - 1)),  capped at timesteps

    so brighter pixels spike earlier (x = x_max at step 2). As for SingleSpikeNeurons, a spike
    switches on a non-decaying current: a(1) = x; a(t) = x_max * [t >= t(x)] for t >= 2.
    """

    role: ClassVar[Role] = Role.POPULATION

    x_max: float
    timesteps: int

    def infer(self, x: Shape) -> Shape:
        return x


@register_op_class
@dataclass(frozen=True, eq=False)
class FirstSpikeMaxPool2d(MaxPool2d):
    """Max-pool of single-spike (time-to-first-spike) populations: each window emits one spike,
    in the step of the earliest spike among its inputs (earliest = largest value). On the
    populations' outputs a(t) = amplitude * fired(t) this is the ordinary max-pool per step."""


@register_op_class
@dataclass(frozen=True, eq=False)
class PartialSumRelay(Op):
    """Partial-sum relay neurons (Loihi 2 graded spikes) for a fan-in wider than a core's input
    axons (``compiler/placement/split_fanin.py``): each step every neuron sends the synaptic input it
    received, one channel group's part of its consumer's sum, as a graded payload of
    ``payload_bits`` (signed); no state, no threshold. The consumer adds the parts through 1:1
    synapses of weight 1, so it sees the same sum one step later (Lava: one synapse more). The
    compiler proves every part fits the payload, so relays never saturate."""

    role: ClassVar[Role] = Role.RELAY

    payload_bits: int = 24

    def infer(self, x: Shape) -> Shape:
        return x


SPIKING_OPS = (IFNeurons, FewSpikeNeurons, SpikingMaxPool2d, AmosNeurons, SingleSpikeNeurons,
               HybridInputNeurons, FirstSpikeMaxPool2d, PartialSumRelay, *leaky.LEAKY_OPS)
NEURON_OPS = tuple(c for c in SPIKING_OPS if c.role in (Role.POPULATION, Role.RELAY))


def neurons_per_gate(op: Op) -> int:
    """Spiking neurons per element of a population's output (k for AMOS circuits, else 1)."""
    return op.K if isinstance(op, AmosNeurons) else 1
