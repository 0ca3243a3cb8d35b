"""convert_ttfs, the single-spike neurons, the hybrid input code and the first-spike max-pool."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.paths import EXAMPLES

from snnc.backends.reference.simulator import simulate
from snnc.compiler.convert.ttfs import convert_ttfs, fit_single_spike, fit_step_thresholds
from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.fold_bn import fold_batchnorm
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.compiler.pipeline import timing_of
from snnc.errors import UnsupportedOp
from snnc.ir import GraphBuilder, TensorType, neurons, ops, verify
from snnc.metrics.inference import analog_macs
from snnc.sim.kernels import hybrid_spike_train


def _single(op, shape):
    b = GraphBuilder()
    x = b.input("x", TensorType(shape))
    return verify(b.build([b.add("pop", op, x)]))


def test_hybrid_input_spike_times():
    # T = 5, x_max = 1: t(x) = 2 + floor((1 - x) * 4), capped at 5; x <= 0 never spikes
    x = torch.tensor([1.0, 0.76, 0.5, 0.1, 0.0, -0.3, 3.0], dtype=torch.float64)
    s = hybrid_spike_train(x, 1.0, 5)  # rows: steps 2..5
    first = [int(np.argmax(s[:, i].numpy())) + 2 if s[:, i].sum() else None for i in range(7)]
    assert first == [2, 2, 4, 5, None, None, 2]
    assert float(s.sum(0).max()) == 1.0
    g = _single(neurons.HybridInputNeurons(1.0, 5), (7,))
    res = simulate(g, x.numpy()[None], dtype=torch.float64, device="cpu")
    assert res.spikes["pop"] == 5 and res.max_spikes["pop"] == 1.0
    # readout (mean over steps) of a(1) = x, a(t) = x_max [t >= t(x)]
    np.testing.assert_allclose(res.outputs[0][0, :4], [(1 + 4) / 5, (0.76 + 4) / 5,
                                                      (0.5 + 2) / 5, (0.1 + 1) / 5], rtol=1e-6)


def test_single_spike_neuron_hand_derived():
    # threshold 1, input 0.4 per step: v = .4 .8 1.2 -> one spike in step 3, then silent
    g = _single(neurons.SingleSpikeNeurons(threshold=1.0, amplitude=2.0, timesteps=5), (2,))
    res = simulate(g, np.array([[0.4, 5.0]]), dtype=torch.float64, device="cpu")
    assert res.spikes["pop"] == 2  # the strong input fires once too (step 1), never again
    assert res.max_spikes["pop"] == 1.0
    # a(t) = amplitude * fired(t): readout = 2 * (T + 1 - t_spike) / T
    np.testing.assert_allclose(res.outputs[0], [[2.0 * 3 / 5, 2.0 * 5 / 5]])


def test_single_spike_step_thresholds_and_channel_amplitudes_hand_derived():
    # theta(t) = 3, 3, 1, 1, 1; constant inputs 1.2 (v = 1.2, 2.4, 3.6: spike in step 3),
    # 3.5 (step 1), 0.3 (v(4) = 1.2: step 4); amplitudes per channel 1 and 2
    theta = np.array([3, 3, 1, 1, 1], np.float32).reshape(5, 1, 1, 1) * np.ones((1, 2, 1, 1))
    op = neurons.SingleSpikeNeurons(theta.astype(np.float32),
                                    np.array([1, 2], np.float32).reshape(2, 1, 1), 5)
    np.testing.assert_array_equal(op.step_thresholds(), theta)
    assert neurons.SingleSpikeNeurons(2.0, 1.0, 5).step_thresholds().tolist() == [2.0] * 5
    g = _single(op, (2, 1, 3))
    x = np.array([[[[1.2, 3.5, 0.3]], [[1.2, 3.5, 0.3]]]])
    res = simulate(g, x, dtype=torch.float64, device="cpu")
    # readout amplitude (T + 1 - t_spike) / T with t_spike = 3, 1, 4
    np.testing.assert_allclose(res.outputs[0][0], [[[3 / 5, 5 / 5, 2 / 5]],
                                                   [[6 / 5, 10 / 5, 4 / 5]]])
    assert res.max_spikes["pop"] == 1.0


def test_step_thresholds_linearize_the_time_code():
    # constant currents a: an integrator with one threshold fires at ceil(th / a) (a 1/a code);
    # step thresholds can place the level boundaries uniformly, so the fit is much better
    a = np.random.default_rng(0).uniform(0, 1, 4000)
    v = np.arange(1, 6)[:, None] * a[None]

    def err(theta, amp):
        g = np.maximum.accumulate(v >= np.reshape(theta, (-1, 1)), axis=0).sum(0)
        return np.mean((amp * g - 5 * a) ** 2)

    th, amp = fit_single_spike(v, 5 * a)
    theta, amp_s = fit_step_thresholds(v, 5 * a)
    assert theta.shape == (5,) and np.all(theta > 0) and amp_s > 0
    assert err(theta, amp_s) < 0.5 * err(th, amp)  # measured: 0.071 against 0.32
    # a uniform quantizer of 5a with steps of about 1 has mean squared error about 1/12
    assert err(theta, amp_s) < 0.1
    # the fitted thresholds are those of a uniform code: theta(t) ~ A t (T + 1/2 - t) / T
    ideal = amp_s * np.arange(1, 6) * (5.5 - np.arange(1, 6)) / 5
    np.testing.assert_allclose(theta, ideal, rtol=0.15)


def test_first_spike_max_pool_passes_the_earliest_spike_once():
    b = GraphBuilder()
    x = b.input("x", TensorType((1, 2, 2)))
    pop = b.add("pop", neurons.SingleSpikeNeurons(1.0, 1.0, 5), x)
    pool = b.add("pool", neurons.FirstSpikeMaxPool2d((2, 2), (2, 2), (0, 0, 0, 0), (1, 1),
                                                      False), pop)
    g = verify(b.build([pool]))
    # currents 0.3 (fires step 4), 0.6 (step 2), 0.15 (never), 1.5 (step 1)
    res = simulate(g, np.array([[[[0.3, 0.6], [0.15, 1.5]]]]), dtype=torch.float64, device="cpu")
    np.testing.assert_allclose(res.outputs[0].ravel(), [1.0])  # fired from step 1 on
    assert res.spikes["pop"] == 3


def test_fit_single_spike_recovers_a_consistent_code():
    # membranes ramping with slope a: v(t) = t a; with threshold th the spike is at ceil(th/a)
    a = np.random.default_rng(0).uniform(0, 1, 2000)
    v = np.arange(1, 6)[:, None] * a[None]
    th, amp = fit_single_spike(v, 5 * a)
    fired = v.max(0) >= th
    assert 0 < th < v.max() and amp > 0
    g = np.maximum.accumulate(v >= th, axis=0).sum(0)
    err = np.mean((amp * g * fired - 5 * a) ** 2)
    assert err < np.mean((5 * a) ** 2) * 0.1  # far better than silence


def _prepared(name):
    return prepare_spiking(fold_batchnorm(canonicalize(load_onnx(EXAMPLES / name / f"{name}.onnx"))))


def test_convert_ttfs_lenet_structure_accuracy_and_energy():
    g = _prepared("lenet")
    calib = np.load(EXAMPLES / "lenet" / "calib.npz")["x"]
    snn = verify(convert_ttfs(g, calib, timesteps=5))
    kinds = [type(n.op) for n in snn.nodes]
    assert kinds[0] is neurons.HybridInputNeurons and snn.nodes[0].op.x_max == 1.0
    assert kinds.count(neurons.SingleSpikeNeurons) == 3
    assert kinds.count(neurons.FirstSpikeMaxPool2d) == 2 and ops.Activation not in kinds
    for n in snn.nodes:
        if isinstance(n.op, neurons.SingleSpikeNeurons):
            assert n.op.timesteps == 5
            assert np.all(n.op.step_thresholds() > 0) and np.all(np.asarray(n.op.amplitude) > 0)
            # conv populations (C, H, W): per-channel step thresholds and amplitudes
            assert n.op.step_thresholds().shape[0] == 5
    assert timing_of(snn, "ttfs") == {"latency_steps": 5, "throughput_steps": 5}
    assert analog_macs(snn) == 86_400  # conv1 at step 1 (MACs); everything else is AC
    test = np.load(EXAMPLES / "lenet" / "test.npz")
    res = simulate(snn, test["x"][:300], device="cpu")
    acc = (res.outputs[0].argmax(1) == test["y"][:300]).mean()
    assert acc >= 0.93, acc  # before fine-tuning (1,000 images: 97.5 %, ANN 98.3 %)
    assert max(res.max_spikes.values()) == 1.0
    assert res.spikes_per_neuron <= 1.0


def test_convert_ttfs_rejects_silu_naming_the_layer():
    g = _prepared("silu_se")
    with pytest.raises(UnsupportedOp, match=r"layer '.*'.*silu.*method ttfs"):
        convert_ttfs(g, np.zeros((4, *g.inputs[0].shape), np.float32))


def test_convert_ttfs_needs_two_steps():
    with pytest.raises(ValueError, match="timesteps >= 2"):
        convert_ttfs(_prepared("lenet"), np.zeros((4, 1, 28, 28), np.float32), timesteps=1)
