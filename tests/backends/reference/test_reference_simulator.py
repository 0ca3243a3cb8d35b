"""Reference simulator: neuron dynamics against hand-derived sequences and closed forms."""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.reference.simulator import simulate
from snnc.compiler import fs_params
from snnc.ir import GraphBuilder, TensorType, neurons, ops, verify


def _single(op, shape=(5,)):
    b = GraphBuilder()
    x = b.input("x", TensorType(shape))
    return verify(b.build([b.add("pop", op, x)]))


def test_fs_relu_population_is_exact_10bit_quantizer():
    alpha, K = 25.0, 10
    t = fs_params.relu_table(alpha, K)
    g = _single(neurons.FewSpikeNeurons(t.h, t.d, t.T, "relu"), (1000,))
    x = np.random.default_rng(0).uniform(-5, 30, (1000, 1000))
    res = simulate(g, x, dtype=torch.float64, device="cpu")
    code = np.clip(np.floor(2.0**K * x / alpha), 0, 2**K - 1)
    # the neuron's comparison is strict: values exactly on a bin edge fall one bin lower
    on_edge = (2.0**K * x / alpha == np.floor(2.0**K * x / alpha)) & (x > 0)
    code = np.where(on_edge, np.maximum(code - 1, 0), code)
    np.testing.assert_array_equal(res.outputs[0], alpha * 2.0**-K * code)
    popcount = np.vectorize(lambda c: bin(int(c)).count("1"))(code).sum()
    assert res.spikes["pop"] == popcount


def test_if_neuron_hand_derived_sequence():
    # threshold 1, input 0.4 per step: v = .4 .8 1.2->.2 .6 1.0->0 .4 .8 1.2->.2 -> spikes at 3,5,8
    g = _single(neurons.IFNeurons(threshold=1.0, amplitude=2.0, timesteps=8), (1,))
    res = simulate(g, np.array([[0.4]]), dtype=torch.float64, device="cpu")
    assert res.spikes["pop"] == 3
    np.testing.assert_allclose(res.outputs[0], [[2.0 * 3 / 8]])  # readout: mean over time


def test_if_rate_converges_to_relu():
    g = _single(neurons.IFNeurons(threshold=1.0, amplitude=1.0, timesteps=1000), (50,))
    x = np.random.default_rng(1).uniform(-1, 1, (4, 50))
    res = simulate(g, x, dtype=torch.float64, device="cpu")
    assert np.abs(res.outputs[0] - np.maximum(x, 0)).max() <= 1e-3 + 1e-12


def test_spiking_max_pool_passes_most_active_input():
    b = GraphBuilder()
    x = b.input("x", TensorType((1, 1, 2)))
    s = b.add("if", neurons.IFNeurons(1.0, 1.0, 8), x)
    p = b.add("pool", neurons.SpikingMaxPool2d((1, 2), (1, 2)), s)
    g = verify(b.build([p]))
    res = simulate(g, np.array([[[[0.25, 0.75]]]]), dtype=torch.float64, device="cpu")
    # 0.75 spikes at t = 2,3,4,6,7,8 and leads the count from t = 2 on; 0.25 spikes at t = 4, 8
    # but never leads: the gate passes exactly the 6 spikes of the 0.75 neuron
    np.testing.assert_allclose(res.outputs[0].ravel(), [6 / 8])


def test_synops_count_fanout_exactly():
    b = GraphBuilder()
    x = b.input("x", TensorType((1, 4, 4)))
    s = b.add("if", neurons.IFNeurons(1.0, 1.0, 1), x)
    w = np.ones((2, 1, 3, 3), np.float32)
    c = b.add("conv", ops.Conv2d(w, np.zeros(2, np.float32), padding=(1, 1, 1, 1)), s)
    g = verify(b.build([c]))
    res = simulate(g, np.full((1, 1, 4, 4), 2.0), dtype=torch.float64, device="cpu")
    # every input spikes once; fanout = 2 channels x (number of 3x3 windows covering it)
    cover = np.array([2, 3, 3, 2])
    assert res.synops["conv"] == 2 * (np.outer(cover, cover)).sum()
