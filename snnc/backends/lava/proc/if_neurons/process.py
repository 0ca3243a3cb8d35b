"""Binary-spike populations stepping with their input: integer IF neurons (rate coding) and
single-spike neurons (ttfs).

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from snnc.backends.lava.integers import words

__all__ = ["IFNeurons", "SingleSpikeNeurons"]


class IFNeurons(AbstractProcess):
    """snnc integer IF neurons (``QIFNeurons``, PyLifModelBitAcc with du = dv = 4096 and reset by
    subtraction): per active step ``u = wrap(a << act_shift)``, ``v = sat(v + u + bias)``,
    ``s = v > vth`` (or ``>=``), ``v -= vth`` (or 0) where s; ``vth`` and ``v_init`` are one
    integer or one per neuron. ``record`` holds the spikes of every sample, packed (``pack``,
    1 bit each): row k is sample k's (T, size) spikes."""

    def __init__(self, *, size: int, vth: int | np.ndarray, bias: np.ndarray,
                 v_init: int | np.ndarray, act_shift: int,
                 compare: str, reset: str, uv_bits: int, u_overflow: str, v_overflow: str,
                 period: int, start: int, steps: int, samples: int, **kw) -> None:
        super().__init__(vth=vth, bias=bias, v_init=v_init, act_shift=act_shift,
                         compare=compare, reset=reset, uv_bits=uv_bits, u_overflow=u_overflow,
                         v_overflow=v_overflow, period=period, start=start, steps=steps, **kw)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.v = Var(shape=(size,), init=v_init)
        self.record = Var(shape=(samples, words(steps * size, 1)), init=0)


class SingleSpikeNeurons(AbstractProcess):
    """snnc integer single-spike (ttfs) neurons (``QSingleSpikeNeurons``): per active step t
    ``u = wrap(u + (a << act_shift))`` (a persistent current: inputs are events),
    ``v = sat(v + u + bias)``, ``s = v > vth[t]`` (or ``>=``) unless fired before, so each
    neuron fires at most once per sample. ``vth`` (T, size): per-step thresholds. ``record``:
    the spikes of every sample, packed as ``IFNeurons``'."""

    def __init__(self, *, size: int, vth: np.ndarray, bias: np.ndarray, act_shift: int,
                 compare: str, uv_bits: int, u_overflow: str, v_overflow: str, period: int,
                 start: int, steps: int, samples: int, **kw) -> None:
        super().__init__(vth=vth, bias=bias, act_shift=act_shift, compare=compare,
                         uv_bits=uv_bits, u_overflow=u_overflow, v_overflow=v_overflow,
                         period=period, start=start, steps=steps, **kw)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.record = Var(shape=(samples, words(steps * size, 1)), init=0)
