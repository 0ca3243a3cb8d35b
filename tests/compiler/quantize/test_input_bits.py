"""Input code width on graded-spike targets (quantize_pass.input_bits_headroom): codes widen from
8 bits as far as the first layers' weight exponents allow, which keeps 8-bit images bit for bit
and makes finer inputs (normalized pixels) lose less; binary-spike targets keep 8 bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.paths import EXAMPLES

import snnc
from snnc.backends.reference.simulator import simulate
from snnc.compiler.quantize import quantize_pass
from snnc.ir import quantized as q
from snnc.sim.integers import input_code

LENET = EXAMPLES / "lenet"


def _compile(tmp_path, model, calib, target: str, name: str, method: str = "fs"):
    return snnc.compile(model, target=target, method=method, calib=calib,
                        out=tmp_path / f"{name}.snnc")


def _eight_bits(monkeypatch) -> None:
    monkeypatch.setattr(quantize_pass, "INPUT_BITS_MAX", 8)


@pytest.mark.parametrize("method", ["fs", "ttfs"])
def test_8bit_images_run_bit_for_bit_with_wider_codes(tmp_path, monkeypatch, method):
    """MNIST pixels are k/255: with 2^extra times finer codes every code is 2^extra k and the
    first layer's exponent extra lower, so the integer network computes the same values."""
    wide = _compile(tmp_path, LENET / "lenet.onnx", LENET / "calib.npz", "loihi2", "wide", method)
    _eight_bits(monkeypatch)
    narrow = _compile(tmp_path, LENET / "lenet.onnx", LENET / "calib.npz", "loihi2", "narrow",
                      method)
    bits = wide.manifest["quantization"]["input"]["bits"]
    assert bits > 8 and narrow.manifest["quantization"]["input"]["bits"] == 8
    x = np.load(LENET / "test.npz")["x"][:40]
    a, b = simulate(wide.graph, x), simulate(narrow.graph, x)
    assert np.array_equal(a.outputs[0], b.outputs[0])
    assert a.spikes == b.spikes and a.synops == b.synops


def _input_error(art, x: np.ndarray) -> float:
    """max |decoded input code - x| of the artifact's input encoder."""
    op = next(n.op for n in art.graph.nodes if isinstance(n.op, q.InputQuantizer))
    xt = torch.as_tensor(x, dtype=torch.float64)
    return float((input_code(op, xt) * op.scale - xt).abs().max())


def test_off_grid_inputs_get_finer_codes(tmp_path, monkeypatch):
    """Signed inputs on no 8-bit grid: codes 2^(bits - 8) times finer than 8-bit ones (the
    encoder's error shrinks by as much), the first layer still uses every mantissa bit at an
    exponent within the target's range, and the network computes with them (its outputs
    differ from the 8-bit network's)."""
    pixels = np.load(LENET / "test.npz")["x"][:160]
    dither = np.random.default_rng(0).uniform(0, 1 / 255, size=pixels.shape)
    x = ((pixels + dither) * 2 - 1).astype(np.float32)  # in [-1, 1], off the 8-bit grid
    np.savez(tmp_path / "calib.npz", x=x[:100])
    model = LENET / "lenet.onnx"
    wide = _compile(tmp_path, model, tmp_path / "calib.npz", "loihi2", "wide")
    _eight_bits(monkeypatch)
    narrow = _compile(tmp_path, model, tmp_path / "calib.npz", "loihi2", "narrow")
    q_report = wide.manifest["quantization"]
    bits = q_report["input"]["bits"]
    assert 8 < bits <= 16 and q_report["input"]["signed"]
    first = q_report["synapses"][0]
    assert first["mantissa_bits"] == 8 and first["weight_exp"] >= -7
    test = x[100:]
    assert _input_error(wide, test) <= _input_error(narrow, test) / 2 ** (bits - 8) * 1.01
    assert not np.array_equal(simulate(wide.graph, test).outputs[0],
                              simulate(narrow.graph, test).outputs[0])


def test_binary_spike_targets_keep_8_bit_codes(tmp_path):
    art = _compile(tmp_path, LENET / "lenet.onnx", LENET / "calib.npz", "loihi1", "l1")
    assert art.manifest["quantization"]["input"]["bits"] == 8
