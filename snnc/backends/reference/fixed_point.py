"""Bit-exact fixed-point mode of the reference simulator, for graphs from ``quantize``: the
integer rules of ``snnc.sim.fixed_rules`` (Lava ``fixed_pt`` semantics, docs/targets.md §2a) run
batch by batch over a data set."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnc.backends.reference import memory
from snnc.backends.reference.devices import default_device
from snnc.errors import BackendError
from snnc.ir import neurons
from snnc.ir import quantized as q
from snnc.ir.graph import Graph
from snnc.sim.fixed_rules import FixedRules
from snnc.sim.integers import sums_windows
from snnc.sim.run import run_batches
from snnc.sim.signals import DTYPE, Counters, SimulationResult

__all__ = ["simulate_fixed"]


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
    counters = Counters()
    rules = FixedRules(counters, window_sum=sums_windows(graph))
    steps = max([n.op.timesteps for n in graph.nodes
                 if isinstance(n.op, (neurons.IFNeurons, neurons.SingleSpikeNeurons))]
                + [n.op.K for n in graph.nodes
                   if isinstance(n.op, (neurons.FewSpikeNeurons, neurons.AmosNeurons))],
                default=1)
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if batch_size is None:  # from available memory: see backends/reference/memory.py
        batch_size = memory.auto_batch_size(steps, widest, 8, device)
    if device.type == "cpu":
        _keep_heap_pages()
    return run_batches(graph, rules, counters, x, batch_size, device, DTYPE, progress)
