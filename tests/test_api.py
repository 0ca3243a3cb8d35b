"""The Python API mirrors the CLI: snnc.compile (path, ModelProto or bytes) -> Artifact,
artifact.simulate -> Metrics, snnc.load, snnc.from_torch, in-memory data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import snnc
from snnc.api import Metrics
from snnc.compiler.pipeline import CompileOptions, pass_plan

LENET = Path(__file__).resolve().parents[1] / "examples" / "lenet"


@pytest.fixture(scope="module")
def lenet_fs(tmp_path_factory):
    return snnc.compile(LENET / "lenet.onnx", method="fs", calib=LENET / "calib.npz",
                        out=tmp_path_factory.mktemp("api") / "lenet.snnc")


def test_compile_path_simulate_metrics(lenet_fs):
    m = lenet_fs.simulate(LENET / "test.npz", limit=50)
    assert isinstance(m, Metrics) and isinstance(m, dict)
    assert m.accuracy == m["accuracy"] >= 0.9 and m.samples == 50
    assert json.loads(json.dumps(m))["samples"] == 50  # still a plain JSON object
    assert snnc.simulate(lenet_fs.path, LENET / "test.npz", limit=50)["accuracy"] == m.accuracy
    with pytest.raises(AttributeError, match="no metric 'acuracy'"):
        m.acuracy  # noqa: B018


def test_load_round_trip_and_summary(lenet_fs):
    art = snnc.load(lenet_fs.path)
    assert art.manifest == lenet_fs.manifest
    s = art.summary()
    assert s["method"] == "fs" and s["target"] == "cpu" and s["layers"] == 10
    assert s["populations"] == 3 and s["neurons"] == 4600
    assert (s["latency_steps"], s["throughput_steps"]) == (30, 10) and "cores" not in s


def test_compile_model_proto_defaults_to_a_temp_dir():
    proto = onnx.load(str(LENET / "lenet.onnx"))
    art = snnc.compile(proto, calib=LENET / "calib.npz", method="rate", timesteps=8)
    assert art.path.name.endswith(".snnc") and art.path.parent.name.startswith("snnc-")
    assert art.manifest["source_model"].endswith(".onnx")
    again = snnc.compile(proto.SerializeToString(), calib=LENET / "calib.npz", method="rate",
                         timesteps=8, out=art.path.parent / "again.snnc")
    for name in ("manifest.json", "tensors.npz"):  # same model, same bytes
        assert (art.path / name).read_bytes() == (again.path / name).read_bytes()
    import shutil

    shutil.rmtree(art.path.parent)  # the temp directory is the caller's to remove


def test_compile_rejects_other_model_types():
    with pytest.raises(snnc.SnncError, match="onnx.ModelProto"):
        snnc.compile(42, calib=LENET / "calib.npz")


def test_in_memory_data(lenet_fs):
    d = np.load(LENET / "test.npz")
    m = lenet_fs.simulate((d["x"][:30], d["y"][:30]))
    assert m.samples == 30 and m.accuracy >= 0.9
    assert lenet_fs.simulate({"x": d["x"][:5]}).accuracy is None
    with pytest.raises(snnc.SnncError, match=r"in-memory samples\): x has per-sample shape"):
        lenet_fs.simulate(d["x"][:5, 0])


def test_artifact_export(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    art = snnc.from_torch(net, torch.rand(32, 12), method="rate", timesteps=8,
                          out=tmp_path / "mlp.snnc")
    out = art.export("nir", tmp_path / "mlp.nir")
    assert out.is_file()
    import nir

    assert {type(n).__name__ for n in nir.read(out).nodes.values()} >= {"Affine", "IF"}


def test_from_torch_cnn_agrees_with_the_module(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 5))
    net.train()
    x = torch.rand(64, 1, 8, 8)
    art = snnc.from_torch(net, x[:1], calib=x, method="fs", out=tmp_path / "cnn.snnc")
    assert net.training  # the module's mode is restored
    assert art.path == tmp_path / "cnn.snnc" and art.manifest["source_model"] == "Sequential.onnx"
    y = net(x).argmax(1).numpy()
    m = art.simulate((x.numpy(), y))
    assert m.agreement >= 0.9 and m.accuracy >= 0.9


def test_from_torch_errors(tmp_path):
    class Svd(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.svd(x)[0]

    with pytest.raises(snnc.SnncError, match="torch.onnx.export failed for Svd"):
        snnc.from_torch(Svd(), torch.rand(1, 3, 3), out=tmp_path / "x.snnc")
    with pytest.raises(snnc.SnncError, match="torch.nn.Module"):
        snnc.from_torch(lambda x: x, torch.rand(1, 3))
    class Sine(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x)

    with pytest.raises(snnc.SnncError, match="Sin"):  # exported fine, unsupported by snnc
        snnc.from_torch(torch.nn.Sequential(torch.nn.Linear(3, 3), Sine()),
                        torch.rand(4, 3), out=tmp_path / "sine.snnc")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("method,target,finetune", [("fs", "cpu", False),
                                                    ("rate", "loihi2", False),
                                                    ("ttfs", "cpu", True)])
def test_pass_plan_matches_the_passes_run(tmp_path, method, target, finetune):
    d = np.load(LENET / "train.npz")
    ran = []
    snnc.compile(LENET / "lenet.onnx", method=method, target=target, calib=LENET / "calib.npz",
                 timesteps=4, finetune=(d["x"][:32], d["y"][:32]) if finetune else None,
                 epochs=1 if finetune else None, out=tmp_path / "o.snnc",
                 on_pass=lambda name, s: ran.append(name))
    plan = pass_plan(CompileOptions(method=method, target=target,
                                    finetune_epochs=int(finetune)))
    assert ran == plan
