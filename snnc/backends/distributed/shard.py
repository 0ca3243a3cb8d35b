"""One shard of a sharded simulation (what a Ray task runs) and the exact merge of shards.

Exactness: a shard is a row range of whole batches, simulated with the driver's batch size,
so every batch is the batch a one-process run simulates (same rows, same size: the same float
results). Counters are integer counts held in floats: each batch adds an integer-valued float
(float32 sums above 2^24 round to integers), and sums of integers below 2^53 are exact in any
order, so adding the shards' totals gives the one-process totals bit for bit; maxima merge by
max; readouts are concatenated in row order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from snnc.backends.lava.leaky import is_leaky_graph, simulate_leaky_lava
from snnc.backends.lava.runner import simulate_lava
from snnc.backends.reference.simulator import simulate
from snnc.data_shards import DataSource, read_rows
from snnc.metrics.inference import ann_predict
from snnc.sim.signals import SimulationResult

__all__ = ["ShardResult", "merge_shards", "simulate_shard"]


@dataclass(frozen=True)
class ShardResult:
    """The simulation of rows ``[lo, hi)``: readouts, ANN outputs, labels and raw counts."""

    lo: int
    hi: int
    outputs: list[np.ndarray]
    ann: np.ndarray
    labels: np.ndarray | None
    spikes: dict[str, float]
    synops: dict[str, float]
    max_spikes: dict[str, float]
    neurons: dict[str, int]


def simulate_shard(payload: tuple, source: DataSource, lo: int, hi: int, *, backend: str,
                   batch_size: int, num_classes: int | None, device: str | None = None,
                   progress: Callable[[int], None] | None = None,
                   y_kind: str = "labels") -> ShardResult:
    """Read rows ``[lo, hi)`` of ``source`` (only those) and simulate them; ``payload`` is
    ``(graph, source model bytes, baseline graph or None)``, put in the object store once per
    run. The ANN baseline is the ONNX source in onnxruntime, or for an imported SNN (no ONNX)
    the baseline graph in the float simulator, as in one process."""
    graph, model, baseline = payload
    ds = read_rows(source, lo, hi, graph.inputs[0].shape, num_classes=num_classes,
                   y_kind=y_kind)
    if backend == "lava":  # Lava processes; an imported leaky SNN on stock Lava LIF
        run = simulate_leaky_lava if is_leaky_graph(graph) else simulate_lava
        result = run(graph, ds.x, progress=progress)
    else:
        result = simulate(graph, ds.x, batch_size=batch_size, progress=progress, device=device)
    ann = (ann_predict(model, ds.x) if baseline is None
           else simulate(baseline, ds.x).outputs[0])
    return ShardResult(lo, hi, result.outputs, ann, ds.y, result.spikes, result.synops,
                       result.max_spikes, result.neurons)


def _sum(tables: Sequence[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for t in tables:
        for k, v in t.items():
            total[k] = total.get(k, 0.0) + v
    return total


def merge_shards(parts: Sequence[ShardResult], wall_s: float):
    """The one-process ``SimulationResult``, ANN outputs and labels from shards in row order."""
    parts = sorted(parts, key=lambda p: p.lo)
    most: dict[str, float] = {}
    for p in parts:
        for k, v in p.max_spikes.items():
            most[k] = max(most.get(k, 0.0), v)
    outputs = [np.concatenate([p.outputs[i] for p in parts]) for i in range(len(parts[0].outputs))]
    result = SimulationResult(outputs, _sum([p.spikes for p in parts]), dict(parts[0].neurons),
                              _sum([p.synops for p in parts]), parts[-1].hi - parts[0].lo,
                              wall_s, most)
    labels = None if parts[0].labels is None else np.concatenate([p.labels for p in parts])
    return result, np.concatenate([p.ann for p in parts]), labels
