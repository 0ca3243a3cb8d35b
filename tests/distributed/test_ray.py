"""Simulation and sweeps on a real local Ray cluster (2 CPUs, started once for this module):
the metrics of a sharded run equal a one-process run in every key but wall_s (float fs and
rate, a bit-exact loihi2 artifact, shards from a directory or a memory-mapped file), a worker
killed mid-run changes nothing, a sweep on Ray equals the local sweep (the unreachable
address: test_data_shards.py, without a cluster in the process)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support.cli import snnc as cli
from support.paths import EXAMPLES

import snnc

ray = pytest.importorskip("ray")
LENET = EXAMPLES / "lenet"


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module; snnc uses the running session."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    t = tmp_path_factory.mktemp("ray")
    kinds = {"fs": ("fs", "cpu", None), "rate": ("rate", "cpu", 16),
             "loihi2": ("fs", "loihi2", None)}
    return {k: snnc.compile(LENET / "lenet.onnx", method=m, target=tg, timesteps=ts,
                            calib=LENET / "calib.npz", out=t / f"{k}.snnc")
            for k, (m, tg, ts) in kinds.items()}


def _same(a: dict, b: dict) -> None:
    a, b = dict(a), dict(b)
    assert a.pop("wall_s") >= 0 and b.pop("wall_s") >= 0
    assert a == b


@pytest.mark.parametrize("kind", ["fs", "rate", "loihi2"])
def test_ray_equals_one_process(cluster, arts, kind):
    art = arts[kind]
    one = art.simulate(LENET / "test.npz", limit=90, batch_size=10)
    sharded = art.simulate(LENET / "test.npz", limit=90, batch_size=10, ray=True, workers=2)
    _same(sharded, one)
    assert sharded["mode"] == ("bit-exact" if kind == "loihi2" else "float")


def test_cli_ray_json_equals_one_process_and_shards_dir(cluster, arts, tmp_path):
    with np.load(LENET / "test.npz") as z:
        x, y = z["x"][:64], z["y"][:64]
    (tmp_path / "dir").mkdir()
    for i, (lo, hi) in enumerate([(0, 20), (20, 50), (50, 64)]):
        np.savez_compressed(tmp_path / "dir" / f"s{i}.npz", x=x[lo:hi], y=y[lo:hi])
    np.savez(tmp_path / "big.npz", x=x, y=y)  # uncompressed: workers memory-map their rows
    art = str(arts["loihi2"].path)
    runs = {}
    for name, extra in [("one", ["--data", str(LENET / "test.npz"), "--limit", "64"]),
                        ("dir", ["--data", str(tmp_path / "dir"), "--ray"]),
                        ("mmap", ["--data", str(tmp_path / "big.npz"), "--ray", "--workers",
                                  "2"])]:
        o = cli("simulate", art, *extra, "--batch-size", "8", "--json", "-q")
        assert o.returncode == 0, o.stderr
        runs[name] = json.loads(o.stdout)
    _same(runs["dir"], runs["one"])
    _same(runs["mmap"], runs["one"])


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def _kill_one_shard_worker(stop: threading.Event, killed: list) -> None:
    """Kill (SIGKILL) the first worker process of this test's cluster that runs a shard."""
    while not stop.is_set() and not killed:
        for p in Path("/proc").glob("[0-9]*"):
            try:
                title = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::simulate_shard") and _descends_from(int(p.name),
                                                                           os.getpid()):
                os.kill(int(p.name), signal.SIGKILL)
                killed.append(int(p.name))
                return
        time.sleep(0.02)


def test_worker_killed_mid_run_changes_nothing(cluster, arts):
    art = arts["rate"]
    one = art.simulate(LENET / "test.npz", limit=160, batch_size=10)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_shard_worker, args=(stop, killed))
    killer.start()
    try:
        sharded = art.simulate(LENET / "test.npz", limit=160, batch_size=10, ray=True,
                               workers=2)
    finally:
        stop.set()
        killer.join()
    assert killed, "no shard worker was seen running"
    _same(sharded, one)


@pytest.mark.slow  # ~10 s on idle cores, 26 s on the shared machine
def test_sweep_on_ray_equals_local_sweep(cluster, tmp_path):
    """``snnc sweep --ray`` (grid points as Ray tasks) gives the rows of ``snnc.sweep`` run in
    this process, timings apart, and an HTML page with the table and both plots."""
    local = snnc.sweep(LENET / "lenet.onnx", calib=LENET / "calib.npz",
                       data=LENET / "test.npz", methods=["fs", "ttfs"],
                       timesteps={"fs": [4], "ttfs": [3]}, limit=40)
    out = tmp_path / "sweep.html"
    o = cli("sweep", str(LENET / "lenet.onnx"), "--calib", str(LENET / "calib.npz"), "--data",
            str(LENET / "test.npz"), "--methods", "fs,ttfs", "--timesteps", "fs=4",
            "--timesteps", "ttfs=3", "--limit", "40", "--json", "-q", "--ray", "--workers", "2",
            "-o", str(out))
    assert o.returncode == 0, o.stderr
    remote = json.loads(o.stdout)["points"]
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page
    strip = ("compile_s", "simulate_s")
    for a, b in zip(local, remote, strict=True):
        assert {k: v for k, v in a.items() if k not in strip} == \
            {k: v for k, v in b.items() if k not in strip}
    assert [(r["method"], r["timesteps"]) for r in remote] == [("fs", 4), ("ttfs", 3)]
    assert all(r["error"] is None and r["accuracy"] > 0.9 for r in remote)
    assert any(r["pareto"] for r in remote)


@pytest.mark.slow
@pytest.mark.lava
def test_lava_backend_shards_too(cluster, arts):
    """--backend lava on Ray: each task runs its samples in Lava processes; the metrics equal
    the one-process Lava run (and the bit-exact reference's counts)."""
    art = arts["loihi2"]
    one = art.simulate(LENET / "test.npz", backend="lava", limit=4, batch_size=2)
    sharded = art.simulate(LENET / "test.npz", backend="lava", limit=4, batch_size=2, ray=True,
                           workers=2)
    _same(sharded, one)


def test_regression_targets_shard_like_labels(cluster, tmp_path):
    """An autoencoder's test file holds images as ``y`` (regression targets): sharded runs, on
    Ray or from a directory of shards, read them as one process does (they were refused as
    "expected class indices")."""
    ex = EXAMPLES / "autoencoder"
    art = snnc.compile(ex / "autoencoder.onnx", method="fs", calib=ex / "calib.npz",
                       out=tmp_path / "ae.snnc")
    one = art.simulate(ex / "test.npz", limit=30, batch_size=10)
    assert one["task"] == "regression" and one["mse"] is not None
    _same(art.simulate(ex / "test.npz", limit=30, batch_size=10, ray=True, workers=2), one)
    d = np.load(ex / "test.npz")
    (tmp_path / "shards").mkdir()
    for i, lo in enumerate((0, 12)):
        np.savez(tmp_path / "shards" / f"part{i}.npz", x=d["x"][lo:lo + 12 + 6 * i],
                 y=d["y"][lo:lo + 12 + 6 * i])
    _same(art.simulate(tmp_path / "shards", batch_size=10), one)
