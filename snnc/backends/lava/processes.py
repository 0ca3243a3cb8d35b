"""snnc's own Lava processes and their ``fixed_pt`` PyLoihiProcessModels.

Every process works on flat (C-order) vectors so that Lava ports connect without reshapes; the
models reshape internally. All integers are numpy int64 (exact; the reference simulator holds the
same integers in float64).

Samples run one after another in one Lava run: each sample owns a *period* of ``P`` steps.
A process of pipeline delay ``d`` (the number of 1-step synapse buffers between it and the
input) is active in the local steps ``d+1 .. d+T`` of each period and resets its state at local
step 1, so its spike train equals the reference simulator's, shifted by ``d`` steps
(docs/decisions.md, "Lava backend").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

__all__ = ["InputCode", "IntConv", "IFNeurons", "SingleSpikeNeurons", "FSNeurons",
           "MaxPoolGate", "FirstSpikeGate", "DecodedMaxPoolGate", "ScaleSynapse", "AlignedSum",
           "SumPoolGate", "SliceGate", "RelayNeurons", "AmosNeurons", "IntDense", "ReadoutAcc",
           "wrap", "pack", "unpack", "signed"]


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap into (-2^(bits-1), 2^(bits-1)] (fixed_point.overflow 'wrap')."""
    lim = 1 << (bits - 1)
    return x - 2 * lim * ((x + lim - 1) // (2 * lim))


WORD_BITS = 48  # Var.get sends each element as a float64: 48-bit words stay exact


def pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Non-negative integers below 2^bits, ``WORD_BITS // bits`` per int64 word (Lava's
    ``Var.get`` sends one message per element: packing makes reading records ~48x faster)."""
    per = WORD_BITS // bits
    v = np.asarray(values, np.int64).reshape(-1)
    v = np.concatenate([v, np.zeros(-len(v) % per, np.int64)]).reshape(-1, per)
    return (v << (bits * np.arange(per, dtype=np.int64))).sum(1)


def unpack(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack``: the first ``count`` values."""
    per = WORD_BITS // bits
    w = np.asarray(words, np.int64).reshape(-1, 1)
    v = (w >> (bits * np.arange(per, dtype=np.int64))) & ((1 << bits) - 1)
    return v.reshape(-1)[:count]


def signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement ``bits``-bit codes (what ``pack`` stores of signed payloads, masked to
    ``bits``) back to signed integers."""
    v = np.asarray(values, np.int64)
    return v - ((v >> (bits - 1)) << bits)


def words(count: int, bits: int) -> int:
    per = WORD_BITS // bits
    return -(-count // per)


def _local(time_step: int, period: int) -> int:
    return (time_step - 1) % period + 1


def _step_exp(base: int, fold, time_step: int, period: int) -> int:
    """The weight exponent of a synapse in this step. ``fold`` = (first local step, per-step
    exponent offsets k(t)) when its input is a few-spike / AMOS population on a binary-spike
    target (Loihi 1): the payload d(t) = 2^k(t) is folded into the weights, so a binary spike
    of step t is weighted W 2^(e + k(t)) -- the same integers as W d(t) 2^e (TARGETS.md)."""
    if fold is None:
        return base
    first, offsets = fold
    t = _local(time_step, period) - first
    return base + int(offsets[t]) if 0 <= t < len(offsets) else base


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    return acc << exp if exp >= 0 else acc >> -exp


class InputCode(AbstractProcess):
    """Source: sends sample k's input payloads (graded) in local steps 1..``steps`` of period k,
    zeros otherwise. ``codes`` (N, S, size) holds S payload steps per sample; the last one
    repeats up to ``steps`` (rate: the 8-bit code, S = 1, sent T times; few-spike: S = steps = 1;
    ttfs: the hybrid encoder's S = steps = T events). Stepping past the last sample is an error
    (a guard, and the failure the process-cleanup test relies on)."""

    def __init__(self, *, codes: np.ndarray, period: int, steps: int, **kw) -> None:
        super().__init__(codes=codes, period=period, steps=steps, **kw)
        self.s_out = OutPort(shape=(codes.shape[2],))


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
        local = _local(self.time_step, self.period)
        last = self.codes.shape[1]
        self.s_out.send(self.codes[k, min(local, last) - 1] if local <= self.steps else self.zero)


class IntConv(AbstractProcess):
    """Integer convolution synapses (snnc ``QConv2d``): ``a = shift(W (*) p, weight_exp)``
    (left shift, or arithmetic right shift = floor), delivered one step later (a 1-step buffer,
    as Lava's Dense). Lava's stock ``Conv`` fixed_pt model ignores ``weight_exp`` and clamps to
    24 bits, so snnc has its own (docs/decisions.md)."""

    def __init__(self, *, weight: np.ndarray, weight_exp: int, stride, padding, dilation,
                 groups: int, in_shape, out_shape, fold=None, period: int = 1, **kw) -> None:
        # fold: (first local step, per-step exponent offsets) of a folded few-spike input
        super().__init__(weight=weight, weight_exp=weight_exp, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, in_shape=in_shape,
                         out_shape=out_shape, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.a_out = OutPort(shape=(int(np.prod(out_shape)),))
        self.a_buff = Var(shape=(int(np.prod(out_shape)),), init=0)


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
        self.a_buff = _shift(acc, _step_exp(self.exp, self.fold, self.time_step, self.period))


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


class _IntegerState:
    """What the integer neuron models (IF, single-spike, FS, AMOS) share: the state format
    from the process parameters, and its overflow (24-bit wrap or saturation)."""

    def _read_state(self, p) -> None:
        self.bias = np.asarray(p["bias"], np.int64)
        self.shift, self.bits = int(p["act_shift"]), int(p["uv_bits"])
        self.u_mode, self.v_mode = p["u_overflow"], p["v_overflow"]
        self.lim = (1 << (self.bits - 1)) - 1

    def _read_gate(self, p) -> None:
        """Few-spike / AMOS tables and input window; graded targets send d in the spike,
        binary ones (Loihi 1) have it in the consumers' weights."""
        self._read_state(p)
        self.h, self.d, self.T = (np.asarray(p[k], np.int64) for k in ("h", "d", "T"))
        self.period, self.first, self.window = int(p["period"]), int(p["start"]), int(p["window"])
        self.payload = self.d if p.get("graded", True) else np.ones_like(self.d)

    def _overflow(self, x: np.ndarray, mode: str) -> np.ndarray:
        if mode == "wrap":
            return wrap(x, self.bits)
        if mode == "saturate":
            return np.clip(x, -self.lim, self.lim)
        return x


class _SpikingPopulation(_IntegerState):
    """Binary-spike populations stepping with their input (IF, single-spike): active in local
    steps ``start .. start+steps-1`` of each period (t = 1..T), their state reset at local
    step 1; the spikes of a sample are recorded (packed, 1 bit each) in its last step. The
    models give ``_reset()`` and ``_step(a, t) -> s``."""

    def _read_window(self, p) -> None:
        self._read_state(p)
        self.gt = p["compare"] == ">"
        self.period, self.first, self.steps = int(p["period"]), int(p["start"]), int(p["steps"])
        self.trace = None  # (T, size) spikes of the current sample

    def _fires(self, v: np.ndarray, vth) -> np.ndarray:
        return (v > vth) if self.gt else (v >= vth)

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        local = _local(self.time_step, self.period)
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
        u = self._overflow(a << self.shift, self.u_mode)
        v = self._overflow(self.v + u + self.bias, self.v_mode)
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
        self.u = self._overflow(self.u + (a << self.shift), self.u_mode)
        self.v = self._overflow(self.v + self.u + self.bias, self.v_mode)
        s = self._fires(self.v, self.vth[t - 1]) & ~self.fired
        self.fired |= s
        return s


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
        if _local(self.time_step, self.period) == 1:
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


class FirstSpikeGate(MaxPoolGate):
    """First-spike max-pool gate (``FirstSpikeMaxPool2d``) on binary single-spike trains: each
    window fires once, in the step of its earliest input spike (the max-pool of the
    fired-so-far input map, minus what it passed before). Routed within the step; reset at
    local step 1. ``events``: as ``MaxPoolGate``'s (here 0 or 1 per output)."""


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
        if _local(self.time_step, self.period) == 1:
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


class ReadoutAcc(AbstractProcess):
    """Output monitor: sums the synaptic input of the output layer over local steps
    ``start .. start+steps-1`` of each sample: ``acc`` (samples, size). ``integrate``
    (single-spike graphs, whose synaptic inputs are events switching currents on): sums the
    running sum of the input instead, ``sum_t (steps + 1 - t) a(t)``, the output membrane."""

    def __init__(self, *, size: int, period: int, start: int, steps: int, samples: int,
                 integrate: bool = False, **kw) -> None:
        super().__init__(period=period, start=start, steps=steps, integrate=integrate, **kw)
        self.a_in = InPort(shape=(size,))
        self.acc = Var(shape=(samples, size), init=0)


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
        t = _local(self.time_step, self.period) - self.first + 1
        k = (self.time_step - 1) // self.period
        if 1 <= t <= self.steps and k < len(self.acc):
            if self.integrate:
                self.current = a if t == 1 else self.current + a
                a = self.current
            self.acc[k] += a


class FSNeurons(AbstractProcess):
    """snnc integer few-spike neurons (``QFewSpikeNeurons``): accumulate the
    synaptic input of local steps ``start .. start+window-1``; in the window's last step load
    ``v = sat(wrap(sum a << act_shift) + bias)`` and then, for t = 1..K (local steps
    ``start+window-1 ..``), send ``d(t) z(t)`` (graded; ``graded=False``: the binary ``z(t)``,
    d(t) being in the consumers' weights) with ``z(t) = v > T(t)``, ``v = sat(v - h(t) z(t))``.
    ``record``: the z bits of every sample, packed (row k: sample k's (K, size))."""

    def __init__(self, *, size: int, h, d, T, bias: np.ndarray, act_shift: int, uv_bits: int,
                 u_overflow: str, v_overflow: str, period: int, start: int, window: int,
                 samples: int, graded: bool = True, **kw) -> None:
        super().__init__(h=h, d=d, T=T, bias=bias, act_shift=act_shift, uv_bits=uv_bits,
                         u_overflow=u_overflow, v_overflow=v_overflow, period=period,
                         start=start, window=window, graded=graded, **kw)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.record = Var(shape=(samples, words(len(h) * size, 1)), init=0)
        self.d_table = np.asarray(d, np.int64)  # host side: payloads from the recorded z


@implements(proc=FSNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFSNeuronsModel(_IntegerState, PyLoihiProcessModel):
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
        local = _local(self.time_step, self.period)
        i = local - self.first + 1  # 1..window: input steps
        if i == 1:
            self.acc = np.zeros_like(a)
        if 1 <= i <= self.window:
            self.acc += a
        if i == self.window:  # all input in: load v
            u = self._overflow(self.acc << self.shift, self.u_mode)
            self.v = self._overflow(u + self.bias, self.v_mode)
            self.trace = np.zeros((self.K, len(a)), np.int64)
        t = i - self.window + 1  # 1..K: output steps
        out = np.zeros_like(a)
        if 1 <= t <= self.K:
            z = (self.v > self.T[t - 1]).astype(np.int64)
            out = self.payload[t - 1] * z
            self.v = self._overflow(self.v - self.h[t - 1] * z, self.v_mode)
            self.trace[t - 1] = z
            k = (self.time_step - 1) // self.period
            if t == self.K and k < len(self.record):
                self.record[k] = pack(self.trace, 1)
        self.s_out.send(out)


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
        i = _local(self.time_step, self.period) - self.first + 1
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


class ScaleSynapse(AbstractProcess):
    """One-to-one synapses with one shared integer weight (snnc ``QScale``, skip connections):
    ``a = shift(weight * p, weight_exp)`` elementwise, delivered one step later (a 1-step
    buffer, as every synapse)."""

    def __init__(self, *, size: int, weight: int, weight_exp: int, fold=None, period: int = 1,
                 **kw) -> None:
        super().__init__(weight=weight, weight_exp=weight_exp, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(size,))
        self.a_out = OutPort(shape=(size,))
        self.a_buff = Var(shape=(size,), init=0)


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
        self.a_buff = _shift(acc, _step_exp(self.exp, self.fold, self.time_step, self.period))


class AlignedSum(AbstractProcess):
    """Dendritic sum of two synaptic inputs of one population (snnc ``Add``/``Sub`` of
    currents, e.g. a residual block's conv and skip path): ``a = a0(t - delay0) +/- a1(t -
    delay1)``. The delays (synaptic delays on hardware) align the two streams so that the
    population sees both in one input window; the output is routed within the step."""

    def __init__(self, *, size: int, delays: tuple[int, int], sign: int = 1, **kw) -> None:
        super().__init__(delays=delays, sign=sign, **kw)
        self.a_in0 = InPort(shape=(size,))
        self.a_in1 = InPort(shape=(size,))
        self.a_out = OutPort(shape=(size,))


@implements(proc=AlignedSum, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAlignedSumModel(PyLoihiProcessModel):
    a_in0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_in1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.delays = tuple(int(d) for d in proc_params["delays"])
        self.sign = int(proc_params["sign"])
        self.lines = [None, None]  # delay lines: the last `delay` inputs, oldest first

    def _delayed(self, i: int, a: np.ndarray) -> np.ndarray:
        d = self.delays[i]
        if d == 0:
            return a
        if self.lines[i] is None:
            self.lines[i] = np.zeros((d, len(a)), np.int64)
        line = self.lines[i]
        out = line[0].copy()
        line[:-1] = line[1:]
        line[-1] = a
        return out

    def run_spk(self) -> None:
        a0 = self._delayed(0, self.a_in0.recv().astype(np.int64))
        a1 = self._delayed(1, self.a_in1.recv().astype(np.int64))
        self.a_out.send(a0 + self.sign * a1)


class SumPoolGate(AbstractProcess):
    """Sum of payloads over pooling windows (snnc ``SumPool2d``; ``kernel=None``: the global
    ``GlobalSumPool``), routed within the step: the fan-in of the next synapses."""

    def __init__(self, *, in_shape, out_shape, kernel=None, stride=None, **kw) -> None:
        super().__init__(in_shape=in_shape, kernel=kernel, stride=stride, **kw)
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=(int(np.prod(out_shape)),))


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


class SliceGate(AbstractProcess):
    """Channels ``start .. stop-1`` of a (C, ...) value (snnc ``Slice``: ``split_fanin``'s
    channel groups), routed within the step like ``SumPoolGate``: flat C-order ports make it a
    contiguous range of the input vector; payloads pass unchanged."""

    def __init__(self, *, in_shape, start: int, stop: int, **kw) -> None:
        super().__init__(in_shape=in_shape, start=start, stop=stop, **kw)
        inner = int(np.prod(in_shape[1:]))
        self.s_in = InPort(shape=(int(np.prod(in_shape)),))
        self.s_out = OutPort(shape=((stop - start) * inner,))


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
        t = _local(self.time_step, self.period) - self.first + 1
        if 1 <= t <= self.steps:
            if t == 1:
                self.trace = np.zeros((self.steps, len(out)), np.int64)
            self.trace[t - 1] = out
            k = (self.time_step - 1) // self.period
            if t == self.steps and k < len(self.record):
                self.record[k] = pack(self.trace & ((1 << self.bits) - 1), self.bits)
        self.s_out.send(out)


class AmosNeurons(AbstractProcess):
    """snnc integer AMOS circuits (``QAmosNeurons``, docs/amos.md): ``k`` one-shot neurons per
    gate, ``k * size`` membranes. The gate input is accumulated over local steps ``start ..
    start+window-1`` and formed in the window's last step as the FS neuron's v(1),
    ``x = sat(wrap(sum a << act_shift) + bias)``; that step is circuit step 1. Neuron i
    (1..k) gets x through a synapse of delay i-1 and ``-h_j`` from every neuron j < i through a
    synapse of delay i-j-1 (spikes take one step plus the delay), so all of its input arrives in
    circuit step i. Per circuit step every membrane integrates what arrives,
    ``u = sat(u + in)``, and fires if ``u > T_i``, if enabled (step >= i) and not fired before
    (one spike per image). A spike of neuron i carries d_i to the consumers' synapses; ``s_out``
    holds, per gate, the sum of its neurons' payloads in the step (what synapses W d_i sum).
    ``record``: the circuit step in which each neuron fired (0: never), packed per sample."""

    def __init__(self, *, size: int, h, d, T, bias: np.ndarray, act_shift: int, uv_bits: int,
                 u_overflow: str, v_overflow: str, period: int, start: int, window: int,
                 samples: int, graded: bool = True, **kw) -> None:
        super().__init__(h=h, d=d, T=T, bias=bias, act_shift=act_shift, uv_bits=uv_bits,
                         u_overflow=u_overflow, v_overflow=v_overflow, period=period,
                         start=start, window=window, graded=graded, **kw)
        k = len(h)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.step_bits = int(k).bit_length()
        self.record = Var(shape=(samples, words(k * size, self.step_bits)), init=0)
        self.d_table = np.asarray(d, np.int64)  # host side: payloads from the recorded spikes


@implements(proc=AmosNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAmosNeuronsModel(_IntegerState, PyLoihiProcessModel):
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
        local = _local(self.time_step, self.period)
        i = local - self.first + 1  # 1..window: input steps
        k = self.k
        if i == 1:
            self.acc = np.zeros_like(a)
        if 1 <= i <= self.window:
            self.acc += a
        if i == self.window:  # the gate input is complete: circuit step 1
            u = self._overflow(self.acc << self.shift, self.u_mode)
            x = self._overflow(u + self.bias, self.v_mode)
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
            self.u = self._overflow(self.u + self.pending[t], self.v_mode)
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


class IntDense(AbstractProcess):
    """Integer dense synapses with a per-step weight exponent (snnc ``QDense`` fed by a
    few-spike / AMOS population on a binary-spike target): ``a = shift(W s, e + k(t))``,
    delivered one step later. Lava's stock ``Dense`` has one exponent for all steps, so it
    serves graded and rate inputs, this one folded payloads."""

    def __init__(self, *, weight: np.ndarray, weight_exp: int, fold, period: int, **kw) -> None:
        super().__init__(weight=weight, weight_exp=weight_exp, fold=fold, period=period, **kw)
        self.s_in = InPort(shape=(weight.shape[1],))
        self.a_out = OutPort(shape=(weight.shape[0],))
        self.a_buff = Var(shape=(weight.shape[0],), init=0)


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
        self.a_buff = _shift(acc, _step_exp(self.exp, self.fold, self.time_step, self.period))
