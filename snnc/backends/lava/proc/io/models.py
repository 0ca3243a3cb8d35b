"""``fixed_pt`` models of the input source and the readout monitor.

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

from snnc.backends.lava.integers import local_step
from snnc.backends.lava.proc.io.process import InputCode, ReadoutAcc

__all__ = ["PyInputCodeModel", "PyReadoutAccModel"]


@implements(proc=InputCode, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyInputCodeModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.codes = np.asarray(proc_params["codes"], np.int64)
        self.period, self.steps = int(proc_params["period"]), int(proc_params["steps"])
        self.zero = np.zeros(self.codes.shape[2], np.int64)

    def run_spk(self) -> None:
        k = (self.time_step - 1) // self.period
        if k >= len(self.codes):
            raise RuntimeError(f"input source stepped past its {len(self.codes)} samples "
                               f"(time step {self.time_step})")
        local = local_step(self.time_step, self.period)
        last = self.codes.shape[1]
        self.s_out.send(self.codes[k, min(local, last) - 1] if local <= self.steps else self.zero)


@implements(proc=ReadoutAcc, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyReadoutAccModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.period, self.first, self.steps = int(p["period"]), int(p["start"]), int(p["steps"])
        self.integrate = bool(p.get("integrate", False))
        self.current = 0  # integrate: the running sum of the input in this sample

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        t = local_step(self.time_step, self.period) - self.first + 1
        k = (self.time_step - 1) // self.period
        if 1 <= t <= self.steps and k < len(self.acc):
            if self.integrate:
                self.current = a if t == 1 else self.current + a
                a = self.current
            self.acc[k] += a
