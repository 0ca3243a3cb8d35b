"""--rate-calibration: layer-wise bias (and threshold) calibration of rate-coded networks
(compiler/convert/rate_calibration.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.cli import assert_user_error, snnc

import snnc as api
from snnc.backends.reference.simulator import simulate
from snnc.compiler.convert.rate_calibration import best_threshold, calibrate_rate
from snnc.compiler.pipeline import CompileOptions, compile_graph
from snnc.ir import neurons
from snnc.ir.interpret import run_ann
from snnc.sim.float_rules import FloatRules
from snnc.sim.run import run_once
from snnc.sim.signals import Counters

RESNET = Path(__file__).parents[3] / "examples" / "resnet"


def _data():
    calib = np.load(RESNET / "calib.npz")["x"]
    test = np.load(RESNET / "test.npz")
    return calib, test["x"], test["y"]


def _channel_means_snn(graph, x) -> dict[str, np.ndarray]:
    means = {}

    def observe(node, sig):
        if isinstance(node.op, neurons.IFNeurons):
            r = sig.x.mean(0)
            means[node.name] = r.double().mean(dim=[0, *range(2, r.dim())]).numpy()

    with torch.no_grad():
        run_once(FloatRules(Counters()), graph, torch.as_tensor(x), observe=observe)
    return means


def _channel_means_ann(graph, x, names) -> dict[str, np.ndarray]:
    means = {}

    def observe(node, out):
        if node.name in names:
            means[node.name] = out.double().mean(dim=[0, *range(2, out.dim())]).numpy()

    run_ann(graph, x, batch_size=len(x), observe=observe)
    return means


def test_bias_calibration_reduces_layerwise_error():
    """On the calibration images, every calibrated population's mean output per channel moves
    to the ANN's mean activation: the summed error drops by more than 10x."""
    calib, _, _ = _data()
    x = calib[:64]
    r = compile_graph(RESNET / "resnet.onnx", x, CompileOptions(method="rate", timesteps=16))
    cal = calibrate_rate(r.graph, r.ann, x, "bias")
    assert [type(n.op) for n in cal.nodes] == [type(n.op) for n in r.graph.nodes]
    names = {n.name for n in r.graph.nodes if isinstance(n.op, neurons.IFNeurons)}
    ann = _channel_means_ann(r.ann, x, names)
    before, after = _channel_means_snn(r.graph, x), _channel_means_snn(cal, x)
    err_before = sum(np.abs(before[k] - ann[k]).sum() for k in names)
    err_after = sum(np.abs(after[k] - ann[k]).sum() for k in names)
    assert err_after < err_before / 10, (err_before, err_after)


def test_none_is_identity_and_bad_mode_refused():
    calib, _, _ = _data()
    r = compile_graph(RESNET / "resnet.onnx", calib[:8], CompileOptions(method="rate"))
    assert calibrate_rate(r.graph, r.ann, calib[:8], "none") is r.graph
    with pytest.raises(ValueError, match="rate calibration"):
        calibrate_rate(r.graph, r.ann, calib[:8], "weights")


def test_best_threshold_minimizes_code_error():
    a = np.concatenate([np.zeros(500), np.linspace(0.0, 1.0, 1000), [3.0]])
    lam = best_threshold(a, 8, 0.5)
    assert lam is not None and lam < 1.5  # the outlier is clipped rather than coarsening all
    assert best_threshold(np.zeros(10), 8, 0.5) is None


@pytest.mark.slow
def test_bias_calibration_lifts_resnet_at_t32():
    """examples/resnet, T = 32, 300 test images: plain rate coding 41.0 %, bias-calibrated
    94.0 % (measured 2026-12-07; 1,000 images in docs/methods.md)."""
    calib, tx, ty = _data()
    tx, ty = tx[:300], ty[:300]
    acc = {}
    for mode in ("none", "bias"):
        r = compile_graph(RESNET / "resnet.onnx", calib,
                          CompileOptions(method="rate", timesteps=32, rate_calibration=mode))
        acc[mode] = float((simulate(r.graph, tx).outputs[0].argmax(1) == ty).mean())
    assert acc["bias"] >= 0.92 and acc["bias"] - acc["none"] >= 0.3, acc


@pytest.mark.slow
def test_calibrated_rate_runs_bit_exact_on_loihi2(tmp_path):
    """The calibrated network quantizes (re-quantized biases) and its integer graph runs; the
    manifest records the option."""
    calib, tx, ty = _data()
    art = api.compile(RESNET / "resnet.onnx", method="rate", target="loihi2", timesteps=32,
                      calib=calib, rate_calibration="bias", out=tmp_path / "r.snnc")
    assert art.manifest["options"]["rate_calibration"] == "bias"
    m = api.simulate(art, (tx[:100], ty[:100]))
    f = api.simulate(art, (tx[:100], ty[:100]), float_mode=True)
    assert m["mode"] == "bit-exact"
    assert m["accuracy"] >= 0.9 and abs(m["accuracy"] - f["accuracy"]) <= 0.03, (m, f)


def test_cli_refuses_unknown_calibration_and_other_methods(tmp_path):
    model, calib = RESNET / "resnet.onnx", RESNET / "calib.npz"
    assert_user_error(snnc("compile", str(model), "--method", "rate", "--calib", str(calib),
                           "--rate-calibration", "weights", "-o", str(tmp_path / "a.snnc")),
                      "--rate-calibration", "weights")
    assert_user_error(snnc("compile", str(model), "--method", "fs", "--calib", str(calib),
                           "--rate-calibration", "bias", "-o", str(tmp_path / "b.snnc")),
                      "--method rate")
    assert not (tmp_path / "a.snnc").exists() and not (tmp_path / "b.snnc").exists()


def test_pass_plan_lists_the_calibration(tmp_path):
    from snnc.compiler.pipeline import pass_plan

    ran = []
    art = api.compile(RESNET / "resnet.onnx", method="rate", calib=_data()[0][:16], timesteps=4,
                      rate_calibration="threshold+bias", out=tmp_path / "o.snnc",
                      on_pass=lambda name, s: ran.append(name))
    assert ran == pass_plan(CompileOptions(method="rate", rate_calibration="threshold+bias"))
    assert ran[-1] == "calibrate_rate"
    assert art.manifest["options"]["rate_calibration"] == "threshold+bias"
