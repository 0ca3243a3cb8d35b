"""What flows between the spiking simulators' rules: signals, counters and results.

Every value is a ``Signal``: a tensor of shape (T or 1, N, ...) (time first; 1 = constant in time)
plus, for spike-carrying values, the spike ``events`` per element summed over time. The integer
(bit-exact) rules hold integers in float tensors: ``DTYPE`` (float64, exact below 2^53) for states
and anything that may exceed 2^24, ``PAYLOAD`` (float32, exact below 2^24) for spikes, payloads
and input codes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "DTYPE",
    "PAYLOAD",
    "POOL",
    "BufferPool",
    "Buffers",
    "CodeSignal",
    "Counters",
    "Signal",
    "SimulationResult",
    "Spikes",
]

DTYPE = torch.float64  # states and anything that may exceed 2^24
PAYLOAD = torch.float32  # spikes, payloads, input codes: integers below 2^24, exact in float32


@dataclass
class Signal:
    x: torch.Tensor  # (T or 1, N, ...)
    events: torch.Tensor | None = None  # (N, ...) spikes that arrive here, summed over time


class Spikes(Signal):
    """Binary spike trains (0/1 in float32), as rate populations and their max-pool gates
    send: consumers need not scan them for their range."""


class CodeSignal(Signal):
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

    def with_code(self, code: torch.Tensor, events: torch.Tensor | None) -> CodeSignal:
        return CodeSignal(code, self.d, events)


def _take_fitting(free: list[torch.Tensor], n: int, dtype: torch.dtype) -> torch.Tensor | None:
    """Remove and return the smallest array in ``free`` of ``dtype`` holding ``n`` elements and
    not over twice too large; None if there is none."""
    fits = [i for i, b in enumerate(free) if b.dtype == dtype and n <= b.numel() <= 2 * n]
    return free.pop(min(fits, key=lambda i: free[i].numel())) if fits else None


class BufferPool:
    """Spike-train arrays kept between simulations, at most ``limit`` bytes (``Buffers.close``
    gives a run's arrays here; the next run takes them before allocating). A fresh array of
    hundreds of MB costs a page fault per 4 KiB on its first writes, and on a virtual machine
    the kernel's cost per fault swings by 10-30x from call to call (benchmarks/RESULTS.md):
    repeated ``simulate`` calls on a reused array skip it. Like PyTorch's CUDA caching
    allocator, the memory stays with the process: ``clear()`` frees it;
    ``SNNC_BUFFER_POOL_MB`` sets the limit (0: keep nothing; default: an eighth of the
    machine's memory, at most 2 GiB)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free: list[torch.Tensor] = []

    def take(self, n: int, dtype: torch.dtype) -> torch.Tensor | None:
        """The smallest kept array of ``dtype`` holding ``n`` elements (not over twice too
        large), removed from the pool; None if there is none."""
        return _take_fitting(self.free, n, dtype)

    def bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.free)

    def give(self, arrays: list[torch.Tensor]) -> None:
        """Keep ``arrays`` (nothing may refer to them any more), largest first, while the pool
        stays within its limit; the rest are freed."""
        held = self.bytes()
        for b in sorted(arrays, key=lambda b: -b.numel()):
            size = b.numel() * b.element_size()
            if held + size <= self.limit:
                self.free.append(b)
                held += size

    def clear(self) -> None:
        self.free = []


def _pool_limit() -> int:
    """``SNNC_BUFFER_POOL_MB`` in bytes, else an eighth of physical memory, at most 2 GiB."""
    env = os.environ.get("SNNC_BUFFER_POOL_MB")
    if env is not None:
        return max(int(float(env) * 2**20), 0)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 0
    return min(ram // 8, 2 << 30)


POOL = BufferPool(_pool_limit())  # the process's pool (simulator.simulate closes into it)


class Buffers:
    """One run's big (T, N, ...) CPU arrays (spike trains of all steps), reused from batch to
    batch and, through ``pool``, from run to run. Fresh arrays of hundreds of MB cost a page
    fault per 4 KiB on their first writes (the kernel zeroes each page: ~20 % of a residual
    CNN batch at batch 100); a reused one does not. ``empty`` takes an array (contents
    undefined): from this run's free list, else the pool, else a new one; ``release`` gives
    every array taken back to this run's free list, and may only be called when nothing refers
    to them any more (run_batches, after a batch's readouts are copied out); ``close`` (end of
    the run, same condition) hands all of them to the pool. Other devices get plain
    ``torch.empty``."""

    def __init__(self, pool: BufferPool | None = None) -> None:
        self.taken: list[torch.Tensor] = []
        self.free: list[torch.Tensor] = []
        self.pool = pool

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
        n = math.prod(shape)
        if torch.device(device).type != "cpu":
            return torch.empty(shape, dtype=dtype, device=device)
        buf = _take_fitting(self.free, n, dtype)
        if buf is None and self.pool is not None:
            buf = self.pool.take(n, dtype)
        if buf is None:
            buf = torch.empty(n, dtype=dtype)
        self.taken.append(buf)
        return buf[:n].view(shape)

    def release(self) -> None:
        self.free.extend(self.taken)
        self.taken = []

    def close(self) -> None:
        """End of the run: every array goes to the pool (or is freed without one)."""
        self.release()
        if self.pool is not None:
            self.pool.give(self.free)
        self.free = []


@dataclass
class Counters:
    """Per-layer counts accumulated over a run: spikes per population, synaptic events per
    consuming layer, the fan-out of each synaptic op's inputs, the most spikes of one neuron."""

    spikes: dict[str, float] = field(default_factory=dict)
    synops: dict[str, float] = field(default_factory=dict)
    fanout: dict[str, torch.Tensor] = field(default_factory=dict)
    max_spikes: dict[str, float] = field(default_factory=dict)  # most spikes of one neuron

    def record_max(self, key: str, counts: torch.Tensor) -> None:
        if counts.numel():
            self.max_spikes[key] = max(self.max_spikes.get(key, 0.0), float(counts.max()))

    def add(self, table: dict, key: str, value: torch.Tensor | float) -> None:
        """Add ``value`` (a count, or a tensor of per-element counts) to ``table[key]``. Counts
        are integers: summed in float64 they are exact in any order (a float32 sum is not past
        2^24, and its rounding would depend on the thread count)."""
        if isinstance(value, torch.Tensor):
            value = value.sum(dtype=torch.float64)
        table[key] = table.get(key, 0.0) + float(value)


@dataclass(frozen=True)
class SimulationResult:
    outputs: list[np.ndarray]  # readout per graph output: (N, ...) mean over time
    spikes: dict[str, float]  # total spikes per population over all samples
    neurons: dict[str, int]  # neurons per population (per sample)
    synops: dict[str, float]  # synaptic events per consuming layer over all samples
    samples: int
    wall_s: float
    max_spikes: dict[str, float] = field(default_factory=dict)  # per population: most spikes
    # any single neuron emitted for one sample (from per-neuron records; AMOS and TTFS only)

    @property
    def spikes_per_neuron(self) -> float:
        total = sum(self.neurons.values()) * self.samples
        return sum(self.spikes.values()) / total if total else 0.0

    @property
    def synops_per_sample(self) -> float:
        return sum(self.synops.values()) / max(self.samples, 1)
