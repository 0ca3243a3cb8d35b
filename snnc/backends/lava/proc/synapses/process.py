"""snnc's integer synapses: convolutions (``IntConv``), dense layers with per-step weight
exponents (``IntDense``), one-to-one scales (``ScaleSynapse``) and the aligned dendritic sum of
two synaptic inputs (``AlignedSum``). Each weighted synapse delivers one step later (a 1-step
buffer, as Lava's ``Dense``); the sum routes within the step.

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

__all__ = ["AlignedSum", "IntConv", "IntDense", "ScaleSynapse"]


class IntConv(AbstractProcess):
    """Integer convolution synapses (snnc ``QConv2d``): ``a = shift(W (*) p, weight_exp)``
    (left shift, or arithmetic right shift = floor), delivered one step later (a 1-step buffer,
    as Lava's Dense). Lava's stock ``Conv`` fixed_pt model ignores ``weight_exp`` and clamps to
    24 bits, so snnc has its own (docs/decisions.md)."""

    def __init__(self, *, weight: np.ndarray, weight_exp: int, stride, padding, dilation,
                 groups: int, in_shape, out_shape, fold=None, period: int = 1, **kw) -> None:
        # fold: (first local step, per-step exponent offsets) of a folded few-spike input
        super().__init__(weight=weight, weight_exp=weight_exp, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, in_shape=in_shape,
                         out_shape=out_shape, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.a_out = OutPort(shape=(int(np.prod(out_shape)),))
        self.a_buff = Var(shape=(int(np.prod(out_shape)),), init=0)


class IntDense(AbstractProcess):
    """Integer dense synapses with a per-step weight exponent (snnc ``QDense`` fed by a
    few-spike / AMOS population on a binary-spike target): ``a = shift(W s, e + k(t))``,
    delivered one step later. Lava's stock ``Dense`` has one exponent for all steps, so it
    serves graded and rate inputs, this one folded payloads."""

    def __init__(self, *, weight: np.ndarray, weight_exp: int, fold, period: int, **kw) -> None:
        super().__init__(weight=weight, weight_exp=weight_exp, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(weight.shape[1],))
        self.a_out = OutPort(shape=(weight.shape[0],))
        self.a_buff = Var(shape=(weight.shape[0],), init=0)


class ScaleSynapse(AbstractProcess):
    """One-to-one synapses with one shared integer weight (snnc ``QScale``, skip connections):
    ``a = shift(weight * p, weight_exp)`` elementwise, delivered one step later (a 1-step
    buffer, as every synapse)."""

    def __init__(self, *, size: int, weight: int, weight_exp: int, fold=None, period: int = 1,
                 **kw) -> None:
        super().__init__(weight=weight, weight_exp=weight_exp, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(size,))
        self.a_out = OutPort(shape=(size,))
        self.a_buff = Var(shape=(size,), init=0)


class AlignedSum(AbstractProcess):
    """Dendritic sum of two synaptic inputs of one population (snnc ``Add``/``Sub`` of
    currents, e.g. a residual block's conv and skip path): ``a = a0(t - delay0) +/- a1(t -
    delay1)``. The delays (synaptic delays on hardware) align the two streams so that the
    population sees both in one input window; the output is routed within the step."""

    def __init__(self, *, size: int, delays: tuple[int, int], sign: int = 1, **kw) -> None:
        super().__init__(delays=delays, sign=sign, **kw)
        self.a_in0 = InPort(shape=(size,))
        self.a_in1 = InPort(shape=(size,))
        self.a_out = OutPort(shape=(size,))
