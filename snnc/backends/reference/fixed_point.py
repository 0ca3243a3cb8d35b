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

import math
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
    run_batches,
)
from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES, Interpreter

__all__ = ["simulate_fixed", "shift_round", "overflow", "hybrid_events"]

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


def _relu_shift(op) -> int | None:
    """m when the integer (h, d, T) table is FS-ReLU's: d(t) = 2^(K-t), T(t) = h(t) = d(t) 2^m
    (m >= 0, t = 1..K); None otherwise."""
    K = op.K
    d = np.asarray(op.d, np.int64)
    T, h = np.asarray(op.T, np.int64), np.asarray(op.h, np.int64)
    if K > 24 or not np.array_equal(d, 2 ** np.arange(K - 1, -1, -1, dtype=np.int64)):
        return None
    if not np.array_equal(T, h) or T[-1] <= 0 or int(T[-1]) & (int(T[-1]) - 1):
        return None
    m = int(T[-1]).bit_length() - 1
    return m if np.array_equal(T, d << m) else None


def _exact_linear(base: ops.Op, x: torch.Tensor, row_l1: float,
                  absmax: float | None = None) -> torch.Tensor:
    """``base`` (a conv/dense with integer weights, largest row L1 norm ``row_l1``) on integer
    inputs ``x``, exactly. Where every partial sum is an integer below 2^24, float32 is exact
    in any summation order and runs on the fast (mkldnn) kernels (CPU only: CUDA convolutions
    may use TF32). Larger inputs are split into limbs x = q L + r (0 <= r < L, L a power of
    two with row_l1 (L - 1) < 2^24): float32 is exact on each, and the limbs are combined in
    float64, exact below 2^53 -- far faster than a float64 convolution. ``absmax``: a known
    bound on ``|x|`` (spike trains: 1), else it is measured."""
    rule = ANN_RULES[type(base)]
    if x.device.type != "cpu":
        return rule(base, x.to(DTYPE))
    if absmax is None:
        lo, hi = torch.aminmax(x)
        absmax = max(float(hi), -float(lo))
    if row_l1 * absmax < 2**24:
        return rule(base, x.to(PAYLOAD))
    bits = math.floor(math.log2(2**24 / row_l1)) if row_l1 > 0 else 24
    if bits < 2:
        return rule(base, x.to(DTYPE))
    limb = 2.0**bits
    x = x.to(DTYPE)
    q = torch.floor(x / limb)
    low = rule(base, (x - q * limb).to(PAYLOAD)).to(DTYPE)
    return low + limb * _exact_linear(base, q, row_l1).to(DTYPE)


def _popcount(code: torch.Tensor) -> torch.Tensor:
    """Set bits of non-negative integers below 2^31 (SWAR), as float64: the spike count of a
    K-bit FS-ReLU code, without summing its K payload steps."""
    c = code.to(torch.int64)
    c = c - ((c >> 1) & 0x55555555)
    c = (c & 0x33333333) + ((c >> 2) & 0x33333333)
    c = (c + (c >> 4)) & 0x0F0F0F0F
    return (((c * 0x01010101) & 0xFFFFFFFF) >> 24).to(DTYPE)


_POPCOUNT = np.array([bin(i).count("1") for i in range(2**16)], np.float64)


def _or_reduce(code: torch.Tensor) -> int:
    """Bitwise OR of all codes (halving the tensor each round): which neurons of a circuit
    fired for any gate of any sample."""
    c = code.flatten()
    while c.numel() > 1:
        half = (c.numel() + 1) // 2
        head = c[:half].clone()
        head[:c.numel() - half] |= c[half:]
        c = head
    return int(c[0]) if c.numel() else 0


def _spike_counts(code: torch.Tensor, K: int) -> torch.Tensor:
    """Spikes of FS-ReLU codes (their set bits), as float64: a table lookup for K <= 16."""
    if K <= 16:
        table = torch.as_tensor(_POPCOUNT[:2**K], device=code.device)
        return table[code.to(torch.int64)]
    return _popcount(code)


def _window_max(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Max over non-overlapping kh x kw windows of the last two dims (cropped to multiples):
    elementwise maxima of strided views, far faster on the CPU than max_pool2d. Rows first
    (maxima of whole contiguous rows), then columns of the kh-times smaller result."""
    oh, ow = x.shape[-2] // kh, x.shape[-1] // kw
    v = x[..., :oh * kh, :].reshape(*x.shape[:-2], oh, kh, x.shape[-1])
    rows = v[..., 0, :]
    for i in range(1, kh):
        rows = torch.maximum(rows, v[..., i, :])
    cols = rows[..., :ow * kw].reshape(*rows.shape[:-1], ow, kw)
    out = cols[..., 0]
    for j in range(1, kw):
        out = torch.maximum(out, cols[..., j])
    return out


class _Spikes(Signal):
    """Binary spike trains (0/1 in float32), as rate populations and their max-pool gates
    send: consumers need not scan them for their range."""


class _CodeSignal(Signal):
    """The K-step payload train of an FS-ReLU population (or AMOS circuit) held as its K-bit
    codes n (N, ...): step t carries n AND d(t), d(t) = 2^(K-t). ``x`` (K, N, ...) is built on
    first use; synapses, decoded max-pools and reshapes work on the codes directly, which is
    exact and saves materializing (and reading) K planes per layer."""

    def __init__(self, code: torch.Tensor, d: np.ndarray, events: torch.Tensor) -> None:
        self.code, self.d, self.events = code, np.asarray(d, np.int64), events
        self._x: torch.Tensor | None = None

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        if self._x is None:
            d = torch.as_tensor(self.d.astype(np.int32), device=self.code.device)
            bits = self.code.unsqueeze(0) & d.reshape(-1, *([1] * self.code.dim()))
            self._x = bits.to(PAYLOAD)
        return self._x

    def with_code(self, code: torch.Tensor, events: torch.Tensor | None) -> _CodeSignal:
        return _CodeSignal(code, self.d, events)


class _FixedRules(_Rules):
    """The float simulator's rules for routing/pooling/Add, plus integer synapses and neurons."""

    def __init__(self, counters: _Counters) -> None:
        super().__init__(counters, DTYPE)
        for cls in (neurons.IFNeurons, neurons.FewSpikeNeurons, neurons.AmosNeurons, ops.Conv2d,
                    ops.Dense, ops.AvgPool2d, ops.GlobalAvgPool, neurons.SingleSpikeNeurons,
                    neurons.HybridInputNeurons):
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
        self[ops.MaxPool2d] = self.max_pool_decoded
        self._twins: dict[str, tuple[ops.Op, float]] = {}
        self.window_sum = False  # set for few-spike graphs (see _synapse_window)
        self.relu_closed_form = True  # FS-ReLU tables in closed form (see _relu_payloads)
        self.fast_gates = True  # rate max-pool gates by window maxima (see spiking_max_pool)

    def _count(self, base: ops.Op, e: torch.Tensor | None) -> None:
        if e is None:
            return
        node = self.node
        if node.name not in self.c.fanout:
            self.c.fanout[node.name] = _fanout(Node(base, node.inputs, node.output), e)
        self.c.add(self.c.synops, node.name, (e * self.c.fanout[node.name]).sum())

    def input_quantizer(self, op: q.InputQuantizer, sig: Signal) -> Signal:
        return Signal(_input_code(op, sig.x).to(PAYLOAD))

    def synapse(self, op, sig: Signal) -> Signal:
        name = self.node.name
        if name not in self._twins:
            w = np.abs(op.weight.astype(np.float64))
            self._twins[name] = (_float_twin(op), float(w.reshape(w.shape[0], -1).sum(1).max()))
        base, row_l1 = self._twins[name]
        if self.window_sum and isinstance(sig, _CodeSignal):
            return self._synapse_codes(op, sig, base, row_l1)
        steps = sig.x.shape[0]
        if self.window_sum and steps > 1:
            return self._synapse_window(op, sig, base, row_l1)
        acc = _exact_linear(base, _fold(sig, steps), row_l1,
                            1.0 if isinstance(sig, _Spikes) else None)
        if op.weight_exp > 0:
            acc = acc.to(DTYPE)
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
            # a multiple of 2^-e <=> x 2^e (exact: a power of two) has no fractional part
            exact = ~torch.frac(x * 2.0**e).flatten(1).any(1)
        parts = [x[exact].sum(0, keepdim=True)] if bool(exact.any()) else []
        rest = (~exact).nonzero().flatten().tolist()
        if rest:
            parts.append(x[rest])
        xin = torch.cat(parts) if len(parts) > 1 else parts[0]
        return self._window_sum(base, xin, e, row_l1, sig.events)

    def _synapse_codes(self, op, sig: _CodeSignal, base, row_l1: float) -> Signal:
        """``_synapse_window`` on FS-ReLU codes: the steps whose payloads d(t) are multiples of
        2^-e sum to the code with its low -e bits cleared; each lower bit j is its own step
        (payload 2^j or 0, floored alone). Same integers as the K-step train; a step of zeros
        contributes 0 in either group."""
        e, code = op.weight_exp, sig.code
        low = min(max(-e, 0), len(sig.d))
        planes = [code & ~((1 << low) - 1)] + [code & (1 << j) for j in range(low - 1, -1, -1)]
        return self._window_sum(base, torch.stack(planes).to(PAYLOAD), e, row_l1, sig.events)

    def _window_sum(self, base, xin: torch.Tensor, e: int, row_l1: float, events) -> Signal:
        """The synapse on each of the parts ``xin`` (parts, N, ...), each floored on its own
        by the weight shift, summed into one window step."""
        acc = _exact_linear(base, xin.reshape(-1, *xin.shape[2:]), row_l1)
        if e > 0:
            acc = acc.to(DTYPE)
        self._count(base, events)
        a = shift_round(acc, e).reshape(xin.shape[0], -1, *acc.shape[1:])
        return Signal(a.to(DTYPE).sum(0, keepdim=True))

    def relay_fixed(self, op: neurons.PartialSumRelay, sig: Signal) -> Signal:
        """Each step's synaptic input sent on as a graded payload of ``payload_bits`` (signed,
        saturating, as Lava's relay process). ``split_fanin`` proves that no step's part
        exceeds it, so few-spike window sums pass unclipped too. Graded spikes counted per
        non-zero payload of a step (few-spike graphs: of the window sum, a lower bound)."""
        lim = float(2 ** (op.payload_bits - 1) - 1)
        x = sig.x if self.window_sum else sig.x.clamp(-lim, lim)
        events = (x != 0).to(DTYPE).sum(0)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(x, events)

    def reshape(self, op: ops.Reshape, sig: Signal) -> Signal:
        if isinstance(sig, _CodeSignal):  # per sample, so the codes reshape like the values
            rule = ANN_RULES[type(op)]
            events = None if sig.events is None else rule(op, sig.events)
            return sig.with_code(rule(op, sig.code), events)
        out = self.linear(op, sig)
        return _Spikes(out.x, out.events) if isinstance(sig, _Spikes) else out

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
        """Rate max-pool gate: each step each window passes the spike of its input with the
        most spikes so far (first in row-major order on ties). For binary spikes and
        non-overlapping windows (stride = kernel, the usual 2x2) it needs no per-window
        argmax: cell i of P gets the key ``K_i(t) = count_i(t) P + (P - 1 - i)`` (its count
        including step t, ties to the earlier position; keys of a window are distinct and never
        decrease) and the window's largest key ``M(t)`` is its winner's. The gate passes a
        spike exactly when ``M(t) > M(t - 1)`` (``M(0) = P - 1``): if the winner w spiked,
        ``K_w(t - 1) = M(t) - P`` and every other key at t - 1 is below ``M(t)`` (distinct,
        non-decreasing), so M rose; if it did not, ``M(t - 1) >= K_w(t - 1) = M(t)``. So the
        gate is a running sum, one window maximum and a difference in time, each over all
        steps at once, in int16 (int32 for long runs): keys are below 2^15 (2^31)."""
        x = sig.x.to(PAYLOAD)
        (kh, kw), steps = op.kernel, x.shape[0]
        cells = kh * kw
        simple = (self.fast_gates and sig.events is not None and not any(op.padding)
                  and not op.ceil_mode and tuple(op.dilation) == (1, 1)
                  and tuple(op.stride) == tuple(op.kernel) and (steps + 1) * cells < 2**31)
        if simple and not isinstance(sig, _Spikes):
            lo, hi = torch.aminmax(x)
            simple = float(lo) >= 0 and float(hi) <= 1
        if not simple:
            return super().spiking_max_pool(op, Signal(x, sig.events))
        hgt, wid = x.shape[-2] // kh * kh, x.shape[-1] // kw * kw
        x = x[..., :hgt, :wid]
        pos = torch.arange(cells - 1, -1, -1, dtype=PAYLOAD, device=x.device)
        pos = pos.reshape(kh, kw).repeat(hgt // kh, wid // kw)
        key = x.to(torch.int16) if (steps + 1) * cells < 2**15 else x.to(torch.int32)
        key[0].mul_(cells).add_(pos.to(key.dtype))
        for t in range(1, steps):  # running counts (faster than cumsum(0)), scaled by P
            torch.add(key[t - 1], key[t], alpha=cells, out=key[t])
        best = _window_max(key, kh, kw)  # M(t), t = 1..steps
        rose = torch.empty_like(best)
        torch.sub(best[0], cells - 1, out=rose[0])
        torch.sub(best[1:], best[:-1], out=rose[1:])
        out = rose.clamp_(max=1).to(PAYLOAD)  # M(t) - M(t - 1) >= 0: 1 where it rose
        return _Spikes(out, out.sum(0))

    def max_pool_decoded(self, op: ops.MaxPool2d, sig: Signal) -> Signal:
        """Few-spike max-pool: each window passes the payloads of its input with the largest
        decoded value (sum over the window), ties to the first in row-major order. The window
        is chosen once per sample, then every step's payloads are gathered with it."""
        (kh, kw), cells = op.kernel, op.kernel[0] * op.kernel[1]
        if (isinstance(sig, _CodeSignal) and not (any(op.padding) or op.ceil_mode)
                and tuple(op.stride) == (kh, kw) and tuple(op.dilation) == (1, 1)
                and 2 ** len(sig.d) * cells < 2**24):
            # the decoded value of an FS-ReLU input is its code: whole codes are picked. Key
            # code * P + (P - 1 - position) orders by code, then by earlier position (the
            # max-pool's first-max rule), and the window's largest key holds its winner's code
            pos = torch.arange(cells - 1, -1, -1, dtype=torch.int32, device=sig.code.device)
            hgt, wid = sig.code.shape[-2] // kh * kh, sig.code.shape[-1] // kw * kw
            key = sig.code[..., :hgt, :wid] * cells + pos.reshape(kh, kw).repeat(
                hgt // kh, wid // kw)
            code = torch.div(_window_max(key, kh, kw), cells, rounding_mode="floor")
            events = None if sig.events is None else _spike_counts(code, len(sig.d))
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
            out = _gather_windows(op, vals, keys)
            events = None if sig.events is None else _gather_windows(op, sig.events, key)
            return Signal(out.reshape(steps, batch, *out.shape[1:]), events)
        _, idx = F.max_pool2d(key, op.kernel, op.stride, 0, op.dilation, return_indices=True)
        flat = idx.flatten(2)  # (N, C, out positions)
        out = sig.x.flatten(3).gather(3, flat.unsqueeze(0).expand(steps, *flat.shape))
        out = out.reshape(steps, *idx.shape)
        events = (None if sig.events is None
                  else sig.events.flatten(2).gather(2, flat).reshape(idx.shape))
        return Signal(out, events)

    def if_fixed(self, op: q.QIFNeurons, sig: Signal) -> Signal:
        shift = float(2**op.act_shift)
        bias_np = np.asarray(op.bias_mant, np.float64) * 2.0**op.bias_exp
        vth_np = np.asarray(op.vth, np.float64)  # one threshold, or one per channel
        v0_np = np.round(op.v_init * vth_np)  # half to even, as Python's round
        vth, v0 = float(vth_np.max()), float(v0_np.max())  # (scalars here; arrays below)
        lim = float(2 ** (op.uv_bits - 1) - 1)
        lo, hi = torch.aminmax(sig.x)
        amax = max(-float(lo), float(hi)) * shift
        babs = float(np.abs(bias_np).max()) if bias_np.size else 0.0
        # float32 is exact when u never wraps (|a << shift| <= lim), v + u + bias stays within
        # +-2^24 (v is saturated to +-lim) and so do vth and v_init: the usual case, and twice
        # as fast as float64 (half the memory traffic)
        narrow = (op.v_overflow == "saturate" and amax <= lim and amax + babs <= lim + 1
                  and vth <= lim + 1 and float(np.abs(v0_np).max()) <= lim)
        dtype = PAYLOAD if narrow else DTYPE
        bias = torch.as_tensor(bias_np, dtype=dtype, device=sig.x.device)
        if narrow:
            a = sig.x.to(dtype)  # u = a << shift (no wrap), added step by step below
            const = a[0] * shift + bias if a.shape[0] == 1 else None
        else:
            a = overflow(sig.x.to(DTYPE) * shift, op.u_overflow, op.uv_bits)
            const = a[0] + bias if a.shape[0] == 1 else None
        if vth_np.ndim:
            vth = torch.as_tensor(vth_np, dtype=dtype, device=a.device)
            v0 = torch.as_tensor(v0_np, dtype=dtype, device=a.device)
        v = torch.zeros_like(bias.expand(a.shape[1:])).add_(v0).contiguous()
        steps = op.timesteps
        out = torch.empty((steps, *a.shape[1:]), dtype=PAYLOAD, device=a.device)
        cmp = torch.gt if op.compare == ">" else torch.ge
        for t in range(steps):
            if const is not None:
                v += const
            else:  # v += u(t) + bias
                v.add_(a[t], alpha=shift if narrow else 1.0)
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
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return _Spikes(out, events)

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

    def _relu_payloads(self, op, v: torch.Tensor) -> _CodeSignal | None:
        """The FS-ReLU table in integers (T = h = 2^(m+K-t), d = 2^(K-t)) in closed form: the
        K steps emit the binary digits of the K-bit code n = largest integer in [0, 2^K - 1]
        with n 2^m < v (strict '>'), i.e. payload d(t) z(t) = n AND 2^(K-t). The loop's v
        only decreases from above 0 by h(t) < v, so saturation never acts and the two agree
        exactly (tests/backends/test_fixed_point.py). Returns the payloads (as codes) with the
        spike counts as events; None for any other table."""
        m = _relu_shift(op) if self.relu_closed_form else None
        if m is None:
            return None
        code = torch.floor((v - 1.0) * 2.0**-m).clamp_(0, 2**op.K - 1).to(torch.int32)
        return _CodeSignal(code, op.d, _spike_counts(code, op.K))

    def few_spike_fixed(self, op: q.QFewSpikeNeurons, sig: Signal) -> Signal:
        v = self._gate_input(op, sig)
        closed = self._relu_payloads(op, v)
        if closed is not None:
            self.c.add(self.c.spikes, self.node.name, closed.events.sum())
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
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(out, events)

    def amos_fixed(self, op: q.QAmosNeurons, sig: Signal) -> Signal:
        """The k one-shot neurons of every gate (docs/amos.md): neuron i's membrane receives, in
        circuit step i, the gate input x and the inhibition -h_j of every earlier neuron that
        fired, saturates once and fires if above T_i; it never fires again (its inputs are
        spent). Output step i carries neuron i's payload d_i z_i, so consumers see the same
        window of K payload steps as from an FS population; ``max_spikes`` records per neuron."""
        arriving = self._gate_input(op, sig)  # x; exact integers below 2^53 also after
        # subtracting k 24-bit inhibitions
        closed = self._relu_payloads(op, arriving)  # FS-ReLU: the same closed form as FS
        if closed is not None:
            # neuron i fired <=> bit d_i of the code; most spikes of one neuron i
            fired = _or_reduce(closed.code)
            most = torch.tensor([float(bool(fired & int(di))) for di in op.d], dtype=DTYPE)
            self.c.add(self.c.spikes, self.node.name, closed.events.sum())
            self.c.record_max(self.node.name, most)
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
        self.c.add(self.c.spikes, self.node.name, events.sum())
        self.c.record_max(self.node.name, most)
        return Signal(out, events)

    def hybrid_input_fixed(self, op: q.QHybridInput, sig: Signal) -> Signal:
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        events, spikes = hybrid_events(op, x)  # host-side, as the rate/fs input codes: its
        # spikes are synaptic events of the first layer, not spikes of an on-chip population
        return Signal(events, spikes)

    def single_spike_fixed(self, op: q.QSingleSpikeNeurons, sig: Signal) -> Signal:
        """Integer single-spike neurons (``QSingleSpikeNeurons``): event inputs switch a
        persistent current on, the membrane integrates it with the bias, and a neuron fires
        once, in the first step its membrane crosses that step's threshold."""
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
        self.c.add(self.c.spikes, self.node.name, events.sum())
        self.c.record_max(self.node.name, events)
        return _Spikes(out, events)

    def first_spike_events(self, op: neurons.FirstSpikeMaxPool2d, sig: Signal) -> Signal:
        """First-spike max-pool on spike events: a window fires once, in the step of its
        earliest input spike (the max-pool of the fired-so-far maps, differenced in time)."""
        steps, batch = sig.x.shape[:2]
        fired = (torch.cumsum(sig.x.to(PAYLOAD), 0) > 0).to(PAYLOAD)
        pooled = ANN_RULES[ops.MaxPool2d](op, fired.reshape(steps * batch, *fired.shape[2:]))
        pooled = pooled.reshape(steps, batch, *pooled.shape[1:])
        out = torch.cat([pooled[:1], pooled[1:] - pooled[:-1]])
        return _Spikes(out, pooled[-1].to(DTYPE))

    def readout(self, op: q.QReadout, sig: Signal) -> Signal:
        x = sig.x.to(DTYPE)
        if op.reduce == "integrate":  # events switch currents on: the membrane's v(T) / T
            steps = x.shape[0]
            weight = torch.arange(steps, 0, -1, dtype=DTYPE, device=x.device)
            total = (x * weight.reshape(-1, *([1] * (x.dim() - 1)))).sum(0) / steps
        else:
            total = x.sum(0) if op.reduce == "sum" else x.mean(0)
        bias = torch.as_tensor(op.bias, dtype=DTYPE, device=total.device)
        return Signal((total * op.scale + bias).unsqueeze(0))


def _input_code(op: q.InputQuantizer | q.QHybridInput, x: torch.Tensor) -> torch.Tensor:
    """The host's ``op.bits``-bit input code of x (signed or not), in float64."""
    lo, hi = ((-(2.0 ** (op.bits - 1) - 1), 2.0 ** (op.bits - 1) - 1) if op.signed
              else (0.0, 2.0**op.bits - 1))
    return torch.round(x.to(DTYPE) / op.scale).clamp(lo, hi)


def sums_windows(graph: Graph) -> bool:
    """Whether synapses may sum each input window at once (``_FixedRules.window_sum``): only
    in few-spike graphs; IF and single-spike populations integrate step by step."""
    return not any(isinstance(n.op, (q.QIFNeurons, q.QSingleSpikeNeurons)) for n in graph.nodes)


def hybrid_events(op: q.QHybridInput, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``QHybridInput`` on inputs x (N, ...): its payload events (timesteps, N, ...) and the
    spikes per pixel (N, ...), in integers held as float32."""
    p = _input_code(op, x)
    sc, steps = float(op.spike_code), op.timesteps
    slot = torch.div((sc - torch.clamp(p, max=sc)) * (steps - 1), sc, rounding_mode="floor")
    t_p = 2 + torch.clamp(slot, max=steps - 2)  # 1-based step of the spike (pixels p > 0)
    spikes = (p > 0).to(DTYPE)
    events = torch.zeros((steps, *p.shape), dtype=DTYPE, device=p.device)
    events[0] = p
    if steps > 1:
        events[1] = -p
    for t in range(2, steps + 1):
        events[t - 1] += sc * spikes * (t_p == t)
    return events.to(PAYLOAD), spikes


_HEAP_WARM = False


def _keep_heap_pages() -> None:
    """Let the CPU heap keep freed pages between batches (once per process). glibc's malloc
    serves blocks above its mmap threshold (128 KiB until it adapts) with fresh mappings and
    gives the heap back above twice that threshold, so every batch's multi-MiB spike trains
    page-fault anew: on LeNet rate, 1e5 minor faults per 1,000 samples, ~0.15 ms/sample of
    kernel time, half the run. Freeing one mapped block raises both thresholds to its size
    (glibc's own adaptation, capped at 32 MiB); a 31 MiB block makes a batch's tensors reuse
    heap pages. No effect on the integers; harmless under other allocators."""
    global _HEAP_WARM
    if not _HEAP_WARM:
        _HEAP_WARM = True
        block = torch.empty(31 << 20, dtype=torch.uint8)
        del block


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
    rules.window_sum = sums_windows(graph)
    interp = rules.interp = Interpreter(rules)
    steps = max([n.op.timesteps for n in graph.nodes
                 if isinstance(n.op, (neurons.IFNeurons, neurons.SingleSpikeNeurons))]
                + [n.op.K for n in graph.nodes
                   if isinstance(n.op, (neurons.FewSpikeNeurons, neurons.AmosNeurons))],
                default=1)
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if batch_size is None:  # from available memory: see backends/reference/memory.py
        from snnc.backends.reference.memory import auto_batch_size

        batch_size = auto_batch_size(steps, widest, 8, device)
    if device.type == "cpu":
        _keep_heap_pages()
    return run_batches(graph, interp, counters, x, batch_size, device, DTYPE, progress)
