"""Data larger than memory (snnc/data_shards.py), without Ray: a directory of .npz shards and a
memory-mapped .npz read in row ranges give exactly the rows of the single file, and a sharded
run in this process gives exactly the metrics of the plain run."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from support.cli import assert_user_error
from support.cli import snnc as cli
from support.paths import EXAMPLES

import snnc
from snnc.backends.distributed.driver import row_ranges
from snnc.data import load_dataset
from snnc.data_shards import open_source, read_rows
from snnc.errors import BadData

LENET = EXAMPLES / "lenet"
SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The first 100 test samples as one uncompressed file, one compressed file, and a directory
    of compressed shards of uneven sizes (37, 40, 23)."""
    t = tmp_path_factory.mktemp("shards")
    with np.load(LENET / "test.npz") as z:
        x, y = z["x"][:100], z["y"][:100]
    np.savez(t / "plain.npz", x=x, y=y)
    np.savez_compressed(t / "packed.npz", x=x, y=y)
    (t / "dir").mkdir()
    for i, (lo, hi) in enumerate([(0, 37), (37, 77), (77, 100)]):
        np.savez_compressed(t / "dir" / f"part{i:02d}.npz", x=x[lo:hi], y=y[lo:hi])
    return t


@pytest.mark.parametrize("name", ["plain.npz", "packed.npz", "dir"])
def test_rows_equal_the_single_file(files, name):
    whole = load_dataset(files / "plain.npz", SHAPE)
    source = open_source(files / name)
    assert source.rows == 100 and source.labelled
    for lo, hi in [(0, 100), (30, 45), (36, 78), (99, 100)]:  # within and across shards
        part = read_rows(source, lo, hi, SHAPE, num_classes=10)
        assert np.array_equal(part.x, whole.x[lo:hi]) and np.array_equal(part.y, whole.y[lo:hi])
        assert part.x.dtype == np.float32 and part.y.dtype == np.int64
    assert open_source(files / name, limit=60).rows == 60


def test_uncompressed_member_is_memory_mapped(files):
    part = read_rows(open_source(files / "plain.npz"), 10, 20, SHAPE)
    assert isinstance(part.x, np.memmap) and isinstance(part.y, np.memmap)


def test_shard_errors_name_the_file(files, tmp_path):
    with pytest.raises(BadData, match="holds no .npz files"):
        open_source(tmp_path)
    np.savez(tmp_path / "a.npz", x=np.zeros((2, *SHAPE), np.float32), y=np.array([0, 1]))
    np.savez(tmp_path / "b.npz", x=np.zeros((2, *SHAPE), np.float32))
    with pytest.raises(BadData, match="b.npz has no labels 'y' but a.npz has"):
        open_source(tmp_path)
    (tmp_path / "b.npz").unlink()
    np.savez(tmp_path / "b.npz", x=np.full((2, *SHAPE), np.nan, np.float32), y=np.array([0, 1]))
    with pytest.raises(BadData, match=r"data file .*b\.npz: x contains 1568 NaN"):
        read_rows(open_source(tmp_path), 0, 4, SHAPE)
    with pytest.raises(BadData, match="per-sample shape"):
        read_rows(open_source(tmp_path), 0, 1, (3, 28, 28))


def test_row_ranges_are_whole_batches():
    assert row_ranges(100, 7, 4) == [(0, 28), (28, 56), (56, 84), (84, 100)]
    assert row_ranges(10, 64, 8) == [(0, 10)]
    assert row_ranges(100, 10, 1, max_rows=35) == [(0, 30), (30, 60), (60, 90), (90, 100)]


@pytest.fixture(scope="module")
def fs_art(tmp_path_factory):
    return snnc.compile(LENET / "lenet.onnx", method="fs", calib=LENET / "calib.npz",
                        out=tmp_path_factory.mktemp("art") / "fs.snnc")


def _same(a: dict, b: dict) -> None:
    a, b = dict(a), dict(b)
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b


@pytest.mark.parametrize("name", ["dir", "plain.npz"])
def test_sharded_in_process_equals_plain_run(files, fs_art, name):
    """``--data DIR`` without Ray runs shard by shard in this process; same metrics."""
    plain = fs_art.simulate(files / "plain.npz", batch_size=16)
    _same(fs_art.simulate(files / name, batch_size=16), plain)
    o = cli("simulate", str(fs_art.path), "--data", str(files / "dir"), "--json", "-q",
            "--batch-size", "16", "--limit", "50")
    assert o.returncode == 0, o.stderr
    assert '"samples": 50' in o.stdout


def test_ray_options_need_ray_and_ray_needs_the_extra(fs_art, monkeypatch):
    o = cli("simulate", str(fs_art.path), "--data", str(LENET / "test.npz"), "--workers", "2")
    assert_user_error(o, "--workers need --ray")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    o = cli("simulate", str(fs_art.path), "--data", str(LENET / "test.npz"), "--ray")
    assert_user_error(o, "pip install 'snnc[ray]'")


def test_unreachable_address_is_one_error_line_quickly(fs_art):
    """Refused (127.0.0.1:1) and unroutable or not Ray (10.255.255.1): one line, exit 2,
    within the bounded connect timeout (cluster.CONNECT_TIMEOUT_S), no cluster started."""
    for address in ("127.0.0.1:1", "10.255.255.1:6379"):
        start = time.perf_counter()
        o = cli("simulate", str(fs_art.path), "--data", str(LENET / "test.npz"), "--ray",
                "--ray-address", address)
        assert_user_error(o, f"Ray cluster at {address}")
        assert time.perf_counter() - start < 20


@pytest.mark.parametrize("target,cap", [("cpu", 1 << 20), ("loihi2", 8 << 20)])
def test_driver_batch_size_is_the_simulators(tmp_path, monkeypatch, target, cap):
    """Without --batch-size the driver fixes the batch size ``simulate`` would choose (float
    and bit-exact graphs), so shards are whole batches of the one-process run."""
    from snnc.backends.distributed.driver import default_batch_size
    from snnc.backends.reference import memory
    from snnc.backends.reference.simulator import simulate

    art = snnc.compile(LENET / "lenet.onnx", method="fs", target=target,
                       calib=LENET / "calib.npz", out=tmp_path / "a.snnc")
    monkeypatch.setattr(memory, "BUDGET_CAP", cap)  # a few samples per batch
    batch = default_batch_size(art.graph)
    assert 1 < batch < 24
    with np.load(LENET / "test.npz") as z:
        x = z["x"][:24]
    sizes = []
    simulate(art.graph, x, progress=sizes.append)
    assert sizes[0] == batch
