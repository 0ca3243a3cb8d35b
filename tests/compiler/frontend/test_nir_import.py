"""NIR import (compiler/frontend/nir_loader.py): every supported node type, the discrete-time
LIF/CubaLIF update by hand, float vs bit-exact (quantize/leaky.py), and bad files (one `error:`
line naming every offending node, exit 2)."""

from __future__ import annotations

import itertools

import nir
import numpy as np
import pytest
import torch
from support.cli import assert_user_error, snnc, snnc_process

from snnc.backends.reference.simulator import simulate
from snnc.compiler.frontend import load_nir
from snnc.compiler.quantize.leaky import decays, quantize_leaky
from snnc.errors import InvalidModel, UnsupportedOp
from snnc.ir import leaky, ops
from snnc.ir.verify import verify
from snnc.targets import load_target

RNG = np.random.default_rng(0)


def _lif(n, tau=1e-3, dt=1e-4, r=None, thr=1.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt if r is None else r),
                   v_leak=np.zeros(n), v_threshold=np.full(n, thr))


def mlp(n_in=12, hidden=16, out=4, out_node=None) -> nir.NIRGraph:
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=RNG.normal(0, 0.6, (hidden, n_in)), bias=np.zeros(hidden)),
        "lif1": _lif(hidden),
        "fc2": nir.Linear(weight=RNG.normal(0, 0.6, (out, hidden))),
        "lif2": out_node if out_node is not None else _lif(out),
        "out": nir.Output(output_type={"output": np.array([out])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
                                            ("fc2", "lif2"), ("lif2", "out")])


def spikes(n, t, shape, p=0.3):
    return (RNG.random((n, t, *shape)) < p).astype(np.float32)


def test_lif_graph_imports_with_gain_folded_and_snntorch_discretization():
    g = load_nir(mlp(), timesteps=8)
    verify(g)
    assert g.inputs[0].shape == (8, 12)
    pop = g.node("lif1").op
    assert isinstance(pop, leaky.LeakyNeurons) and pop.reset == "zero"
    np.testing.assert_allclose(pop.beta, 0.9, rtol=1e-6)  # 1 - dt / tau
    assert np.all(pop.alpha == 0)
    assert isinstance(g.node("in").op, leaky.SpikeTrainInput)


def test_lif_update_by_hand():
    """One LIF neuron, weight 0.6, beta 0.9, threshold 1, reset to zero."""
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1])}),
        "w": nir.Linear(weight=np.array([[0.6]])),
        "lif": _lif(1), "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")])
    x = np.ones((1, 5, 1), np.float32)
    g = load_nir(graph, timesteps=5)
    v, expect = 0.0, []
    for _ in range(5):  # v = 0.9 v + 0.6; spike when v > 1; v = 0
        v = 0.9 * v + 0.6
        expect.append(float(v > 1.0))
        v = 0.0 if v > 1.0 else v
    assert expect == [0.0, 1.0, 0.0, 1.0, 0.0]
    out = simulate(g, x, dtype=torch.float64).outputs[0]
    assert out[0, 0] == pytest.approx(np.mean(expect))


def test_cubalif_update_by_hand():
    dt = 1e-4
    node = nir.CubaLIF(tau_syn=np.array([2e-4]), tau_mem=np.array([1e-3]),
                       r=np.array([1e-3 / dt]), v_leak=np.zeros(1), v_threshold=np.array([1.5]),
                       w_in=np.array([2e-4 / dt]))
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1])}),
        "w": nir.Linear(weight=np.array([[0.5]])), "cuba": node,
        "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "w"), ("w", "cuba"), ("cuba", "out")])
    g = load_nir(graph, dt=dt, timesteps=6)
    i = v = 0.0
    count = 0
    for _ in range(6):  # alpha = 0.5, beta = 0.9, gains 1 (snntorch's Synaptic)
        i = 0.5 * i + 0.5
        v = 0.9 * v + i
        count += v > 1.5
        v = 0.0 if v > 1.5 else v
    out = simulate(g, np.ones((1, 6, 1), np.float32), dtype=torch.float64).outputs[0]
    assert out[0, 0] * 6 == pytest.approx(count) and count == 2


def test_every_node_type_imports():
    c = 2
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([c, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=RNG.normal(0, 0.5, (4, c, 3, 3)),
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "if1": nir.IF(r=np.ones((4, 8, 8)), v_threshold=np.ones((4, 8, 8))),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(2, 2), weight=RNG.normal(0, 0.5, (3, 4, 1, 1)),
                            stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(3)),
        "cuba": nir.CubaLIF(tau_syn=np.full((3, 2, 2), 2e-4), tau_mem=np.full((3, 2, 2), 1e-3),
                            r=np.full((3, 2, 2), 10.0), v_leak=np.zeros((3, 2, 2)),
                            v_threshold=np.ones((3, 2, 2)), w_in=np.full((3, 2, 2), 2.0)),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([3, 2, 2])}),
        "scale": nir.Scale(scale=np.full(12, 2.0)),
        "c1d_in": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([12])}),
        "fc": nir.Affine(weight=RNG.normal(0, 0.5, (6, 12)), bias=np.zeros(6)),
        "li": nir.LI(tau=np.full(6, 1e-3), r=np.full(6, 10.0), v_leak=np.zeros(6)),
        "out": nir.Output(output_type={"output": np.array([6])})},
        edges=[("in", "conv"), ("conv", "if1"), ("if1", "sum"), ("sum", "avg"),
               ("avg", "conv2"), ("conv2", "cuba"), ("cuba", "flat"), ("flat", "scale"),
               ("scale", "c1d_in"), ("c1d_in", "fc"), ("fc", "li"), ("li", "out")])
    g = load_nir(graph, timesteps=4)
    verify(g)
    kinds = {type(n.op) for n in g.nodes}
    assert {leaky.LeakyNeurons, leaky.LeakyIntegrator, ops.Conv2d, ops.Reshape, ops.Mul,
            ops.Dense} <= kinds
    out = simulate(g, spikes(3, 4, (c, 8, 8), 0.5)).outputs[0]
    assert out.shape == (3, 6) and np.all(np.isfinite(out))


def test_conv1d_imports_between_reshapes():
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 10])}),
        "c": nir.Conv1d(input_shape=10, weight=RNG.normal(size=(3, 2, 3)), stride=1, padding=1,
                        dilation=1, groups=1, bias=np.zeros(3)),
        "lif": _lif(30).__class__(tau=np.full((3, 10), 1e-3), r=np.full((3, 10), 10.0),
                                  v_leak=np.zeros((3, 10)), v_threshold=np.ones((3, 10))),
        "out": nir.Output(output_type={"output": np.array([3, 10])})},
        edges=[("in", "c"), ("c", "lif"), ("lif", "out")])
    g = load_nir(graph, timesteps=3)
    assert g.outputs[0].shape == (3, 10)
    x = RNG.random((1, 3, 2, 10)).astype(np.float32)
    conv = torch.nn.functional.conv1d(torch.as_tensor(x[0, 0:1]), torch.as_tensor(
        graph.nodes["c"].weight, dtype=torch.float32), padding=1)
    from snnc.sim import Counters, FloatRules
    from snnc.sim.run import run_once
    seen = {}
    run_once(FloatRules(Counters()), g, torch.as_tensor(x),
             observe=lambda n, s: seen.__setitem__(n.name, s.x))
    np.testing.assert_allclose(seen["c/conv"][0, 0, :, 0].numpy() / 10.0 * 1.0,
                               conv[0].numpy() * 0.1 / 10.0 * 10.0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_float_and_bit_exact_agree(target):
    g = load_nir(mlp(n_in=30, hidden=40, out=5), timesteps=20)
    qg, report = quantize_leaky(g, load_target(target), input_max=1.0)
    verify(qg)
    x = spikes(64, 20, (30,))
    f, b = simulate(g, x, dtype=torch.float64), simulate(qg, x)
    assert abs(sum(f.spikes.values()) - sum(b.spikes.values())) <= 0.03 * sum(f.spikes.values())
    agree = np.mean(f.outputs[0].argmax(1) == b.outputs[0].argmax(1))
    assert agree >= 0.9, agree
    assert {r["dv"] for r in report["layers"]} == {decays(0.0, 0.9)[1]} == {410}


def test_decays_match_lava():
    assert decays(0.0, 1.0) == (4095, 0)  # IF: no current state, no leak
    assert decays(0.5, 0.9) == (2047, 410)


# ---- bad files: one error line, exit 2 -------------------------------------------------------


def _write(tmp_path, graph, name="m.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    return path


def test_truncated_file(tmp_path):
    path = _write(tmp_path, mlp())
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(InvalidModel, match="truncated or corrupt"):
        load_nir(path)
    assert_user_error(snnc_process("compile", str(path), "-o", str(tmp_path / "a.snnc")),
                      "m.nir")
    assert not (tmp_path / "a.snnc").exists()


def test_unknown_node_and_shape_mismatch_named_in_one_error(tmp_path):
    graph = mlp()
    graph.nodes["fc2"] = nir.Linear(weight=RNG.normal(size=(4, 7)))  # expects 7, gets 16
    graph.nodes["thr"] = nir.Threshold(threshold=np.ones(4))
    graph.edges.append(("lif2", "thr"))
    graph.edges.append(("thr", "out"))
    with pytest.raises(UnsupportedOp) as e:
        load_nir(graph)
    msg = str(e.value)
    assert "'fc2' (Linear)" in msg and "'thr' (Threshold)" in msg and "unknown node type" in msg
    path = _write(tmp_path, graph)
    err = assert_user_error(snnc_process("compile", str(path), "--target", "loihi2"),
                            "'fc2'", "'thr'")
    assert err.count("\n") <= 1


def test_recurrence_names_every_node_on_the_cycle(tmp_path):
    graph = mlp()
    graph.nodes["rec"] = nir.Linear(weight=np.eye(16))
    graph.edges += [("lif1", "rec"), ("rec", "fc1")]
    path = _write(tmp_path, graph)
    assert_user_error(snnc_process("compile", str(path)), "'rec'", "'fc1'", "'lif1'", "cycle")


def test_li_readout_and_end_to_end_api(tmp_path):
    import snnc

    graph = mlp(out_node=nir.LI(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4)))
    x, y = spikes(24, 10, (12,)), RNG.integers(0, 4, 24)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    art = snnc.compile(graph, target="loihi2", calib=tmp_path / "d.npz", out=tmp_path / "a.snnc")
    assert art.manifest["method"] == "nir" and art.manifest["options"]["timesteps"] == 10
    cost = art.manifest["quantization"]["cost"]
    assert cost["samples"] == 24 and cost["agreement"] >= 0.9
    m = snnc.simulate(art, tmp_path / "d.npz")
    assert m["mode"] == "bit-exact" and m["samples"] == 24
    assert m["ann_accuracy"] == cost["float_accuracy"]  # the imported float network


def test_shipped_example_keeps_snntorch_accuracy(tmp_path):
    """examples/nir_import: snntorch's 91 % on its 300 test spike trains, float and loihi2."""
    import json
    from pathlib import Path

    import snnc

    ex = Path(__file__).resolve().parents[3] / "examples" / "nir_import"
    source = json.loads((ex / "snntorch_accuracy.json").read_text())["snntorch_accuracy"]
    art = snnc.compile(ex / "model.nir", target="loihi2", calib=ex / "test.npz",
                       out=tmp_path / "m.snnc")
    cost = art.manifest["quantization"]["cost"]
    assert abs(cost["float_accuracy"] - source) <= 0.01
    assert abs(cost["fixed_accuracy"] - source) <= 0.01


def test_inspect_lists_the_layers_of_a_nir_file():
    import json

    from support.paths import EXAMPLES

    proc = snnc("inspect", str(EXAMPLES / "nir_import" / "model.nir"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    ops_seen = [r["op"] for r in summary["layers"]]
    assert ops_seen == ["spike_train_input", "dense", "leaky_neurons", "dense", "leaky_neurons"]
    assert summary["params"] == sum(r["params"] for r in summary["layers"]) > 100_000
    assert summary["outputs"][0]["shape"] == [10]


def test_scale_after_a_synapse_folds_and_quantizes():
    """A Scale fed by an Affine that feeds only it is folded into the Affine's rows: the graph
    computes the same currents and stays quantizable (an explicit Mul is not)."""
    scale = RNG.uniform(0.5, 2.0, 16)
    w, b = RNG.normal(0, 0.6, (16, 12)), RNG.normal(0, 0.1, 16)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([12])}),
        "fc1": nir.Affine(weight=w, bias=b),
        "gain": nir.Scale(scale=scale),
        "lif1": _lif(16),
        "out": nir.Output(output_type={"output": np.array([16])}),
    }
    chain = ["in", "fc1", "gain", "lif1", "out"]
    g = load_nir(nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(chain))), timesteps=8)
    assert not any(isinstance(n.op, ops.Mul) for n in g.nodes)
    nodes.pop("gain")
    nodes["fc1"] = nir.Affine(weight=w * scale[:, None], bias=b * scale)
    chain.remove("gain")
    ref = load_nir(nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(chain))), timesteps=8)
    x = spikes(16, 8, (12,))
    np.testing.assert_array_equal(simulate(g, x, device="cpu").outputs[0],
                                  simulate(ref, x, device="cpu").outputs[0])
    quantize_leaky(g, load_target("loihi2"))  # no NotQuantizable


def test_compile_parses_the_nir_file_once(tmp_path, monkeypatch):
    import h5py

    import snnc

    path = _write(tmp_path, mlp())
    x = spikes(8, 6, (12,))
    np.savez(tmp_path / "d.npz", x=x)
    opened, real = [], h5py.File

    def counting(name, *a, **k):
        opened.append(str(name))
        return real(name, *a, **k)

    monkeypatch.setattr(h5py, "File", counting)
    art = snnc.compile(path, target="loihi2", calib=tmp_path / "d.npz", out=tmp_path / "a.snnc")
    assert art.manifest["options"]["timesteps"] == 6
    assert opened.count(str(path)) == 1, opened


def test_two_edges_into_a_neuron_compile_for_loihi_and_lava_names_the_depth(tmp_path):
    """A skip synapse from the input into the output LIF (two edges into one node): both
    synapses share the population's state unit on loihi2, the bit-exact network tracks the
    float one; Lava refuses it in one line (the skip arrives a synapse layer earlier)."""
    import snnc

    graph = mlp()
    graph.nodes["skip"] = nir.Linear(weight=RNG.normal(0, 0.6, (4, 12)))
    graph.edges += [("in", "skip"), ("skip", "lif2")]
    path = _write(tmp_path, graph)
    np.savez(tmp_path / "d.npz", x=spikes(48, 10, (12,)), y=RNG.integers(0, 4, 48))
    art = snnc.compile(path, target="loihi2", calib=tmp_path / "d.npz", out=tmp_path / "a.snnc")
    assert art.manifest["quantization"]["cost"]["agreement"] >= 0.9
    assert snnc.simulate(art, tmp_path / "d.npz")["mode"] == "bit-exact"
    r = snnc_process("simulate", str(tmp_path / "a.snnc"), "--data", str(tmp_path / "d.npz"),
                     "--backend", "lava", "--limit", "1")
    assert_user_error(r, "'lif2/sum'", "synapse layers", "delay")
