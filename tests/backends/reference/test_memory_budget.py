"""Default batch size from available memory, and the peak-memory bound of a real LeNet run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snnc.backends.reference import memory
from snnc.sim.signals import BufferPool

ROOT = Path(__file__).resolve().parents[3]
LENET = ROOT / "examples" / "lenet"


def test_available_bytes_is_plausible():
    avail = memory.available_bytes("cpu")
    assert 16 << 20 < avail < 1 << 50


def test_batch_follows_available_memory(monkeypatch):
    per_sample = memory.LIVE_TENSORS * 10 * 1000 * 4  # 240 kB
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 100 * per_sample * 4)
    assert memory.auto_batch_size(10, 1000, 4) == 100  # a quarter of what is available
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 0)
    assert memory.auto_batch_size(10, 1000, 4) == 1  # never below 1
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1 << 50)
    wide = 10 * per_sample  # a 10,000-neuron layer
    assert memory.auto_batch_size(10, 10_000, 4) == memory.BUDGET_CAP // wide == 223  # capped
    assert memory.auto_batch_size(10, 10_000, 8) == memory.BUDGET_CAP // (2 * wide)
    assert memory.auto_batch_size(1, 1, 4) == memory.MAX_BATCH


def test_cgroup_limit_caps_available(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text("805306368\n")
    real = memory._read_int
    monkeypatch.setattr(memory, "_read_int", lambda p: real(str(tmp_path / Path(p).name))
                        if p.startswith("/sys/fs/cgroup/memory.") else None)
    assert memory._cgroup_available() == 256 << 20
    # plus the simulator's pooled arrays, which the next run reuses (earlier tests filled it)
    assert memory.available_bytes("cpu") <= (256 << 20) + memory.POOL.bytes()
    monkeypatch.setattr(memory, "POOL", BufferPool(0))
    assert memory.available_bytes("cpu") <= 256 << 20
    (tmp_path / "memory.max").write_text("max\n")
    assert memory._cgroup_available() is None


def test_simulate_uses_the_budget(monkeypatch, tmp_path):
    # The simulator's default batch is the memory rule's answer (not a fixed element count).
    import numpy as np

    from snnc.api import compile_model
    from snnc.backends.reference import simulator

    seen = []
    real = memory.auto_batch_size
    monkeypatch.setattr(memory, "auto_batch_size",
                        lambda *a, **k: seen.append(a) or real(*a, **k))
    art = compile_model(LENET / "lenet.onnx", calib=LENET / "calib.npz",
                        out=tmp_path / "lenet.snnc")
    with np.load(LENET / "test.npz") as z:
        x = z["x"][:4]
    simulator.simulate(art.graph, x)
    assert seen and seen[0][1] == max(n.output.type.size for n in art.graph.nodes)


@pytest.mark.slow
def test_lenet_1000_images_under_2gb(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from memory import LIMIT_BYTES, peak_rss, snnc  # benchmarks/memory.py
    finally:
        sys.path.pop(0)
    out = tmp_path / "lenet.snnc"
    rss, _, rc, err = peak_rss(snnc("compile", LENET / "lenet.onnx", "--calib",
                                    LENET / "calib.npz", "-o", out, "-q"))
    assert rc == 0, err
    assert 50e6 < rss < LIMIT_BYTES  # the wrapper really measured the child
    rss, _, rc, err = peak_rss(snnc("simulate", out, "--data", LENET / "test.npz", "--limit",
                                    "1000", "-q"))
    assert rc == 0, err
    assert rss < LIMIT_BYTES == 2e9, f"peak RSS {rss / 1e6:.0f} MB"
