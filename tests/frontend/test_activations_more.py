"""Activations of issue 25 against onnxruntime: Elu, Selu, Softplus, Erf, PRelu (one slope),
and the GELU (erf and tanh forms) and Mish subgraphs torch exports, fused into one activation."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from support.onnx_models import assert_close, check_against_ort, one_node_model, ort_run
from torch import nn

from snnc.compiler.passes.canonicalize import canonicalize
from snnc.ir import ops
from snnc.ir.interpret import run_ann


@pytest.mark.parametrize("op_type,attrs,kind", [
    ("Elu", {}, "elu"), ("Elu", {"alpha": 0.3}, "elu"), ("Selu", {}, "selu"),
    ("Selu", {"alpha": 1.2, "gamma": 0.8}, "selu"), ("Softplus", {}, "softplus"),
    ("Erf", {}, "erf"),
])
def test_activation_matches_onnxruntime(op_type, attrs, kind):
    g = check_against_ort(one_node_model(op_type, (3, 5, 5), **attrs), batch=4)
    assert [n.op.kind for n in g.nodes if isinstance(n.op, ops.Activation)] == [kind]


def test_prelu_with_one_slope_is_a_leaky_relu():
    slope = np.full((3, 1, 1), 0.25, np.float32)
    g = check_against_ort(one_node_model("PRelu", (3, 4, 4), initializers=[slope]))
    assert [(n.op.kind, n.op.alpha) for n in g.nodes if isinstance(n.op, ops.Activation)] \
        == [("leaky_relu", 0.25)]


def _exported(act: nn.Module) -> onnx.ModelProto:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 3, 1), act, nn.Conv2d(3, 2, 1)).eval()
    buf = io.BytesIO()
    torch.onnx.export(m, torch.rand(1, 2, 4, 4), buf, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buf.getvalue())


@pytest.mark.parametrize("act,kind", [(nn.GELU(), "gelu"),
                                      (nn.GELU(approximate="tanh"), "gelu_tanh"),
                                      (nn.Mish(), "mish"), (nn.SiLU(), "silu")])
def test_exported_subgraphs_fuse_into_one_activation(act, kind):
    model = _exported(act)
    g = canonicalize(check_against_ort(model, batch=4))
    acts = [n.op.kind for n in g.nodes if isinstance(n.op, ops.Activation)]
    assert acts == [kind], str(g)
    assert not any(isinstance(n.op, (ops.Mul, ops.Add, ops.Div)) for n in g.nodes), str(g)
    x = np.random.default_rng(0).normal(size=(8, 2, 4, 4)).astype(np.float32) * 3
    assert_close(run_ann(g, x)[0], ort_run(model, {"x": x})[0], rtol=1e-5)


def test_a_polynomial_or_shared_intermediate_is_not_fused():
    class Shared(nn.Module):
        def forward(self, x):
            e = torch.erf(x / 1.4142135)
            return x * (e + 1) * 0.5 + e  # GELU's erf term is used again: stays as it is

    g = canonicalize(check_against_ort(_exported(Shared()), batch=2))
    assert [n.op.kind for n in g.nodes if isinstance(n.op, ops.Activation)] == ["erf"]
