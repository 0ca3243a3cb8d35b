"""Fuzzed NIR files through the CLI (the bad-NIR half of the fuzz set): byte splices and cuts of
the shipped example (examples/nir_import/model.nir), and mutated graphs (a node type renamed,
a weight reshaped, an edge reversed into a cycle). Every case ends in exit 0 or exactly one
``error: ...`` line with exit 2, no traceback, no file left behind on error."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cli import problems, run_cli, snapshot

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "nir_import" / "model.nir"
_BYTES = MODEL.read_bytes()
CASE_SECONDS = 60.0


def _compile(case: Path, name: str) -> None:
    cwd = case / "cwd"
    cwd.mkdir()
    out = case / "out.snnc"
    before = snapshot(case)
    o = run_cli(["compile", str(case / name), "--target", "loihi2", "-q", "-o", str(out)],
                CASE_SECONDS, cwd)
    assert problems(o, before, snapshot(case), out) == []
    if o.rc == 2:
        assert not out.exists()


@settings(max_examples=30, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(_BYTES) - 1), st.binary(max_size=8)),
                      min_size=0, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, len(_BYTES))))
def test_byte_edits_of_a_nir_file(tmp_path_factory, edits, cut):
    data = bytearray(_BYTES)
    for pos, chunk in edits:
        data[pos:pos + len(chunk)] = chunk
    case = tmp_path_factory.mktemp("nirfuzz")
    (case / "m.nir").write_bytes(bytes(data[:cut] if cut is not None else data))
    _compile(case, "m.nir")


def _rename_type(f):
    del f["node/nodes/lif1/type"]
    f["node/nodes/lif1/type"] = "AdaptiveLIF"


def _reshape_weight(f):
    w = f["node/nodes/fc2/weight"][()]
    del f["node/nodes/fc2/weight"]
    f["node/nodes/fc2/weight"] = w[:, :-3]


def _cycle(f):
    edges = [tuple(e) for e in f["node/edges"][()]]
    del f["node/edges"]
    f["node/edges"] = edges + [(b"lif2", b"fc1")]


def _drop_nodes(f):
    del f["node/nodes"]


@pytest.mark.parametrize("mutate", [_rename_type, _reshape_weight, _cycle, _drop_nodes])
def test_mutated_nir_graphs(tmp_path, mutate):
    path = tmp_path / "m.nir"
    path.write_bytes(_BYTES)
    with h5py.File(path, "r+") as f:
        mutate(f)
    o = run_cli(["compile", str(path), "-o", str(tmp_path / "out.snnc")], CASE_SECONDS, tmp_path)
    assert o.rc == 2 and o.crash is None, (o.rc, o.stderr)
    lines = o.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), o.stderr
    assert not (tmp_path / "out.snnc").exists()
