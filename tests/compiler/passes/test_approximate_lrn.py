"""--approximate-lrn: LRN replaced by a calibrated per-channel scale folded into its conv."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from snnc.api import compile_model
from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.approximate_lrn import approximate_lrn
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.errors import UnsupportedOp
from snnc.ir import ops
from snnc.ir.interpret import run_ann


class _AlexStem(nn.Module):
    """conv -> relu -> LRN -> max-pool -> linear, as AlexNet's first block."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.lrn = nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        y = nn.functional.max_pool2d(self.lrn(torch.relu(self.conv(x))), 2)
        return self.fc(y.flatten(1))


def _model(alpha: float, seed: int = 0) -> tuple[nn.Module, onnx.ModelProto]:
    """The torch module and the same network as ONNX with a real LRN node (torch exports
    LocalResponseNorm as a decomposition)."""
    torch.manual_seed(seed)
    m = _AlexStem(alpha).eval()
    with torch.no_grad():
        m.conv.weight.mul_(8.0)  # activations of a few units: the LRN denominator matters
    h = onnx.helper
    inits = [onnx.numpy_helper.from_array(t.detach().numpy(), name) for name, t in
             (("w", m.conv.weight), ("b", m.conv.bias), ("fw", m.fc.weight), ("fb", m.fc.bias))]
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"]),
             h.make_node("Relu", ["c"], ["r"]),
             h.make_node("LRN", ["r"], ["n"], size=5, alpha=alpha, beta=0.75, bias=2.0),
             h.make_node("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["p"], ["f"]),
             h.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    graph = h.make_graph(nodes, "stem",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 8, 8])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 10])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 7  # what onnxruntime (the ANN baseline) reads
    onnx.checker.check_model(model)
    return m, model


def _ann(model: onnx.ModelProto):
    return prepare_spiking(canonicalize(load_onnx(model)))


def _x(n: int = 64) -> np.ndarray:
    return np.random.default_rng(1).random((n, 1, 8, 8)).astype(np.float32)


def test_scale_is_the_activation_weighted_mean_of_torch_lrn():
    module, model = _model(alpha=0.5)
    g, report = approximate_lrn(_ann(model), _x())
    assert not any(isinstance(n.op, ops.LRN) for n in g.nodes)
    # oracle: torch's own LRN on the same activations, channel sums of output / input
    with torch.no_grad():
        a = torch.relu(module.conv(torch.as_tensor(_x()))).double()
        b = nn.functional.local_response_norm(a, 5, alpha=0.5, beta=0.75, k=2.0)
    s = (b.sum((0, 2, 3)) / a.sum((0, 2, 3))).numpy()
    (layer,) = report["layers"]
    assert layer["scale_min"] == pytest.approx(s.min(), rel=1e-6)
    assert layer["scale_max"] == pytest.approx(s.max(), rel=1e-6)
    assert s.max() < 2.0**-0.75  # the denominators really exceed k: the LRN acts
    conv = next(n for n in g.nodes if isinstance(n.op, ops.Conv2d))
    w = module.conv.weight.detach().numpy() * s[:, None, None, None]
    np.testing.assert_allclose(conv.op.weight, w, rtol=1e-5)
    assert 0 < layer["rel_error"] < 0.5 and 0 <= report["top1_agreement"] <= 1
    assert report["samples"] == 64


def test_constant_denominator_is_exact():
    """alpha = 0: the LRN is exactly x / k^beta, so the folded network is the same function."""
    _, model = _model(alpha=0.0)
    ann = _ann(model)
    g, report = approximate_lrn(ann, _x())
    np.testing.assert_allclose(run_ann(g, _x(8))[0], run_ann(ann, _x(8))[0], rtol=1e-5,
                               atol=1e-6)
    assert report["top1_agreement"] == 1.0 and report["layers"][0]["rel_error"] < 1e-6


def test_lrn_without_a_conv_before_it_is_refused():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 6, 6])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 6, 6])
    node = onnx.helper.make_node("LRN", ["x"], ["y"], size=3)
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "g", [x], [y]),
                                   opset_imports=[onnx.helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOp, match=r"layer '.*' \(lrn\): --approximate-lrn folds"):
        approximate_lrn(_ann(model), np.ones((2, 4, 6, 6), np.float32))


def test_cli_needs_the_flag_then_compiles_and_reports(tmp_path):
    _, model = _model(alpha=0.5)
    onnx.save(model, tmp_path / "stem.onnx")
    np.savez(tmp_path / "calib.npz", x=_x(32))
    cmd = [sys.executable, "-m", "snnc.cli", "compile", str(tmp_path / "stem.onnx"),
           "--calib", str(tmp_path / "calib.npz"), "--target", "loihi2", "-q",
           "-o", str(tmp_path / "stem.snnc")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "(lrn)" in r.stderr and "--approximate-lrn" in r.stderr
    assert not (tmp_path / "stem.snnc").exists()
    r = subprocess.run(cmd + ["--approximate-lrn"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "stem.snnc" / "manifest.json").read_text())
    rep = manifest["lrn_approximation"]
    assert rep["samples"] == 32 and len(rep["layers"]) == 1
    assert manifest["options"]["approximate_lrn"] is True


def test_api_artifact_simulates(tmp_path):
    _, model = _model(alpha=0.5)
    art = compile_model(model, calib=_x(32), approximate_lrn=True, out=tmp_path / "a.snnc")
    m = art.simulate((_x(16), np.zeros(16, np.int64)))
    assert m.agreement >= 0.8  # vs the exact ANN (with LRN)
