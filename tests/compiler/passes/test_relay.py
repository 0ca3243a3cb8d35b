"""relay: a ReLU relay population between two weighted layers fold_linear leaves apart (issue
25): exact on the ANN, and such models compile, quantize and simulate on every target."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from support.cli import assert_user_error
from support.cli import snnc as snnc_cli
from support.onnx_models import assert_close, ort_run
from support.relay_models import SharedIntermediate, build, random_data

import snnc
from snnc.compiler.passes.relay import CONSUMERS, WEIGHTED, relay
from snnc.compiler.pipeline import prepared_ann
from snnc.ir import GraphBuilder, TensorType, ops, verify
from snnc.ir.interpret import run_ann

ROUTING = (ops.Reshape, ops.Transpose, ops.Pad)


def _unrelayed_pairs(g) -> list[str]:
    """Synaptic layers that read another weighted layer's output through routing only."""
    producers, bad = g.producers(), []
    for n in g.nodes:
        if not isinstance(n.op, CONSUMERS):
            continue
        p = producers.get(n.inputs[0].name)
        while p is not None and isinstance(p.op, ROUTING):
            p = producers.get(p.inputs[0].name)
        if p is not None and isinstance(p.op, WEIGHTED):
            bad.append(n.name)
    return bad


def _relays(g) -> list[str]:
    return [n.name for n in g.nodes if isinstance(n.op, ops.Activation) and "/relay" in n.name]


def _prepared(name: str):
    """The ANN as a fixed-point target's conversion sees it (compile_graph relays after
    prepare_spiking on loihi targets only)."""
    model = build(name)
    g = verify(relay(prepared_ann(model)))
    x = random_data(name, 8, seed=1)
    assert_close(run_ann(g, x)[0], ort_run(model, {"x": x})[0], rtol=1e-5)
    assert _unrelayed_pairs(g) == [], str(g)
    return g


@pytest.mark.parametrize("name", ["bottleneck", "conv_conv", "bilinear_signed"])
def test_signed_pairs_get_two_relu_populations(name):
    g = _prepared(name)
    assert len(_relays(g)) == 2, _relays(g)
    assert sum(isinstance(n.op, ops.Add) for n in g.nodes) == 1


def test_a_chain_of_three_weighted_layers_is_relayed_twice():
    g = _prepared("conv_chain3")  # conv -> resize -> conv: the second relay splits an Add
    assert len(_relays(g)) == 4, _relays(g)
    assert sum(isinstance(n.op, ops.Add) for n in g.nodes) == 3


def test_average_pool_of_a_conv_becomes_a_depthwise_conv_between_relays():
    g = _prepared("conv_pool")
    assert len(_relays(g)) == 2
    assert not any(isinstance(n.op, ops.AvgPool2d) for n in g.nodes)
    assert sum(isinstance(n.op, ops.Conv2d) and n.op.groups == 6 for n in g.nodes) == 2


def test_bilinear_resize_after_relu_needs_one_relay_population():
    g = _prepared("bilinear")
    assert len(_relays(g)) == 1  # non-negative weights of non-negative input
    assert not any(isinstance(n.op, ops.Add) for n in g.nodes)


def test_relay_is_a_pure_function_and_leaves_activations_alone():
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    h = b.add("fc1", ops.Dense(np.eye(4, dtype=np.float32), np.ones(4, np.float32)), x)
    r = b.add("r", ops.Activation("relu"), h)
    y = b.add("fc2", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), r)
    g = verify(b.build([y]))
    assert relay(g) is g  # nothing to relay: the same graph back
    b2 = GraphBuilder()
    x2 = b2.input("x", TensorType((4,)))
    h2 = b2.add("fc1", ops.Dense(-np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), x2)
    y2 = b2.add("fc2", ops.Dense(np.ones((2, 4), np.float32), np.zeros(2, np.float32)), h2)
    g2 = verify(b2.build([y2]))
    out = verify(relay(g2))
    assert [n.name for n in g2.nodes] == ["fc1", "fc2"]  # the input graph is unchanged
    xs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(run_ann(out, xs)[0], run_ann(g2, xs)[0], rtol=1e-6)


def _cases():  # the convolutional models' rate runs (T = 64) and conv_conv take > 5 s each
    for name in ("bottleneck", "conv_conv", "bilinear"):
        for method in ("fs", "rate"):
            for target in ("cpu", "loihi2"):
                slow = name == "conv_conv" or (name, method) == ("bilinear", "rate")
                yield pytest.param(name, method, target, id=f"{name}-{method}-{target}",
                                   marks=[pytest.mark.slow] if slow else [])
    for name in ("linear_1d", "conv_chain3"):
        for target in ("cpu", "loihi2"):
            yield pytest.param(name, "fs", target, id=f"{name}-fs-{target}")


@pytest.mark.parametrize("name,method,target", list(_cases()))
def test_relayed_models_compile_and_agree_with_the_ann(tmp_path, name, method, target):
    """Top-1 agreement with the ANN on 64 random inputs (measured 0.94-1.0: benchmarks/
    RESULTS.md, 'Relay populations')."""
    path = tmp_path / "m.onnx"
    onnx.save(build(name), path)
    np.savez(tmp_path / "d.npz", x=random_data(name, 64))
    art = snnc.compile(path, target=target, method=method, calib=tmp_path / "d.npz",
                       out=tmp_path / "m.snnc")
    m = snnc.simulate(art, tmp_path / "d.npz")
    assert m["samples"] == 64
    assert m["agreement"] >= 0.9, m


def test_shared_intermediate_is_still_a_clear_user_error_on_loihi(tmp_path):
    """A weighted layer read by two weighted layers is neither merged nor relayed."""
    import torch

    torch.onnx.export(SharedIntermediate().eval(), torch.rand(1, 6), tmp_path / "m.onnx", opset_version=13,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}})
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(16, 6)).astype("f4"))
    out = tmp_path / "m.snnc"
    r = snnc_cli("compile", str(tmp_path / "m.onnx"), "--target", "loihi2", "--calib",
                 str(tmp_path / "c.npz"), "-o", str(out))
    assert_user_error(r, "two synaptic layers")
    assert not out.exists()
