"""Placement through the CLI (in-process, tests/support/cli.py): compile for Loihi, inspect
cores, simulate energy, and a target too small for the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import assert_user_error, snnc

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"


@pytest.fixture(scope="module")
def loihi_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("place") / "lenet-l2.snnc"
    proc = snnc("compile", str(LENET / "lenet.onnx"), "--target", "loihi2", "--calib",
                str(LENET / "calib.npz"), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_artifact_holds_placement(loihi_artifact):
    slices = json.loads((loihi_artifact / "placement.json").read_text())["slices"]
    manifest = json.loads((loihi_artifact / "manifest.json").read_text())
    assert len({(s["chip"], s["core"]) for s in slices}) == manifest["cores"]
    pl = manifest["placement"]
    assert pl["cores"] == manifest["cores"] >= pl["cores_lower_bound"] >= 1
    assert {r["name"] for r in pl["layers"]} == {s["population"] for s in slices}


def test_inspect_artifact_json(loihi_artifact):
    proc = snnc("inspect", str(loihi_artifact), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("cores", "chips", "cores_lower_bound", "neurons", "synapses", "placement"):
        assert key in doc, key
    assert doc["chips"] == 1 and doc["cores"] >= doc["cores_lower_bound"]
    fc = next(r for r in doc["placement"] if r["name"] == "/Relu_2_output_0")
    assert fc["synapses"] == 120 * 256 and fc["neurons"] == 120
    assert all(0 < r["utilization"]["neurons"] <= 1 for r in doc["placement"])


def test_inspect_artifact_table(loihi_artifact):
    proc = snnc("inspect", str(loihi_artifact))
    assert proc.returncode == 0, proc.stderr
    assert "placement on loihi2" in proc.stdout and "lower bound" in proc.stdout


def test_simulate_energy_from_placement(loihi_artifact):
    proc = snnc("simulate", str(loihi_artifact), "--data", str(LENET / "test.npz"), "--limit",
                "20", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    parts = m["energy_breakdown_uj"]
    assert m["energy_uj_per_sample"] == pytest.approx(sum(parts.values()))
    assert parts["synops"] == pytest.approx(m["synops_per_sample"] * 23.6e-6)
    assert parts["spike_routing"] > 0 and parts["neuron_updates"] > 0
    assert m["ann_energy_uj_per_sample"] > 0


def test_one_core_target_is_a_clean_error(tmp_path):
    target = tmp_path / "onecore.toml"
    target.write_text('base = "loihi2"\n[chip]\ncores_per_chip = 1\nphysical_cores_per_chip = 1\n'
                      "chips_per_system = 1\nmesh_cols = 1\nmesh_rows = 1\ncores_per_tile = 1\n")
    out = tmp_path / "x.snnc"
    proc = snnc("compile", str(LENET / "lenet.onnx"), "--target", str(target), "--calib",
                str(LENET / "calib.npz"), "-o", str(out), "--quiet")
    line = assert_user_error(proc, "target 'onecore' has 1", "limiting resource",
                             "synaptic memory bits", "largest layer '/Relu_")
    assert "1,048,576 available" in line
    assert not out.exists() and list(tmp_path.iterdir()) == [target]


def test_compile_and_inspect_report_fan_in_splits(tmp_path):
    """A core of 64 input axons: the CLI compiles LeNet with relays and says so."""
    target = tmp_path / "narrow.toml"
    target.write_text('base = "loihi2"\nname = "narrow"\n[core]\nmax_in_axons = 64\n')
    out = tmp_path / "lenet.snnc"
    proc = snnc("compile", str(LENET / "lenet.onnx"), "--target-file", str(target), "--calib",
                str(LENET / "calib.npz"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 layer(s) over 18 relay populations" in proc.stdout
    proc = snnc("inspect", str(out))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "fan-in split over partial-sum relays: /conv2/Conv_output_0, /fc1/Gemm_output_0, " \
           "logits/acc (18 relay populations, +3 step(s) of latency)" in text
