"""``fixed_pt`` models of the pooling gates.

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

from snnc.backends.lava.integers import local_step, pack
from snnc.backends.lava.proc.pooling.process import (
    DecodedMaxPoolGate,
    FirstSpikeGate,
    MaxPoolGate,
    SumPoolGate,
)

__all__ = ["PyDecodedMaxPoolGateModel", "PyFirstSpikeGateModel", "PyMaxPoolGateModel",
           "PySumPoolGateModel"]


class _PoolGate:
    """The window geometry of a binary max-pool gate (rate and first-spike)."""

    def _read_pool(self, p) -> None:
        self.in_shape = tuple(p["in_shape"])
        self.kernel, self.stride, self.dilation = p["kernel"], p["stride"], p["dilation"]
        if any(p["padding"]):
            raise ValueError(f"{type(self).__name__}: padding is not supported")
        self.period = int(p["period"])

    def _record(self, passed: np.ndarray) -> None:
        k = (self.time_step - 1) // self.period
        if k < len(self.events):  # past the samples: the source reports the error
            self.events[k] = pack(passed, 16)


@implements(proc=MaxPoolGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMaxPoolGateModel(_PoolGate, PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=1)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=1)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._read_pool(proc_params)
        self.counts = np.zeros(int(np.prod(self.in_shape)), np.float64)
        self.passed = None

    def run_spk(self) -> None:
        s = self.s_in.recv()
        if local_step(self.time_step, self.period) == 1:
            self.counts[:] = 0
            self.passed = None
        self.counts += s != 0
        key = torch.as_tensor(self.counts).reshape(1, *self.in_shape)
        _, idx = F.max_pool2d(key, self.kernel, self.stride, 0, self.dilation,
                              return_indices=True)
        vals = torch.as_tensor(s.astype(np.int64)).reshape(1, self.in_shape[0], -1)
        out = vals.gather(2, idx.flatten(2)).flatten().numpy()
        passed = (out != 0).astype(np.int64)
        self.passed = passed if self.passed is None else self.passed + passed
        self._record(self.passed)
        self.s_out.send(out)


@implements(proc=FirstSpikeGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFirstSpikeGateModel(_PoolGate, PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=1)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=1)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._read_pool(proc_params)
        self.fired = np.zeros(self.in_shape, np.float64)
        self.passed = None

    def run_spk(self) -> None:
        s = self.s_in.recv().reshape(self.in_shape)
        if local_step(self.time_step, self.period) == 1:
            self.fired[:] = 0
            self.passed = None
        self.fired[s != 0] = 1
        pooled = F.max_pool2d(torch.as_tensor(self.fired).unsqueeze(0), self.kernel,
                              self.stride, 0, self.dilation).flatten().numpy().astype(np.int64)
        out = pooled if self.passed is None else pooled - self.passed
        self.passed = pooled
        if out.any():  # a sample without spikes keeps its row of zeros
            self._record(pooled)
        self.s_out.send(out)


@implements(proc=DecodedMaxPoolGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDecodedMaxPoolGateModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.in_shape = tuple(p["in_shape"])
        self.kernel, self.stride, self.dilation = p["kernel"], p["stride"], p["dilation"]
        self.period, self.first, self.window = int(p["period"]), int(p["start"]), int(p["window"])
        sv = p.get("step_values")
        self.values = (np.ones(self.window, np.int64) if sv is None
                       else np.asarray(sv, np.int64))
        self.buf = self.sel = None

    def run_spk(self) -> None:
        s = self.s_in.recv().astype(np.int64)
        i = local_step(self.time_step, self.period) - self.first + 1
        if i == 1:
            self.buf = np.zeros((self.window, len(s)), np.int64)
        if 1 <= i <= self.window:
            self.buf[i - 1] = s
        if i == self.window:
            decoded = (self.values[:, None] * self.buf).sum(0)
            key = torch.as_tensor(decoded.astype(np.float64)).reshape(1, *self.in_shape)
            _, idx = F.max_pool2d(key, self.kernel, self.stride, 0, self.dilation,
                                  return_indices=True)
            vals = torch.as_tensor(self.buf).reshape(self.window, self.in_shape[0], -1)
            idx = idx.flatten(2).expand(self.window, -1, -1)
            self.sel = vals.gather(2, idx).reshape(self.window, -1).numpy()
            k = (self.time_step - 1) // self.period
            if k < len(self.events):
                self.events[k] = pack((self.sel != 0).sum(0), 16)
        t = i - self.window + 1
        if 1 <= t <= self.window:
            self.s_out.send(self.sel[t - 1])
        else:
            self.s_out.send(np.zeros(self.s_out.shape, np.int64))


@implements(proc=SumPoolGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySumPoolGateModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self.in_shape = tuple(p["in_shape"])
        self.kernel, self.stride = p["kernel"], p["stride"]

    def run_spk(self) -> None:
        s = self.s_in.recv().astype(np.int64).reshape(self.in_shape)
        if self.kernel is None:
            out = s.reshape(self.in_shape[0], -1).sum(1)
        else:
            x = torch.as_tensor(s.astype(np.float64)).unsqueeze(0)  # exact: integer sums
            out = F.avg_pool2d(x, self.kernel, self.stride, divisor_override=1).numpy()
            out = out.astype(np.int64)
        self.s_out.send(out.reshape(-1))
