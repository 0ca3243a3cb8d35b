"""What the Lava backend runs and refuses (snnc/backends/lava/lowering.py): one clear error naming
the layer, before any work, for graphs it cannot run; the lowering and timing tables agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.lava import LENET

from snnc.api import compile_model, simulate_artifact
from snnc.backends.lava import LOWERING, REFUSED
from snnc.backends.lava.streams import STREAMS
from snnc.errors import BackendError
from snnc.ir.ops import Role

pytestmark = pytest.mark.lava


def test_tables_agree():
    """Every lowered op has a timing rule (sources: the input code's own stream), and no op
    class is both lowered and refused."""
    assert set(STREAMS) == {k for k in LOWERING if k.role is not Role.ENCODER}
    assert not set(LOWERING) & set(REFUSED)
    assert all(isinstance(why, str) and why for why in REFUSED.values())


def _transpose_model(tmp_path) -> tuple[Path, Path]:
    """A small CNN that transposes a population's output before the classifier: quantizable
    (routing of payloads), not runnable on the Lava backend."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    ws = {"w1": rng.normal(size=(2, 1, 3, 3)), "w3": rng.normal(size=(3, 72))}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Transpose", ["r"], ["c"], perm=[0, 1, 3, 2]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "transpose",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w.astype(np.float32), k) for k, w in ws.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              tmp_path / "transpose.onnx")
    np.savez(tmp_path / "data.npz", x=rng.random((8, 1, 6, 6)).astype(np.float32))
    return tmp_path / "transpose.onnx", tmp_path / "data.npz"


def test_unsupported_artifact_names_layer(tmp_path):
    model, data = _transpose_model(tmp_path)
    art = compile_model(model, target="loihi2", method="fs", calib=data,
                        out=tmp_path / "transpose.snnc")
    with pytest.raises(BackendError, match=r"layer %c uses Transpose"):
        simulate_artifact(art, data, backend="lava", limit=2)
    r = subprocess.run([sys.executable, "-m", "snnc.cli", "simulate", str(art.path), "--data",
                        str(data), "--limit", "2", "--backend", "lava", "-q"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert r.stderr.startswith("error: lava backend: layer %c uses Transpose")
    assert "rate, fs, amos and ttfs networks" in r.stderr


def test_float_graph_rejected(tmp_path):
    art = compile_model(LENET / "lenet.onnx", target="cpu", method="rate", timesteps=4,
                        calib=LENET / "calib.npz", out=tmp_path / "cpu.snnc")
    with pytest.raises(BackendError, match="quantized"):
        simulate_artifact(art, LENET / "test.npz", backend="lava", limit=1)
