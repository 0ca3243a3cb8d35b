"""Payload relays: partial-sum relay neurons (``RelayNeurons``, ``split_fanin``'s graded
partial sums), channel slices (``SliceGate``, its channel groups), concatenations
(``ConcatGate``) and zero padding (``PadGate``).

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from snnc.backends.lava.integers import words

__all__ = ["ConcatGate", "PadGate", "RelayNeurons", "SliceGate"]


class RelayNeurons(AbstractProcess):
    """Partial-sum relay neurons (snnc ``PartialSumRelay``): each step every neuron sends its
    synaptic input as a signed graded payload, saturated to ``payload_bits``; no state, so the
    stream passes through in the same step (as an IF population's window). ``record``: the
    payloads of local steps ``start .. start+steps-1`` of every sample, packed as
    ``payload_bits``-bit two's complement (row k: sample k's (steps, size))."""

    def __init__(self, *, size: int, payload_bits: int, period: int, start: int, steps: int,
                 samples: int, **kw) -> None:
        super().__init__(payload_bits=payload_bits, period=period, start=start, steps=steps,
                         **kw)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.payload_bits, self.window = int(payload_bits), int(steps)  # host side: unpacking
        self.record = Var(shape=(samples, words(steps * size, payload_bits)), init=0)


class SliceGate(AbstractProcess):
    """Channels ``start .. stop-1`` of a (C, ...) value (snnc ``Slice``: ``split_fanin``'s
    channel groups), routed within the step like ``SumPoolGate``: flat C-order ports make it a
    contiguous range of the input vector; payloads pass unchanged."""

    def __init__(self, *, in_shape, start: int, stop: int, **kw) -> None:
        super().__init__(in_shape=in_shape, start=start, stop=stop, **kw)
        inner = int(np.prod(in_shape[1:]))
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=((stop - start) * inner,))


class ConcatGate(AbstractProcess):
    """Two values joined along a per-sample ``axis`` (snnc ``Concat``; more inputs chain
    gates), routed within the step like ``SliceGate``: on flat C-order ports each of the
    ``prod(shape[:axis])`` outer rows of the output is input 0's row then input 1's. ``delays``
    (axonal delays on hardware) align the two streams; payloads pass unchanged."""

    def __init__(self, *, shape0, shape1, axis: int, delays: tuple[int, int], **kw) -> None:
        super().__init__(shape0=shape0, shape1=shape1, axis=axis, delays=delays, **kw)
        self.s_in0 = InPort(shape=(int(np.prod(shape0)),))
        self.s_in1 = InPort(shape=(int(np.prod(shape1)),))
        self.s_out = OutPort(shape=(int(np.prod(shape0)) + int(np.prod(shape1)),))


class PadGate(AbstractProcess):
    """Zero padding (snnc ``Pad``, constant 0; negative pads crop) of a value, routed within
    the step: padded payloads are 0, so padded neurons never send."""

    def __init__(self, *, in_shape, pads, **kw) -> None:
        super().__init__(in_shape=in_shape, pads=pads, **kw)
        n = len(in_shape)
        out = [in_shape[i] + pads[i] + pads[i + n] for i in range(n)]
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=(int(np.prod(out)),))
