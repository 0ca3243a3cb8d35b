"""Bad input through the CLI: one `error:` line on stderr, exit 2, no traceback (in-process,
tests/support/cli.py: stdout, stderr and exit code as the `snnc` script gives them)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from support.cli import assert_user_error, snnc
from support.onnx_models import one_node_model


@pytest.fixture
def conv_model():
    w = np.ones((2, 3, 3, 3), np.float32)
    return one_node_model("Conv", (3, 8, 8), initializers=[w])


def save(model: onnx.ModelProto, path) -> str:
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_inspect_ok(tmp_path, conv_model):
    proc = snnc("inspect", save(conv_model, tmp_path / "m.onnx"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["layers"][0]["op"] == "conv2d"
    assert doc["layers"][0]["shape"] == [2, 6, 6]
    assert doc["macs"] == 2 * 6 * 6 * 27 and doc["params"] == 2 * 27 + 2


def test_truncated_file(tmp_path, conv_model):
    data = conv_model.SerializeToString()
    (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
    assert_user_error(snnc("inspect", str(tmp_path / "t.onnx")), "t.onnx")


def test_not_onnx(tmp_path):
    (tmp_path / "x.onnx").write_text("this is not a model\n" * 10)
    assert_user_error(snnc("inspect", str(tmp_path / "x.onnx")), "not an ONNX model")


def test_missing_file(tmp_path):
    assert_user_error(snnc("inspect", str(tmp_path / "nope.onnx")), "does not exist")


def test_unknown_op_names_node_op_and_opset(tmp_path):
    node = helper.make_node("Relu", ["x"], ["r"], name="relu0")
    odd = helper.make_node("Sin", ["r"], ["y"], name="mystery_17")
    g = helper.make_graph([node, odd], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    line = assert_user_error(snnc("inspect", save(m, tmp_path / "u.onnx")),
                             "mystery_17", "Sin", "opset 13")
    assert "Supported:" in line


def test_unknown_domain(tmp_path):
    node = helper.make_node("FancyOp", ["x"], ["y"], name="custom0", domain="com.acme")
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.acme", 1)])
    assert_user_error(snnc("inspect", save(m, tmp_path / "d.onnx")), "custom0", "FancyOp")


def test_dynamic_non_batch_dimension(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, "height", 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, "height", 8])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    assert_user_error(snnc("inspect", save(m, tmp_path / "dyn.onnx")), "'height'", "axis 2")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_weights(tmp_path, bad):
    w = np.ones((2, 3, 3, 3), np.float32)
    w[1, 2, 0, 0] = bad
    m = one_node_model("Conv", (3, 8, 8), initializers=[w])
    assert_user_error(snnc("inspect", save(m, tmp_path / "nan.onnx")), "c0",
                      "NaN" if np.isnan(bad) else "Inf")


def test_missing_initializer(tmp_path, conv_model):
    del conv_model.graph.initializer[:]
    assert_user_error(snnc("inspect", save(conv_model, tmp_path / "mi.onnx")), "'c0'",
                      "not produced")


def test_cycle(tmp_path):
    a = helper.make_node("Add", ["x", "b_out"], ["a_out"], name="a")
    b = helper.make_node("Relu", ["a_out"], ["b_out"], name="b")
    c = helper.make_node("Relu", ["a_out"], ["y"], name="c")
    g = helper.make_graph([a, b, c], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    assert_user_error(snnc("inspect", save(m, tmp_path / "cyc.onnx")), "cycle", "a", "b")


def test_unsorted_nodes_are_sorted(tmp_path):
    r1 = helper.make_node("Relu", ["x"], ["h"], name="first")
    r2 = helper.make_node("Sigmoid", ["h"], ["y"], name="second")
    g = helper.make_graph([r2, r1], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    proc = snnc("inspect", save(m, tmp_path / "unsorted.onnx"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["op"] for r in json.loads(proc.stdout)["layers"]] == ["activation", "activation"]


def test_unsupported_attribute(tmp_path):
    m = one_node_model("Pad", (2, 4, 4), initializers=[np.array([0, 0, 1, 1, 0, 0, 1, 1])],
                       mode="wrap", opset=19)
    assert_user_error(snnc("inspect", save(m, tmp_path / "wrap.onnx")), "Pad", "wrap")


def test_external_data_outside_folder_is_refused(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    w.data_location = onnx.TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "64")):
        w.external_data.add(key=k, value=v)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])],
                          [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    sub = tmp_path / "model"
    sub.mkdir()
    assert_user_error(snnc("inspect", save(m, sub / "ext.onnx")), "outside the model's folder")


def test_usage_error_is_one_line():
    assert_user_error(snnc("inspect"), "Missing argument")


def test_targets_lists_builtins():
    proc = snnc("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {"loihi1", "loihi2", "cpu"} <= set(json.loads(proc.stdout))
