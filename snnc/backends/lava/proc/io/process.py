"""The ends of a network: ``InputCode``, the source sending each sample's input payloads,
and ``ReadoutAcc``, the output monitor summing the output layer's synaptic input.

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

__all__ = ["InputCode", "ReadoutAcc"]


class InputCode(AbstractProcess):
    """Source: sends sample k's input payloads (graded) in local steps 1..``steps`` of period k,
    zeros otherwise. ``codes`` (N, S, size) holds S payload steps per sample; the last one
    repeats up to ``steps`` (rate: the 8-bit code, S = 1, sent T times; few-spike: S = steps = 1;
    ttfs: the hybrid encoder's S = steps = T events). Stepping past the last sample is an error
    (a guard, and the failure the process-cleanup test relies on)."""

    def __init__(self, *, codes: np.ndarray, period: int, steps: int, **kw) -> None:
        super().__init__(codes=codes, period=period, steps=steps, **kw)
        self.s_out = OutPort(shape=(codes.shape[2],))


class ReadoutAcc(AbstractProcess):
    """Output monitor: sums the synaptic input of the output layer over local steps
    ``start .. start+steps-1`` of each sample: ``acc`` (samples, size). ``integrate``
    (single-spike graphs, whose synaptic inputs are events switching currents on): sums the
    running sum of the input instead, ``sum_t (steps + 1 - t) a(t)``, the output membrane."""

    def __init__(self, *, size: int, period: int, start: int, steps: int, samples: int,
                 integrate: bool = False, **kw) -> None:
        super().__init__(period=period, start=start, steps=steps, integrate=integrate, **kw)
        self.a_in = InPort(shape=(size,))
        self.acc = Var(shape=(samples, size), init=0)
