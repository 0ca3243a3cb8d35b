"""Kernels of the spiking simulators, shared by the float and the bit-exact rules, calibration
and fine-tuning: folding time into the batch, synaptic fan-out, max-pool window selection, the
single-spike hybrid input code and first-spike pooling.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from snnc.ir import ops
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES, pad2d
from snnc.sim.signals import Signal

__all__ = ["fold", "linear_over_time", "fanout", "gather_windows", "window_max", "hybrid_input",
           "hybrid_spike_train", "first_spike_max_pool"]


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
