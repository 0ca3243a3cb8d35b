"""Spiking ops of the IR: neuron populations and spiking gates that replace ANN activations.

A converted graph keeps the ANN's linear ops (Conv2d, Dense, pools, Add, Concat, layout ops) as
synapses and routing, and replaces each activation by a neuron population. Every neuron op's
docstring gives the discrete-time update that snnc simulates; each backend implements it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir.ops import MaxPool2d, Op
from snnc.ir.serialize import register_op_class
from snnc.ir.types import Shape

__all__ = ["IFNeurons", "FewSpikeNeurons", "SpikingMaxPool2d", "NEURON_OPS"]


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


NEURON_OPS = (IFNeurons, FewSpikeNeurons)
