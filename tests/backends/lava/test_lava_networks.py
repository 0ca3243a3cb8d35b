"""Lava backend (snnc/backends/lava): real Lava processes under Loihi2SimCfg("fixed_pt") against
the bit-exact reference simulator, spike for spike, for every coding method and topology."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from support.examples import compiled_example
from support.lava import IMAGES, LENET, ROOT, STEPS

from snnc.api import compile_model
from snnc.artifact import load_artifact
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.data import load_dataset
from snnc.ir import neurons, ops
from snnc.ir import quantized as q

pytestmark = pytest.mark.lava


def test_rate_lenet_spike_for_spike(rate_artifact, images):
    """Every population's spike trains and the readout equal the bit-exact reference on 20
    images (after removing each layer's constant pipeline delay, which the runner reports)."""
    res = run(rate_artifact, images)
    ref_out, ref = reference_spikes(rate_artifact.graph, images)
    pops = [n.name for n in rate_artifact.graph.nodes if isinstance(n.op, q.QIFNeurons)]
    assert sorted(res.spikes) == sorted(pops) and len(pops) == 3
    for name in pops:
        assert res.spikes[name].shape == ref[name].shape == (STEPS, IMAGES,
                                                             *res.spikes[name].shape[2:])
        assert ref[name].sum() > 0  # something to compare
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    assert [res.delays[p] for p in pops] == [1, 2, 3]  # one step per synapse
    np.testing.assert_array_equal(res.outputs, ref_out)


def test_cli_metrics_equal_cpu(rate_artifact):
    """`snnc simulate --backend lava` prints the cpu backend's metrics (all but wall time)."""
    def sim(backend):
        r = subprocess.run([sys.executable, "-m", "snnc.cli", "simulate", str(rate_artifact.path),
                            "--data", str(LENET / "test.npz"), "--limit", "4", "--backend",
                            backend, "--json", "-q"], capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    lava, cpu = sim("lava"), sim("cpu")
    assert sorted(lava) == sorted(cpu)
    lava.pop("wall_s"), cpu.pop("wall_s")
    assert lava == cpu
    assert lava["samples"] == 4 and lava["synops_per_sample"] > 0


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_fs_lenet_spike_for_spike(tmp_path, images, target):
    """Few-spike LeNet: on loihi2 the spikes carry graded payloads d(t); on loihi1 they are
    binary and d(t) = 2^k(t) is folded into the consumers' per-step weight exponents. Every
    population's payload trains and the readout equal the bit-exact reference on 20 images."""
    art = compile_model(LENET / "lenet.onnx", target=target, method="fs",
                        calib=LENET / "calib.npz", out=tmp_path / "fs.snnc")
    assert all(n.op.graded == (target == "loihi2") for n in art.graph.nodes
               if isinstance(n.op, q.QFewSpikeNeurons))
    res = run(art, images)
    ref_out, ref = reference_spikes(art.graph, images)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, q.QFewSpikeNeurons)]
    assert sorted(res.spikes) == sorted(pops) and len(pops) == 3
    for name in pops:
        assert res.spikes[name].shape == ref[name].shape
        assert (ref[name] > 1).any()  # graded payloads, not just 0/1
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(res.outputs, ref_out)
    # each layer starts when the previous one's K-step window is complete (constant delays)
    d = [res.delays[p] for p in pops]
    assert d[0] < d[1] < d[2]


@pytest.mark.slow
def test_fs_resnet_spike_for_spike():
    """The residual CNN, fs on loihi2: skip connections (1:1 QScale synapses, a 1x1 projection
    conv) join the main path in an aligned dendritic sum (the earlier stream delayed), a
    global sum-pool feeds the classifier. Every population's payload trains and the readout
    equal the bit-exact reference on 20 images after the constant pipeline delays."""
    d = ROOT / "examples" / "resnet"
    art = load_artifact(compiled_example("resnet", "loihi2", "fs"))
    kinds = {type(n.op) for n in art.graph.nodes}
    assert {q.QScale, q.GlobalSumPool} <= kinds  # what the chain-only backend refused
    x = load_dataset(d / "test.npz", art.graph.inputs[0].shape, limit=IMAGES).x
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, q.QFewSpikeNeurons)]
    assert sorted(res.spikes) == sorted(pops) and len(pops) == 5
    for name in pops:
        assert res.spikes[name].shape == ref[name].shape == (10, IMAGES,
                                                             *res.spikes[name].shape[2:])
        assert (ref[name] > 1).any()
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(res.outputs, ref_out)
    # K = 10: one step per synapse, K - 1 per FS window (+ K - 1 for the max-pool gate)
    assert [res.delays[p] for p in pops] == [1, 11, 21, 40, 50]


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_amos_lenet_spike_for_spike(tmp_path, images, target):
    """AMOS LeNet (loihi2: graded payloads d_i; loihi1: binary spikes, d_i in the weights):
    k = 10 one-shot neurons per gate. Every neuron's spike (which circuit step it fired in, if
    at all), the payload trains and the readout equal the bit-exact reference on 20 images;
    every neuron fires at most once, neuron i in step i."""
    art = compile_model(LENET / "lenet.onnx", target=target, method="amos",
                        calib=LENET / "calib.npz", out=tmp_path / "amos.snnc")
    res = run(art, images)
    ref_out, ref = reference_spikes(art.graph, images)
    pops = [n for n in art.graph.nodes if isinstance(n.op, q.QAmosNeurons)]
    assert sorted(res.spikes) == sorted(n.name for n in pops) and len(pops) == 3
    for node in pops:
        name, k = node.name, node.op.K
        assert (node.op.d != 0).all()  # so a payload step <=> that neuron's spike
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
        fired = res.fired_step[name]  # (N, k, *shape): step of each neuron's spike, 0: none
        assert fired.shape == (IMAGES, k, *node.output.shape)
        i = np.arange(1, k + 1).reshape(1, k, *([1] * len(node.output.shape)))
        assert np.isin(fired - i * (fired > 0), 0).all()  # neuron i fires only in step i
        ref_z = np.moveaxis(ref[name] != 0, 0, 1)  # reference: neuron i's spike is step i's
        np.testing.assert_array_equal(fired > 0, ref_z, err_msg=name)
        assert ref_z.any()
    np.testing.assert_array_equal(res.outputs, ref_out)
    assert [res.delays[n.name] for n in pops] == [1, 20, 39]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fs", "rate"])
def test_split_fanin_lenet_spike_for_spike(tmp_path, images, method):
    """LeNet for a core of 64 input axons: split_fanin cuts conv2, fc1 and the logits into
    channel groups (Slice -> synapses -> PartialSumRelay -> 1:1 synapse, parts added). Every
    population's trains, the relays' signed graded payloads (few-spike graphs: their window
    sums, as the reference reports them) and the readout equal the bit-exact reference."""
    target = tmp_path / "narrow.toml"
    target.write_text('base = "loihi2"\nname = "loihi2-narrow"\n[core]\nmax_in_axons = 64\n')
    art = compile_model(LENET / "lenet.onnx", target_file=target, method=method,
                        timesteps=STEPS if method == "rate" else None,
                        calib=LENET / "calib.npz", out=tmp_path / "split.snnc")
    nodes = art.graph.nodes
    relays = [n.name for n in nodes if isinstance(n.op, neurons.PartialSumRelay)]
    split = {n.name.split("/relay")[0] for n in nodes if n.name in relays}
    assert split == {"/conv2/Conv_output_0", "/fc1/Gemm_output_0", "logits/acc"}
    assert len(relays) == sum(isinstance(n.op, ops.Slice) for n in nodes) > len(split)
    x = images[:10]
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    assert sorted(res.spikes) == sorted(ref) and set(relays) < set(ref)
    for name in ref:
        assert res.spikes[name].shape == ref[name].shape, name
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    parts = np.concatenate([ref[r].ravel() for r in relays])
    assert (parts < 0).any() and (parts > 1).any()  # signed graded payloads
    np.testing.assert_array_equal(res.outputs, ref_out)


def _ttfs_equal(graph, x, delays: list[int], counts: bool = True) -> dict[str, np.ndarray]:
    """Run a quantized ttfs graph on Lava and check it against the bit-exact reference: every
    population's spike trains (T steps, one spike per neuron at most), relays' per-step
    payloads, the readout and, with ``counts`` (a second Lava run), ``simulate``'s counts
    (spikes, synaptic events including the hybrid input's, most spikes per neuron).
    ``delays``: the populations' pipeline delays. Returns the reference trains."""
    from snnc.backends.lava.runner import simulate_lava
    from snnc.backends.reference.fixed_point import simulate_fixed

    res = run(graph, x)
    ref_out, ref = reference_spikes(graph, x)
    names = [n.name for n in graph.nodes if isinstance(n.op, q.QSingleSpikeNeurons)]
    assert sorted(res.spikes) == sorted(ref) and len(names) == len(delays)
    for name in ref:
        assert res.spikes[name].shape == ref[name].shape == (5, len(x),
                                                             *res.spikes[name].shape[2:])
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    for name in names:
        assert ref[name].sum() > 0 and (ref[name].sum(0) <= 1).all(), name  # single spikes
    assert [res.delays[p] for p in names] == delays
    np.testing.assert_array_equal(res.outputs, ref_out)
    if not counts:
        return ref
    lava, cpu = simulate_lava(graph, x), simulate_fixed(graph, x, device="cpu")
    assert (lava.spikes, lava.synops, lava.max_spikes) == (cpu.spikes, cpu.synops,
                                                            cpu.max_spikes)
    return ref


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_ttfs_lenet_spike_for_spike(tmp_path, images, target):
    """Single-spike (ttfs) LeNet: the host sends the hybrid input's T steps of signed event
    payloads, populations integrate events into persistent currents and fire once, first-spike
    max-pool gates pass each window's earliest spike, the readout integrates. Every
    population's spike trains, the readout and the simulate counts equal the bit-exact
    reference on 10 images."""
    art = compile_model(LENET / "lenet.onnx", target=target, method="ttfs",
                        calib=LENET / "calib.npz", out=tmp_path / "ttfs.snnc")
    kinds = {type(n.op) for n in art.graph.nodes}
    assert {q.QHybridInput, q.QSingleSpikeNeurons, neurons.FirstSpikeMaxPool2d} <= kinds
    _ttfs_equal(art.graph, images[:10], delays=[1, 2, 3])  # one step per synapse


def test_ttfs_split_fanin_relays(tmp_path, images):
    """Partial-sum relays in a ttfs graph pass each step's events (not window sums): the
    quantized LeNet split for 128-axon cores (its hybrid input sends signed 8-bit events)."""
    from snnc.compiler.placement import split_fanin
    from snnc.targets import load_target

    art = compile_model(LENET / "lenet.onnx", target="loihi2", method="ttfs",
                        calib=LENET / "calib.npz", out=tmp_path / "ttfs.snnc")
    target = tmp_path / "narrow.toml"
    target.write_text('base = "loihi2"\nname = "loihi2-narrow"\n[core]\nmax_in_axons = 128\n')
    split = split_fanin(art.graph, load_target(target))
    relays = [n.name for n in split.nodes if isinstance(n.op, neurons.PartialSumRelay)]
    assert {r.split("/relay")[0] for r in relays} == {"/conv2/Conv_output_0",
                                                       "/fc1/Gemm_output_0"}
    ref = _ttfs_equal(split, images[:5], delays=[1, 3, 5], counts=False)
    parts = np.concatenate([ref[r].ravel() for r in relays])
    assert (parts < 0).any() and (parts > 1).any()  # signed graded payloads, per step


@pytest.mark.slow
def test_ttfs_resnet_spike_for_spike():
    """The residual CNN, ttfs on loihi2: skip connections from single-spike populations are
    depthwise 1x1 convolutions (per-channel amplitudes, groups = C), aligned with the main
    path in the dendritic sum; a global sum-pool feeds the classifier. Every population, the
    readout and the simulate counts equal the reference on 3 images."""
    d = ROOT / "examples" / "resnet"
    art = load_artifact(compiled_example("resnet", "loihi2", "ttfs"))
    assert any(isinstance(n.op, q.QConv2d) and n.op.groups > 1 for n in art.graph.nodes)
    assert any(isinstance(n.op, q.GlobalSumPool) for n in art.graph.nodes)
    x = np.load(d / "test.npz")["x"][:3]
    _ttfs_equal(art.graph, x, delays=[1, 2, 3, 4, 5])



@pytest.mark.slow
def test_split_fanin_residual_spike_for_spike(tmp_path, images):
    """The residual CNN on 140-axon cores (four 3x3 convs split, inside the residual blocks):
    every population, relay and the readout equal the reference on 3 images (18 s)."""
    resnet = LENET.parent / "resnet"
    target = tmp_path / "n140.toml"
    target.write_text('base = "loihi2"\nname = "n140"\n[core]\nmax_in_axons = 140\n'
                      "[chip]\nchips_per_system = 64\n")
    art = compile_model(resnet / "resnet.onnx", target_file=target, method="fs",
                        calib=resnet / "calib.npz", out=tmp_path / "split.snnc")
    assert art.manifest["fan_in_splits"]["relay_levels"] == 4
    x = np.load(resnet / "test.npz")["x"][:3]
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    assert sorted(res.spikes) == sorted(ref)
    for name in ref:
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(res.outputs, ref_out)


@pytest.mark.slow
def test_split_fanin_behind_a_concatenation_spike_for_spike(tmp_path):
    """A fire module whose expand branches are concatenated before the ReLU, on 64-axon cores:
    the 3x3 branch is split in front of the Concat (relays, parts added, then concatenated).
    Every population, relay and the readout equal the bit-exact reference on 4 inputs."""
    import onnx
    from support.model_builders import concat_then_relu

    onnx.save(concat_then_relu(), tmp_path / "fire.onnx")
    x = np.random.default_rng(0).uniform(size=(64, 1, 14, 14)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    target = tmp_path / "narrow.toml"
    target.write_text('base = "loihi2"\nname = "loihi2-narrow"\n[core]\nmax_in_axons = 64\n')
    art = compile_model(tmp_path / "fire.onnx", target_file=target, method="fs",
                        calib=tmp_path / "x.npz", out=tmp_path / "split.snnc")
    relays = [n.name for n in art.graph.nodes if isinstance(n.op, neurons.PartialSumRelay)]
    assert relays and any(isinstance(n.op, ops.Concat) for n in art.graph.nodes)
    res = run(art, x[:4])
    ref_out, ref = reference_spikes(art.graph, x[:4])
    assert sorted(res.spikes) == sorted(ref) and set(relays) < set(ref)
    for name in ref:
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(res.outputs, ref_out)
