"""--approximate-norm: LayerNorm / InstanceNorm / GroupNorm replaced by a fixed affine map
calibrated on data (frozen statistics), folded into the synapse before it; without the flag a
clear user error. Random weights (nothing trained): the tests assert what is exact (the fit,
the reported error, the case where calibration statistics are the statistics) and report the
agreement as measured."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import pytest
import torch
from support.cli import assert_user_error, snnc
from support.model_builders import export_module
from torch import nn

from snnc.api import compile_model
from snnc.backends.lava import run
from snnc.backends.lava.lowering import check_supported
from snnc.backends.reference.record import reference_spikes
from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.approximate_norm import approximate_norm
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.ir import norm_ops, verify
from snnc.ir import quantized as q
from snnc.ir.interpret import run_ann


def _model(norm: nn.Module, opset: int = 13) -> tuple[nn.Module, onnx.ModelProto]:
    """conv -> norm -> relu -> conv -> relu -> dense (GroupNorm, InstanceNorm), or dense -> norm
    -> relu -> dense after a conv (LayerNorm over a dense layer's features)."""
    torch.manual_seed(0)
    if isinstance(norm, nn.LayerNorm):
        m = nn.Sequential(nn.Flatten(), nn.Linear(196, 32), norm, nn.ReLU(), nn.Linear(32, 32),
                          nn.ReLU(), nn.Linear(32, 10)).eval()
        m.insert(0, nn.Conv2d(1, 1, 1))
    else:
        m = nn.Sequential(nn.Conv2d(1, 8, 3), norm, nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 5 * 5, 10)).eval()
    for p in norm.parameters():
        nn.init.uniform_(p, 0.5, 1.5)
    buf = io.BytesIO()
    torch.onnx.export(m, torch.rand(1, 1, 14, 14), buf, opset_version=opset, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return m, onnx.load_from_string(buf.getvalue())


def _x(n: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 14, 14)).astype(np.float32)


def _norm_io(m: nn.Module, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The torch normalization layer's input and output on ``x`` (float64)."""
    seen = {}
    m = m.double()
    norm = next(c for c in m if isinstance(c, (nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)))
    norm.register_forward_hook(lambda mod, i, o: seen.update(a=i[0], b=o))
    with torch.no_grad():
        m(torch.as_tensor(x, dtype=torch.float64))
    return seen["a"], seen["b"]


NORMS = {"group_norm": lambda: nn.GroupNorm(2, 8), "instance_norm":
         lambda: nn.InstanceNorm2d(8, affine=True), "layer_norm": lambda: nn.LayerNorm(32)}


@pytest.mark.parametrize("kind", NORMS)
def test_report_equals_the_recomputed_error_and_the_fit_is_least_squares(kind):
    m, model = _model(NORMS[kind]())
    x = _x()
    g, report = approximate_norm(canonicalize(load_onnx(model)), x)
    verify(g)
    assert not [n for n in g.nodes if isinstance(n.op, norm_ops.NORM_OPS)]
    (layer,) = report["layers"]
    assert layer["kind"] == kind and report["samples"] == len(x)
    consts = {n.name: n.op.value for n in g.nodes if n.name.startswith(layer["name"] + "/")
              and hasattr(n.op, "value")}
    scale, shift = consts[layer["name"] + "/scale"], consts[layer["name"] + "/shift"]
    a, b = _norm_io(m, x)  # torch's own layer: an independent reference
    # a LayerNorm over a dense layer's features reads its input centered (the dense layer's
    # rows minus their mean: exact, the norm does not change); statistics over space do not
    assert layer["centered"] == (kind == "layer_norm")
    if layer["centered"]:
        a = a - a.mean(1, keepdim=True)
    approx = a * torch.as_tensor(scale, dtype=torch.float64) + torch.as_tensor(shift,
                                                                               dtype=torch.float64)
    rel = float((approx - b).abs().sum() / b.abs().sum())
    assert layer["rel_error"] == pytest.approx(rel, rel=1e-4)
    if kind == "group_norm":  # each group's (a, b): np.polyfit of its normalized output on x
        gamma, beta = (p.detach().double().numpy().reshape(8, 1, 1) for p in m[1].parameters())
        u = ((b.numpy() - beta) / gamma).reshape(len(x), 2, -1)
        ax = a.numpy().reshape(len(x), 2, -1)
        s = (scale / gamma).reshape(8, -1)[::4, 0]
        for grp in range(2):
            slope, _ = np.polyfit(ax[:, grp].ravel(), u[:, grp].ravel(), 1)
            assert s[grp] == pytest.approx(slope, rel=1e-4)
    exact, approx_out = run_ann(load_onnx(model), x)[0], run_ann(g, x)[0]
    agreement = float(np.mean(exact.argmax(1) == approx_out.argmax(1)))
    assert report["top1_agreement"] == pytest.approx(agreement, abs=1.5 / len(x))


@pytest.mark.parametrize("kind", NORMS)
def test_exact_where_the_statistics_are_the_calibrated_ones(kind):
    """Calibrated on samples whose statistics are all the same (one sample, repeated), the
    fixed map is the normalization itself on those samples: the pass's defining property."""
    _, model = _model(NORMS[kind]())
    x = np.repeat(_x(1), 8, axis=0)
    g, report = approximate_norm(canonicalize(load_onnx(model)), x)
    assert report["layers"][0]["rel_error"] < 1e-6
    np.testing.assert_allclose(run_ann(g, x)[0], run_ann(load_onnx(model), x)[0], rtol=1e-4,
                               atol=1e-5)
    assert report["top1_agreement"] == 1.0


def test_cli_refuses_without_the_flag(tmp_path):
    _, model = _model(nn.GroupNorm(2, 8))
    onnx.save(model, tmp_path / "gn.onnx")
    np.savez(tmp_path / "calib.npz", x=_x(16))
    r = snnc("compile", str(tmp_path / "gn.onnx"), "--calib", str(tmp_path / "calib.npz"),
             "-o", str(tmp_path / "gn.snnc"))
    assert_user_error(r, "layer '", "(group_norm)", "--approximate-norm", "approximate_norm=True")
    assert not (tmp_path / "gn.snnc").exists()


@pytest.mark.parametrize("kind", ["group_norm", "layer_norm"])
def test_cli_compiles_with_the_flag_on_cpu_and_loihi2(tmp_path, kind):
    _, model = _model(NORMS[kind]())
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=_x(32))
    for target in ("cpu", "loihi2"):
        for method in ("fs", "rate"):
            out = tmp_path / f"{target}_{method}.snnc"
            r = snnc("compile", str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "calib.npz"),
                     "--target", target, "--method", method, "--approximate-norm", "-q",
                     "-o", str(out))
            assert r.returncode == 0, r.stderr
            manifest = json.loads((out / "manifest.json").read_text())
            rep = manifest["norm_approximation"]
            assert manifest["options"]["approximate_norm"] is True
            assert rep["samples"] == 32 and [la["kind"] for la in rep["layers"]] == [kind]
            assert 0.0 <= rep["layers"][0]["rel_error"] < 1.0
    # the normalization is gone: folded into the conv before it, Lava accepts the graph
    art = compile_model(model, target="loihi2", calib=_x(32), approximate_norm=True,
                        out=tmp_path / "api.snnc")
    check_supported(art.graph)
    assert not [n for n in art.graph.nodes if isinstance(n.op, norm_ops.NORM_OPS)]


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("kind,method", [("group_norm", "fs"), ("layer_norm", "rate")])
def test_approximated_network_runs_on_lava_spike_for_spike(tmp_path, kind, method):
    _, model = _model(NORMS[kind]())
    art = compile_model(model, target="loihi2", method=method, calib=_x(32),
                        timesteps=16 if method == "rate" else None, approximate_norm=True,
                        out=tmp_path / "a.snnc")
    x = _x(2, seed=5)
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, (q.QFewSpikeNeurons,
                                                                 q.QIFNeurons))]
    assert pops and sorted(res.spikes) == sorted(pops)
    for p in pops:
        np.testing.assert_array_equal(res.spikes[p], ref[p], err_msg=p)
    np.testing.assert_array_equal(res.outputs, ref_out)


def test_layer_norm_over_a_feature_map_runs_on_cpu_and_is_one_clear_error_on_loihi2(tmp_path):
    """nn.LayerNorm([C, H, W]) after a conv: its frozen scale varies over height and width, so it
    folds into no synapse. cpu runs the elementwise scale; loihi2 names the leftover constant
    and says so, exit 2, no artifact."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LayerNorm([4, 14, 14]), nn.ReLU(),
                      nn.Flatten(), nn.Linear(4 * 14 * 14, 10)).eval()
    onnx.save(export_module(m, torch.rand(1, 1, 14, 14)), tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=_x(16))
    args = ["compile", str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "calib.npz"),
            "--approximate-norm", "-q"]
    assert snnc(*args, "-o", str(tmp_path / "cpu.snnc")).returncode == 0
    r = snnc(*args, "--target", "loihi2", "-o", str(tmp_path / "l2.snnc"))
    assert_user_error(r, "layer '", "(constant)", "varies inside a channel",
                      "not yet quantizable", "the cpu target runs it")
    assert not (tmp_path / "l2.snnc").exists()


def test_centering_the_dense_layer_before_a_layer_norm_is_exact():
    """The dense rows minus their mean give the LayerNorm an input of zero mean per sample; the
    norm's output, and so the network, does not change (up to float32 rounding)."""
    from snnc.compiler.passes.approximate_norm import center_producers

    _, model = _model(NORMS["layer_norm"]())
    g = canonicalize(load_onnx(model))
    norms = [n for n in g.nodes if isinstance(n.op, norm_ops.Normalize)]
    centered, names = center_producers(g, norms)
    assert names == {norms[0].name}
    x = _x(16)
    np.testing.assert_allclose(run_ann(centered, x)[0], run_ann(g, x)[0], rtol=1e-5, atol=1e-5)
    seen = {}
    run_ann(centered, x, observe=lambda node, out: seen.setdefault(node.name, out))
    feed = seen[norms[0].inputs[0].name]
    assert float(feed.mean(1).abs().max()) < 1e-5 * float(feed.abs().max())
