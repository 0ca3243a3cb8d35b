"""Memory budget of the reference simulators: the default ``--batch-size`` is chosen from the
memory available now (cgroup limits included), so that a run's peak memory is bounded by the
batch size, not by the data set size.

Rule: activations of one batch may use at most ``min(AVAILABLE_FRACTION x available, BUDGET_CAP)``
bytes, counting ``LIVE_TENSORS`` live tensors of the widest layer over all time steps (input,
output, spike counts and neuron state of one layer, plus temporaries of its update). The batch is
then clamped to ``[1, MAX_BATCH]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from snnc.sim.signals import POOL

__all__ = [
    "AVAILABLE_FRACTION",
    "BUDGET_CAP",
    "LIVE_TENSORS",
    "MAX_BATCH",
    "auto_batch_size",
    "available_bytes",
]

AVAILABLE_FRACTION = 0.25  # leave room for the data set, onnxruntime and other processes
BUDGET_CAP = 512 << 20  # bytes of activations per batch; larger batches gain no speed on CPU
LIVE_TENSORS = 6
MAX_BATCH = 1024
_FALLBACK = 2 << 30  # when nothing can be read (non-Linux without sysconf)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) -> None


def _cgroup_available() -> int | None:
    """Room left under a container's memory limit (cgroup v2, then v1), if there is one."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        lim, used = _read_int(limit), _read_int(usage)
        if lim is not None and used is not None and lim < 1 << 60:
            return max(0, lim - used)
    return None


def available_bytes(device: torch.device | str | None = None) -> int:
    """Memory available for new allocations on ``device`` (free GPU memory for CUDA; for the
    CPU, MemAvailable capped by the cgroup limit, plus the simulator's pooled arrays, which the
    next run reuses)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return (min(values) if values else _FALLBACK) + POOL.bytes()  # the pool is for reuse


def auto_batch_size(steps: int, widest: int, itemsize: int,
                    device: torch.device | str | None = None) -> int:
    """Default batch size for a graph with ``steps`` time steps whose widest layer has
    ``widest`` neurons per sample, simulated with ``itemsize``-byte numbers."""
    budget = min(int(AVAILABLE_FRACTION * available_bytes(device)), BUDGET_CAP)
    per_sample = LIVE_TENSORS * max(1, steps) * max(1, widest) * itemsize
    return int(max(1, min(MAX_BATCH, budget // per_sample)))
