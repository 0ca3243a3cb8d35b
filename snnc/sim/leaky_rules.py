"""Rules of the leaky neuron ops (``snnc.ir.leaky``) for the float and the bit-exact simulator:
the time-series input, CUBA LIF populations and LI readouts, each the update its op's docstring
states. ``float_rules(counters)`` and ``fixed_rules(counters)`` give the table entries that
``FloatRules`` and ``FixedRules`` add."""

from __future__ import annotations

import numpy as np
import torch

from snnc.ir import leaky
from snnc.ir.graph import Node
from snnc.sim.integers import overflow
from snnc.sim.signals import DTYPE, PAYLOAD, Counters, Signal

__all__ = ["decay_toward_zero", "fixed_rules", "float_rules", "time_series"]


def _param(a, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float64), dtype=like.dtype, device=like.device)


def time_series(x: torch.Tensor) -> torch.Tensor:
    """The graph input (1, N, T, ...) as steps (T, N, ...)."""
    return x[0].transpose(0, 1)


def _input_events(x: torch.Tensor) -> torch.Tensor:
    """Messages of a time series: every non-zero entry of a step is one (graded) spike."""
    return (x != 0).to(x.dtype).sum(0)


def decay_toward_zero(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``sign(x) * (|x| * keep >> 12)``: Lava's decay of u and v by ``keep / 4096``."""
    return torch.sign(x) * torch.floor(torch.abs(x) * keep / 4096.0)


class _Rules:
    def __init__(self, counters: Counters) -> None:
        self.c = counters

    # ---- float
    def spike_train(self, node: Node, sig: Signal) -> Signal:
        x = time_series(sig.x)
        return Signal(x, _input_events(x))

    def leaky(self, node: Node, sig: Signal) -> Signal:
        op, cur = node.op, sig.x
        alpha, beta = _param(op.alpha, cur), _param(op.beta, cur)
        th, bias, v_reset = _param(op.threshold, cur), _param(op.bias, cur), _param(op.v_reset, cur)
        i = torch.zeros_like(cur[0])
        v = torch.zeros_like(cur[0])
        out = torch.empty_like(cur)
        for t in range(cur.shape[0]):
            i = alpha * i + cur[t]
            v = beta * v + i + bias
            s = v > th
            out[t] = s.to(cur.dtype)
            v = torch.where(s, v_reset.expand_as(v), v) if op.reset == "zero" else v - th * s
        events = out.sum(0)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(out, events)

    def integrator(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        return Signal(_integrate(sig.x, op.alpha, op.beta, op.bias, 1.0, 0.0))

    # ---- bit-exact
    def spike_train_fixed(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        x = time_series(sig.x).to(DTYPE)
        lo, hi = ((-(2 ** (op.bits - 1) - 1), 2 ** (op.bits - 1) - 1) if op.signed
                  else (0, 2**op.bits - 1))
        p = torch.round(x / op.scale).clamp(lo, hi).to(PAYLOAD)  # torch.round: half to even
        return Signal(p, _input_events(p))

    def leaky_fixed(self, node: Node, sig: Signal) -> Signal:
        op, a = node.op, sig.x.to(DTYPE)
        keep_u, keep_v = 4096 - int(op.du) - 1, 4096 - int(op.dv)
        bias = _param(np.asarray(op.bias_mant, np.int64) * 2**int(op.bias_exp), a)
        vth = float(op.vth)
        u = torch.zeros_like(a[0])
        v = torch.zeros_like(a[0])
        out = torch.empty(a.shape, dtype=PAYLOAD, device=a.device)
        lim = float(2**23 - 1)
        for t in range(a.shape[0]):
            u = overflow(decay_toward_zero(u, keep_u) + a[t] * 64.0, "wrap", 24)
            v = (decay_toward_zero(v, keep_v) + u + bias).clamp(-lim, lim)
            s = v > vth
            out[t] = s.to(PAYLOAD)
            v = torch.where(s, torch.zeros_like(v), v) if op.reset == "zero" else v - vth * s
        events = out.sum(0)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(out, events)

    def readout_fixed(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        return Signal(_integrate(sig.x.to(DTYPE), op.alpha, op.beta, op.bias, op.scale,
                                 op.current_bias))


def _integrate(cur: torch.Tensor, alpha, beta, bias, scale: float, current_bias) -> torch.Tensor:
    a, b, c = _param(alpha, cur), _param(beta, cur), _param(bias, cur)
    cb = _param(current_bias, cur)
    i = torch.zeros_like(cur[0])
    v = torch.zeros_like(cur[0])
    out = torch.empty_like(cur)
    for t in range(cur.shape[0]):
        i = a * i + cur[t] * scale + cb
        v = b * v + i + c
        out[t] = v
    return out


def float_rules(counters: Counters) -> dict:
    r = _Rules(counters)
    return {leaky.SpikeTrainInput: r.spike_train, leaky.LeakyNeurons: r.leaky,
            leaky.LeakyIntegrator: r.integrator}


def fixed_rules(counters: Counters) -> dict:
    r = _Rules(counters)
    return {leaky.QSpikeTrainInput: r.spike_train_fixed, leaky.QLeakyNeurons: r.leaky_fixed,
            leaky.QLeakyReadout: r.readout_fixed}
