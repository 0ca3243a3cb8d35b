"""Per-op golden tests: a one-node ONNX model on onnxruntime vs the snnc interpreter."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from support.onnx_models import check_against_ort, one_node_model, with_output_shapes

R = np.random.default_rng(42)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


CASES = {
    # Conv: pads, strides, dilations, groups, auto_pad, no bias
    "conv_basic": lambda: one_node_model("Conv", (3, 9, 9), initializers=[w(4, 3, 3, 3), w(4)]),
    "conv_pads_stride": lambda: one_node_model(
        "Conv", (3, 10, 11), initializers=[w(5, 3, 3, 2)], pads=[1, 0, 2, 1], strides=[2, 3]),
    "conv_dilation": lambda: one_node_model(
        "Conv", (2, 12, 12), initializers=[w(3, 2, 3, 3), w(3)], dilations=[2, 3], pads=[2, 2, 2, 2]),
    "conv_groups": lambda: one_node_model(
        "Conv", (6, 8, 8), initializers=[w(9, 2, 3, 3), w(9)], group=3, pads=[1, 1, 1, 1]),
    "conv_depthwise": lambda: one_node_model(
        "Conv", (4, 7, 7), initializers=[w(4, 1, 3, 3)], group=4),
    "conv_same_upper": lambda: one_node_model(
        "Conv", (3, 9, 8), initializers=[w(2, 3, 4, 3)], auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv_same_lower": lambda: one_node_model(
        "Conv", (3, 9, 8), initializers=[w(2, 3, 4, 4)], auto_pad="SAME_LOWER", strides=[1, 2]),
    "conv_valid": lambda: one_node_model(
        "Conv", (3, 9, 8), initializers=[w(2, 3, 3, 3)], auto_pad="VALID"),
    # Gemm / MatMul
    "gemm": lambda: one_node_model("Gemm", (7,), initializers=[w(7, 5), w(5)]),
    "gemm_transB_alpha_beta": lambda: one_node_model(
        "Gemm", (7,), initializers=[w(5, 7), w(1, 5)], transB=1, alpha=0.5, beta=2.0),
    "gemm_scalar_bias": lambda: one_node_model("Gemm", (7,), initializers=[w(7, 3), w(1)]),
    "gemm_no_bias": lambda: one_node_model("Gemm", (4,), initializers=[w(4, 3)]),
    "matmul": lambda: one_node_model("MatMul", (6,), initializers=[w(6, 4)]),
    "matmul_3d": lambda: one_node_model("MatMul", (3, 6), initializers=[w(6, 4)]),
    # Elementwise with constants (broadcasting, leading batch-1 constants)
    "add_channel": lambda: one_node_model("Add", (3, 4, 4), initializers=[w(3, 1, 1)]),
    "add_full_rank": lambda: one_node_model("Add", (3, 4, 4), initializers=[w(1, 3, 1, 1)]),
    "sub_scalar": lambda: one_node_model("Sub", (5,), initializers=[np.float32(1.5)]),
    "mul_row": lambda: one_node_model("Mul", (2, 3, 4), initializers=[w(4)]),
    "div_channel": lambda: one_node_model(
        "Div", (3, 2, 2), initializers=[np.abs(w(3, 1, 1)) + 0.5]),
    "sum3": lambda: one_node_model("Sum", (3, 4), initializers=[w(3, 4), w(4)]),
    # Normalization
    "batchnorm": lambda: one_node_model(
        "BatchNormalization", (4, 5, 5),
        initializers=[w(4), w(4), w(4), np.abs(w(4)) + 0.1], epsilon=1e-3),
    "lrn_odd": lambda: one_node_model("LRN", (7, 3, 3), size=5, alpha=1e-2, beta=0.75, bias=2.0),
    # Activations
    "relu": lambda: one_node_model("Relu", (3, 4)),
    "leaky_relu": lambda: one_node_model("LeakyRelu", (3, 4), alpha=0.2),
    "sigmoid": lambda: one_node_model("Sigmoid", (3, 4)),
    "tanh": lambda: one_node_model("Tanh", (3, 4)),
    "hard_sigmoid": lambda: one_node_model("HardSigmoid", (3, 4), alpha=0.3, beta=0.4),
    "hardswish": lambda: one_node_model("HardSwish", (3, 4), opset=14),
    "clip_inputs": lambda: one_node_model(
        "Clip", (3, 4), initializers=[np.float32(-0.5), np.float32(0.7)]),
    "clip_min_only": lambda: one_node_model("Clip", (3, 4), initializers=[np.float32(0.0)]),
    "clip_attr_opset6": lambda: one_node_model("Clip", (3, 4), opset=6, min=-0.2, max=0.3),
    "softmax": lambda: one_node_model("Softmax", (10,)),
    "softmax_axis1_3d": lambda: one_node_model("Softmax", (4, 5), axis=1),
    "softmax_opset11_coerced": lambda: one_node_model("Softmax", (4, 5), opset=11, axis=1),
    "log_softmax": lambda: one_node_model("LogSoftmax", (10,)),
    # Pooling
    "maxpool": lambda: one_node_model("MaxPool", (2, 8, 8), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool_pads": lambda: one_node_model(
        "MaxPool", (2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool_asym_pads": lambda: one_node_model(
        "MaxPool", (2, 7, 6), kernel_shape=[3, 2], strides=[2, 1], pads=[0, 1, 2, 0]),
    "maxpool_ceil": lambda: one_node_model(
        "MaxPool", (2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "maxpool_dilation": lambda: one_node_model(
        "MaxPool", (2, 9, 9), kernel_shape=[2, 2], dilations=[2, 2]),
    "maxpool_same_upper": lambda: one_node_model(
        "MaxPool", (2, 7, 8), kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    "avgpool": lambda: one_node_model("AveragePool", (2, 8, 8), kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool_pads_exclude": lambda: one_node_model(
        "AveragePool", (2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "avgpool_pads_include": lambda: one_node_model(
        "AveragePool", (2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
        count_include_pad=1),
    "avgpool_ceil": lambda: one_node_model(
        "AveragePool", (2, 8, 8), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "avgpool_ceil_include": lambda: one_node_model(
        "AveragePool", (2, 8, 8), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
        pads=[1, 1, 1, 1], count_include_pad=1),
    "avgpool_asym_include": lambda: one_node_model(
        "AveragePool", (1, 6, 6), kernel_shape=[2, 3], pads=[0, 1, 1, 2], count_include_pad=1),
    "global_avgpool": lambda: one_node_model("GlobalAveragePool", (3, 5, 4)),
    # Layout
    "flatten": lambda: one_node_model("Flatten", (3, 4, 5)),
    "reshape": lambda: one_node_model(
        "Reshape", (3, 4, 5), initializers=[np.array([-1, 12, 5], np.int64)]),
    "reshape_zero": lambda: one_node_model(
        "Reshape", (3, 4, 5), initializers=[np.array([0, 3, -1], np.int64)]),
    "reshape_5d_shuffle": lambda: one_node_model(
        "Reshape", (6, 2, 2), initializers=[np.array([0, 2, 3, 2, 2], np.int64)]),
    "transpose": lambda: one_node_model("Transpose", (3, 4, 5), perm=[0, 2, 3, 1]),
    "squeeze": lambda: one_node_model(
        "Squeeze", (3, 1, 5), initializers=[np.array([2], np.int64)]),
    "unsqueeze": lambda: one_node_model(
        "Unsqueeze", (3, 5), initializers=[np.array([1, -1], np.int64)]),
    "pad_constant": lambda: one_node_model(
        "Pad", (2, 4, 4), initializers=[np.array([0, 0, 1, 2, 0, 1, 0, 3], np.int64),
                                        np.float32(0.5)]),
    "pad_reflect": lambda: one_node_model(
        "Pad", (2, 4, 4), initializers=[np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)],
        mode="reflect"),
    "pad_edge": lambda: one_node_model(
        "Pad", (2, 4, 4), initializers=[np.array([0, 0, 2, 0, 0, 0, 1, 1], np.int64)], mode="edge"),
    "pad_crop": lambda: one_node_model(
        "Pad", (2, 5, 5), initializers=[np.array([0, 0, -1, 1, 0, 0, 1, -2], np.int64)]),
    "identity": lambda: one_node_model("Identity", (3,)),
    "dropout": lambda: one_node_model("Dropout", (3,)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case):
    check_against_ort(CASES[case]())


def _two_input_model(op_type: str, shape_a, shape_b):
    a = helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, ["N", *shape_a])
    b = helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, ["N", *shape_b])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node(op_type, ["a", "b"], ["y"], **({"axis": 1} if op_type == "Concat" else {}))
    return with_output_shapes(helper.make_model(helper.make_graph([node], "two", [a, b], [y]),
                                                opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("op_type,sa,sb", [
    ("Add", (3, 4), (3, 4)), ("Add", (3, 4), (1, 4)), ("Sub", (3, 4), (3, 1)),
    ("Mul", (2, 3, 3), (2, 1, 1)), ("Div", (4,), (4,)), ("Concat", (2, 3), (5, 3)),
])
def test_two_tensor_ops(op_type, sa, sb):
    check_against_ort(_two_input_model(op_type, sa, sb))


def test_concat_with_constant():
    # ONNX Concat does not broadcast: a constant operand is only valid with batch 1.
    check_against_ort(one_node_model("Concat", (2, 3), initializers=[w(1, 4, 3)], axis=1), batch=1)
