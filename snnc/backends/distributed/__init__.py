"""Data-parallel simulation on Ray (docs/scale-out.md): the samples are split into row ranges
that are whole batches, each simulated by a Ray task with the reference (or Lava) backend; the
driver merges readouts and integer counts exactly, so the metrics equal a one-process run with
the same batch size. ``import ray`` happens only when a run asks for Ray (the ``[ray]`` extra).
"""

from snnc.backends.distributed.cluster import MAX_RETRIES, RAY_EXTRA, connect_ray, run_tasks
from snnc.backends.distributed.driver import simulate_sharded

__all__ = ["MAX_RETRIES", "RAY_EXTRA", "connect_ray", "run_tasks", "simulate_sharded"]
