"""The driver of a sharded simulation: plan row ranges of whole batches, run them in this
process or as Ray tasks (the graph in the object store once, at most ``workers`` tasks in
flight, failed tasks retried), report progress over all shards, merge exactly."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from snnc.backends.distributed.cluster import connect_ray, run_tasks
from snnc.backends.distributed.shard import merge_shards, simulate_shard
from snnc.backends.reference import memory
from snnc.backends.reference.devices import default_device
from snnc.data_shards import DataSource, open_source, read_rows
from snnc.ir import neurons
from snnc.ir.graph import Graph
from snnc.ir.quantized import is_quantized
from snnc.sim.run import time_steps

__all__ = ["SHARDS_PER_WORKER", "SHARD_BYTES", "default_batch_size", "row_ranges",
           "simulate_sharded"]

SHARD_BYTES = 256 << 20  # at most this many bytes of float32 inputs per shard
SHARDS_PER_WORKER = 4  # balance and progress granularity against per-task overhead


def default_batch_size(graph: Graph, device: str | None = None) -> int:
    """The batch size ``simulate`` chooses for ``graph`` on this machine (backends/reference
    memory.py), fixed by the driver so that every worker simulates the same batches."""
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if is_quantized(graph):  # as fixed_point.simulate_fixed: float64 states
        steps = max([n.op.timesteps for n in graph.nodes
                     if isinstance(n.op, (neurons.IFNeurons, neurons.SingleSpikeNeurons))]
                    + [n.op.K for n in graph.nodes
                       if isinstance(n.op, (neurons.FewSpikeNeurons, neurons.AmosNeurons))],
                    default=1)
        return memory.auto_batch_size(steps, widest, 8, device or default_device())
    return memory.auto_batch_size(time_steps(graph), widest,
                                  torch.finfo(torch.float32).bits // 8,
                                  device or default_device())


def row_ranges(rows: int, batch: int, shards: int, max_rows: int | None = None) -> list:
    """``[lo, hi)`` ranges covering ``rows`` samples, each a whole number of batches (the last
    may end short), about ``shards`` of them, none over ``max_rows`` rows (but >= one batch)."""
    per = batch * max(1, math.ceil(rows / (batch * max(shards, 1))))
    if max_rows is not None:
        per = min(per, max(batch, max_rows // batch * batch))
    return [(lo, min(lo + per, rows)) for lo in range(0, rows, per)]


def simulate_sharded(graph: Graph, source_model: bytes, data, *, backend: str = "cpu",
                     limit: int | None = None, batch_size: int | None = None,
                     ray: bool = False, address: str | None = None,
                     workers: int | None = None, device: str | None = None,
                     baseline: Graph | None = None, y_kind: str = "labels",
                     on_start: Callable[[int], None] | None = None,
                     on_batch: Callable[[int], None] | None = None):
    """Simulate ``graph`` on ``data`` (an .npz or a directory of .npz shards) shard by shard,
    in this process or on Ray; returns ``(SimulationResult, ANN outputs, labels)`` equal to a
    one-process run with the same batch size (``wall_s`` apart). ``baseline``: the graph whose
    float simulation is the ANN baseline when the source is not ONNX (imported SNNs);
    ``y_kind``: how ``y`` is read (``snnc.data.load_dataset``: class labels, regression targets
    or auto)."""
    source: DataSource = open_source(data, limit=limit)
    classes = graph.outputs[0].type.size if len(graph.outputs[0].shape) == 1 else None
    read_rows(source, 0, 1, graph.inputs[0].shape, num_classes=classes,
              y_kind=y_kind)  # fail before work
    batch = batch_size or default_batch_size(graph, device)
    sample_bytes = 4 * int(np.prod(graph.inputs[0].shape, dtype=np.int64))
    if on_start is not None:
        on_start(source.rows)
    done = on_batch or (lambda k: None)
    start = time.perf_counter()
    run = functools.partial(simulate_shard, source=source, backend=backend, batch_size=batch,
                            num_classes=classes, device=device, y_kind=y_kind)
    if ray:
        with connect_ray(address, workers) as r:
            n = workers or max(1, int(r.cluster_resources().get("CPU", 1)))
            ranges = row_ranges(source.rows, batch, SHARDS_PER_WORKER * n,
                                SHARD_BYTES // sample_bytes)
            payload = r.put((graph, source_model, baseline))  # in the object store once, not per task
            calls = [dict(payload=payload, lo=lo, hi=hi, **run.keywords) for lo, hi in ranges]
            parts = run_tasks(r, simulate_shard, calls, limit=n, what="a simulation shard",
                              done=lambda i, part: done(part.hi - part.lo))
    else:
        ranges = row_ranges(source.rows, batch, 1, SHARD_BYTES // sample_bytes)
        parts = [run((graph, source_model, baseline), lo=lo, hi=hi, progress=done) for lo, hi in ranges]
    return merge_shards(parts, time.perf_counter() - start)
