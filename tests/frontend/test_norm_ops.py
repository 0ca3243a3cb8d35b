"""Normalizations by per-sample statistics (issue 25, item 4) against onnxruntime:
LayerNormalization (opset 17), LayerNorm as torch exports it before opset 17 (ReduceMean, Sub,
Pow, ReduceMean, Add, Sqrt, Div: fused into one Normalize by canonicalize), InstanceNorm2d and
GroupNorm (Reshape, InstanceNormalization, Reshape, Mul, Add), and the exact fold of groups of
one element."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from support.onnx_models import assert_close, check_against_ort, one_node_model, ort_run
from torch import nn

from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.errors import UnsupportedOp
from snnc.ir import norm_ops, ops, verify
from snnc.ir.interpret import run_ann


def _norms(graph) -> list:
    return [n.op for n in graph.nodes if isinstance(n.op, norm_ops.Normalize)]


def _exported(module: nn.Module, shape, opset: int) -> onnx.ModelProto:
    torch.manual_seed(0)
    for p in module.parameters():  # affine parameters away from their 1/0 initial values
        nn.init.uniform_(p, -1.5, 1.5)
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.rand(1, *shape), buf, opset_version=opset,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buf.getvalue())


def _check_canonical(model: onnx.ModelProto, batch: int = 3):
    """The canonical graph (fusions applied) against onnxruntime; returns it."""
    graph = verify(canonicalize(load_onnx(model)))
    x = np.random.default_rng(1).normal(size=(batch, *graph.inputs[0].shape)) * 2 + 0.5
    x = x.astype(np.float32)
    assert_close(run_ann(graph, x)[0], ort_run(model, {"x": x})[0])
    return graph


@pytest.mark.parametrize("shape,axis,eps", [
    ((6,), -1, 1e-5), ((4, 6), -1, 1e-3), ((4, 6), 1, 1e-5), ((3, 4, 5), -1, 1e-5),
    ((3, 4, 5), -2, 0.1), ((3, 4, 5), 1, 1e-5)])
def test_layer_normalization_opset17_matches_onnxruntime(shape, axis, eps):
    rng = np.random.default_rng(0)
    norm_shape = shape[axis - 1:] if axis > 0 else shape[len(shape) + axis:]
    scale = rng.uniform(-2, 2, norm_shape).astype(np.float32)
    bias = rng.uniform(-1, 1, norm_shape).astype(np.float32)
    model = one_node_model("LayerNormalization", shape, initializers=[scale, bias], opset=17,
                           axis=axis, epsilon=eps)
    g = check_against_ort(model, batch=3)
    (op,) = _norms(g)
    assert (op.kind, op.eps) == ("layer_norm", pytest.approx(eps))


@pytest.mark.parametrize("shape", [(2, 5, 5), (4, 3, 6), (3, 7)])
def test_instance_normalization_matches_onnxruntime(shape):
    rng = np.random.default_rng(2)
    scale, bias = (rng.uniform(-2, 2, shape[0]).astype(np.float32) for _ in range(2))
    g = check_against_ort(one_node_model("InstanceNormalization", shape,
                                         initializers=[scale, bias], epsilon=1e-3), batch=3)
    (op,) = _norms(g)
    assert (op.kind, op.groups, op.axes) == ("instance_norm", shape[0],
                                             tuple(range(1, len(shape))))


@pytest.mark.parametrize("opset", [13, 16])
@pytest.mark.parametrize("norm_shape,shape", [((6,), (6,)), ((6,), (4, 6)), ((4, 6), (4, 6)),
                                              ((5,), (3, 4, 5)), ((4, 5), (3, 4, 5)),
                                              ((3, 4, 5), (3, 4, 5))])
def test_decomposed_torch_layer_norm_is_one_normalize(opset, norm_shape, shape):
    model = _exported(nn.LayerNorm(norm_shape, eps=1e-4), shape, opset)
    assert "Sqrt" in [n.op_type for n in model.graph.node]  # the decomposed form
    check_against_ort(model, batch=3)  # the decomposed IR, before fusion
    g = _check_canonical(model)
    (op,) = _norms(g)
    assert (op.kind, op.eps) == ("layer_norm", pytest.approx(1e-4))
    assert not [n for n in g.nodes if isinstance(n.op, (norm_ops.Sqrt, ops.Div))]


def test_torch_layer_norm_at_opset17_is_layer_normalization():
    model = _exported(nn.LayerNorm(6), (4, 6), 17)
    assert [n.op_type for n in model.graph.node] == ["LayerNormalization"]
    assert len(_norms(_check_canonical(model))) == 1


@pytest.mark.parametrize("groups,channels,spatial", [(2, 4, (3, 3)), (1, 6, (2, 2)),
                                                      (3, 6, (5,)), (4, 4, (2, 3))])
def test_torch_group_norm_is_one_group_normalize(groups, channels, spatial):
    model = _exported(nn.GroupNorm(groups, channels), (channels, *spatial), 13)
    g = _check_canonical(model)
    (op,) = _norms(g)
    assert (op.kind, op.groups) == ("group_norm", groups)
    assert not [n for n in g.nodes if isinstance(n.op, ops.Reshape)]


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_group_normalization_opset21_matches_onnxruntime(groups):
    rng = np.random.default_rng(4)
    scale, bias = (rng.uniform(-2, 2, 6).astype(np.float32) for _ in range(2))
    node = onnx.helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"],
                                 num_groups=groups, epsilon=1e-3)
    info = [onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, ["N", 6, 3, 4])
            for v in "xy"]  # a function op: shape inference leaves its output unshaped
    model = onnx.helper.make_model(
        onnx.helper.make_graph([node], "gn", info[:1], info[1:], [
            onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(bias, "b")]),
        opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = 10
    g = check_against_ort(model, batch=3)
    (op,) = _norms(g)
    assert (op.kind, op.groups) == ("group_norm", groups)


@pytest.mark.parametrize("affine", [True, False])
def test_torch_instance_norm2d(affine):
    model = _exported(nn.InstanceNorm2d(3, affine=affine), (3, 4, 4), 13)
    (op,) = _norms(_check_canonical(model))
    assert op.kind == "instance_norm"


def _instance_norm_1x1() -> onnx.ModelProto:  # torch refuses InstanceNorm2d on 1x1 maps
    scale, bias = np.array([1.5, -2.0, 0.5], np.float32), np.array([0.1, 0.2, -0.3], np.float32)
    return one_node_model("InstanceNormalization", (3, 1, 1), initializers=[scale, bias])


@pytest.mark.parametrize("make,shape", [
    (_instance_norm_1x1, (3, 1, 1)),
    (lambda: _exported(nn.LayerNorm(1), (5, 1), 13), (5, 1)),
    (lambda: _exported(nn.LayerNorm(1), (5, 1), 17), (5, 1))])
def test_groups_of_one_element_fold_exactly(make, shape):
    """Statistics of one element are constant (mean x, variance 0): the output is the bias for
    every sample, folded as x * 0 + bias, bit for bit what the Normalize rule and onnx's
    reference evaluator compute (onnxruntime's fused kernels leave a rounding residue growing
    with |x| / sqrt(eps): x a - x a)."""
    model = make()
    exact = load_onnx(model)
    g = verify(canonicalize(exact))
    assert not [n for n in g.nodes if isinstance(n.op, norm_ops.NORM_OPS)]
    x = np.random.default_rng(3).normal(size=(4, *shape)).astype(np.float32) * 3
    out = run_ann(g, x)[0]
    np.testing.assert_array_equal(out, run_ann(exact, x)[0])
    np.testing.assert_array_equal(out, np.broadcast_to(out[:1], out.shape))
    np.testing.assert_array_equal(out, ReferenceEvaluator(model).run(None, {"x": x})[0])


def test_reduce_mean_over_spatial_axes_is_a_global_pool():
    model = one_node_model("ReduceMean", (3, 4, 5), axes=[2, 3], keepdims=0)
    g = check_against_ort(model)
    assert any(isinstance(n.op, ops.GlobalAvgPool) for n in g.nodes)


def test_reduce_mean_over_inner_axes_is_refused_naming_the_node():
    with pytest.raises(UnsupportedOp, match=r"ReduceMean.*only a trailing block"):
        load_onnx(one_node_model("ReduceMean", (3, 4, 5), axes=[1, 2]))


def test_other_powers_are_refused():
    model = one_node_model("Pow", (3,), initializers=[np.array(3.0, np.float32)])
    with pytest.raises(UnsupportedOp, match=r"Pow.*exponent \[3.0\] unsupported"):
        load_onnx(model)
