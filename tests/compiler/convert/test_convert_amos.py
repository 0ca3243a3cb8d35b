"""convert_amos and the AMOS circuit in the reference simulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.paths import EXAMPLES

from snnc.backends.reference.simulator import simulate
from snnc.compiler import fs_params
from snnc.compiler.convert.amos import circuit_depth, convert_amos
from snnc.compiler.convert.fs import convert_fs
from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.calibrate import calibrate
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.fold_bn import fold_batchnorm
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.compiler.pipeline import timing_of
from snnc.ir import GraphBuilder, TensorType, neurons, verify


def _single(op, shape):
    b = GraphBuilder()
    x = b.input("x", TensorType(shape))
    return verify(b.build([b.add("pop", op, x)]))


@pytest.mark.parametrize("table", [fs_params.relu_table(25.0, 10), fs_params.SWISH,
                                   fs_params.SIGMOID], ids=["relu", "swish", "sigmoid"])
def test_circuit_equals_fs_neuron_with_one_spike_per_neuron(table):
    x = np.random.default_rng(1).uniform(-12, 30, (64, 500))
    amos = simulate(_single(neurons.AmosNeurons(table.h, table.d, table.T), (500,)), x,
                    dtype=torch.float64, device="cpu")
    y, z = fs_params.encode(table, x)
    # same arithmetic in the same order as the FS neuron (readouts are returned as float32)
    np.testing.assert_array_equal(amos.outputs[0], y.astype(np.float32))
    assert amos.spikes["pop"] == z.sum()  # neuron i of the circuit spikes iff z(i) of FS
    assert amos.max_spikes["pop"] == 1.0
    assert amos.neurons["pop"] == 500 * table.K  # k neurons per gate


def test_relu_circuit_spikes_are_the_binary_digits():
    t = fs_params.relu_table(1.0, 4)  # thresholds 1/2, 1/4, 1/8, 1/16
    g = _single(neurons.AmosNeurons(t.h, t.d, t.T), (1,))
    res = simulate(g, np.array([[0.70]]), dtype=torch.float64, device="cpu")
    # 0.70 = 0.1011..b -> neurons 1, 3, 4 fire: y = 1/2 + 1/8 + 1/16
    assert res.spikes["pop"] == 3
    np.testing.assert_allclose(res.outputs[0], [[0.6875]])


def _prepared(name):
    g = prepare_spiking(fold_batchnorm(canonicalize(load_onnx(EXAMPLES / name / f"{name}.onnx"))))
    x = np.load(EXAMPLES / name / "calib.npz")["x"][:200]
    return g, x, calibrate(g, x, 100.0)


@pytest.mark.parametrize("name,depth", [("lenet", 30), ("resnet", 50)])
def test_convert_amos_structure_and_timing(name, depth):
    g, x, stats = _prepared(name)
    amos = verify(convert_amos(g, stats))
    fs = convert_fs(g, stats)
    pops = [n for n in amos.nodes if isinstance(n.op, neurons.AmosNeurons)]
    assert pops and not any(isinstance(n.op, neurons.FewSpikeNeurons) for n in amos.nodes)
    for a, f in zip(pops, [n for n in fs.nodes if isinstance(n.op, neurons.FewSpikeNeurons)]):
        np.testing.assert_array_equal(a.op.T, f.op.T)  # the FS tables, unrolled in space
    assert circuit_depth(amos) == depth
    assert timing_of(amos, "amos") == {"latency_steps": depth, "throughput_steps": 1}
    a = simulate(amos, x[:100], device="cpu")
    f = simulate(fs, x[:100], device="cpu")
    np.testing.assert_array_equal(a.outputs[0], f.outputs[0])
    assert a.max_spikes and max(a.max_spikes.values()) == 1.0


def test_silu_gates_use_shipped_tables():
    g, x, stats = _prepared("silu_se")
    amos = convert_amos(g, stats)
    ks = sorted({n.op.K for n in amos.nodes if isinstance(n.op, neurons.AmosNeurons)})
    assert 16 in ks and 12 in ks  # SiLU k = 16, sigmoid k = 12
    res = simulate(amos, x[:20], device="cpu")
    assert max(res.max_spikes.values()) == 1.0
