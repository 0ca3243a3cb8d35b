"""Resize in linear mode (issue 25): bilinear (2-D) and linear (1-D) by scales or sizes, every
coordinate mode onnxruntime supports for linear, against onnxruntime; the lowering is one
grouped 1x1 convolution between two reshapes."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import check_against_ort, resize_model
from torch import nn

from snnc.compiler.frontend.converters.resize import linear_matrix
from snnc.errors import UnsupportedOp
from snnc.ir import ops

MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]


def _resize(shape, out, **kwargs) -> onnx.ModelProto:
    return resize_model(shape, out, mode="linear", **kwargs)


def _lowered(g) -> None:
    kinds = [type(n.op) for n in g.nodes]
    assert kinds == [ops.Reshape, ops.Conv2d, ops.Reshape], kinds
    w = next(n.op for n in g.nodes if isinstance(n.op, ops.Conv2d)).weight
    assert w.min() >= 0 and np.allclose(w.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,scales", [((2, 3, 4), [1, 1, 2, 2]), ((2, 5, 3), [1, 1, 1.5, 3]),
                                          ((2, 6, 8), [1, 1, 0.5, 0.75]),
                                          ((3, 5), [1, 1, 2.5])])
def test_scales_match_onnxruntime(shape, scales, mode):
    out = [shape[0], *(int(np.floor(d * s)) for d, s in zip(shape[1:], scales[2:]))]
    model = _resize(shape, out, scales=scales, coordinate_transformation_mode=mode)
    _lowered(check_against_ort(model, batch=3))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,sizes", [((2, 3, 4), [1, 2, 7, 5]), ((2, 4, 4), [1, 2, 1, 9]),
                                         ((3, 6), [1, 3, 4])])
def test_sizes_match_onnxruntime(shape, sizes, mode):
    model = _resize(shape, sizes[1:], sizes=sizes, coordinate_transformation_mode=mode)
    _lowered(check_against_ort(model, batch=1))  # sizes fix the batch (1)


def _torch(module: nn.Module, shape) -> onnx.ModelProto:
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.rand(1, *shape), buf, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buf.getvalue())


class Interpolate(nn.Module):
    def __init__(self, **kw) -> None:
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.interpolate(x, **self.kw)


@pytest.mark.parametrize("module,shape", [
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), (3, 5, 4)),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (3, 5, 4)),
    (Interpolate(size=(7, 9), mode="bilinear", align_corners=False), (2, 4, 4)),
    (Interpolate(size=(3, 9), mode="bilinear", align_corners=True), (2, 5, 4)),
    (Interpolate(scale_factor=3, mode="linear", align_corners=False), (2, 6)),
    (Interpolate(size=11, mode="linear", align_corners=True), (2, 6)),
])
def test_torch_exports_match_onnxruntime_and_torch(module, shape):
    model = _torch(module, shape)
    g = check_against_ort(model, batch=2)
    from snnc.ir.interpret import run_ann

    x = np.random.default_rng(3).normal(size=(2, *shape)).astype(np.float32)
    np.testing.assert_allclose(run_ann(g, x)[0], module(torch.from_numpy(x)).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_upsample_opset9_linear_matches_onnxruntime():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "scales")
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="linear")
    graph = helper.make_graph(
        [node], "upsample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 6, 12])], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    _lowered(check_against_ort(model, batch=2))


def test_matrix_rows_are_convex_combinations_of_neighbours():
    for mode in MODES:
        m = linear_matrix(5, 12, 12 / 5, mode)
        assert m.shape == (12, 5) and m.min() >= 0
        np.testing.assert_allclose(m.sum(axis=1), 1.0)
        assert ((m > 0).sum(axis=1) <= 2).all()
    np.testing.assert_array_equal(linear_matrix(4, 4, 1.0, "half_pixel"), np.eye(4))


@pytest.mark.parametrize("attrs,what", [
    ({"coordinate_transformation_mode": "tf_crop_and_resize"}, "unsupported in linear mode"),
])
def test_other_linear_resizes_are_refused(attrs, what):
    model = _resize((2, 3, 4), [2, 6, 8], scales=[1, 1, 2, 2], **attrs)
    with pytest.raises(UnsupportedOp, match=rf"node 'y' \(Resize, opset 13\).*{what}"):
        check_against_ort(model)


def test_channel_resize_is_refused():
    model = _resize((2, 3, 4), [4, 6, 8], scales=[1, 2, 2, 2])
    with pytest.raises(UnsupportedOp, match="resizing the channel axis"):
        check_against_ort(model)
