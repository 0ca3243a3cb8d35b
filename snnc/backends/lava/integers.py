"""Integer helpers shared by snnc's Lava process models and the runner: two's complement
wrap, packing of records into 48-bit words (and back), and the per-step timing of a sample's
period (local step, folded weight exponent, shift).

All integers are numpy int64 (exact; the reference simulator holds the same integers in
float64).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "WORD_BITS",
    "IntegerState",
    "local_step",
    "pack",
    "shift",
    "signed",
    "step_exponent",
    "unpack",
    "words",
    "wrap",
]

WORD_BITS = 48  # Var.get sends each element as a float64: 48-bit words stay exact


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap into (-2^(bits-1), 2^(bits-1)] (fixed_point.overflow 'wrap')."""
    lim = 1 << (bits - 1)
    return x - 2 * lim * ((x + lim - 1) // (2 * lim))


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
    """The number of packed words holding ``count`` values of ``bits`` bits."""
    per = WORD_BITS // bits
    return -(-count // per)


def local_step(time_step: int, period: int) -> int:
    """The step 1..``period`` of a global Lava time step within its sample's period."""
    return (time_step - 1) % period + 1


def step_exponent(base: int, fold, time_step: int, period: int) -> int:
    """The weight exponent of a synapse in this step. ``fold`` = (first local step, per-step
    exponent offsets k(t)) when its input is a few-spike / AMOS population on a binary-spike
    target (Loihi 1): the payload d(t) = 2^k(t) is folded into the weights, so a binary spike
    of step t is weighted W 2^(e + k(t)) -- the same integers as W d(t) 2^e
    (docs/targets.md §2a)."""
    if fold is None:
        return base
    first, offsets = fold
    t = local_step(time_step, period) - first
    return base + int(offsets[t]) if 0 <= t < len(offsets) else base


def shift(acc: np.ndarray, exp: int) -> np.ndarray:
    """``acc << exp``, or the arithmetic (floor) right shift for a negative exponent."""
    return acc << exp if exp >= 0 else acc >> -exp


class IntegerState:
    """What the integer neuron models (IF, single-spike, FS, AMOS) share: the state format
    from the process parameters, and its overflow (24-bit wrap or saturation)."""

    def read_state(self, p) -> None:
        self.bias = np.asarray(p["bias"], np.int64)
        self.shift, self.bits = int(p["act_shift"]), int(p["uv_bits"])
        self.u_mode, self.v_mode = p["u_overflow"], p["v_overflow"]
        self.lim = (1 << (self.bits - 1)) - 1

    def overflow(self, x: np.ndarray, mode: str) -> np.ndarray:
        if mode == "wrap":
            return wrap(x, self.bits)
        if mode == "saturate":
            return np.clip(x, -self.lim, self.lim)
        return x
