"""``fixed_pt`` models of snnc's integer synapses.

Lava finds a model by scanning the modules beside its process's file: this module must stay
in the process's package and import with absolute names (Lava executes a fresh copy of it)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from snnc.backends.lava.integers import shift, step_exponent
from snnc.backends.lava.proc.delays import DelayLines
from snnc.backends.lava.proc.synapses.process import AlignedSum, IntConv, IntDense, ScaleSynapse

__all__ = ["PyAlignedSumModel", "PyIntConvModel", "PyIntDenseModel", "PyScaleSynapseModel"]


@implements(proc=IntConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIntConvModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        # float64 holds every partial sum exactly (8-bit weights x 24-bit payloads x fan-in)
        self.w = torch.as_tensor(np.asarray(p["weight"], np.float64))
        self.exp = int(p["weight_exp"])
        t, l, b, r = p["padding"]
        self.pad = (l, r, t, b)
        self.stride, self.dilation, self.groups = p["stride"], p["dilation"], p["groups"]
        self.in_shape = tuple(p["in_shape"])
        self.fold, self.period = p.get("fold"), int(p.get("period", 1))

    def run_spk(self) -> None:
        self.a_out.send(self.a_buff)
        s = self.s_in.recv()
        x = torch.as_tensor(s.astype(np.float64)).reshape(1, *self.in_shape)
        if any(self.pad):
            x = F.pad(x, self.pad)
        acc = F.conv2d(x, self.w, None, self.stride, 0, self.dilation, self.groups)
        acc = acc.flatten().numpy().astype(np.int64)
        self.a_buff = shift(acc, step_exponent(self.exp, self.fold, self.time_step, self.period))


@implements(proc=IntDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIntDenseModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.w = np.asarray(p["weight"], np.int64)
        self.exp, self.fold, self.period = int(p["weight_exp"]), p["fold"], int(p["period"])

    def run_spk(self) -> None:
        self.a_out.send(self.a_buff)
        acc = self.w @ self.s_in.recv().astype(np.int64)
        self.a_buff = shift(acc, step_exponent(self.exp, self.fold, self.time_step, self.period))


@implements(proc=ScaleSynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyScaleSynapseModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.w, self.exp = int(proc_params["weight"]), int(proc_params["weight_exp"])
        self.fold, self.period = proc_params.get("fold"), int(proc_params.get("period", 1))

    def run_spk(self) -> None:
        self.a_out.send(self.a_buff)
        acc = self.s_in.recv().astype(np.int64) * self.w
        self.a_buff = shift(acc, step_exponent(self.exp, self.fold, self.time_step, self.period))


@implements(proc=AlignedSum, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAlignedSumModel(PyLoihiProcessModel):
    a_in0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_in1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._delayed = DelayLines(proc_params["delays"])
        self.sign = int(proc_params["sign"])

    def run_spk(self) -> None:
        a0 = self._delayed(0, self.a_in0.recv().astype(np.int64))
        a1 = self._delayed(1, self.a_in1.recv().astype(np.int64))
        self.a_out.send(a0 + self.sign * a1)
