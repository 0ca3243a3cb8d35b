"""Integer arithmetic of the bit-exact simulator (Lava ``fixed_pt`` semantics, docs/targets.md
§2a): weight-exponent shifts, wrap/saturate overflow, exact integer convolutions in float
tensors, spike counts of FS-ReLU codes, and the host-side input codes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from snnc.ir import leaky, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph
from snnc.ir.interpret import ANN_RULES
from snnc.sim.signals import DTYPE, PAYLOAD

__all__ = ["shift_round", "overflow", "float_twin", "relu_shift", "exact_linear", "popcount",
           "or_reduce", "spike_counts", "input_code", "sums_windows", "hybrid_events"]


def shift_round(acc: torch.Tensor, exp: int) -> torch.Tensor:
    """``acc << exp`` for exp >= 0, arithmetic ``acc >> -exp`` (floor) otherwise (Lava Dense)."""
    if exp == 0:
        return acc  # (x * 1.0 is x, bit for bit: no pass over the data)
    if exp > 0:
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


def float_twin(op) -> ops.Op:
    """The float op with the integer mantissas as weights (no bias): W p in integers."""
    if isinstance(op, q.QConv2d):
        return ops.Conv2d(op.weight.astype(np.float64), np.zeros(op.weight.shape[0]), op.stride,
                          op.padding, op.dilation, op.groups)
    return ops.Dense(op.weight.astype(np.float64), np.zeros(op.weight.shape[0]))


def relu_shift(op) -> int | None:
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


def exact_linear(base: ops.Op, x: torch.Tensor, row_l1: float,
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
    return low + limb * exact_linear(base, q, row_l1).to(DTYPE)


def popcount(code: torch.Tensor) -> torch.Tensor:
    """Set bits of non-negative integers below 2^31 (SWAR), as float64: the spike count of a
    K-bit FS-ReLU code, without summing its K payload steps."""
    c = code.to(torch.int64)
    c = c - ((c >> 1) & 0x55555555)
    c = (c & 0x33333333) + ((c >> 2) & 0x33333333)
    c = (c + (c >> 4)) & 0x0F0F0F0F
    return (((c * 0x01010101) & 0xFFFFFFFF) >> 24).to(DTYPE)


POPCOUNT_16 = np.array([bin(i).count("1") for i in range(2**16)], np.float64)


def or_reduce(code: torch.Tensor) -> int:
    """Bitwise OR of all codes (halving the tensor each round): which neurons of a circuit
    fired for any gate of any sample."""
    c = code.flatten()
    while c.numel() > 1:
        half = (c.numel() + 1) // 2
        head = c[:half].clone()
        head[:c.numel() - half] |= c[half:]
        c = head
    return int(c[0]) if c.numel() else 0


def spike_counts(code: torch.Tensor, K: int) -> torch.Tensor:
    """Spikes of FS-ReLU codes (their set bits), as float64: a table lookup for K <= 16."""
    if K <= 16:
        table = torch.as_tensor(POPCOUNT_16[:2**K], device=code.device)
        return table[code.to(torch.int64)]
    return popcount(code)


def input_code(op: q.InputQuantizer | q.QHybridInput, x: torch.Tensor) -> torch.Tensor:
    """The host's ``op.bits``-bit input code of x (signed or not), in float64."""
    lo, hi = ((-(2.0 ** (op.bits - 1) - 1), 2.0 ** (op.bits - 1) - 1) if op.signed
              else (0.0, 2.0**op.bits - 1))
    return torch.round(x.to(DTYPE) / op.scale).clamp(lo, hi)


def sums_windows(graph: Graph) -> bool:
    """Whether synapses may sum each input window at once (``FixedRules.window_sum``): only
    in few-spike graphs; IF, single-spike and leaky (imported) populations integrate step by
    step."""
    return not any(isinstance(n.op, (q.QIFNeurons, q.QSingleSpikeNeurons, leaky.QLeakyNeurons,
                                     leaky.QLeakyReadout)) for n in graph.nodes)


def hybrid_events(op: q.QHybridInput, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``QHybridInput`` on inputs x (N, ...): its payload events (timesteps, N, ...) and the
    spikes per pixel (N, ...), in integers held as float32."""
    p = input_code(op, x)
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
