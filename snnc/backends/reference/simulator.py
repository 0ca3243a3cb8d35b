"""Batched torch reference simulator for converted (spiking) graphs: the float rules of
``snnc.sim`` (the ideal network) or, for quantized graphs, the bit-exact integer rules
(``fixed_point``), run over a data set in memory-bounded batches, on CUDA when present."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from snnc.backends.reference import memory
from snnc.backends.reference.devices import default_device
from snnc.backends.reference.fixed_point import simulate_fixed
from snnc.ir.graph import Graph
from snnc.ir.quantized import is_quantized
from snnc.sim.float_rules import FloatRules
from snnc.sim.run import run_batches, time_steps
from snnc.sim.signals import POOL, Buffers, Counters, SimulationResult

__all__ = ["SimulationResult", "default_device", "simulate"]


def simulate(graph: Graph, x: np.ndarray, *, batch_size: int | None = None,
             device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run the converted graph on ``x`` (N, ...) and return readouts and spike statistics.
    Quantized graphs (from ``quantize``) run bit-exactly in integers (``fixed_point``)."""
    if is_quantized(graph):
        return simulate_fixed(graph, x, batch_size=batch_size, device=device, progress=progress)
    device = torch.device(device) if device is not None else default_device()
    counters = Counters()
    rules = FloatRules(counters, dtype)
    rules.buffers = Buffers(POOL)  # spike trains in reused memory (run_batches releases them)
    steps = time_steps(graph)
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if batch_size is None:  # from available memory: see backends/reference/memory.py
        batch_size = memory.auto_batch_size(steps, widest, torch.finfo(dtype).bits // 8, device)
    try:
        return run_batches(graph, rules, counters, x, batch_size, device, dtype, progress,
                           rules.buffers)
    finally:  # the results hold copies: the arrays can serve the next run
        rules.buffers.close()
