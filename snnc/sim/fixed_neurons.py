"""Integer neurons of the bit-exact simulator (Lava ``fixed_pt`` semantics, docs/targets.md
§2a): IF, few-spike and AMOS gates, single-spike neurons, the hybrid input, first-spike pooling
and the host-side readout. Mixed into ``FixedRules``, whose table binds them.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.ir import ops
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES
from snnc.sim.integers import hybrid_events, or_reduce, overflow, relu_shift, spike_counts
from snnc.sim.kernels import Stepped, step_values
from snnc.sim.signals import DTYPE, PAYLOAD, CodeSignal, Counters, Signal, Spikes

__all__ = ["FixedNeuronRules"]


class FixedNeuronRules:
    """Integer neuron rules; ``c`` holds the run's counters, ``relu_closed_form`` selects the
    closed form of FS-ReLU tables (see ``_relu_payloads``)."""

    c: Counters
    relu_closed_form: bool  # set by FixedRules

    def if_fixed(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        shift = float(2**op.act_shift)
        bias_np = np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp
        vth_np = np.asarray(op.vth, np.float64)  # one threshold, or one per channel
        v0_np = np.round(op.v_init * vth_np)  # half to even, as Python's round
        vth, v0 = float(vth_np.max()), float(v0_np.max())  # (scalars here; arrays below)
        lim = float(2 ** (op.uv_bits - 1) - 1)
        babs = float(np.abs(bias_np).max()) if bias_np.size else 0.0

        # float32 is exact when u never wraps (|a << shift| <= lim), v + u + bias stays within
        # +-2^24 (v is saturated to +-lim) and so do vth and v_init: the usual case, and twice
        # as fast as float64 (half the memory traffic)
        def narrow_for(amax: float) -> bool:
            return (op.v_overflow == "saturate" and amax <= lim and amax + babs <= lim + 1
                    and vth <= lim + 1 and float(np.abs(v0_np).max()) <= lim)

        # a streamed synaptic input whose bound proves float32 exact is taken block by block
        # (kernels.Stepped); any other input is scanned for its range (same integers either way)
        streamed = (isinstance(sig, Stepped) and sig.bound is not None
                    and narrow_for(sig.bound * shift))
        if not streamed:
            lo, hi = torch.aminmax(sig.x)
        narrow = streamed or narrow_for(max(-float(lo), float(hi)) * shift)
        dtype = PAYLOAD if narrow else DTYPE
        steps = op.timesteps
        if streamed:
            inputs = ((t, c.to(dtype)) for t, c in step_values(sig, steps))
        else:
            if narrow:
                a = sig.x.to(dtype)  # u = a << shift (no wrap), added step by step below
            else:
                a = overflow(sig.x.to(DTYPE) * shift, op.u_overflow, op.uv_bits)
            inputs = ((t, a[t if a.shape[0] > 1 else 0]) for t in range(steps))
        cmp = torch.gt if op.compare == ">" else torch.ge
        for t, u in inputs:
            if t == 0:
                device = u.device
                bias = torch.as_tensor(bias_np, dtype=dtype, device=device)
                const = (None if streamed or a.shape[0] > 1
                         else (u * shift if narrow else u) + bias)
                if vth_np.ndim:
                    vth = torch.as_tensor(vth_np, dtype=dtype, device=device)
                    v0 = torch.as_tensor(v0_np, dtype=dtype, device=device)
                v = torch.zeros_like(bias.expand(u.shape)).add_(v0).contiguous()
                out = torch.empty((steps, *u.shape), dtype=PAYLOAD, device=device)
            if const is not None:
                v += const
            else:  # v += u(t) + bias
                v.add_(u, alpha=shift if narrow else 1.0)
                v += bias
            if op.v_overflow == "saturate":
                v.clamp_(-lim, lim)
            else:
                v = overflow(v, op.v_overflow, op.uv_bits)
            s = cmp(v, vth, out=out[t])
            if op.reset == "subtract":
                if isinstance(vth, float):
                    v.sub_(s, alpha=vth)
                else:
                    v.sub_(s * vth)
            else:
                v.mul_(1.0 - s)
        events = out.sum(0).to(DTYPE)  # counts <= T: exact in float32, and much faster
        self.c.add(self.c.spikes, node.name, events)
        return Spikes(out, events)

    def _gate_input(self, op, sig: Signal) -> torch.Tensor:
        """FS / AMOS: v(1) = sat(wrap(window sum of a << act_shift) + bias), exact in float64."""
        x = sig.x
        acc = (x[0] if x.shape[0] == 1 else x.sum(0)).to(DTYPE) * float(2**op.act_shift)
        if op.u_overflow == "wrap":
            lo, hi = torch.aminmax(acc)  # the wrap is the identity within (-2^23, 2^23]
            lim = float(2 ** (op.uv_bits - 1))
            if not (-lim < float(lo) and float(hi) <= lim):
                acc = overflow(acc, op.u_overflow, op.uv_bits)
        else:
            acc = overflow(acc, op.u_overflow, op.uv_bits)
        bias = torch.as_tensor(np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp,
                               dtype=DTYPE, device=acc.device)
        return overflow(acc.add_(bias), op.v_overflow, op.uv_bits)

    def _relu_payloads(self, op, v: torch.Tensor) -> CodeSignal | None:
        """The FS-ReLU table in integers (T = h = 2^(m+K-t), d = 2^(K-t)) in closed form: the
        K steps emit the binary digits of the K-bit code n = largest integer in [0, 2^K - 1]
        with n 2^m < v (strict '>'), i.e. payload d(t) z(t) = n AND 2^(K-t). The loop's v
        only decreases from above 0 by h(t) < v, so saturation never acts and the two agree
        exactly (tests/backends/reference/test_fixed_point.py). Returns the payloads (as codes)
        with the spike counts as events; None for any other table."""
        m = relu_shift(op) if self.relu_closed_form else None
        if m is None:
            return None
        code = torch.floor((v - 1.0) * 2.0**-m).clamp_(0, 2**op.K - 1).to(torch.int32)
        return CodeSignal(code, op.d, spike_counts(code, op.K))

    def few_spike_fixed(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        v = self._gate_input(op, sig)
        closed = self._relu_payloads(op, v)
        if closed is not None:
            self.c.add(self.c.spikes, node.name, closed.events)
            return closed
        h = [float(x) for x in op.h]
        d = [float(x) for x in op.d]
        T = [float(x) for x in op.T]
        out = torch.empty((op.K, *v.shape), dtype=PAYLOAD, device=v.device)
        z = torch.empty_like(v)
        events = torch.zeros_like(v)
        lim = float(2 ** (op.uv_bits - 1) - 1)
        for t in range(op.K):
            torch.gt(v, T[t], out=z)
            events += z
            torch.mul(z, d[t], out=out[t])
            v.sub_(z, alpha=h[t])
            if op.v_overflow == "saturate":
                v.clamp_(-lim, lim)
            else:
                v = overflow(v, op.v_overflow, op.uv_bits)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(out, events)

    def amos_fixed(self, node: Node, sig: Signal) -> Signal:
        """The k one-shot neurons of every gate (docs/amos.md): neuron i's membrane receives, in
        circuit step i, the gate input x and the inhibition -h_j of every earlier neuron that
        fired, saturates once and fires if above T_i; it never fires again (its inputs are
        spent). Output step i carries neuron i's payload d_i z_i, so consumers see the same
        window of K payload steps as from an FS population; ``max_spikes`` records per neuron."""
        op = node.op
        arriving = self._gate_input(op, sig)  # x; exact integers below 2^53 also after
        # subtracting k 24-bit inhibitions
        closed = self._relu_payloads(op, arriving)  # FS-ReLU: the same closed form as FS
        if closed is not None:
            # neuron i fired <=> bit d_i of the code; most spikes of one neuron i
            fired = or_reduce(closed.code)
            most = torch.tensor([float(bool(fired & int(di))) for di in op.d], dtype=DTYPE)
            self.c.add(self.c.spikes, node.name, closed.events)
            self.c.record_max(node.name, most)
            return closed
        else:
            out = torch.empty((op.K, *arriving.shape), dtype=PAYLOAD, device=arriving.device)
            events = torch.zeros_like(arriving)
            most = torch.zeros(op.K, dtype=DTYPE)  # most spikes of one neuron i (record z_i)
            for i in range(op.K):
                u = overflow(arriving, op.v_overflow, op.uv_bits)  # membrane: 0 + inputs, once
                z = (u > float(op.T[i])).to(DTYPE)
                events += z
                torch.mul(z, float(op.d[i]), out=out[i])
                most[i] = z.max() if z.numel() else 0.0
                arriving = arriving - float(op.h[i]) * z
        self.c.add(self.c.spikes, node.name, events)
        self.c.record_max(node.name, most)
        return Signal(out, events)

    def hybrid_input_fixed(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        events, spikes = hybrid_events(op, x)  # host-side, as the rate/fs input codes: its
        # spikes are synaptic events of the first layer, not spikes of an on-chip population
        return Signal(events, spikes)

    def single_spike_fixed(self, node: Node, sig: Signal) -> Signal:
        """Integer single-spike neurons (``QSingleSpikeNeurons``): event inputs switch a
        persistent current on, the membrane integrates it with the bias, and a neuron fires
        once, in the first step its membrane crosses that step's threshold."""
        op = node.op
        a = sig.x.to(DTYPE) * float(2**op.act_shift)
        steps = op.timesteps
        bias = torch.as_tensor(np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp,
                               dtype=DTYPE, device=a.device)
        vth = torch.as_tensor(np.asarray(op.vth, np.float64), dtype=DTYPE, device=a.device)
        cmp = torch.gt if op.compare == ">" else torch.ge
        u = torch.zeros(a.shape[1:], dtype=DTYPE, device=a.device)
        v = torch.zeros_like(u)
        fired = torch.zeros(a.shape[1:], dtype=torch.bool, device=a.device)
        out = torch.zeros((steps, *a.shape[1:]), dtype=PAYLOAD, device=a.device)
        for t in range(steps):
            if t < a.shape[0]:  # the current changes only in steps with input events
                u = overflow(u + a[t], op.u_overflow, op.uv_bits)
            v = overflow(v + u + bias, op.v_overflow, op.uv_bits)
            s = cmp(v, vth[t]) & ~fired
            fired |= s
            out[t] = s
        events = fired.to(DTYPE)
        self.c.add(self.c.spikes, node.name, events)
        self.c.record_max(node.name, events)
        return Spikes(out, events)

    def first_spike_events(self, node: Node, sig: Signal) -> Signal:
        """First-spike max-pool on spike events: a window fires once, in the step of its
        earliest input spike (the max-pool of the fired-so-far maps, differenced in time)."""
        op = node.op
        steps, batch = sig.x.shape[:2]
        fired = (torch.cumsum(sig.x.to(PAYLOAD), 0) > 0).to(PAYLOAD)
        pooled = ANN_RULES[ops.MaxPool2d](op, fired.reshape(steps * batch, *fired.shape[2:]))
        pooled = pooled.reshape(steps, batch, *pooled.shape[1:])
        out = torch.cat([pooled[:1], pooled[1:] - pooled[:-1]])
        return Spikes(out, pooled[-1].to(DTYPE))

    def readout(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        x = sig.x.to(DTYPE)
        if op.reduce == "integrate":  # events switch currents on: the membrane's v(T) / T
            steps = x.shape[0]
            weight = torch.arange(steps, 0, -1, dtype=DTYPE, device=x.device)
            total = (x * weight.reshape(-1, *([1] * (x.dim() - 1)))).sum(0) / steps
        else:
            total = x.sum(0) if op.reduce == "sum" else x.mean(0)
        bias = torch.as_tensor(op.bias, dtype=DTYPE, device=total.device)
        return Signal((total * op.scale + bias).unsqueeze(0))
