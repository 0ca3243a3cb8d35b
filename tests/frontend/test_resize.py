"""Resize / nearest upsampling by integer scales (issue 25) against onnxruntime; cubic mode,
fractional nearest scales and other coordinate modes are refused naming the node (linear mode:
test_resize_linear.py)."""

from __future__ import annotations

import pytest
from support.onnx_models import check_against_ort, resize_model

from snnc.errors import UnsupportedOp
from snnc.ir import ops


@pytest.mark.parametrize("shape,scales,attrs", [
    ((2, 3, 4), [1, 1, 2, 2], {"mode": "nearest"}),
    ((2, 3, 4), [1, 1, 3, 2], {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                               "nearest_mode": "floor"}),
    ((2, 3, 4), [1, 1, 2, 1], {"mode": "nearest",
                               "coordinate_transformation_mode": "pytorch_half_pixel"}),
    ((3, 5), [1, 1, 4], {"mode": "nearest"}),
    ((2, 3, 4), [1, 1, 2, 2], {"mode": "nearest",
                               "coordinate_transformation_mode": "align_corners"}),
])
def test_nearest_integer_scales_match_onnxruntime(shape, scales, attrs):
    g = check_against_ort(resize_model(shape, scales=scales, **attrs), batch=3)
    assert {type(n.op) for n in g.nodes} <= {ops.Reshape, ops.Concat}


def test_sizes_match_onnxruntime():
    g = check_against_ort(resize_model((2, 3, 4), sizes=[1, 2, 6, 8], mode="nearest"), batch=1)
    assert g.outputs[0].shape == (2, 6, 8)


@pytest.mark.parametrize("scales,attrs,what", [
    ([1, 1, 2, 2], {"mode": "cubic"}, "mode='cubic' unsupported"),
    ([1, 1, 1.5, 2], {"mode": "nearest"}, "only integer upsampling"),
    ([1, 1, 2, 2], {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                    "nearest_mode": "ceil"}, "does not repeat each element"),
])
def test_other_resizes_are_refused(scales, attrs, what):
    with pytest.raises(UnsupportedOp, match=rf"node 'y' \(Resize, opset 13\).*{what}"):
        check_against_ort(resize_model((2, 3, 4), scales=scales, **attrs))
