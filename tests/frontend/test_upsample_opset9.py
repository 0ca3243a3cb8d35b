"""Upsample (opset 9) keeps its own coordinates through onnx's version converter (which makes it
a Resize with the half_pixel default): output o reads input o / scale (asymmetric), floored in
nearest mode, as onnxruntime runs it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import check_against_ort


def _upsample(mode: str, scales, shape=(2, 3, 4)) -> onnx.ModelProto:
    out = [shape[0], *(int(np.floor(d * s)) for d, s in zip(shape[1:], scales[2:]))]
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
    graph = helper.make_graph(
        [node], "upsample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out])],
        [numpy_helper.from_array(np.array(scales, np.float32), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    return model


@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 1.5, 2.5], [1, 1, 1, 2]])
def test_linear_upsample_is_asymmetric(scales):
    check_against_ort(_upsample("linear", scales), batch=2)


@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 3, 1]])
def test_nearest_upsample_floors(scales):
    check_against_ort(_upsample("nearest", scales), batch=2)
