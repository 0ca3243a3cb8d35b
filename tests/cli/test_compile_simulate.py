"""compile/simulate through the CLI: success path and every user error. The compile of the
shared artifact and the --json contract run the real `snnc` script (a smoke test of the entry
point); the error cases run in-process (tests/support/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support.cli import assert_user_error, snnc, snnc_process

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "lenet.snnc"
    proc = snnc_process("compile", str(LENET / "lenet.onnx"), "--calib",
                        str(LENET / "calib.npz"), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_simulate_json_contract(artifact):
    proc = snnc_process("simulate", str(artifact), "--data", str(LENET / "test.npz"),
                        "--limit", "50", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    for key in ("samples", "accuracy", "ann_accuracy", "agreement", "spikes_per_neuron",
                "latency_steps", "throughput_steps", "synops_per_sample", "energy_uj_per_sample",
                "ann_energy_uj_per_sample", "wall_s"):
        assert key in m, key
    assert m["samples"] == 50 and 0.9 <= m["accuracy"] <= 1.0


def npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def compile_with(tmp_path, calib):
    return snnc("compile", str(LENET / "lenet.onnx"), "--calib", calib,
                "-o", str(tmp_path / "o.snnc"))


def test_calib_wrong_shape(tmp_path):
    p = npz(tmp_path / "c.npz", x=np.zeros((4, 28, 28), np.float32))
    assert_user_error(compile_with(tmp_path, p), "per-sample shape")
    assert not (tmp_path / "o.snnc").exists()


def test_calib_empty(tmp_path):
    p = npz(tmp_path / "c.npz", x=np.zeros((0, 1, 28, 28), np.float32))
    assert_user_error(compile_with(tmp_path, p))
    assert not (tmp_path / "o.snnc").exists()


def test_calib_missing_x(tmp_path):
    p = npz(tmp_path / "c.npz", images=np.zeros((4, 1, 28, 28), np.float32))
    assert_user_error(compile_with(tmp_path, p), "x")


def test_calib_required(tmp_path):
    proc = snnc("compile", str(LENET / "lenet.onnx"), "-o", str(tmp_path / "o.snnc"))
    assert_user_error(proc, "--calib")


def test_labels_out_of_range(tmp_path, artifact):
    p = npz(tmp_path / "d.npz", x=np.zeros((3, 1, 28, 28), np.float32), y=np.array([1, 2, 12]))
    assert_user_error(snnc("simulate", str(artifact), "--data", p), "12")


def test_newer_schema_is_refused(tmp_path, artifact):
    import shutil

    copy = tmp_path / "new.snnc"
    shutil.copytree(artifact, copy)
    man = json.loads((copy / "manifest.json").read_text())
    man["schema_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(man))
    assert_user_error(snnc("simulate", str(copy), "--data", str(LENET / "test.npz")), "newer")


def test_unknown_method_and_target(tmp_path):
    base = ["compile", str(LENET / "lenet.onnx"), "--calib", str(LENET / "calib.npz")]
    assert_user_error(snnc(*base, "--method", "magic"), "magic")
    assert_user_error(snnc(*base, "--target", "loihi9"), "loihi9")  # loihi1/2 compile now
