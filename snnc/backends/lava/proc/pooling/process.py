"""Pooling gates, routed within the step: rate-coded (``MaxPoolGate``), first-spike
(``FirstSpikeGate``) and few-spike decoded (``DecodedMaxPoolGate``) max-pools, and payload sums
over windows (``SumPoolGate``).

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from snnc.backends.lava.integers import words

__all__ = ["DecodedMaxPoolGate", "FirstSpikeGate", "MaxPoolGate", "SumPoolGate"]


class MaxPoolGate(AbstractProcess):
    """Rate-coded max-pool gate (``SpikingMaxPool2d``): each step each window passes the spike
    of its input with the most spikes so far in the sample (ties: first in row-major order).
    No synaptic buffer: it routes within the step. Counts reset at local step 1."""

    def __init__(self, *, in_shape, out_shape, kernel, stride, padding, dilation, period: int,
                 samples: int, **kw) -> None:
        super().__init__(in_shape=in_shape, kernel=kernel, stride=stride, padding=padding,
                         dilation=dilation, period=period, **kw)
        size = int(np.prod(out_shape))
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=(size,))
        # spikes passed per output per sample, packed 16 bits each (``pack``)
        self.events = Var(shape=(samples, words(size, 16)), init=0)


class FirstSpikeGate(MaxPoolGate):
    """First-spike max-pool gate (``FirstSpikeMaxPool2d``) on binary single-spike trains: each
    window fires once, in the step of its earliest input spike (the max-pool of the
    fired-so-far input map, minus what it passed before). Routed within the step; reset at
    local step 1. ``events``: as ``MaxPoolGate``'s (here 0 or 1 per output)."""


class DecodedMaxPoolGate(AbstractProcess):
    """Few-spike max-pool (``MaxPool2d`` on payloads): buffers the K payload steps of local
    steps ``start ..``; in the last one, each window picks the input with the largest decoded
    value (sum of its payloads; ties: first in row-major order) and sends that input's K
    payloads in local steps ``start+K-1 .. start+2K-2``. ``events``: nonzero payloads passed
    per output per sample, packed 16 bits each."""

    def __init__(self, *, in_shape, out_shape, kernel, stride, dilation, period: int,
                 start: int, window: int, samples: int, step_values=None, **kw) -> None:
        # step_values: d(t) of a binary (Loihi 1) few-spike stream: the decoded value of an
        # input is sum_t d(t) z(t); graded streams carry d(t) z(t) themselves
        super().__init__(in_shape=in_shape, kernel=kernel, stride=stride, dilation=dilation,
                         period=period, start=start, window=window, step_values=step_values,
                         **kw)
        size = int(np.prod(out_shape))
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=(size,))
        self.events = Var(shape=(samples, words(size, 16)), init=0)


class SumPoolGate(AbstractProcess):
    """Sum of payloads over pooling windows (snnc ``SumPool2d``; ``kernel=None``: the global
    ``GlobalSumPool``), routed within the step: the fan-in of the next synapses."""

    def __init__(self, *, in_shape, out_shape, kernel=None, stride=None, **kw) -> None:
        super().__init__(in_shape=in_shape, kernel=kernel, stride=stride, **kw)
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=(int(np.prod(out_shape)),))
