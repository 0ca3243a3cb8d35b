"""3-D windows (issue 25): Conv3d and 3-D pools over (N, C, D, H, W), lowered by the frontend to
2-D ops over (N, C*D, H, W), against onnxruntime over their attributes; refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from support.onnx_models import check_against_ort, one_node_model
from torch import nn

from snnc.compiler.frontend.converters import windows3d
from snnc.errors import UnsupportedOp
from snnc.ir import ops

R = np.random.default_rng(11)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


CONV = {
    "k3": lambda: one_node_model("Conv", (2, 5, 6, 6), initializers=[w(3, 2, 3, 3, 3), w(3)]),
    "k3_pads": lambda: one_node_model("Conv", (2, 5, 6, 7), initializers=[w(4, 2, 3, 3, 3)],
                                      pads=[1, 1, 1, 1, 1, 1]),
    "strides_pads": lambda: one_node_model(
        "Conv", (3, 7, 8, 9), initializers=[w(4, 3, 3, 2, 3), w(4)], strides=[2, 1, 2],
        pads=[1, 0, 2, 2, 1, 0]),
    "dilation": lambda: one_node_model(
        "Conv", (2, 9, 7, 7), initializers=[w(3, 2, 3, 3, 2), w(3)], dilations=[2, 1, 3],
        pads=[2, 1, 0, 1, 1, 0]),
    "kd1": lambda: one_node_model("Conv", (3, 4, 5, 5), initializers=[w(2, 3, 1, 3, 3)]),
    "groups": lambda: one_node_model(
        "Conv", (4, 5, 6, 6), initializers=[w(6, 2, 3, 3, 3), w(6)], group=2,
        pads=[1, 1, 1, 1, 1, 1]),
    "depthwise": lambda: one_node_model(
        "Conv", (3, 6, 5, 5), initializers=[w(3, 1, 2, 3, 3)], group=3, strides=[2, 2, 2]),
    "same_upper": lambda: one_node_model(
        "Conv", (2, 7, 6, 5), initializers=[w(2, 2, 3, 4, 3)], auto_pad="SAME_UPPER",
        strides=[2, 2, 1]),
    "same_lower": lambda: one_node_model(
        "Conv", (2, 6, 5, 6), initializers=[w(2, 2, 4, 3, 2)], auto_pad="SAME_LOWER",
        strides=[3, 1, 2]),
    "valid": lambda: one_node_model(
        "Conv", (2, 4, 5, 5), initializers=[w(2, 2, 2, 2, 2)], auto_pad="VALID"),
}

POOL = {
    "maxpool_k2": lambda: one_node_model("MaxPool", (3, 6, 6, 6), kernel_shape=[2, 2, 2],
                                         strides=[2, 2, 2]),
    "maxpool_k3_pads": lambda: one_node_model(
        "MaxPool", (2, 7, 6, 5), kernel_shape=[3, 3, 2], strides=[2, 1, 2],
        pads=[1, 1, 0, 1, 1, 1]),
    "maxpool_dilation": lambda: one_node_model(
        "MaxPool", (2, 9, 7, 7), kernel_shape=[2, 3, 2], dilations=[3, 1, 2]),
    "maxpool_ceil": lambda: one_node_model(
        "MaxPool", (2, 7, 7, 6), kernel_shape=[2, 3, 2], strides=[2, 2, 2], ceil_mode=1),
    "maxpool_same": lambda: one_node_model(
        "MaxPool", (2, 5, 7, 6), kernel_shape=[3, 2, 3], strides=[2, 2, 1],
        auto_pad="SAME_UPPER"),
    "avgpool_k2": lambda: one_node_model("AveragePool", (3, 6, 6, 6), kernel_shape=[2, 2, 2],
                                         strides=[2, 2, 2]),
    "avgpool_depth_pad": lambda: one_node_model(
        "AveragePool", (2, 7, 6, 6), kernel_shape=[3, 2, 2], strides=[2, 2, 2],
        pads=[1, 0, 0, 1, 0, 0]),
    "avgpool_pads": lambda: one_node_model(
        "AveragePool", (2, 7, 6, 5), kernel_shape=[3, 3, 3], strides=[2, 2, 1],
        pads=[1, 1, 1, 1, 1, 1]),
    "avgpool_pads_include": lambda: one_node_model(
        "AveragePool", (2, 7, 6, 5), kernel_shape=[3, 3, 3], strides=[2, 2, 1],
        pads=[1, 1, 1, 0, 1, 1], count_include_pad=1),
    "avgpool_same": lambda: one_node_model(
        "AveragePool", (2, 5, 7, 6), kernel_shape=[3, 2, 3], strides=[2, 2, 1],
        auto_pad="SAME_UPPER"),
    "avgpool_ceil": lambda: one_node_model(
        "AveragePool", (2, 7, 6, 7), kernel_shape=[3, 2, 3], strides=[2, 2, 2],
        pads=[1, 0, 1, 1, 1, 0], ceil_mode=1),
    "avgpool_ceil_include": lambda: one_node_model(
        "AveragePool", (2, 7, 6, 7), kernel_shape=[3, 3, 3], strides=[2, 2, 2],
        pads=[1, 1, 1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
    "global_avgpool": lambda: one_node_model("GlobalAveragePool", (3, 4, 5, 5)),
}


@pytest.mark.parametrize("case", sorted(CONV))
def test_conv3d_matches_onnxruntime(case):
    g = check_against_ort(CONV[case](), batch=2)
    convs = [n.op for n in g.nodes if isinstance(n.op, ops.Conv2d)]
    assert len(convs) == 1 and len(g.outputs[0].shape) == 4, str(g)


@pytest.mark.parametrize("case", sorted(POOL))
def test_pool3d_matches_onnxruntime(case):
    g = check_against_ort(POOL[case](), batch=2)
    assert len(g.outputs[0].shape) == 4, str(g)


def _export(module: nn.Module, shape) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.rand(1, *shape), buf, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue()


def test_torch_exported_conv3d_net_matches_onnxruntime():
    import onnx

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
                        nn.Conv3d(4, 4, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                        nn.ReLU(), nn.AvgPool3d((1, 2, 2)), nn.Flatten(), nn.Linear(4 * 3, 5))
    check_against_ort(onnx.load_from_string(_export(net, (2, 8, 8, 8))), batch=3)


def test_weight_inflation_past_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(windows3d, "MAX_WEIGHTS", 1000)
    model = one_node_model("Conv", (2, 8, 6, 6), initializers=[w(4, 2, 3, 3, 3)])
    with pytest.raises(UnsupportedOp, match=r"Conv.*Conv3d lowered to 2-D needs a weight of "
                                            r"\d+ elements .*the limit is 1000"):
        check_against_ort(model)


def test_cli_refuses_in_one_line_naming_the_node(tmp_path, monkeypatch):
    from support.cli import assert_user_error, snnc

    monkeypatch.setattr(windows3d, "MAX_WEIGHTS", 1000)
    path = tmp_path / "m.onnx"
    path.write_bytes(one_node_model("Conv", (2, 8, 6, 6), initializers=[w(4, 2, 3, 3, 3)])
                     .SerializeToString())
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 2, 8, 6, 6), np.float32))
    assert_user_error(snnc("compile", path, "--calib", tmp_path / "x.npz", "-o",
                           tmp_path / "o.snnc"),
                      "(Conv, opset 13): Conv3d lowered to 2-D needs a weight of")
    assert not (tmp_path / "o.snnc").exists()
