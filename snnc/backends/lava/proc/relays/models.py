"""``fixed_pt`` models of the relays.

Lava finds a model by scanning the modules beside its process's file: this module must stay
in the process's package and import with absolute names (Lava executes a fresh copy of it)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from snnc.backends.lava.integers import local_step, pack
from snnc.backends.lava.proc.delays import DelayLines
from snnc.backends.lava.proc.relays.process import ConcatGate, PadGate, RelayNeurons, SliceGate

__all__ = ["PyConcatGateModel", "PyPadGateModel", "PyRelayNeuronsModel", "PySliceGateModel"]


@implements(proc=RelayNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRelayNeuronsModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.bits = int(p["payload_bits"])
        self.lim = (1 << (self.bits - 1)) - 1
        self.period, self.first, self.steps = int(p["period"]), int(p["start"]), int(p["steps"])
        self.trace = None  # (steps, size) payloads of the current sample

    def run_spk(self) -> None:
        out = np.clip(self.a_in.recv().astype(np.int64), -self.lim, self.lim)
        t = local_step(self.time_step, self.period) - self.first + 1
        if 1 <= t <= self.steps:
            if t == 1:
                self.trace = np.zeros((self.steps, len(out)), np.int64)
            self.trace[t - 1] = out
            k = (self.time_step - 1) // self.period
            if t == self.steps and k < len(self.record):
                self.record[k] = pack(self.trace & ((1 << self.bits) - 1), self.bits)
        self.s_out.send(out)


@implements(proc=SliceGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySliceGateModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        inner = int(np.prod(tuple(p["in_shape"])[1:]))
        self.lo, self.hi = int(p["start"]) * inner, int(p["stop"]) * inner

    def run_spk(self) -> None:
        self.s_out.send(self.s_in.recv().astype(np.int64)[self.lo:self.hi])


@implements(proc=ConcatGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyConcatGateModel(PyLoihiProcessModel):
    s_in0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_in1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.outer = int(np.prod(tuple(p["shape0"])[:int(p["axis"])]))
        self._delayed = DelayLines(p["delays"])

    def run_spk(self) -> None:
        a = self._delayed(0, self.s_in0.recv().astype(np.int64)).reshape(self.outer, -1)
        b = self._delayed(1, self.s_in1.recv().astype(np.int64)).reshape(self.outer, -1)
        self.s_out.send(np.concatenate([a, b], axis=1).reshape(-1))


@implements(proc=PadGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPadGateModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        shape, pads = tuple(proc_params["in_shape"]), tuple(proc_params["pads"])
        n = len(shape)
        self.shape = shape
        self.out = tuple(shape[i] + pads[i] + pads[i + n] for i in range(n))
        # where the kept input lies in the output, and which input part is kept (crops)
        self.dst = tuple(slice(max(0, pads[i]), max(0, pads[i]) + shape[i] - max(0, -pads[i])
                               - max(0, -pads[i + n])) for i in range(n))
        self.src = tuple(slice(max(0, -pads[i]), shape[i] - max(0, -pads[i + n]))
                         for i in range(n))

    def run_spk(self) -> None:
        x = self.s_in.recv().astype(np.int64).reshape(self.shape)
        y = np.zeros(self.out, np.int64)
        y[self.dst] = x[self.src]
        self.s_out.send(y.reshape(-1))
