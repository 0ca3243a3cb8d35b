"""Float rules of the spiking simulator: the ideal (unquantized) converted network.

Linear ops run once on all time steps folded into the batch (exact for feed-forward graphs);
only neuron updates loop over time. Spike and synaptic-event counts accumulate per layer in a
``Counters``. Every neuron op's update is the one its docstring in ``snnc.ir.neurons`` states.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.ir import neurons, ops, quantized
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES
from snnc.sim import leaky_rules
from snnc.sim.fs_coding import FSTable, encode_torch
from snnc.sim.kernels import (
    Stepped,
    Train,
    batch_of,
    fanout,
    first_spike_max_pool,
    gate_rises,
    gather_windows,
    hybrid_input,
    linear_over_time,
    on_cpu,
    simple_gate,
    step_values,
    steps_of,
    streamed_block,
)
from snnc.sim.signals import Buffers, Counters, Signal

__all__ = ["FloatRules", "REFUSED", "ROUTING", "SYNAPTIC"]

# routing ops carry their inputs' spike events on; synaptic ones count them times the fan-out
ROUTING = tuple(c for c in ANN_RULES if c.role is ops.Role.ROUTING)
SYNAPTIC = tuple(c for c in ANN_RULES if c.role is ops.Role.SYNAPTIC)
# computed block by block over time when their input varies in time (kernels.Stepped): each
# output element depends on its own step only, with the same bits in any block of >= 2 rows
STREAMED = (ops.Conv2d,) + tuple(c for c in ANN_RULES if c.role is ops.Role.ELEMENTWISE)
REFUSED: dict[type[ops.Op], str] = {
    cls: "integer op of a quantized graph: runs in the bit-exact rules (FixedRules)"
    for cls in (*quantized.QUANTIZED_OPS, *leaky_rules.fixed_rules(Counters()))}


class FloatRules(dict):
    """The float simulator's rule table ``{op class: rule(node, *signals) -> Signal}``, bound to
    the run's counters. A caller that needs to see or change one rule's work (calibration,
    recording) replaces that table entry with a function that calls the bound method."""

    def __init__(self, counters: Counters, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.c, self.dtype = counters, dtype
        self.stream = True  # synapses block by block into the neurons (see kernels.Stepped)
        self.buffers: Buffers | None = None  # where (T, N, ...) trains go; None: torch.empty
        for cls in ANN_RULES:
            self[cls] = self.linear
        self[neurons.IFNeurons] = self.if_neurons
        self[neurons.FewSpikeNeurons] = self.few_spike
        self[neurons.SpikingMaxPool2d] = self.spiking_max_pool
        self[ops.MaxPool2d] = self.max_pool
        self[neurons.AmosNeurons] = self.amos
        self[neurons.SingleSpikeNeurons] = self.single_spike
        self[neurons.HybridInputNeurons] = self.hybrid_input
        self[neurons.FirstSpikeMaxPool2d] = self.first_spike_max_pool
        self[neurons.PartialSumRelay] = self.relay
        self.update(leaky_rules.float_rules(counters))  # imported SNNs (NIR): sim/leaky_rules.py

    # ---- linear ops: synapses and routing
    def linear(self, node: Node, *sigs: Signal) -> Signal:
        op = node.op
        if isinstance(op, ops.Constant):
            return Signal(ANN_RULES[ops.Constant](op).to(self.dtype).unsqueeze(0))
        steps = max(steps_of(s) for s in sigs)
        if (self.stream and isinstance(op, STREAMED) and steps > 1
                and all(on_cpu(s) for s in sigs)):
            ins = list(sigs)
            bounds = [s.bound if isinstance(s, Stepped) else None for s in sigs]
            bound = (sum(bounds) if isinstance(op, (ops.Add, ops.Sub)) and None not in bounds
                     else None)  # (the bit-exact rules' integer synapses give bounds)
            out = Stepped(steps, max(batch_of(s) for s in sigs),
                          lambda lo, hi: streamed_block(node, ins, lo, hi), bound=bound)
        else:
            out = linear_over_time(node, list(sigs))
        events = [s.events for s in sigs]
        if isinstance(op, ROUTING) and any(e is not None for e in events):
            filled = [e if e is not None else torch.zeros_like(s.x[0])
                      for e, s in zip(events, sigs)]
            return Signal(out, ANN_RULES[type(op)](self._event_op(op), *filled))
        for e, s in zip(events, sigs):
            if e is None:
                continue
            if isinstance(op, SYNAPTIC):
                if node.name not in self.c.fanout:
                    self.c.fanout[node.name] = fanout(node, e)
                self.c.add(self.c.synops, node.name, e.double() * self.c.fanout[node.name])
            else:  # Add, Sub, BatchNorm, scaling: one synapse per element
                self.c.add(self.c.synops, node.name, e)
        return out if isinstance(out, Stepped) else Signal(out)

    def _steps(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialized (T, N, ...) array for a spike train, from ``buffers`` if set."""
        if self.buffers is None:
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        return self.buffers.empty(shape, like.dtype, like.device)

    @staticmethod
    def _event_op(op):
        return ops.Pad(op.pads, "constant", 0.0) if isinstance(op, ops.Pad) else op

    def max_pool(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        out = self.linear(node, sig)
        if sig.events is None:
            return out
        key = sig.x.mean(0)  # FS: pooled on decoded values; count the winners' spikes
        return Signal(out.x, gather_windows(op, sig.events, key))

    # ---- neurons
    def if_neurons(self, node: Node, sig: Signal) -> Signal:
        """IF with reset by subtraction, step by step (a streamed input block by block).
        Spikes are compared straight into a float 0/1 buffer; ``x = bits * amplitude``."""
        op = node.op
        steps = op.timesteps
        for t, current in step_values(sig, steps):
            if t == 0:
                v = torch.full_like(current, op.v_init * op.threshold)
                bits = self._steps((steps, *current.shape), current)
            v += current
            torch.ge(v, op.threshold, out=bits[t])
            v.sub_(bits[t], alpha=op.threshold)
        events = bits.sum(0)
        self.c.add(self.c.spikes, node.name, events)
        return Train(bits, float(op.amplitude), events)

    def few_spike(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        y, events = encode_torch(FSTable(op.h, op.d, op.T, op.activation), x, counts=True)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(y.unsqueeze(0), events)

    def amos(self, node: Node, sig: Signal) -> Signal:
        """The k one-shot neurons of every gate, stepped through the circuit's k steps. Delays
        make all inputs of neuron i arrive in step i: the gate input x (delay i-1) and the
        inhibition -h_j of every earlier neuron's spike (delay i-j-1). ``counts[i]`` is the
        record of neuron i's spikes; downstream sees sum_i d_i counts[i]."""
        op = node.op
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        k = op.K
        h, d, T = (torch.as_tensor(np.array(a), dtype=x.dtype, device=x.device)
                   for a in (op.h, op.d, op.T))
        u = torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
        fired = torch.zeros((k, *x.shape), dtype=torch.bool, device=x.device)
        counts = torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
        # what reaches neuron t in step t: x - h_0 z_0 - ... - h_{t-1} z_{t-1}, summed in this
        # order (the FS neuron's order, so both agree bit for bit)
        arriving = x
        view = (-1,) + (1,) * x.dim()
        for t in range(k):  # step t+1: neuron t receives x and the delayed inhibition
            u[t] += arriving
            armed = slice(0, t + 1)  # neuron i cannot fire before its input arrives (step i)
            z = (u[armed] > T[armed].reshape(view)) & ~fired[armed]
            fired[armed] |= z
            counts[armed] += z.to(x.dtype)
            # spikes of this step reach neuron i > t after the delay that aligns them to step i
            arriving = arriving - h[t] * z[t].to(x.dtype)
        y = torch.zeros_like(x)
        for i in range(k):  # outgoing synapses W d_i, accumulated in circuit order
            y = y + d[i] * counts[i]
        events = counts.sum(0)
        self.c.add(self.c.spikes, node.name, events)
        self.c.record_max(node.name, counts)
        return Signal(y.unsqueeze(0), events)

    def relay(self, node: Node, sig: Signal) -> Signal:
        """Partial-sum relays pass their synaptic input on as payloads; every non-zero
        payload of a step is one graded spike."""
        events = (sig.x != 0).to(sig.x.dtype).sum(0)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(sig.x, events)

    def single_spike(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        current = sig.x
        v = torch.zeros_like(current[0])
        fired = torch.zeros(current.shape[1:], dtype=torch.bool, device=current.device)
        out = torch.zeros((op.timesteps, *current.shape[1:]), dtype=current.dtype,
                          device=current.device)
        events = torch.zeros_like(v)  # the record of every neuron's spikes
        theta = torch.as_tensor(np.array(op.step_thresholds()), dtype=v.dtype, device=v.device)
        for t in range(op.timesteps):
            v += current[t if current.shape[0] > 1 else 0]
            s = (v >= theta[t]) & ~fired
            events += s.to(v.dtype)
            fired |= s
            out[t] = fired.to(v.dtype)
        self.c.add(self.c.spikes, node.name, events)
        self.c.record_max(node.name, events)
        amp = torch.as_tensor(np.array(op.amplitude), dtype=v.dtype, device=v.device)
        return Signal(out * amp, events)

    def hybrid_input(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        out, events = hybrid_input(op, x)
        self.c.add(self.c.spikes, node.name, events)
        self.c.record_max(node.name, events)
        return Signal(out, events)

    def first_spike_max_pool(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        if sig.events is None:
            raise RuntimeError("first-spike max-pool needs spiking input")
        out = first_spike_max_pool(op, sig.x)
        return Signal(out, (out[-1] != 0).to(out.dtype))

    def spiking_max_pool(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        if sig.events is None:
            raise RuntimeError("spiking max-pool needs spiking input")
        if (isinstance(sig, Train) and sig.amplitude != 0
                and simple_gate(op, sig.bits.shape[0])):  # binary trains: by window maxima, exactly
            *lead, hgt, wid = sig.bits.shape
            shape = (*lead, hgt // op.kernel[0], wid // op.kernel[1])
            bits = gate_rises(sig.bits, op.kernel, out=self._steps(shape, sig.bits))
            return Train(bits, sig.amplitude, bits.sum(0))
        steps, batch = sig.x.shape[:2]
        x = sig.x.reshape(steps * batch, *sig.x.shape[2:])
        counts = torch.cumsum(sig.x != 0, 0, dtype=sig.x.dtype)
        counts = counts.reshape(steps * batch, *sig.x.shape[2:])
        out = gather_windows(op, x, counts)
        out = out.reshape(steps, batch, *out.shape[1:])
        return Signal(out, (out != 0).to(out.dtype).sum(0))
