"""Whole models from the onnx package's backend test data, against onnxruntime.

* light zoo (AlexNet ... ZFNet-512): their weights are ConstantOfShape fills (all equal), which
  would make every model output constant; the test swaps in seeded random weights of the same
  shapes so the comparison exercises every layer.
* pytorch-converted / pytorch-operator: every model whose ops snnc supports must match; the rest
  must fail with a clear UnsupportedOp, and the list of those (with the op) is printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from support.onnx_models import assert_close, ort_run, random_feeds
from snnc.compiler.frontend import load_onnx
from snnc.errors import UnsupportedOp
from snnc.ir import verify
from snnc.ir.interpret import run_ann

DATA = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
LIGHT = sorted(DATA.glob("light/*.onnx"))
BACKEND = sorted(p for kind in ("pytorch-converted", "pytorch-operator")
                 for p in (DATA / kind).glob("*/model.onnx"))


def randomize_fills(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Replace ConstantOfShape weight fills by seeded random initializers of the same shape:
    He-scaled normals for weight tensors, values in [0.5, 1.5] for 1-D (BN statistics, biases)."""
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    keep, new = [], []
    for n in model.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = tuple(int(d) for d in inits[n.input[0]])
            if len(shape) >= 2:
                a = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, np.prod(shape[1:])))
            else:
                a = rng.uniform(0.5, 1.5, shape)
            new.append(numpy_helper.from_array(a.astype(np.float32), n.output[0]))
        else:
            keep.append(n)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    out.graph.initializer.extend(new)
    out.ir_version = max(out.ir_version, 4)  # initializers need not be listed as inputs
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", LIGHT, ids=lambda p: p.stem)
def test_light_zoo_matches_onnxruntime(path):
    model = randomize_fills(onnx.load(path))
    graph = verify(load_onnx(model))
    feeds = random_feeds(model, seed=1)
    ref = ort_run(model, feeds)[0]
    got = run_ann(graph, *feeds.values())[0]
    assert np.abs(ref).max() > 0 and ref.std() > 0, "degenerate reference output"
    assert_close(got, ref)


def test_light_zoo_is_complete():
    names = {p.stem for p in LIGHT}
    assert len(names) == 9, names


_SKIPPED: list[str] = []


@pytest.mark.parametrize("path", BACKEND, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_backend_model(path):
    model = onnx.load(path)
    try:
        graph = verify(load_onnx(model))
    except UnsupportedOp as e:
        msg = str(e)
        assert "node '" in msg or "graph input" in msg, msg
        _SKIPPED.append(f"{path.parent.name}: {msg[:120]}")
        return
    feeds = random_feeds(model, batch=2)
    refs = ort_run(model, feeds)
    outs = run_ann(graph, *feeds.values())
    for got, ref in zip(outs, refs):
        nan = np.isnan(ref)  # outside the op's domain: Sqrt of the random normal feeds
        np.testing.assert_array_equal(np.isnan(got), nan)
        assert_close(np.where(nan, 0.0, got), np.where(nan, 0.0, ref))


def test_backend_model_summary(capsys):
    """Runs after the parametrized cases (pytest keeps file order): prints what was skipped."""
    supported = len(BACKEND) - len(_SKIPPED)
    with capsys.disabled():
        print(f"\nonnx backend models: {supported} supported and equal to onnxruntime, "
              f"{len(_SKIPPED)} unsupported:")
        for line in _SKIPPED:
            print(f"  - {line}")
    assert supported >= 40, f"only {supported} backend models supported"
