"""Artifacts: round trip, byte determinism, overwrite rules, tamper detection, schema versions and
atomicity of writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import snnc
from snnc import artifact as art
from snnc.artifact import (SCHEMA_VERSION, Artifact, load_artifact, verify_artifact,
                           write_artifact)
from snnc.errors import ArtifactError
from snnc.ir import GraphBuilder, TensorType, format_graph, ops
from snnc.ir.serialize import npz_bytes

SOURCE = b"\x08\x07fake onnx bytes\x00\x01"


def small_graph():
    rng = np.random.default_rng(0)
    b = GraphBuilder("net")
    x = b.input("x", TensorType((1, 6, 6)))
    c = b.add("conv", ops.Conv2d(rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
                                 np.zeros(2, np.float32), padding=(1, 1, 1, 1)), x)
    r = b.add("relu", ops.Activation("relu"), c)
    f = b.add("flat", ops.Reshape((72,)), r)
    d = b.add("fc", ops.Dense(rng.standard_normal((3, 72)).astype(np.float32),
                              np.ones(3, np.float32)), f)
    return b.build([d])


CALLER = {"target": "loihi2", "method": "fs", "options": {"timesteps": 4},
          "layers": [{"name": "conv", "neurons": np.int64(72)}], "metrics": {"acc": 0.5}}


@pytest.fixture
def written(tmp_path):
    return write_artifact(tmp_path / "a.snnc", small_graph(), CALLER, SOURCE,
                          extra_files={"placement.json": b"{}\n"})


def _rewrite_manifest(path: Path, rehash: bool = True, **changes) -> None:
    """Edit manifest keys; with ``rehash`` the manifest's own digest is recomputed (as a forger
    would), so that the checks behind it are what is tested."""
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    if rehash:
        m["manifest_sha256"] = art._manifest_digest(m)
    (path / "manifest.json").write_text(json.dumps(m, sort_keys=True, indent=1) + "\n")


def test_round_trip(written):
    a = load_artifact(written)
    assert isinstance(a, Artifact)
    assert a.path == written
    assert format_graph(a.graph) == format_graph(small_graph())
    assert a.source_model == SOURCE
    m = a.manifest
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["snnc_version"] == snnc.__version__
    assert {"source_sha256", "tensors_sha256", "tensor_sha256", "graph", "target", "method",
            "options", "layers", "metrics"} <= set(m)
    assert m["layers"][0]["neurons"] == 72  # numpy scalar stored as a JSON number
    assert set(m["tensor_sha256"]) == {"conv.weight", "conv.bias", "fc.weight", "fc.bias"}
    assert sorted(p.name for p in written.iterdir()) == [
        "manifest.json", "placement.json", "source.onnx", "tensors.npz"]
    np.testing.assert_array_equal(a.graph.node("fc").op.weight, small_graph().node("fc").op.weight)
    verify_artifact(written)


def test_round_trip_spiking_ops_in_fresh_process(tmp_path):
    # Spiking op classes must be found by load_artifact without the caller importing them.
    script = """
import sys, numpy as np
from snnc.artifact import load_artifact, write_artifact
from snnc.ir import GraphBuilder, TensorType, format_graph, ops
from snnc.ir.neurons import FewSpikeNeurons
b = GraphBuilder("snn")
x = b.input("x", TensorType((4,)))
d = b.add("fc", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), x)
k = np.arange(1, 5, dtype=np.float32)
s = b.add("fs", FewSpikeNeurons(1 / k, 1 / k, 1 / k), d)
g = b.build([s])
write_artifact(sys.argv[1], g, {}, b"src")
print(format_graph(g))
"""
    out = tmp_path / "s.snnc"
    printed = subprocess.run([sys.executable, "-c", script, str(out)], check=True,
                             capture_output=True, text=True).stdout
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from snnc.artifact import load_artifact; "
         "from snnc.ir import format_graph; print(format_graph(load_artifact(sys.argv[1]).graph))",
         str(out)], check=True, capture_output=True, text=True).stdout
    assert "fs" in printed and loaded == printed


def test_manifest_format_and_no_absolute_paths(written):
    text = (written / "manifest.json").read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=1) + "\n"
    assert str(written.parent) not in text


def test_deterministic_bytes(tmp_path):
    a = write_artifact(tmp_path / "one" / "m.snnc", small_graph(), CALLER, SOURCE)
    b = write_artifact(tmp_path / "two" / "m.snnc", small_graph(), dict(CALLER), SOURCE)
    for name in ("manifest.json", "tensors.npz", "source.onnx"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_reserved_manifest_keys_rejected(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        write_artifact(tmp_path / "a.snnc", small_graph(), {"source_sha256": "0" * 64}, SOURCE)
    assert not (tmp_path / "a.snnc").exists()


def test_permissions_follow_umask(written):
    # mkdtemp creates 0700 directories; the artifact must not keep that.
    mode = written.stat().st_mode & 0o777
    assert mode == 0o777 & ~art._umask()


def test_overwrite_previous_artifact(written):
    new = write_artifact(written, small_graph(), {"target": "cpu"}, b"other")
    a = load_artifact(new)
    assert a.manifest["target"] == "cpu" and a.source_model == b"other"
    assert not (written / "placement.json").exists()  # old contents are gone, not merged
    assert [p.name for p in written.parent.iterdir()] == ["a.snnc"]  # nothing set aside remains


def test_overwrite_empty_directory(tmp_path):
    (tmp_path / "a.snnc").mkdir()
    load_artifact(write_artifact(tmp_path / "a.snnc", small_graph(), {}, SOURCE))


def test_refuse_non_artifact_directory(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not an artifact; refusing"):
        write_artifact(out, small_graph(), {}, SOURCE)
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert (out / "precious.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_refuse_file(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"weights")
    with pytest.raises(ArtifactError, match="is not an artifact directory"):
        write_artifact(out, small_graph(), {}, SOURCE)
    assert out.read_bytes() == b"weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.parametrize("fail_on", ["tensors.npz", "manifest.json"])
def test_atomic_on_failure(tmp_path, monkeypatch, fail_on):
    real = art._write_synced

    def flaky(path, data):
        if path.name == fail_on:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(art, "_write_synced", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(tmp_path / "a.snnc", small_graph(), CALLER, SOURCE)
    assert list(tmp_path.iterdir()) == []


def test_atomic_failure_keeps_previous_artifact(written, monkeypatch):
    before = {p.name: p.read_bytes() for p in written.iterdir()}
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in str(src):
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(art.os, "rename", rename)
    monkeypatch.setattr(art, "_exchange", lambda a, b: False)  # the portable two-rename path
    with pytest.raises(OSError, match="rename failed"):
        write_artifact(written, small_graph(), {"target": "cpu"}, b"new")
    assert {p.name: p.read_bytes() for p in written.iterdir()} == before
    assert [p.name for p in written.parent.iterdir()] == ["a.snnc"]


def test_tampered_tensors_file(written):
    p = written / "tensors.npz"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    for fn in (load_artifact, verify_artifact):
        with pytest.raises(ArtifactError, match=r"tensors\.npz was modified \(sha256 mismatch\)"):
            fn(written)


def test_tampered_tensor_with_recomputed_file_hash(written):
    with np.load(written / "tensors.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["fc.bias"] = arrays["fc.bias"] + 1
    data = npz_bytes(arrays)
    (written / "tensors.npz").write_bytes(data)
    _rewrite_manifest(written, tensors_sha256=art._sha256(data))
    with pytest.raises(ArtifactError, match=r"tensor 'fc\.bias' was modified"):
        load_artifact(written)


def test_missing_tensor(written):
    with np.load(written / "tensors.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "conv.weight"}
    data = npz_bytes(arrays)
    (written / "tensors.npz").write_bytes(data)
    _rewrite_manifest(written, tensors_sha256=art._sha256(data))
    with pytest.raises(ArtifactError, match=r"tensor 'conv\.weight' is missing"):
        verify_artifact(written)


def test_tampered_source(written):
    (written / "source.onnx").write_bytes(SOURCE + b"!")
    with pytest.raises(ArtifactError, match=r"source\.onnx was modified"):
        load_artifact(written)
    (written / "source.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"source\.onnx is missing"):
        load_artifact(written)


def test_tampered_extra_file(written):
    (written / "placement.json").write_text('{"core": 1}')
    with pytest.raises(ArtifactError, match=r"placement\.json was modified"):
        verify_artifact(written)


def test_missing_tensors_file(written):
    (written / "tensors.npz").unlink()
    with pytest.raises(ArtifactError, match=r"tensors\.npz is missing"):
        load_artifact(written)


@pytest.mark.parametrize("version,pattern", [
    (7, rf"artifact schema version 7 is newer than this snnc supports \({SCHEMA_VERSION}\); "
        "upgrade snnc"),
    (1, r"schema version 1 is older"),
    (0, r"schema version 0 is older"),
    ("1", r"unknown artifact schema version '1'"),
])
def test_schema_versions(written, version, pattern):
    _rewrite_manifest(written, schema_version=version)
    with pytest.raises(ArtifactError, match=pattern) as e:
        load_artifact(written)
    assert str(written) in str(e.value) and "\n" not in str(e.value)


def test_schema_version_missing(written):
    m = json.loads((written / "manifest.json").read_text())
    del m["schema_version"]
    m["manifest_sha256"] = art._manifest_digest(m)
    (written / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="no schema_version"):
        verify_artifact(written)


def test_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nope.snnc")
    (tmp_path / "f.snnc").write_text("x")
    with pytest.raises(ArtifactError, match="not an artifact directory"):
        load_artifact(tmp_path / "f.snnc")
    (tmp_path / "d.snnc").mkdir()
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load_artifact(tmp_path / "d.snnc")


def test_manifest_not_json(written):
    (written / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON"):
        load_artifact(written)
    (written / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="not a JSON object"):
        load_artifact(written)


def test_malformed_graph(written):
    m = json.loads((written / "manifest.json").read_text())
    m["graph"]["nodes"][0]["inputs"] = ["nowhere"]
    m["manifest_sha256"] = art._manifest_digest(m)
    (written / "manifest.json").write_text(json.dumps(m))
    verify_artifact(written)  # no graph build there
    with pytest.raises(ArtifactError, match="malformed serialized graph") as e:
        load_artifact(written)
    assert str(written) in str(e.value)
    m["graph"]["nodes"][0]["op"] = "Bogus"
    m["manifest_sha256"] = art._manifest_digest(m)
    (written / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="unknown op 'Bogus'"):
        load_artifact(written)


# --------------------------------------------------------------------- manifest integrity
def test_tampered_manifest_graph_section(written):
    # Attributes in the graph section (here a padding) change results without touching any
    # tensor: the manifest's own digest must catch them.
    m = json.loads((written / "manifest.json").read_text())
    conv = next(n for n in m["graph"]["nodes"] if n["output"]["name"] == "conv")
    assert conv["params"]["padding"] == {"tuple": [1, 1, 1, 1]}
    conv["params"]["padding"] = {"tuple": [0, 0, 0, 0]}
    (written / "manifest.json").write_text(json.dumps(m, sort_keys=True, indent=1) + "\n")
    with pytest.raises(ArtifactError, match=r"manifest\.json was modified \(sha256 mismatch\)"):
        verify_artifact(written)


def test_tampered_manifest_metadata(written):
    _rewrite_manifest(written, rehash=False, target="cpu")
    with pytest.raises(ArtifactError, match=r"manifest\.json was modified"):
        load_artifact(written)
    _rewrite_manifest(written, rehash=True)
    assert load_artifact(written).manifest["target"] == "cpu"  # a re-hashed edit is valid


def test_manifest_digest_ignores_formatting(written):
    m = json.loads((written / "manifest.json").read_text())
    (written / "manifest.json").write_text(json.dumps(m))  # compact, other layout
    load_artifact(written)


def test_manifest_without_digest(written):
    m = json.loads((written / "manifest.json").read_text())
    del m["manifest_sha256"]
    (written / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="no manifest_sha256"):
        load_artifact(written)


# -------------------------------------------------------------- kill in the middle of a write
_WRITER = """
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from test_artifact import small_graph, CALLER, SOURCE
from snnc.artifact import write_artifact
write_artifact(sys.argv[1], small_graph(), {"target": "new"}, SOURCE + b"new")
"""


def _kill_when_writing(cmd: list[str], out: Path, env_extra: dict, timeout: float = 60) -> None:
    """Start ``cmd`` with a slowed writer, SIGKILL it once its temp dir holds a file."""
    import signal
    import time

    env = {**os.environ, "SNNC_TEST_WRITE_DELAY": "30", **env_extra}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tmps = [p for p in out.parent.glob(f".{out.name}.tmp-*") if any(p.iterdir())]
            if tmps:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            raise AssertionError("the writer never started writing")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_mid_write_leaves_no_artifact(tmp_path):
    out = tmp_path / "k.snnc"
    _kill_when_writing([sys.executable, "-c", _WRITER, str(out), str(Path(__file__).parent)],
                       out, {})
    assert not out.exists()  # no half artifact under the real name
    leftovers = list(tmp_path.glob(".k.snnc.tmp-*"))
    assert len(leftovers) == 1
    # The next write of the same artifact removes the dead writer's temp directory.
    write_artifact(out, small_graph(), CALLER, SOURCE)
    assert [p.name for p in tmp_path.iterdir()] == ["k.snnc"]
    load_artifact(out)


def test_kill_mid_compile_keeps_previous_artifact(tmp_path):
    lenet = Path(__file__).parents[1] / "examples" / "lenet"
    out = tmp_path / "lenet.snnc"
    cmd = [sys.executable, "-m", "snnc.cli", "compile", str(lenet / "lenet.onnx"),
           "--calib", str(lenet / "calib.npz"), "-o", str(out), "-q"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _kill_when_writing(cmd, out, {}, timeout=300)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    load_artifact(out)


def test_overwrite_never_leaves_the_name_missing(written, monkeypatch):
    # With the atomic exchange the old artifact is never renamed away first.
    (written.parent / "p1").mkdir()
    (written.parent / "p2").mkdir()
    (written.parent / "p1" / "f").write_bytes(b"1")
    exchange_works = art._exchange(written.parent / "p1", written.parent / "p2")
    if exchange_works:
        assert (written.parent / "p2" / "f").read_bytes() == b"1"
    for d in ("p1", "p2"):
        shutil.rmtree(written.parent / d)
    calls = []
    real = os.rename
    monkeypatch.setattr(art.os, "rename", lambda a, b: (calls.append((a, b)), real(a, b)))
    write_artifact(written, small_graph(), {"target": "cpu"}, b"new")
    if exchange_works:
        assert calls == []
    assert load_artifact(written).source_model == b"new"
    assert [p.name for p in written.parent.iterdir()] == ["a.snnc"]


# ------------------------------------------------------------------ compile determinism (real)
def test_compile_twice_is_byte_identical(tmp_path):
    from snnc.api import compile_model

    lenet = Path(__file__).parents[1] / "examples" / "lenet"
    dirs = []
    for name in ("one", "two"):
        a = compile_model(lenet / "lenet.onnx", method="fs", calib=lenet / "calib.npz",
                          out=tmp_path / name / "lenet.snnc")
        dirs.append(a.path)
    files = sorted(p.name for p in dirs[0].iterdir())
    assert files == sorted(p.name for p in dirs[1].iterdir())
    assert {"manifest.json", "tensors.npz", "source.onnx"} <= set(files)
    for name in files:
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name


# ----------------------------------------------------------------- the CLI refuses tampering
@pytest.fixture(scope="module")
def lenet_artifact(tmp_path_factory):
    from snnc.api import compile_model

    lenet = Path(__file__).parents[1] / "examples" / "lenet"
    return compile_model(lenet / "lenet.onnx", method="fs", calib=lenet / "calib.npz",
                         out=tmp_path_factory.mktemp("cli") / "lenet.snnc").path


@pytest.mark.parametrize("command", ["simulate", "inspect"])
@pytest.mark.parametrize("victim", ["tensors.npz", "manifest.json", "source.onnx"])
def test_cli_refuses_tampered_artifact(tmp_path, lenet_artifact, command, victim):
    from support.cli import snnc  # in-process (the kill tests' writer imports this module)

    copy = tmp_path / "t.snnc"
    shutil.copytree(lenet_artifact, copy)
    data = bytearray((copy / victim).read_bytes())
    if victim == "manifest.json":  # a plausible edit: a different threshold digit
        text = data.decode()
        i = text.index('"latency_steps": ') + len('"latency_steps": ')
        data = bytearray((text[:i] + "9" + text[i:]).encode())
    else:
        data[len(data) // 2] ^= 0x01
    (copy / victim).write_bytes(bytes(data))
    lenet = Path(__file__).parents[1] / "examples" / "lenet"
    args = [str(copy)] + (["--data", str(lenet / "test.npz"), "--limit", "4"]
                          if command == "simulate" else [])
    proc = snnc(command, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: ") and f"{victim} was modified" in lines[0], lines[0]
