"""``fixed_pt`` models of the few-spike neurons and AMOS circuits.

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
from snnc.backends.lava.proc.few_spike.process import AmosNeurons, FSNeurons

__all__ = ["PyAmosNeuronsModel", "PyFSNeuronsModel"]


class _FewSpikeGate(IntegerState):
    """What the few-spike and AMOS models share: the integer state format, the (h, d, T)
    tables and the input window."""

    def _read_gate(self, p) -> None:
        """Few-spike / AMOS tables and input window; graded targets send d in the spike,
        binary ones (Loihi 1) have it in the consumers' weights."""
        self.read_state(p)
        self.h, self.d, self.T = (np.asarray(p[k], np.int64) for k in ("h", "d", "T"))
        self.period, self.first, self.window = int(p["period"]), int(p["start"]), int(p["window"])
        self.payload = self.d if p.get("graded", True) else np.ones_like(self.d)


@implements(proc=FSNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFSNeuronsModel(_FewSpikeGate, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self._read_gate(p)
        self.K = len(self.h)
        self.acc = self.v = self.trace = None

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        local = local_step(self.time_step, self.period)
        i = local - self.first + 1  # 1..window: input steps
        if i == 1:
            self.acc = np.zeros_like(a)
        if 1 <= i <= self.window:
            self.acc += a
        if i == self.window:  # all input in: load v
            u = self.overflow(self.acc << self.shift, self.u_mode)
            self.v = self.overflow(u + self.bias, self.v_mode)
            self.trace = np.zeros((self.K, len(a)), np.int64)
        t = i - self.window + 1  # 1..K: output steps
        out = np.zeros_like(a)
        if 1 <= t <= self.K:
            z = (self.v > self.T[t - 1]).astype(np.int64)
            out = self.payload[t - 1] * z
            self.v = self.overflow(self.v - self.h[t - 1] * z, self.v_mode)
            self.trace[t - 1] = z
            k = (self.time_step - 1) // self.period
            if t == self.K and k < len(self.record):
                self.record[k] = pack(self.trace, 1)
        self.s_out.send(out)


@implements(proc=AmosNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAmosNeuronsModel(_FewSpikeGate, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self._read_gate(p)
        self.k = len(self.h)
        self.step_bits = int(self.k).bit_length()
        self.acc = self.u = self.fired = self.step_of = self.pending = None

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        local = local_step(self.time_step, self.period)
        i = local - self.first + 1  # 1..window: input steps
        k = self.k
        if i == 1:
            self.acc = np.zeros_like(a)
        if 1 <= i <= self.window:
            self.acc += a
        if i == self.window:  # the gate input is complete: circuit step 1
            u = self.overflow(self.acc << self.shift, self.u_mode)
            x = self.overflow(u + self.bias, self.v_mode)
            self.u = np.zeros((k, len(a)), np.int64)
            self.fired = np.zeros((k, len(a)), bool)
            self.step_of = np.zeros((k, len(a)), np.int64)
            # pending[s, n]: synaptic input reaching neuron n (0-based) in circuit step s
            self.pending = np.zeros((k + 1, k, len(a)), np.int64)
            for n in range(k):  # x reaches neuron n after delay n: in circuit step n + 1
                self.pending[n + 1, n] += x
        t = i - self.window + 1  # circuit step 1..k
        out = np.zeros_like(a)
        if 1 <= t <= k:
            self.u = self.overflow(self.u + self.pending[t], self.v_mode)
            enabled = (np.arange(k) < t)[:, None]  # neuron n's input arrives in step n + 1
            z = (self.u > self.T[:, None]) & enabled & ~self.fired
            self.fired |= z
            self.step_of[z] = t
            out = (self.payload[:, None] * z).sum(0)
            for j in np.flatnonzero(z.any(1)):  # inhibition -h_j, delay n-j-1 (+1 step)
                for n in range(j + 1, k):
                    if t + n - j <= k:
                        self.pending[t + n - j, n] -= self.h[j] * z[j]
            s = (self.time_step - 1) // self.period
            if t == k and s < len(self.record):
                self.record[s] = pack(self.step_of, self.step_bits)
        self.s_out.send(out)
