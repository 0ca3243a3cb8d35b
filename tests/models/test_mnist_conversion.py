"""End-to-end conversion of the shipped MNIST-5k examples (1,000 test images)."""

from __future__ import annotations

from pathlib import Path

import pytest

import snnc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(tmp_path, name, method, timesteps=None, limit=None):
    d = EXAMPLES / name
    art = snnc.compile(d / f"{name}.onnx", method=method, calib=d / "calib.npz",
                       timesteps=timesteps, out=tmp_path / f"{name}-{method}.snnc")
    return snnc.simulate(art, d / "test.npz", limit=limit)


@pytest.mark.slow
def test_lenet_fs_matches_ann_with_two_spikes(tmp_path):
    m = run(tmp_path, "lenet", "fs")
    assert m["samples"] == 1000
    assert m["accuracy"] >= m["ann_accuracy"] - 0.002, m
    assert m["spikes_per_neuron"] <= 2.0, m
    assert m["throughput_steps"] == 10 and m["latency_steps"] == 30


@pytest.mark.slow
def test_resnet_fs_within_0_3pp(tmp_path):
    m = run(tmp_path, "resnet", "fs")
    assert m["accuracy"] >= m["ann_accuracy"] - 0.003, m
    # The 2.0 bound is LeNet's (issue 3); here the paper's "about two spikes per neuron" holds
    # (measured 2.07: the residual stream's neurons carry larger values, so more set bits).
    assert m["spikes_per_neuron"] <= 2.2, m


@pytest.mark.slow
def test_silu_se_fs_within_1pp(tmp_path):
    # SiLU (shipped K=16 table) and a sigmoid-gated product (squeeze-excite, K=12 table).
    m = run(tmp_path, "silu_se", "fs")
    assert m["samples"] == 1000
    assert m["accuracy"] >= m["ann_accuracy"] - 0.01, m
    assert m["throughput_steps"] == 16


@pytest.mark.slow
def test_lenet_rate_within_1pp_at_64_steps(tmp_path):
    m = run(tmp_path, "lenet", "rate", timesteps=64)
    assert m["accuracy"] >= m["ann_accuracy"] - 0.01, m
    assert m["latency_steps"] == 64


@pytest.mark.slow
def test_rate_error_falls_with_timesteps(tmp_path):
    agree = [run(tmp_path, "lenet", "rate", timesteps=t, limit=300)["agreement"] for t in (8, 64)]
    assert agree[1] > agree[0], agree


def test_compile_is_deterministic(tmp_path):
    d = EXAMPLES / "lenet"
    outs = [snnc.compile(d / "lenet.onnx", method="fs", calib=d / "calib.npz",
                         out=tmp_path / f"a{i}.snnc").path for i in range(2)]
    for f in ("manifest.json", "tensors.npz"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
