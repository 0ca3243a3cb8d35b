"""prepare_spiking: the output softmax is dropped, also when a reshape follows it (SqueezeNet)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.ir import ops
from snnc.ir.interpret import run_ann


def _model(out_shape, softmax_axis: int = 1, reshape_first=(1, 6)) -> onnx.ModelProto:
    """x (N, 4) -> Gemm (6) -> Reshape ``reshape_first`` -> Softmax -> Reshape ``out_shape``."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(6, 4)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array((-1, *reshape_first[1:]), np.int64), "s1"),
             numpy_helper.from_array(np.array((-1, *out_shape[1:]), np.int64), "s2")]
    nodes = [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1),
             helper.make_node("Reshape", ["g", "s1"], ["r"]),
             helper.make_node("Softmax", ["r"], ["p"], axis=softmax_axis),
             helper.make_node("Reshape", ["p", "s2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             ["N", *out_shape[1:]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def test_softmax_then_reshape_keeps_the_reshape_on_the_logits():
    model = _model((1, 6, 1, 1))
    g = prepare_spiking(canonicalize(load_onnx(model)))
    assert not any(isinstance(n.op, ops.Softmax) for n in g.nodes)
    assert g.outputs[0].shape == (6, 1, 1)
    x = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
    import onnxruntime as ort

    probs = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    logits = run_ann(g, x)[0]
    assert logits.shape == probs.shape
    np.testing.assert_array_equal(logits.reshape(16, -1).argmax(1), probs.reshape(16, -1).argmax(1))
    assert not np.allclose(logits.reshape(16, -1).sum(1), 1.0)  # logits, not probabilities


def test_softmax_over_part_of_a_sample_is_kept():
    """A softmax over one axis of a (2, 3) value does not keep the argmax over all six values:
    the reshape after it must not be moved, and the softmax stays."""
    model = _model((1, 6), softmax_axis=2, reshape_first=(1, 2, 3))
    g = prepare_spiking(canonicalize(load_onnx(model)))
    assert any(isinstance(n.op, ops.Softmax) for n in g.nodes)


def test_output_softmax_before_an_identity_reshape_is_dropped():
    model = _model((1, 6))
    g = prepare_spiking(canonicalize(load_onnx(model)))
    assert not any(isinstance(n.op, ops.Softmax) for n in g.nodes)
