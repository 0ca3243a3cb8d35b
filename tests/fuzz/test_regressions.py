"""Regression tests for the crashes and silent failures the fuzz suite found (one test each)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    x = rng.random((12, 1, 28, 28), dtype=np.float32)
    np.savez(d / "calib.npz", x=x)
    np.savez(d / "test.npz", x=x[:5], y=np.arange(5))
    return d


def _cli(*argv: str, cwd: Path):
    o = run_cli([str(a) for a in argv], 120, cwd)
    assert o.crash is None, o.crash
    assert "Traceback" not in o.stderr
    return o


def _user_error(o, *fragments: str) -> str:
    assert o.rc == 2, (o.rc, o.stderr)
    lines = o.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), o.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def _lenet() -> onnx.ModelProto:
    return onnx.load(LENET / "lenet.onnx")


def test_external_data_model_compiles_to_self_contained_artifact(tmp_path, data):
    # Was: source.onnx kept the external reference; onnxruntime then looked for the weights
    # relative to the working directory and `simulate` crashed with a RuntimeException.
    model = _lenet()
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(model, folder / "m.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    assert (folder / "w.bin").stat().st_size > 100_000
    out = tmp_path / "m.snnc"
    o = _cli("compile", folder / "m.onnx", "--calib", data / "calib.npz", "-o", out, "-q",
             cwd=tmp_path)
    assert o.rc == 0, o.stderr
    stored = onnx.load_model_from_string((out / "source.onnx").read_bytes())
    assert not any(t.external_data for t in stored.graph.initializer)
    (folder / "w.bin").unlink()  # the artifact must not need the source folder any more
    o = _cli("simulate", out, "--data", data / "test.npz", "--json", "-q", cwd=tmp_path)
    assert o.rc == 0, o.stderr
    assert json.loads(o.stdout)["agreement"] >= 0.8


@pytest.mark.parametrize("batch", [1, 3, 100_000, 2**31 - 1])
def test_fixed_batch_models(tmp_path, data, batch):
    # Was: a static batch axis made onnxruntime fail on the last partial chunk (InvalidArgument
    # traceback). Small fixed batches are padded; absurd ones are a clear BackendError.
    model = _lenet()
    for v in (*model.graph.input, *model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = batch
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    out = tmp_path / "m.snnc"
    o = _cli("compile", tmp_path / "m.onnx", "--calib", data / "calib.npz", "-o", out, "-q",
             cwd=tmp_path)
    if batch == 2**31 - 1:  # the declared input tensor itself is beyond the size cap
        _user_error(o, "tensor 'x'", "at most")
        return
    assert o.rc == 0, o.stderr
    o = _cli("simulate", out, "--data", data / "test.npz", "--json", "-q", cwd=tmp_path)
    if batch == 100_000:
        _user_error(o, "fixed batch size of 100000")
        return
    assert o.rc == 0, o.stderr
    metrics = json.loads(o.stdout)
    assert metrics["samples"] == 5 and metrics["agreement"] >= 0.8


def _one_conv(weight: TensorProto, extra_nodes=(), extra_inits=()) -> onnx.ModelProto:
    conv = helper.make_node("Conv", ["x", weight.name], ["y"])
    g = helper.make_graph([*extra_nodes, conv], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         ["N", 2, 5, 5])],
                          [*extra_inits] + ([weight] if not extra_nodes else []))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_malformed_tensor_data_is_invalid_model(tmp_path):
    # Was: ValueError "cannot reshape array" from numpy_helper.to_array (flipped data_type).
    w = numpy_helper.from_array(np.ones((2, 1, 2, 2), np.float32), "w")
    w.data_type = TensorProto.FLOAT16  # 32 bytes read as 16 halves, dims say 8
    (tmp_path / "m.onnx").write_bytes(_one_conv(w).SerializeToString())
    _user_error(_cli("inspect", tmp_path / "m.onnx", cwd=tmp_path), "'w'")


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
def test_nonfinite_constant_of_shape_fill(tmp_path, fill):
    # Was: accepted; the folded weights were all NaN/Inf and every output silently NaN.
    shape = numpy_helper.from_array(np.array([2, 1, 2, 2], np.int64), "s")
    fill_node = helper.make_node("ConstantOfShape", ["s"], ["w"],
                                 value=helper.make_tensor("v", TensorProto.FLOAT, [1], [fill]))
    m = _one_conv(helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0]), [fill_node], [shape])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    _user_error(_cli("inspect", tmp_path / "m.onnx", cwd=tmp_path), "ConstantOfShape",
                "NaN" if np.isnan(fill) else "Inf")


def test_constant_folding_to_inf(tmp_path):
    # Finite weights whose folded product overflows (3e38 * 10) must not become Inf weights.
    a = numpy_helper.from_array(np.full((2, 1, 2, 2), 3e38, np.float32), "a")
    k = numpy_helper.from_array(np.array(10.0, np.float32), "k")
    mul = helper.make_node("Mul", ["a", "k"], ["w"])
    m = _one_conv(helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0]), [mul], [a, k])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    _user_error(_cli("inspect", tmp_path / "m.onnx", cwd=tmp_path), "constant-folded",
                "NaN/Inf")


def test_overflowing_weights_refused_at_calibration(tmp_path, data):
    # Was: weights of 3.4e38 compiled "successfully" with NaN thresholds (a numpy
    # RuntimeWarning was the only sign); now calibration names the overflowing node.
    model = _lenet()
    w = next(t for t in model.graph.initializer if len(t.dims) == 4)
    a = numpy_helper.to_array(w).copy()
    a[...] = 3.4e38
    w.CopyFrom(numpy_helper.from_array(a, w.name))
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    o = _cli("compile", tmp_path / "m.onnx", "--calib", data / "calib.npz", "-o",
             tmp_path / "o.snnc", "-q", cwd=tmp_path)
    _user_error(o, "NaN/Inf on the calibration data")
    assert "Warning" not in o.stderr
    assert not (tmp_path / "o.snnc").exists()


def test_huge_constant_refused_before_allocation(tmp_path):
    # A 2^36-element ConstantOfShape would exhaust memory (or the OOM killer) while folding.
    shape = numpy_helper.from_array(np.array([1 << 18, 1 << 18], np.int64), "s")
    nodes = [
        helper.make_node("ConstantOfShape", ["s"], ["c"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("ReduceSum", ["c"], ["r"], keepdims=0),
        helper.make_node("Add", ["x", "r"], ["y"]),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                          [shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    _user_error(_cli("inspect", tmp_path / "m.onnx", cwd=tmp_path), "'c'", "68,719,476,736",
                "at most")
