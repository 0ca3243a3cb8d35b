"""Bit-exact rules of the reference simulator, for graphs from ``quantize``: integer synapses,
pools and routing (neurons: ``fixed_neurons``).

Integer semantics are those of Lava's ``fixed_pt`` process models (docs/targets.md §2a):

* synapses (``PyDenseModelBitAcc``): ``acc = W p`` in integers, then ``a = acc << e`` for
  ``e >= 0`` and ``a = acc >> -e`` (numpy ``right_shift``: arithmetic, i.e. floor) otherwise;
* neurons (``PyLifModelBitAcc``): ``u = wrap(a << 6)`` (24-bit two's complement wrap), ``v``
  saturates at ``+-(2^23 - 1)``, spike on the target's compare (``v > vth``), reset as the op
  says (subtract on programmable Loihi 2 neurons, zero on Loihi 1);
* overflow modes (wrap/saturate) come from each op (copied from the target at quantization).

Every integer is held in a float tensor: states and synaptic sums in float64 (exact below 2^53:
24-bit states, 8-bit weights times payloads below 2^24 summed over fan-ins), spikes/payloads and
synaptic sums proven below 2^24 (weight row L1 norm x max payload) in float32, which is exact
there whatever the summation order and twice as fast.
Values are ``Signal``s as in the float simulator: (S, N, ...) with S = time steps or 1 (constant
in time: the input code of rate networks). Synaptic ops run once on all steps folded into the
batch; only neuron updates loop over time. Few-spike populations emit K steps of graded payloads
d(t) z(t); their consumers accumulate the synaptic input of the whole window (per-step floor
shifts included, exactly as the hardware does), then load it into v.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES
from snnc.sim import leaky_rules
from snnc.sim.fixed_neurons import FixedNeuronRules
from snnc.sim.float_rules import FloatRules
from snnc.sim.integers import exact_linear, float_twin, input_code, shift_round, spike_counts
from snnc.sim.kernels import (
    Stepped,
    fanout,
    fold,
    gate_rises,
    gather_windows,
    simple_gate,
    window_max,
)
from snnc.sim.signals import DTYPE, PAYLOAD, CodeSignal, Counters, Signal, Spikes

__all__ = ["FixedRules", "REFUSED"]

# Float synapses and neurons: quantize lowers each to its integer op before bit-exact simulation.
REFUSED: dict[type[ops.Op], str] = {
    cls: "float op: quantize lowers it to an integer op first"
    for cls in (neurons.IFNeurons, neurons.FewSpikeNeurons, neurons.AmosNeurons, ops.Conv2d,
                ops.Dense, ops.AvgPool2d, ops.GlobalAvgPool, neurons.SingleSpikeNeurons,
                neurons.HybridInputNeurons, *leaky_rules.float_rules(Counters()))}


class FixedRules(FixedNeuronRules, FloatRules):
    """The bit-exact rule table: the float simulator's rules for routing, pooling and Add, plus
    integer synapses (here) and integer neurons (``FixedNeuronRules``). ``window_sum``: the graph
    is a few-spike graph whose synapses may sum each input window at once (``sums_windows``)."""

    def __init__(self, counters: Counters, *, window_sum: bool = False) -> None:
        super().__init__(counters, DTYPE)
        for cls in REFUSED:
            self.pop(cls, None)  # float-only ops must not appear in a quantized graph
        self[q.InputQuantizer] = self.input_quantizer
        self[q.QConv2d] = self.synapse
        self[q.QDense] = self.synapse
        self[q.QScale] = self.one_to_one
        self[q.SumPool2d] = self.sum_pool
        self[q.GlobalSumPool] = self.sum_pool
        self[q.QIFNeurons] = self.if_fixed
        self[q.QFewSpikeNeurons] = self.few_spike_fixed
        self[q.QAmosNeurons] = self.amos_fixed
        self[q.QHybridInput] = self.hybrid_input_fixed
        self[q.QSingleSpikeNeurons] = self.single_spike_fixed
        self[neurons.FirstSpikeMaxPool2d] = self.first_spike_events
        self[q.QReadout] = self.readout
        self[ops.Reshape] = self.reshape
        self[ops.Slice] = self.reshape  # routing: codes and events slice like the values
        self[neurons.PartialSumRelay] = self.relay_fixed
        self.update(leaky_rules.fixed_rules(counters))  # imported SNNs: sim/leaky_rules.py
        self[ops.MaxPool2d] = self.max_pool_decoded
        self._twins: dict[str, tuple[ops.Op, float]] = {}
        self.window_sum = window_sum  # few-spike graphs (sums_windows; see _synapse_window)
        self.relu_closed_form = True  # FS-ReLU tables in closed form (see _relu_payloads)
        self.fast_gates = True  # rate max-pool gates by window maxima (see spiking_max_pool)
        self.stream = True  # synapses on spike trains block by block (see kernels.Stepped)

    def _count(self, node: Node, base: ops.Op, e: torch.Tensor | None) -> None:
        if e is None:
            return
        if node.name not in self.c.fanout:
            self.c.fanout[node.name] = fanout(Node(base, node.inputs, node.output), e)
        self.c.add(self.c.synops, node.name, e.double() * self.c.fanout[node.name])

    def input_quantizer(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        return Signal(input_code(op, sig.x).to(PAYLOAD))

    def synapse(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        name = node.name
        if name not in self._twins:
            w = np.abs(op.weight.astype(np.float64))
            self._twins[name] = (float_twin(op), float(w.reshape(w.shape[0], -1).sum(1).max()))
        base, row_l1 = self._twins[name]
        if self.window_sum and isinstance(sig, CodeSignal):
            return self._synapse_codes(node, sig, base, row_l1)
        steps = sig.x.shape[0]
        if self.window_sum and steps > 1:
            return self._synapse_window(node, sig, base, row_l1)
        self._count(node, base, sig.events)
        if self.stream and steps > 1 and isinstance(sig, Spikes) and sig.x.is_cpu:
            # binary trains: |acc| <= row_l1, and the blocks are exact in any batch
            e = op.weight_exp
            bound = row_l1 * 2.0**e if e >= 0 else float(np.ceil(row_l1 * 2.0**e))
            return Stepped(steps, sig.x.shape[1], lambda lo, hi: self._synapse_steps(
                op, base, row_l1, Signal(sig.x[lo:hi])), bound=bound)
        return Signal(self._synapse_steps(op, base, row_l1, sig,
                                          1.0 if isinstance(sig, Spikes) else None))

    @staticmethod
    def _synapse_steps(op, base, row_l1: float, sig: Signal, absmax: float | None = 1.0):
        """The integer synapse on every step of ``sig``: W p, then the weight shift."""
        steps = sig.x.shape[0]
        acc = exact_linear(base, fold(sig, steps), row_l1, absmax)
        if op.weight_exp > 0:
            acc = acc.to(DTYPE)
        return shift_round(acc, op.weight_exp).reshape(steps, -1, *acc.shape[1:])

    def _synapse_window(self, node: Node, sig: Signal, base, row_l1: float) -> Signal:
        """Few-spike graphs: every consumer of synaptic input accumulates the whole window, so
        only the window sum of ``a`` matters. Steps whose payloads are all multiples of 2^-e
        shift without rounding, so they are summed before the synapse (exact: linear in
        integers); only the others (at most -e steps for FS-ReLU) go through it one by one with
        their own floor. Returns the window sum (one step): in these graphs every synaptic input
        is a window sum (the input code is presented once), so Add/Sub and routing stay exact."""
        op = node.op
        x, e = sig.x, op.weight_exp
        if e >= 0:
            exact = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        else:
            # a multiple of 2^-e <=> x 2^e (exact: a power of two) has no fractional part
            exact = ~torch.frac(x * 2.0**e).flatten(1).any(1)
        parts = [x[exact].sum(0, keepdim=True)] if bool(exact.any()) else []
        rest = (~exact).nonzero().flatten().tolist()
        if rest:
            parts.append(x[rest])
        xin = torch.cat(parts) if len(parts) > 1 else parts[0]
        return self._window_sum(node, base, xin, e, row_l1, sig.events)

    def _synapse_codes(self, node: Node, sig: CodeSignal, base, row_l1: float) -> Signal:
        """``_synapse_window`` on FS-ReLU codes: the steps whose payloads d(t) are multiples of
        2^-e sum to the code with its low -e bits cleared; each lower bit j is its own step
        (payload 2^j or 0, floored alone). Same integers as the K-step train; a step of zeros
        contributes 0 in either group."""
        op = node.op
        e, code = op.weight_exp, sig.code
        low = min(max(-e, 0), len(sig.d))
        planes = [code & ~((1 << low) - 1)] + [code & (1 << j) for j in range(low - 1, -1, -1)]
        return self._window_sum(node, base, torch.stack(planes).to(PAYLOAD), e, row_l1, sig.events)

    def _window_sum(self, node: Node, base, xin: torch.Tensor, e: int, row_l1: float,
                    events) -> Signal:
        """The synapse on each of the parts ``xin`` (parts, N, ...), each floored on its own
        by the weight shift, summed into one window step."""
        acc = exact_linear(base, xin.reshape(-1, *xin.shape[2:]), row_l1)
        if e > 0:
            acc = acc.to(DTYPE)
        self._count(node, base, events)
        a = shift_round(acc, e).reshape(xin.shape[0], -1, *acc.shape[1:])
        return Signal(a.to(DTYPE).sum(0, keepdim=True))

    def relay_fixed(self, node: Node, sig: Signal) -> Signal:
        """Each step's synaptic input sent on as a graded payload of ``payload_bits`` (signed,
        saturating, as Lava's relay process). ``split_fanin`` proves that no step's part
        exceeds it, so few-spike window sums pass unclipped too. Graded spikes counted per
        non-zero payload of a step (few-spike graphs: of the window sum, a lower bound)."""
        op = node.op
        lim = float(2 ** (op.payload_bits - 1) - 1)
        x = sig.x if self.window_sum else sig.x.clamp(-lim, lim)
        events = (x != 0).to(DTYPE).sum(0)
        self.c.add(self.c.spikes, node.name, events)
        return Signal(x, events)

    def reshape(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        if isinstance(sig, CodeSignal):  # per sample, so the codes reshape like the values
            rule = ANN_RULES[type(op)]
            events = None if sig.events is None else rule(op, sig.events)
            return sig.with_code(rule(op, sig.code), events)
        out = self.linear(node, sig)
        return Spikes(out.x, out.events) if isinstance(sig, Spikes) else out

    def one_to_one(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        if sig.events is not None:
            self.c.add(self.c.synops, node.name, sig.events)
        a = shift_round(sig.x.to(DTYPE) * float(op.weight), op.weight_exp)
        return Signal(a.sum(0, keepdim=True) if self.window_sum else a)

    def sum_pool(self, node: Node, sig: Signal) -> Signal:
        op = node.op
        steps = sig.x.shape[0]
        x = fold(sig, steps)
        if isinstance(op, q.GlobalSumPool):
            out = x.sum(dim=tuple(range(2, x.dim())), keepdim=True)
            base = ops.GlobalAvgPool()
        else:
            out = F.avg_pool2d(x, op.kernel, op.stride, divisor_override=1)
            base = ops.AvgPool2d(op.kernel, op.stride)
        self._count(node, base, sig.events)  # as the float simulator: pooled spikes are
        # synaptic events
        return Signal(out.reshape(steps, -1, *out.shape[1:]))

    def spiking_max_pool(self, node: Node, sig: Signal) -> Signal:
        """Rate max-pool gate: on binary spikes with non-overlapping windows (the usual 2x2)
        by window maxima of running counts (``kernels.gate_rises``), else the float rule."""
        op = node.op
        x = sig.x.to(PAYLOAD)
        simple = self.fast_gates and sig.events is not None and simple_gate(op, x.shape[0])
        if simple and not isinstance(sig, Spikes):
            lo, hi = torch.aminmax(x)
            simple = float(lo) >= 0 and float(hi) <= 1
        if not simple:
            return super().spiking_max_pool(node, Signal(x, sig.events))
        out = gate_rises(x, op.kernel).to(PAYLOAD)
        return Spikes(out, out.sum(0))

    def max_pool_decoded(self, node: Node, sig: Signal) -> Signal:
        """Few-spike max-pool: each window passes the payloads of its input with the largest
        decoded value (sum over the window), ties to the first in row-major order. The window
        is chosen once per sample, then every step's payloads are gathered with it."""
        op = node.op
        (kh, kw), cells = op.kernel, op.kernel[0] * op.kernel[1]
        if (isinstance(sig, CodeSignal) and not (any(op.padding) or op.ceil_mode)
                and tuple(op.stride) == (kh, kw) and tuple(op.dilation) == (1, 1)
                and 2 ** len(sig.d) * cells < 2**24):
            # the decoded value of an FS-ReLU input is its code: whole codes are picked. Key
            # code * P + (P - 1 - position) orders by code, then by earlier position (the
            # max-pool's first-max rule), and the window's largest key holds its winner's code
            pos = torch.arange(cells - 1, -1, -1, dtype=torch.int32, device=sig.code.device)
            hgt, wid = sig.code.shape[-2] // kh * kh, sig.code.shape[-1] // kw * kw
            key = sig.code[..., :hgt, :wid] * cells + pos.reshape(kh, kw).repeat(
                hgt // kh, wid // kw)
            code = torch.div(window_max(key, kh, kw), cells, rounding_mode="floor")
            events = None if sig.events is None else spike_counts(code, len(sig.d))
            return sig.with_code(code, events)
        steps, batch = sig.x.shape[:2]
        lo, hi = torch.aminmax(sig.x)
        if sig.x.dtype == PAYLOAD and steps * max(float(hi), -float(lo)) < 2**24:
            key = sig.x.sum(0)  # the decoded sums are integers below 2^24: exact in float32
        else:
            key = sig.x.to(DTYPE).sum(0)
        if any(op.padding) or op.ceil_mode:  # rare: the general (per-step) path
            vals = sig.x.reshape(steps * batch, *sig.x.shape[2:])
            keys = key.unsqueeze(0).expand(steps, *key.shape).reshape(vals.shape)
            out = gather_windows(op, vals, keys)
            events = None if sig.events is None else gather_windows(op, sig.events, key)
            return Signal(out.reshape(steps, batch, *out.shape[1:]), events)
        _, idx = F.max_pool2d(key, op.kernel, op.stride, 0, op.dilation, return_indices=True)
        flat = idx.flatten(2)  # (N, C, out positions)
        out = sig.x.flatten(3).gather(3, flat.unsqueeze(0).expand(steps, *flat.shape))
        out = out.reshape(steps, *idx.shape)
        events = (None if sig.events is None
                  else sig.events.flatten(2).gather(2, flat).reshape(idx.shape))
        return Signal(out, events)
