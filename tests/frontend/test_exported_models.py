"""Models exported by torch.onnx.export or built like Keras/TF exports, against onnxruntime."""

from __future__ import annotations

import pytest

import support.model_builders as mb
from support.onnx_models import check_against_ort
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.ir import ops, verify

BUILDERS = {
    "lenet": mb.lenet,
    "small_resnet": mb.small_resnet,
    "mlp": mb.mlp,
    "silu_se": mb.silu_se,
    "silu_se_manual": mb.silu_se_manual,
    "keras_nhwc": mb.keras_nhwc,
    "bn_as_mul_add": mb.bn_as_mul_add,
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("batch", [1, 3])
def test_exported_model_matches_onnxruntime(name, batch):
    check_against_ort(BUILDERS[name](), batch=batch)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_canonical_form_matches_onnxruntime(name):
    graph = check_against_ort(BUILDERS[name]())
    canon = verify(canonicalize(graph))
    assert not any(isinstance(n.op, ops.Identity) for n in canon.nodes)


def test_handwritten_silu_becomes_one_activation():
    from snnc.compiler.frontend import load_onnx

    canon = canonicalize(load_onnx(mb.silu_se_manual()))
    kinds = [n.op.kind for n in canon.nodes if isinstance(n.op, ops.Activation)]
    assert "silu" in kinds
    assert sum(isinstance(n.op, ops.Mul) for n in canon.nodes) == 1  # only the SE gate remains


def test_keras_nhwc_keeps_layout_ops():
    graph = check_against_ort(mb.keras_nhwc())
    assert graph.inputs[0].shape == (8, 8, 3)
    assert any(isinstance(n.op, ops.Transpose) and n.op.perm == (2, 0, 1) for n in graph.nodes)
