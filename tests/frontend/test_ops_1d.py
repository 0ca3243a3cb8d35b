"""1-D windows (issue 25): Conv1d and 1-D pools over (N, C, L), lowered by the frontend to 2-D
ops over (N, C, 1, L), against onnxruntime over their attributes."""

from __future__ import annotations

import numpy as np
import pytest
from support.onnx_models import check_against_ort, one_node_model

from snnc.ir import ops

R = np.random.default_rng(7)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


CASES = {
    "conv1d": lambda: one_node_model("Conv", (3, 20), initializers=[w(4, 3, 5), w(4)]),
    "conv1d_stride_pads": lambda: one_node_model(
        "Conv", (3, 21), initializers=[w(5, 3, 3)], strides=[2], pads=[1, 2]),
    "conv1d_dilation": lambda: one_node_model(
        "Conv", (2, 30), initializers=[w(3, 2, 3), w(3)], dilations=[3], pads=[3, 3]),
    "conv1d_groups": lambda: one_node_model(
        "Conv", (6, 16), initializers=[w(9, 2, 3), w(9)], group=3, pads=[1, 1]),
    "conv1d_depthwise": lambda: one_node_model(
        "Conv", (4, 12), initializers=[w(4, 1, 3)], group=4),
    "conv1d_same_upper": lambda: one_node_model(
        "Conv", (3, 17), initializers=[w(2, 3, 4)], auto_pad="SAME_UPPER", strides=[2]),
    "conv1d_same_lower": lambda: one_node_model(
        "Conv", (3, 17), initializers=[w(2, 3, 4)], auto_pad="SAME_LOWER", strides=[3]),
    "conv1d_valid": lambda: one_node_model(
        "Conv", (3, 9), initializers=[w(2, 3, 3)], auto_pad="VALID"),
    "maxpool1d": lambda: one_node_model("MaxPool", (3, 20), kernel_shape=[2], strides=[2]),
    "maxpool1d_pads_ceil": lambda: one_node_model(
        "MaxPool", (3, 19), kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1),
    "maxpool1d_dilation": lambda: one_node_model(
        "MaxPool", (2, 19), kernel_shape=[3], dilations=[2]),
    "avgpool1d": lambda: one_node_model("AveragePool", (3, 20), kernel_shape=[4], strides=[4]),
    "avgpool1d_pads": lambda: one_node_model(
        "AveragePool", (3, 19), kernel_shape=[3], strides=[2], pads=[1, 1]),
    "avgpool1d_pads_include": lambda: one_node_model(
        "AveragePool", (3, 19), kernel_shape=[3], strides=[2], pads=[1, 1], count_include_pad=1),
    "avgpool1d_same": lambda: one_node_model(
        "AveragePool", (2, 11), kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER"),
    "global_avgpool1d": lambda: one_node_model("GlobalAveragePool", (5, 13)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_1d_op_matches_onnxruntime(case):
    g = check_against_ort(CASES[case](), batch=3)
    windows = [n.op for n in g.nodes if not isinstance(n.op, (ops.Reshape, ops.Constant))]
    assert len(windows) == 1 and len(g.outputs[0].shape) == 2, str(g)
