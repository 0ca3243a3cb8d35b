"""PRelu with one slope per channel (issue 25): relu(x) - a_c relu(-x) built from two 1x1 maps
and one ReLU, against onnxruntime over input ranks and slope layouts; what stays refused."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from support.onnx_models import check_against_ort, one_node_model
from torch import nn

from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.fold_bn import fold_batchnorm
from snnc.compiler.passes.fold_linear import fold_linear
from snnc.errors import UnsupportedOp
from snnc.ir import ops

SLOPES = np.array([0.25, -0.5, 0.0, 1.5, 0.1], np.float32)


@pytest.mark.parametrize("shape,slope_shape", [((5, 4, 6), (5, 1, 1)), ((5,), (5,)),
                                               ((5, 9), (5, 1)), ((5, 3, 4, 4), (5, 1, 1, 1)),
                                               ((5, 4, 6), (1, 5, 1, 1))])
def test_per_channel_prelu_matches_onnxruntime(shape, slope_shape):
    g = check_against_ort(one_node_model("PRelu", shape,
                                         initializers=[SLOPES.reshape(slope_shape)]), batch=4)
    acts = [n for n in g.nodes if isinstance(n.op, ops.Activation)]
    assert [(n.op.kind, n.output.shape[0]) for n in acts] == [("relu", 10)], str(g)


def test_exported_prelu_folds_into_the_neighbouring_layers():
    """nn.PReLU(C) between two convolutions (BatchNorm before it): after folding, two
    convolutions with 2C channels between them and one ReLU population, nothing else."""
    torch.manual_seed(0)
    prelu = nn.PReLU(4)
    nn.init.uniform_(prelu.weight, -1, 1)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), prelu,
                      nn.Conv2d(4, 3, 3)).eval()
    buf = io.BytesIO()
    torch.onnx.export(m, torch.rand(1, 2, 6, 6), buf, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    g = check_against_ort(onnx.load_from_string(buf.getvalue()), batch=3)
    g = fold_linear(fold_batchnorm(canonicalize(g)))
    kinds = [(type(n.op).__name__, n.output.shape[0]) for n in g.nodes]
    assert kinds == [("Conv2d", 8), ("Activation", 8), ("Conv2d", 3)], str(g)


def test_one_slope_stays_a_leaky_relu():
    g = check_against_ort(one_node_model("PRelu", (5,), initializers=[np.full(5, 0.3,
                                                                              np.float32)]))
    assert [n.op.kind for n in g.nodes if isinstance(n.op, ops.Activation)] == ["leaky_relu"]


def test_slopes_varying_along_space_are_refused_naming_the_node():
    slope = np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10
    with pytest.raises(UnsupportedOp, match=r"node .*\(PRelu, opset 13\): slope of shape "
                                            r"\[1, 3, 4\] varies along other axes"):
        check_against_ort(one_node_model("PRelu", (2, 3, 4), initializers=[slope]))


def test_cli_refuses_spatial_slopes_in_one_line(tmp_path):
    from support.cli import assert_user_error, snnc

    slope = np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10
    path = tmp_path / "m.onnx"
    path.write_bytes(one_node_model("PRelu", (2, 3, 4), initializers=[slope])
                     .SerializeToString())
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 2, 3, 4), np.float32))
    assert_user_error(snnc("compile", path, "--calib", tmp_path / "x.npz", "-o",
                           tmp_path / "o.snnc"),
                      "(PRelu, opset 13): slope of shape [1, 3, 4] varies along other axes")
    assert not (tmp_path / "o.snnc").exists()
