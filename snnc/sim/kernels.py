"""Kernels of the spiking simulators, shared by the float and the bit-exact rules, calibration
and fine-tuning: folding time into the batch, synaptic fan-out, max-pool window selection, the
single-spike hybrid input code and first-spike pooling.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from snnc.ir import ops
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES, pad2d
from snnc.sim.signals import Signal

__all__ = [
    "GATE_ELEMS",
    "STEP_ROWS",
    "Stepped",
    "Train",
    "batch_of",
    "fanout",
    "first_spike_max_pool",
    "fold",
    "gate_rises",
    "gather_windows",
    "hybrid_input",
    "hybrid_spike_train",
    "linear_over_time",
    "on_cpu",
    "simple_gate",
    "step_slice",
    "step_values",
    "steps_of",
    "streamed_block",
    "window_max",
]

STEP_ROWS = 32  # samples x steps per block of a streamed (Stepped) signal
GATE_ELEMS = 1 << 20  # inputs per block of the rate max-pool gate (kernels.gate_rises)


class Train(Signal):
    """A rate population's spike train: ``x = bits * amplitude`` (T, N, ...), built on first
    use, with ``bits`` its 0/1 spikes in the float dtype and ``amplitude`` one scalar, so that
    gates work on the bits without scanning (or even making) ``x``."""

    def __init__(self, bits: torch.Tensor, amplitude: float, events: torch.Tensor) -> None:
        self.bits, self.amplitude, self.events = bits, amplitude, events
        self._x: torch.Tensor | None = None

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        if self._x is None:
            self._x = self.bits * self.amplitude
        return self._x


class Stepped(Signal):
    """A time-varying signal computed block by block on demand: ``block(lo, hi)`` gives steps
    lo..hi-1 (hi - lo, N, ...). A consumer that walks time (neurons, streamed synapses) takes
    blocks of ``STEP_ROWS`` samples x steps, which stay in cache between the synapse and the
    neuron update; ``x`` materializes all steps with one call (as an unstreamed rule would).
    Each block must have at least two rows: oneDNN convolutions give the same bits for a
    sample whatever the batch size, except for batches of one (tests/sim/test_streaming.py).
    ``bound``: a proven bound on ``|x|`` where known (integer synapses), else None."""

    def __init__(self, steps: int, batch: int, block, events: torch.Tensor | None = None,
                 bound: float | None = None) -> None:
        self.steps, self.batch, self._block, self.events = steps, batch, block, events
        self.bound = bound
        self._x: torch.Tensor | None = None

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        if self._x is None:
            self._x = self._block(0, self.steps)
        return self._x

    def block(self, lo: int, hi: int) -> torch.Tensor:
        return self._x[lo:hi] if self._x is not None else self._block(lo, hi)

    def bounds(self) -> list[int]:
        """Block boundaries: about STEP_ROWS rows each, none with a single row."""
        per = max(1, -(-STEP_ROWS // max(self.batch, 1)))
        cuts = list(range(0, self.steps, per)) + [self.steps]
        if len(cuts) > 2 and (cuts[-1] - cuts[-2]) * self.batch < 2:
            del cuts[-2]
        return cuts


def on_cpu(sig: Signal) -> bool:
    """Whether ``sig`` lives on the CPU (streaming pays there: blocks stay in its caches; on a
    GPU the many small kernels would cost more than they save)."""
    if isinstance(sig, Stepped):
        return True  # only made from CPU signals
    return (sig.bits if isinstance(sig, Train) else sig.x).device.type == "cpu"


def steps_of(sig: Signal) -> int:
    if isinstance(sig, Stepped):
        return sig.steps
    return (sig.bits if isinstance(sig, Train) else sig.x).shape[0]  # (no x made for this)


def batch_of(sig: Signal) -> int:
    if isinstance(sig, Stepped):
        return sig.batch
    return (sig.bits if isinstance(sig, Train) else sig.x).shape[1]


def step_slice(sig: Signal, lo: int, hi: int) -> Signal:
    """Steps lo..hi-1 of ``sig`` (a constant-in-time signal as is), events dropped."""
    if isinstance(sig, Stepped):
        return Signal(sig.block(lo, hi))
    if isinstance(sig, Train) and sig._x is None:  # the values of these steps only
        return Signal(sig.bits[lo:hi] * sig.amplitude)
    return Signal(sig.x if sig.x.shape[0] == 1 else sig.x[lo:hi])


def streamed_block(node: Node, sigs: list[Signal], lo: int, hi: int) -> torch.Tensor:
    """Steps lo..hi-1 of a streamed linear op's output. The sum of a spike ``Train`` and a
    same-shaped input ``a`` (residual joins) is one pass, ``torch.add(a, bits, alpha=amp)``,
    not ``bits * amp`` then ``a + x``: bits are 0/1, so the product is exact either way and the
    sum rounds once, the same (and a + b = b + a exactly)."""
    if isinstance(node.op, ops.Add) and len(sigs) == 2:
        trains = [i for i, s in enumerate(sigs) if isinstance(s, Train) and s._x is None]
        if len(trains) == 1:
            train, other = sigs[trains[0]], sigs[1 - trains[0]]
            bits, a = train.bits[lo:hi], step_slice(other, lo, hi).x
            if a.shape == bits.shape and a.dtype == bits.dtype:
                return torch.add(a, bits, alpha=train.amplitude)
    return linear_over_time(node, [step_slice(s, lo, hi) for s in sigs])


def step_values(sig: Signal, steps: int):
    """(t, value at step t) for t < steps: a constant signal repeats its one step; a
    ``Stepped`` one is computed block by block."""
    if isinstance(sig, Stepped) and sig._x is None:
        cuts = sig.bounds()
        for lo, hi in pairwise(cuts):
            block = sig.block(lo, hi)
            for t in range(lo, hi):
                yield t, block[t - lo]
        return
    x = sig.x
    for t in range(steps):
        yield t, x[t if x.shape[0] > 1 else 0]


def fold(sig: Signal, steps: int) -> torch.Tensor:
    x = sig.x
    if x.shape[0] != steps:
        x = x.expand(steps, *x.shape[1:])
    return x.reshape(steps * x.shape[1], *x.shape[2:])


def linear_over_time(node: Node, sigs: list[Signal]) -> torch.Tensor:
    """Apply the ANN rule of a linear op once over time folded into the batch."""
    steps = max(s.x.shape[0] for s in sigs)
    batch = max(s.x.shape[1] for s in sigs)
    folded = []
    for s in sigs:
        x = s.x
        if x.shape[1] != batch:  # constants (batch 1) broadcast; keep them unexpanded if alone
            x = x.expand(x.shape[0], batch, *x.shape[2:]) if len(sigs) > 1 else x
        folded.append(fold(Signal(x), steps))
    out = ANN_RULES[type(node.op)](node.op, *folded)
    return out.reshape(steps, -1, *out.shape[1:])


def fanout(node: Node, like: torch.Tensor) -> torch.Tensor:
    """Synapses leaving each input element of a synaptic op (from the gradient of the summed
    output of the op with 0/1 weights): exact for any padding, stride, dilation and groups."""
    op = node.op
    if isinstance(op, ops.GlobalAvgPool):
        return torch.ones(like.shape[1:], dtype=like.dtype, device=like.device)
    x = torch.zeros((1, *like.shape[1:]), dtype=like.dtype, device=like.device,
                    requires_grad=True)
    with torch.enable_grad():
        if isinstance(op, ops.AvgPool2d):
            y = F.avg_pool2d(pad2d(x, op, 0.0), op.kernel, op.stride)
            y = y * (op.kernel[0] * op.kernel[1])
        else:
            ind = replace(op, weight=(op.weight != 0).astype(np.float32),
                          bias=np.zeros_like(op.bias))
            y = ANN_RULES[type(op)](ind, x)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


def gather_windows(op, values: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Max-pool ``key`` and return ``values`` at the selected positions (same layout)."""
    if any(op.padding) or op.ceil_mode:
        key, values = pad2d(key, op, -torch.inf), pad2d(values, op, 0.0)
    k, v = key, values
    _, idx = F.max_pool2d(k, op.kernel, op.stride, 0, op.dilation, return_indices=True)
    return v.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)


def window_max(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
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


def hybrid_input(op, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HybridInputNeurons on x (N, ...): its output a(t) (T, N, ...) and spike counts (N, ...)."""
    spikes = hybrid_spike_train(x, op.x_max, op.timesteps)  # steps 2..T
    return torch.cat([x.unsqueeze(0), torch.cumsum(spikes, 0) * op.x_max], 0), spikes.sum(0)


def first_spike_max_pool(op, x: torch.Tensor) -> torch.Tensor:
    """FirstSpikeMaxPool2d on single-spike outputs a(t) = amplitude fired(t), (T, N, C, H, W):
    the max-pool of every step, whose window fires in the step of its earliest input spike."""
    steps, batch = x.shape[:2]
    out = ANN_RULES[ops.MaxPool2d](op, x.reshape(steps * batch, *x.shape[2:]))
    return out.reshape(steps, batch, *out.shape[1:])


def hybrid_spike_train(x: torch.Tensor, x_max: float, timesteps: int) -> torch.Tensor:
    """Spikes (timesteps-1, ...) of HybridInputNeurons for steps 2..T: one per pixel x > 0, at
    step 2 + floor((1 - min(x, x_max)/x_max)(T-1)) capped at T (brighter = earlier)."""
    steps = timesteps - 1
    if steps < 1:
        return x.new_zeros((0, *x.shape))
    rel = 1.0 - torch.clamp(x, max=x_max) / x_max
    slot = torch.clamp(torch.floor(rel * steps), max=steps - 1)  # 0-based step index - 2
    t = torch.arange(steps, dtype=x.dtype, device=x.device).reshape((-1,) + (1,) * x.dim())
    return ((slot.unsqueeze(0) == t) & (x > 0).unsqueeze(0)).to(x.dtype)


def simple_gate(op, steps: int) -> bool:
    """Whether ``gate_rises`` computes the spiking max-pool gate of ``op`` over ``steps``: non-
    overlapping windows (stride = kernel, no padding, dilation 1, floor mode) and keys below
    2^31."""
    cells = op.kernel[0] * op.kernel[1]
    return (not any(op.padding) and not op.ceil_mode and tuple(op.dilation) == (1, 1)
            and tuple(op.stride) == tuple(op.kernel) and (steps + 1) * cells < 2**31)


def gate_rises(bits: torch.Tensor, kernel: tuple[int, int],
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Rate max-pool gate on binary spikes ``bits`` (T, N, C, H, W; any dtype holding 0/1):
    each step each window passes the spike of its input with the most spikes so far (first in
    row-major order on ties), as ``gather_windows`` on the running counts. For non-overlapping
    windows (``simple_gate``) it needs no per-window argmax: cell i of P gets the key
    ``K_i(t) = count_i(t) P + (P - 1 - i)`` (its count including step t, ties to the earlier
    position; keys of a window are distinct and never decrease) and the window's largest key
    ``M(t)`` is its winner's. The gate passes a spike exactly when ``M(t) > M(t - 1)``
    (``M(0) = P - 1``): if the winner w spiked, ``K_w(t - 1) = M(t) - P`` and every other key at
    t - 1 is below ``M(t)`` (distinct, non-decreasing), so M rose; if it did not,
    ``M(t - 1) >= K_w(t - 1) = M(t)``. So the gate is a running sum, one window maximum and a
    difference in time, all on integers below ``(T + 1) P``: in the float dtype of ``bits``
    where it holds them exactly (no conversions), else in int16/int32; computed in blocks of
    about ``GATE_ELEMS`` inputs (steps in order, the sums carried over), which stay in cache.
    Returns the passed spikes (T, N, C, H // kh, W // kw), 0/1, in ``out`` (any dtype) if
    given, else in the key dtype."""
    (kh, kw), steps = kernel, bits.shape[0]
    cells = kh * kw
    hgt, wid = bits.shape[-2] // kh * kh, bits.shape[-1] // kw * kw
    exact = round(2 / torch.finfo(bits.dtype).eps) if bits.dtype.is_floating_point else 0
    dtype = (bits.dtype if (steps + 1) * cells <= exact
             else torch.int16 if (steps + 1) * cells < 2**15 else torch.int32)
    if out is None:
        out = torch.empty((steps, *bits.shape[1:-2], hgt // kh, wid // kw), dtype=dtype,
                          device=bits.device)
    pos = torch.arange(cells - 1, -1, -1, dtype=dtype, device=bits.device)
    pos = pos.reshape(kh, kw).repeat(hgt // kh, wid // kw)
    per = max(1, GATE_ELEMS // max(1, bits[0].numel()))
    last_key, last_best = pos, None  # the previous block's last step (K(-1) = pos)
    for lo in range(0, steps, per):
        spikes = bits[lo:lo + per, ..., :hgt, :wid]
        spikes = spikes if spikes.dtype == dtype else spikes.to(dtype)
        key = torch.empty(spikes.shape, dtype=dtype, device=bits.device)
        for t in range(key.shape[0]):  # running counts (faster than cumsum(0)), scaled by P
            torch.add(last_key, spikes[t], alpha=cells, out=key[t])
            last_key = key[t]
        best = window_max(key, kh, kw)  # M(t)
        rows = out[lo:lo + key.shape[0]]
        rose = rows if rows.dtype == dtype else torch.empty_like(best)
        if last_best is None:
            torch.sub(best[0], cells - 1, out=rose[0])
        else:
            torch.sub(best[0], last_best, out=rose[0])
        torch.sub(best[1:], best[:-1], out=rose[1:])
        rose.clamp_(max=1)  # M(t) - M(t - 1) >= 0: 1 where it rose
        if rose is not rows:
            rows.copy_(rose)
        last_best = best[-1]
    return out
