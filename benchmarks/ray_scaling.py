"""Ray scale-out on this machine: `simulate --ray` with 1 and 2 workers (speed-up ratio) against
the one-process run, and the per-task overhead of a shard (docs/scale-out.md).

    OMP_NUM_THREADS=1 python benchmarks/ray_scaling.py [--samples 1000] [--batch-size 20]
        [--tasks 40] [--repeats 3] [--method rate] [--timesteps 64]

One local Ray cluster of 2 CPUs is started once (its start-up time is reported apart); every
configuration runs once to warm its worker processes, then ``--repeats`` times (best wall time
kept: the machine is shared). The metrics of every run are checked equal to the one-process run (wall_s apart).
Per-task overhead: ``--tasks`` one-sample shards as Ray tasks on 1 worker, minus the same shards
simulated in this process, divided by the number of tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import snnc
from snnc.backends.distributed import connect_ray, run_tasks
from snnc.backends.distributed.shard import simulate_shard
from snnc.data_shards import open_source

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet"


def best(fn, repeats: int) -> tuple[float, dict]:
    fn()  # warm-up: worker processes import snnc and torch once
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = fn()
        runs.append((time.perf_counter() - start, metrics))
    return min(runs, key=lambda r: r[0])


def same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "wall_s"} == \
        {k: v for k, v in b.items() if k != "wall_s"}


def task_overhead(art, tasks: int, repeats: int) -> dict:
    source = open_source(LENET / "test.npz", limit=tasks)
    payload = (art.graph, art.source_model, None)
    kw = {"source": source, "backend": "cpu", "batch_size": 1, "num_classes": 10}
    calls = [dict(lo=i, hi=i + 1, **kw) for i in range(tasks)]
    local, _ = best(lambda: [simulate_shard(payload, **c) for c in calls], repeats)
    with connect_ray() as ray:
        ref = ray.put(payload)
        remote, _ = best(lambda: run_tasks(ray, simulate_shard,
                                           [dict(payload=ref, **c) for c in calls], limit=1),
                         repeats)
    return {"tasks": tasks, "in_process_s": local, "ray_1_worker_s": remote,
            "overhead_ms_per_task": 1e3 * (remote - local) / tasks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--method", default="rate")
    ap.add_argument("--timesteps", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="snnc-ray-bench-"))
    art = snnc.compile(LENET / "lenet.onnx", method=args.method, timesteps=args.timesteps,
                       calib=LENET / "calib.npz", out=tmp / "lenet.snnc")
    data, n, b = LENET / "test.npz", args.samples, args.batch_size
    out = {"model": f"lenet {args.method} T={args.timesteps}", "samples": n, "batch_size": b,
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "load_average_1min_at_start": os.getloadavg()[0]}
    one_s, one = best(lambda: art.simulate(data, limit=n, batch_size=b), args.repeats)
    out["one_process_s"] = one_s
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    out["cluster_start_s"] = time.perf_counter() - start
    for w in (1, 2):
        s, m = best(lambda w=w: art.simulate(data, limit=n, batch_size=b, ray=True, workers=w),
                    args.repeats)
        out[f"ray_{w}_workers_s"] = s
        out[f"ray_{w}_workers_equal"] = same(m, one)
    out["speedup_2_vs_1"] = out["ray_1_workers_s"] / out["ray_2_workers_s"]
    out["speedup_2_vs_one_process"] = one_s / out["ray_2_workers_s"]
    out.update(task_overhead(art, args.tasks, args.repeats))
    out["load_average_1min_at_end"] = os.getloadavg()[0]
    ray.shutdown()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
