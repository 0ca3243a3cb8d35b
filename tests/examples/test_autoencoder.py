"""The autoencoder example (examples/autoencoder: a denoising conv autoencoder with nearest
upsampling, a regression output) compiled for loihi2: the bit-exact output against the ANN's and
the clean targets, ``simulate --task``'s errors, and Lava spike for spike.

Bounds from the measurement in examples/autoencoder/README.md (fs, loihi2, 500 test images):
relative L2 error vs the ANN 0.45 % float, 1.14 % bit-exact (max abs error 0.039); MSE against
the clean images 0.007580 bit-exact vs 0.007572 for the ANN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.cli import assert_user_error
from support.cli import snnc as snnc_cli
from support.lava_equality import assert_example_on_lava

import snnc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autoencoder"


@pytest.fixture(scope="module")
def fs_artifact(tmp_path_factory):
    return snnc.compile(EXAMPLE / "autoencoder.onnx", method="fs", target="loihi2",
                        calib=EXAMPLE / "calib.npz",
                        out=tmp_path_factory.mktemp("autoencoder") / "ae.snnc")


def test_autoencoder_fs_loihi2_bit_exact_output(fs_artifact):
    r = snnc_cli("simulate", str(fs_artifact.path), "--data", str(EXAMPLE / "test.npz"),
                 "--json", "-q")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert (m["mode"], m["task"], m["samples"]) == ("bit-exact", "regression", 500)
    assert m["accuracy"] is m["agreement"] is None
    assert m["rel_l2_vs_ann"] < 0.0125 and m["max_abs_error_vs_ann"] < 0.045
    assert m["ann_mse"] == pytest.approx(0.0075719, abs=1e-6)
    assert m["mse"] < m["ann_mse"] * 1.005 and m["r2"] > 0.92  # the denoising is kept
    d = np.load(EXAMPLE / "test.npz")  # in memory, as the Python API takes it: (x, y)
    f = snnc.simulate(fs_artifact, (d["x"][:100], d["y"][:100]), float_mode=True,
                      task="regression")
    assert f["task"] == "regression" and f["rel_l2_vs_ann"] < 0.005  # measured 0.0045 on 500


def test_simulate_task_errors(fs_artifact, tmp_path):
    art, data = str(fs_artifact.path), str(EXAMPLE / "test.npz")
    assert_user_error(snnc_cli("simulate", art, "--data", data, "--task", "segment"),
                      "unknown task 'segment'", "auto, classification, regression")
    assert_user_error(snnc_cli("simulate", art, "--data", data, "--task", "classification"),
                      "test.npz", "class indices")
    bad = tmp_path / "flat.npz"
    d = np.load(data)
    np.savez(bad, x=d["x"][:4], y=d["y"][:4].reshape(4, 784))
    assert_user_error(snnc_cli("simulate", art, "--data", str(bad)), "flat.npz",
                      "y has per-sample shape (784,)", "output has shape (1, 28, 28)")
    np.savez(bad, x=d["x"][:4], y=d["y"][:3])
    assert_user_error(snnc_cli("simulate", art, "--data", str(bad)), "flat.npz",
                      "regression targets need one row per sample (4 rows")


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("method", ["fs", "rate"])
def test_autoencoder_lava_spike_for_spike(fs_artifact, method, tmp_path):
    """2 samples on Lava: every population and the readout equal the bit-exact reference."""
    assert_example_on_lava(EXAMPLE, "autoencoder.onnx", method, fs_artifact, tmp_path, populations=3)


@pytest.mark.slow
def test_report_shows_regression_metrics(fs_artifact, tmp_path):
    from snnc.report.html import write_report

    page = write_report(fs_artifact.path, EXAMPLE / "test.npz", tmp_path / "r.html",
                        limit=5).read_text()
    assert "<th>task</th><td class=\"v\">regression</td>" in page
    assert "relative L2 error of the output vs ANN" in page and "R² vs targets y (SNN)" in page
    assert "accuracy (SNN)" not in page and "Output error vs time steps" in page
