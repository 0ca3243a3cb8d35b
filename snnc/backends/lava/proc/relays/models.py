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
from snnc.backends.lava.proc.relays.process import RelayNeurons, SliceGate

__all__ = ["PyRelayNeuronsModel", "PySliceGateModel"]


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
