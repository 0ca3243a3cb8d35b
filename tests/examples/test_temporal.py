"""The temporal example (examples/temporal: Conv1d over 28 MNIST rows as time steps) compiled for
loihi2: bit-exact accuracy against the ANN on the 1,000 test sequences, and Lava spike for spike.

Bounds from the measurement in examples/temporal/README.md (fs, loihi2, 1,000 sequences): ANN
96.5 %, float SNN 96.6 %, bit-exact 96.7 %, top-1 agreement with the ANN 99.5 %."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.lava_equality import assert_example_on_lava

import snnc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "temporal"


@pytest.fixture(scope="module")
def fs_artifact(tmp_path_factory):
    return snnc.compile(EXAMPLE / "temporal.onnx", method="fs", target="loihi2",
                        calib=EXAMPLE / "calib.npz",
                        out=tmp_path_factory.mktemp("temporal") / "temporal.snnc")


def test_temporal_fs_loihi2_bit_exact_accuracy(fs_artifact):
    assert fs_artifact.graph.inputs[0].shape == (28, 28)  # 28 channels x 28 steps
    m = snnc.simulate(fs_artifact, EXAMPLE / "test.npz")
    assert m["mode"] == "bit-exact" and m["samples"] == 1000 and "task" not in m
    assert m["ann_accuracy"] == pytest.approx(0.965, abs=0.002)  # float noise across machines
    assert m["accuracy"] >= m["ann_accuracy"] - 0.003  # within 0.3 pp of the ANN (+0.2 pp)
    assert m["agreement"] >= 0.99  # measured 0.995


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("method", ["fs", "rate"])
def test_temporal_lava_spike_for_spike(fs_artifact, method, tmp_path):
    """2 samples on Lava: every population and the readout equal the bit-exact reference."""
    assert_example_on_lava(EXAMPLE, "temporal.onnx", method, fs_artifact, tmp_path, populations=3)
