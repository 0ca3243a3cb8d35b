"""``fixed_pt`` models of the IF and single-spike populations.

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

from snnc.backends.lava.integers import IntegerState, local_step, pack
from snnc.backends.lava.proc.if_neurons.process import IFNeurons, SingleSpikeNeurons

__all__ = ["PyIFNeuronsModel", "PySingleSpikeNeuronsModel"]


class _SpikingPopulation(IntegerState):
    """Binary-spike populations stepping with their input (IF, single-spike): active in local
    steps ``start .. start+steps-1`` of each period (t = 1..T), their state reset at local
    step 1; the spikes of a sample are recorded (packed, 1 bit each) in its last step. The
    models give ``_reset()`` and ``_step(a, t) -> s``."""

    def _read_window(self, p) -> None:
        self.read_state(p)
        self.gt = p["compare"] == ">"
        self.period, self.first, self.steps = int(p["period"]), int(p["start"]), int(p["steps"])
        self.trace = None  # (T, size) spikes of the current sample

    def _fires(self, v: np.ndarray, vth) -> np.ndarray:
        return (v > vth) if self.gt else (v >= vth)

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        local = local_step(self.time_step, self.period)
        if local == 1:
            self._reset(len(a))
        t = local - self.first + 1  # 1..T when active
        if 1 <= t <= self.steps:
            s = self._step(a, t).astype(np.int64)
            if t == 1:
                self.trace = np.zeros((self.steps, len(s)), np.int64)
            self.trace[t - 1] = s
            k = (self.time_step - 1) // self.period
            if t == self.steps and k < len(self.record):
                self.record[k] = pack(self.trace, 1)
        else:
            s = np.zeros_like(a)
        self.s_out.send(s)


@implements(proc=IFNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIFNeuronsModel(_SpikingPopulation, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self._read_window(p)
        self.vth = np.asarray(p["vth"], np.int64)
        self.v_init = np.asarray(p["v_init"], np.int64)
        self.subtract = p["reset"] == "subtract"

    def _reset(self, size: int) -> None:
        self.v[:] = self.v_init

    def _step(self, a: np.ndarray, t: int) -> np.ndarray:
        u = self.overflow(a << self.shift, self.u_mode)
        v = self.overflow(self.v + u + self.bias, self.v_mode)
        s = self._fires(v, self.vth)
        self.v[:] = v - self.vth * s if self.subtract else np.where(s, 0, v)
        return s


@implements(proc=SingleSpikeNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySingleSpikeNeuronsModel(_SpikingPopulation, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=1)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._read_window(proc_params)
        self.vth = np.asarray(proc_params["vth"], np.int64)
        self.u = self.v = self.fired = None

    def _reset(self, size: int) -> None:
        self.u = np.zeros(size, np.int64)
        self.v = np.zeros(size, np.int64)
        self.fired = np.zeros(size, bool)

    def _step(self, a: np.ndarray, t: int) -> np.ndarray:
        self.u = self.overflow(self.u + (a << self.shift), self.u_mode)
        self.v = self.overflow(self.v + self.u + self.bias, self.v_mode)
        s = self._fires(self.v, self.vth[t - 1]) & ~self.fired
        self.fired |= s
        return s
