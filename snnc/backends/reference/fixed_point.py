"""Bit-exact fixed-point mode of the reference simulator, for graphs from ``quantize``.

Integer semantics are those of Lava's ``fixed_pt`` process models (TARGETS.md §2a):

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

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from snnc.backends.reference.simulator import (
    SimulationResult,
    Signal,
    _Counters,
    _fanout,
    _fold,
    _gather_windows,
    _Rules,
    default_device,
)
from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES, Interpreter

__all__ = ["simulate_fixed", "shift_round", "overflow"]

DTYPE = torch.float64  # states and anything that may exceed 2^24
PAYLOAD = torch.float32  # spikes, payloads, input codes: integers below 2^24, exact in float32


def shift_round(acc: torch.Tensor, exp: int) -> torch.Tensor:
    """``acc << exp`` for exp >= 0, arithmetic ``acc >> -exp`` (floor) otherwise (Lava Dense)."""
    if exp >= 0:
        return acc * float(2**exp)
    return torch.floor(acc * 2.0**exp)


def overflow(x: torch.Tensor, mode: str, bits: int) -> torch.Tensor:
    """Signed ``bits``-wide state: 'wrap' maps into (-2^(bits-1), 2^(bits-1)] (Lava's u wrap,
    modulo 2^bits); 'saturate' clips to +-(2^(bits-1) - 1) (Lava's v)."""
    lim = float(2 ** (bits - 1))
    if mode == "wrap":
        return x - 2 * lim * torch.floor((x + lim - 1) / (2 * lim))
    if mode == "saturate":
        return x.clamp(-(lim - 1), lim - 1)
    return x


def _float_twin(op) -> ops.Op:
    """The float op with the integer mantissas as weights (no bias): W p in integers."""
    if isinstance(op, q.QConv2d):
        return ops.Conv2d(op.weight.astype(np.float64), np.zeros(op.weight.shape[0]), op.stride,
                          op.padding, op.dilation, op.groups)
    return ops.Dense(op.weight.astype(np.float64), np.zeros(op.weight.shape[0]))


class _FixedRules(_Rules):
    """The float simulator's rules for routing/pooling/Add, plus integer synapses and neurons."""

    def __init__(self, counters: _Counters) -> None:
        super().__init__(counters, DTYPE)
        for cls in (neurons.IFNeurons, neurons.FewSpikeNeurons, ops.Conv2d, ops.Dense,
                    ops.AvgPool2d, ops.GlobalAvgPool):
            self.pop(cls, None)  # float-only ops must not appear in a quantized graph
        self[q.InputQuantizer] = self.input_quantizer
        self[q.QConv2d] = self.synapse
        self[q.QDense] = self.synapse
        self[q.QScale] = self.one_to_one
        self[q.SumPool2d] = self.sum_pool
        self[q.GlobalSumPool] = self.sum_pool
        self[q.QIFNeurons] = self.if_fixed
        self[q.QFewSpikeNeurons] = self.few_spike_fixed
        self[q.QReadout] = self.readout
        self[ops.MaxPool2d] = self.max_pool_decoded
        self._twins: dict[str, tuple[ops.Op, float]] = {}
        self.window_sum = False  # set for few-spike graphs (see _synapse_window)

    def _count(self, base: ops.Op, e: torch.Tensor | None) -> None:
        if e is None:
            return
        node = self.node
        if node.name not in self.c.fanout:
            self.c.fanout[node.name] = _fanout(Node(base, node.inputs, node.output), e)
        self.c.add(self.c.synops, node.name, (e * self.c.fanout[node.name]).sum())

    def input_quantizer(self, op: q.InputQuantizer, sig: Signal) -> Signal:
        lo, hi = ((-(2.0 ** (op.bits - 1) - 1), 2.0 ** (op.bits - 1) - 1) if op.signed
                  else (0.0, 2.0**op.bits - 1))
        return Signal(torch.round(sig.x.to(DTYPE) / op.scale).clamp(lo, hi).to(PAYLOAD))

    def synapse(self, op, sig: Signal) -> Signal:
        name = self.node.name
        if name not in self._twins:
            w = np.abs(op.weight.astype(np.float64))
            self._twins[name] = (_float_twin(op), float(w.reshape(w.shape[0], -1).sum(1).max()))
        base, row_l1 = self._twins[name]
        steps = sig.x.shape[0]
        if self.window_sum and steps > 1:
            return self._synapse_window(op, sig, base, row_l1)
        x = _fold(sig, steps)
        lo, hi = torch.aminmax(x)
        if x.device.type == "cpu" and row_l1 * max(float(hi), -float(lo)) < 2**24:
            # every partial sum is an integer below 2^24: float32 is exact in any order (CPU
            # only: CUDA convolutions may use TF32); a right shift keeps it below 2^24
            acc = ANN_RULES[type(base)](base, x.to(PAYLOAD))
            if op.weight_exp > 0:
                acc = acc.to(DTYPE)
        else:
            acc = ANN_RULES[type(base)](base, x.to(DTYPE))
        self._count(base, sig.events)
        return Signal(shift_round(acc, op.weight_exp).reshape(steps, -1, *acc.shape[1:]))

    def _synapse_window(self, op, sig: Signal, base, row_l1: float) -> Signal:
        """Few-spike graphs: every consumer of synaptic input accumulates the whole window, so
        only the window sum of ``a`` matters. Steps whose payloads are all multiples of 2^-e
        shift without rounding, so they are summed before the synapse (exact: linear in
        integers); only the others (at most -e steps for FS-ReLU) go through it one by one with
        their own floor. Returns the window sum (one step): in these graphs every synaptic input
        is a window sum (the input code is presented once), so Add/Sub and routing stay exact."""
        x, e = sig.x, op.weight_exp
        if e >= 0:
            exact = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        else:
            exact = (torch.remainder(x, 2.0**-e) == 0).flatten(1).all(1)
        parts = [x[exact].sum(0, keepdim=True)] if bool(exact.any()) else []
        rest = (~exact).nonzero().flatten().tolist()
        if rest:
            parts.append(x[rest])
        xin = torch.cat(parts) if len(parts) > 1 else parts[0]
        lo, hi = torch.aminmax(xin)
        folded = xin.reshape(-1, *xin.shape[2:])
        if xin.device.type == "cpu" and row_l1 * max(float(hi), -float(lo)) < 2**24:
            acc = ANN_RULES[type(base)](base, folded.to(PAYLOAD))
            if e > 0:
                acc = acc.to(DTYPE)
        else:
            acc = ANN_RULES[type(base)](base, folded.to(DTYPE))
        self._count(base, sig.events)
        a = shift_round(acc, e).reshape(xin.shape[0], -1, *acc.shape[1:])
        return Signal(a.to(DTYPE).sum(0, keepdim=True))

    def one_to_one(self, op: q.QScale, sig: Signal) -> Signal:
        if sig.events is not None:
            self.c.add(self.c.synops, self.node.name, sig.events.sum())
        a = shift_round(sig.x.to(DTYPE) * float(op.weight), op.weight_exp)
        return Signal(a.sum(0, keepdim=True) if self.window_sum else a)

    def sum_pool(self, op, sig: Signal) -> Signal:
        steps = sig.x.shape[0]
        x = _fold(sig, steps)
        if isinstance(op, q.GlobalSumPool):
            out = x.sum(dim=tuple(range(2, x.dim())), keepdim=True)
            base = ops.GlobalAvgPool()
        else:
            out = F.avg_pool2d(x, op.kernel, op.stride, divisor_override=1)
            base = ops.AvgPool2d(op.kernel, op.stride)
        if sig.events is not None:  # as the float simulator: pooled spikes are synaptic events
            node = self.node
            if node.name not in self.c.fanout:
                self.c.fanout[node.name] = _fanout(Node(base, node.inputs, node.output),
                                                   sig.events)
            self.c.add(self.c.synops, node.name, (sig.events * self.c.fanout[node.name]).sum())
        return Signal(out.reshape(steps, -1, *out.shape[1:]))

    def spiking_max_pool(self, op: neurons.SpikingMaxPool2d, sig: Signal) -> Signal:
        # binary spikes and counts <= T are exact in float32, which is faster here
        return super().spiking_max_pool(op, Signal(sig.x.to(PAYLOAD), sig.events))

    def max_pool_decoded(self, op: ops.MaxPool2d, sig: Signal) -> Signal:
        """Few-spike max-pool: each window passes the payloads of its input with the largest
        decoded value (sum over the window), ties to the first in row-major order."""
        steps, batch = sig.x.shape[:2]
        key = sig.x.to(DTYPE).sum(0)
        vals = sig.x.reshape(steps * batch, *sig.x.shape[2:])
        keys = key.unsqueeze(0).expand(steps, *key.shape).reshape(vals.shape)
        out = _gather_windows(op, vals, keys)
        out = out.reshape(steps, batch, *out.shape[1:])
        events = None if sig.events is None else _gather_windows(op, sig.events, key)
        return Signal(out, events)

    def if_fixed(self, op: q.QIFNeurons, sig: Signal) -> Signal:
        a = sig.x.to(DTYPE)
        u_all = overflow(a * float(2**op.act_shift), op.u_overflow, op.uv_bits)
        bias = torch.as_tensor(np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp,
                               dtype=DTYPE, device=a.device)
        vth = float(op.vth)
        v = torch.full_like(a[0], float(round(op.v_init * vth)))
        steps = op.timesteps
        out = torch.empty((steps, *a.shape[1:]), dtype=PAYLOAD, device=a.device)
        cmp = torch.gt if op.compare == ">" else torch.ge
        inp = u_all + bias  # v += u + bias: one tensor per step (or one for constant input)
        lim = float(2 ** (op.uv_bits - 1) - 1)
        for t in range(steps):
            v += inp[t if a.shape[0] > 1 else 0]
            if op.v_overflow == "saturate":
                v.clamp_(-lim, lim)
            else:
                v = overflow(v, op.v_overflow, op.uv_bits)
            s = cmp(v, vth, out=out[t])
            if op.reset == "subtract":
                v.sub_(s, alpha=vth)
            else:
                v.mul_(1.0 - s)
        events = out.sum(0, dtype=DTYPE)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(out, events)

    def few_spike_fixed(self, op: q.QFewSpikeNeurons, sig: Signal) -> Signal:
        acc = overflow(sig.x.to(DTYPE).sum(0) * float(2**op.act_shift), op.u_overflow,
                       op.uv_bits)
        bias = torch.as_tensor(np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp,
                               dtype=DTYPE, device=acc.device)
        v = overflow(acc + bias, op.v_overflow, op.uv_bits)
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
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(out, events)

    def readout(self, op: q.QReadout, sig: Signal) -> Signal:
        x = sig.x.to(DTYPE)
        total = x.sum(0) if op.reduce == "sum" else x.mean(0)
        bias = torch.as_tensor(op.bias, dtype=DTYPE, device=total.device)
        return Signal((total * op.scale + bias).unsqueeze(0))


def simulate_fixed(graph: Graph, x: np.ndarray, *, batch_size: int | None = None,
                   device: torch.device | str | None = None,
                   progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run a quantized graph bit-exactly on ``x`` (N, ...); same result type as ``simulate``.
    ``outputs`` are the host-side readouts (float); spikes and synaptic events are counted as
    in the float simulator."""
    if not q.is_quantized(graph):
        raise BackendError("bit-exact simulation needs a quantized graph (compile for a "
                           "fixed-point target such as loihi2)")
    device = torch.device(device) if device is not None else default_device()
    counters = _Counters()
    rules = _FixedRules(counters)
    rules.window_sum = not any(isinstance(n.op, q.QIFNeurons) for n in graph.nodes)
    interp = rules.interp = Interpreter(rules)
    steps = max([n.op.timesteps for n in graph.nodes if isinstance(n.op, neurons.IFNeurons)]
                + [n.op.K for n in graph.nodes if isinstance(n.op, neurons.FewSpikeNeurons)],
                default=1)
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if batch_size is None:  # from available memory: see backends/reference/memory.py
        from snnc.backends.reference.memory import auto_batch_size

        batch_size = auto_batch_size(steps, widest, 8, device)
    outputs: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[lo:lo + batch_size]), dtype=DTYPE, device=device)
            outs = interp.run(graph, [Signal(xb.unsqueeze(0))])
            for i, o in enumerate(outs):
                outputs[i].append(o.x.mean(0).float().cpu().numpy())
            if progress is not None:
                progress(len(xb))
    wall = time.perf_counter() - start
    neuron_counts = {n.name: n.output.type.size for n in graph.nodes
                     if isinstance(n.op, neurons.NEURON_OPS)}
    return SimulationResult([np.concatenate(o) for o in outputs], dict(counters.spikes),
                            neuron_counts, dict(counters.synops), len(x), wall)
