"""Security properties of the package source and of model loading.

* No pickle (or other code-executing deserializer) and no eval/exec anywhere in ``snnc``: every
  ``np.load``/``read_array`` passes ``allow_pickle=False`` literally. Checked on the AST, so
  comments and strings do not count and aliases (``import pickle as p``) do.
* ONNX external data is confined to the model's folder: relative traversal, absolute paths and
  symlinks pointing outside are refused before any byte is read; models given as bytes (no folder)
  may not use external data at all.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import snnc
from snnc.compiler.frontend import load_onnx, read_model
from snnc.errors import InvalidModel

PACKAGE = Path(snnc.__file__).parent
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
                     "joblib", "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__"}
# (module alias as written, attribute) -> required keyword value
LOADERS = {"load": "allow_pickle", "read_array": "allow_pickle"}


def _sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, files  # the scan really sees the package
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _violations(tree: ast.AST, name: str) -> list[str]:
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [f"{name}:{node.lineno} imports {a.name}" for a in node.names
                    if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if mod in FORBIDDEN_MODULES:
                bad.append(f"{name}:{node.lineno} imports from {node.module}")
            if mod == "pandas" and any("pickle" in a.name for a in node.names):
                bad.append(f"{name}:{node.lineno} imports a pickle reader from pandas")
        elif isinstance(node, ast.Call):
            func = _dotted(node.func)
            if func in FORBIDDEN_CALLS or func.split(".")[-1] in ("read_pickle", "unsafe_load"):
                bad.append(f"{name}:{node.lineno} calls {func}")
            if func in ("yaml.load", "torch.load"):
                kw = {k.arg: k.value for k in node.keywords}
                ok = func == "torch.load" and isinstance(kw.get("weights_only"), ast.Constant) \
                    and kw["weights_only"].value is True
                if not ok:
                    bad.append(f"{name}:{node.lineno} calls {func} (can execute code)")
            head, _, attr = func.rpartition(".")
            if attr in LOADERS and head.split(".")[0] in ("np", "numpy"):
                kw = {k.arg: k.value for k in node.keywords}
                v = kw.get(LOADERS[attr])
                if not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{name}:{node.lineno} calls {func} without "
                               f"{LOADERS[attr]}=False")
    return bad


def test_no_pickle_or_eval_in_package():
    bad = []
    for path in _sources():
        bad += _violations(ast.parse(path.read_text(), str(path)), str(path.relative_to(PACKAGE)))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("snippet", [
    "import pickle", "import numpy as np\nnp.load(f)", "from marshal import loads",
    "import numpy\nnumpy.load(f, allow_pickle=True)", "eval('1')", "exec(code)",
    "import torch\ntorch.load(p)", "import yaml\nyaml.load(s)", "__import__('os')",
    "import numpy as np\nnp.lib.format.read_array(f)",
])
def test_scanner_catches(snippet):
    # The scanner itself can fail: every forbidden pattern must be reported.
    assert _violations(ast.parse(snippet), "x.py")


def test_scanner_accepts_safe_calls():
    ok = "import numpy as np\nnp.load(f, allow_pickle=False)\nnp.lib.format.read_array(f, " \
         "allow_pickle=False)\nimport torch\ntorch.load(p, weights_only=True)"
    assert _violations(ast.parse(ok), "x.py") == []


# --------------------------------------------------------------------------- external data
def _external_model(location: str, offset: int = 0, length: int = 64) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        w.external_data.add(key=k, value=v)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


WEIGHTS = np.arange(16, dtype=np.float32).tobytes()


@pytest.fixture
def layout(tmp_path):
    """tmp/secret.bin (outside), tmp/model/ (the model's folder)."""
    (tmp_path / "secret.bin").write_bytes(WEIGHTS)
    (tmp_path / "model").mkdir()
    return tmp_path


def _save(model, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_inside_folder_loads(layout):
    (layout / "model" / "w.bin").write_bytes(WEIGHTS)
    from snnc.ir.interpret import run_ann

    g = load_onnx(_save(_external_model("w.bin"), layout / "model" / "m.onnx"))
    y = run_ann(g, np.eye(4, dtype=np.float32))[0]  # x = I: y = w
    np.testing.assert_array_equal(y, np.arange(16, dtype=np.float32).reshape(4, 4))


@pytest.mark.parametrize("location", [
    "../secret.bin", "../../../../../../../../etc/passwd", "/etc/passwd", "ABSOLUTE_SECRET",
    "sub/../../secret.bin", "./../secret.bin", "LINK",
])
def test_external_data_outside_folder_is_refused(layout, location, monkeypatch):
    if location == "ABSOLUTE_SECRET":
        location = str(layout / "secret.bin")
    if location == "LINK":
        (layout / "model" / "link.bin").symlink_to(layout / "secret.bin")
        location = "link.bin"
    (layout / "model" / "sub").mkdir()
    opened = []
    real_open = open

    def spy(file, *a, **k):  # no byte of a file outside the folder may be read
        opened.append(os.path.realpath(file) if isinstance(file, (str, Path)) else file)
        return real_open(file, *a, **k)

    path = _save(_external_model(location), layout / "model" / "m.onnx")
    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(InvalidModel, match="lies outside the model's folder"):
        load_onnx(path)
    outside = [p for p in opened if isinstance(p, str)
               and not p.startswith(str((layout / "model").resolve()))]
    assert outside == []


@pytest.mark.parametrize("offset,length,match", [
    (-4, 64, "do not fit"), (0, 128, "do not fit"), (80, 0, "do not fit"), (0, 32, "too small"),
])
def test_external_data_bad_offset_length(layout, offset, length, match):
    (layout / "model" / "w.bin").write_bytes(WEIGHTS)
    path = _save(_external_model("w.bin", offset, length), layout / "model" / "m.onnx")
    with pytest.raises(InvalidModel, match=match):
        load_onnx(path)


def test_external_data_directory_or_missing(layout):
    (layout / "model" / "d").mkdir()
    for loc in ("d", "missing.bin"):
        path = _save(_external_model(loc), layout / "model" / "m.onnx")
        with pytest.raises(InvalidModel, match="not found"):
            load_onnx(path)


def test_external_data_needs_a_file_path(layout, monkeypatch):
    # From bytes there is no folder: onnx would read relative to the working directory.
    (layout / "model" / "w.bin").write_bytes(WEIGHTS)
    monkeypatch.chdir(layout / "model")
    data = _external_model("w.bin").SerializeToString()
    for source in (data, _external_model("w.bin")):
        with pytest.raises(InvalidModel, match="external data; load the model from its file"):
            read_model(source)
