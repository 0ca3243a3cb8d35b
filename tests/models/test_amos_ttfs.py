"""End-to-end amos and ttfs (+ fine-tuning) on the shipped MNIST-5k examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import snnc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _compile(tmp_path, name, method, **kw):
    d = EXAMPLES / name
    return snnc.compile(d / f"{name}.onnx", method=method, calib=d / "calib.npz",
                        out=tmp_path / f"{name}-{method}.snnc", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name,latency", [("lenet", 30), ("resnet", 50)])
def test_amos_at_most_one_spike_and_fs_accuracy(tmp_path, name, latency):
    test = EXAMPLES / name / "test.npz"
    amos = snnc.simulate(_compile(tmp_path, name, "amos"), test)
    fs = snnc.simulate(_compile(tmp_path, name, "fs"), test)
    assert amos["samples"] == 1000
    # from the per-neuron spike records of every circuit neuron, over the whole test split
    assert amos["max_spikes_per_neuron"] == 1.0
    assert all(layer["max_spikes_per_neuron"] <= 1.0 for layer in amos["layers"])
    assert abs(amos["accuracy"] - fs["accuracy"]) <= 0.003, (amos["accuracy"], fs["accuracy"])
    assert amos["throughput_steps"] == 1 and amos["latency_steps"] == latency
    assert amos["spikes_per_neuron"] <= 1.0
    # k = 10 neurons per gate: ten times the FS neuron count
    assert amos["neurons"] == 10 * fs["neurons"]
    assert amos["energy_ratio_vs_ann"] == pytest.approx(
        amos["ann_energy_uj_per_sample"] / amos["energy_uj_per_sample"])


@pytest.mark.slow
def test_ttfs_lenet_finetuned_within_1_5pp_of_ann(tmp_path):
    """The README's 10-epoch run on the full train split (4,000 images), ~40 s: after 1 epoch,
    still at the peak learning rate, seed 0 sat at 96.4 %, below the converted 97.5 %."""
    d = EXAMPLES / "lenet"
    art = _compile(tmp_path, "lenet", "ttfs", finetune=d / "train.npz", epochs=10, seed=0)
    assert art.manifest["options"]["finetune_epochs"] == 10
    m = snnc.simulate(art, d / "test.npz")
    assert m["samples"] == 1000
    assert m["accuracy"] >= m["ann_accuracy"] - 0.015, m
    assert m["max_spikes_per_neuron"] == 1.0 and m["spikes_per_neuron"] <= 1.0
    assert m["latency_steps"] == 5 and m["throughput_steps"] == 5
    # Datta's compute-energy model: conv1 MACs at step 1 plus ACs for every synaptic event
    assert m["analog_macs_per_sample"] == 86_400
    assert m["energy_ratio_vs_ann"] > 1.0


@pytest.mark.slow
def test_ttfs_resnet_finetuned_within_1_5pp_of_ann():
    """Issue #4 on the residual CNN: ttfs at T = 5, fine-tuned 10 epochs on the full train
    split (4,000 images), within 1.5 pp of its ANN on the 1,000 test images, at most one spike
    per neuron. Conversion alone (bias correction, per-channel step thresholds) must already be
    far above the 14 % of a per-layer constant threshold."""
    from snnc.backends.reference.simulator import simulate
    from snnc.compiler.convert.finetune import finetune
    from snnc.compiler.pipeline import CompileOptions, compile_graph
    from snnc.ir.interpret import run_ann

    d = EXAMPLES / "resnet"
    train, test = np.load(d / "train.npz"), np.load(d / "test.npz")
    res = compile_graph(d / "resnet.onnx", np.load(d / "calib.npz")["x"],
                        CompileOptions(method="ttfs"))
    x, y = test["x"], test["y"]
    ann = (np.asarray(run_ann(res.ann, x, batch_size=250)[0]).argmax(1) == y).mean()
    before = simulate(res.graph, x, device="cpu")
    acc_before = (before.outputs[0].argmax(1) == y).mean()
    assert acc_before >= 0.7, acc_before  # measured 79.3 % (ANN 97.8 %)
    tuned = finetune(res.graph, train["x"], train["y"], epochs=10, seed=0)
    after = simulate(tuned, x, device="cpu")
    acc_after = (after.outputs[0].argmax(1) == y).mean()
    assert acc_after >= ann - 0.015, (ann, acc_before, acc_after)
    assert max(after.max_spikes.values()) == 1.0 and after.spikes_per_neuron <= 1.0
    # bit-exact on loihi2 (measured 97.5 % vs float 97.1 %): still within 1.5 pp of the ANN
    from snnc.compiler.quantize import quantize
    from snnc.targets import load_target

    qg = quantize(tuned, load_target("loihi2"), input_absmax=1.0, input_signed=False)
    fixed = simulate(qg, x, device="cpu")
    acc_fixed = (fixed.outputs[0].argmax(1) == y).mean()
    assert acc_fixed >= ann - 0.015 and abs(acc_fixed - acc_after) <= 0.01, (acc_after,
                                                                               acc_fixed)
    assert max(fixed.max_spikes.values()) == 1.0
