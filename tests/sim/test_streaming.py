"""The fast T-step paths of the simulators give the same bits as the plain ones: the float
rate max-pool gate by window maxima (``kernels.gate_rises`` on ``Train`` bits), and synapses
streamed block by block into the neurons (``kernels.Stepped``), float and bit-exact."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.compiler.pipeline import CompileOptions, compile_graph
from snnc.compiler.quantize import quantize
from snnc.ir import neurons, ops
from snnc.ir.graph import Node, TensorType, Value
from snnc.ir.interpret import Interpreter
from snnc.sim.fixed_rules import FixedRules
from snnc.sim.float_rules import FloatRules
from snnc.sim.kernels import Stepped, Train, step_values
from snnc.sim.signals import Counters, Signal
from snnc.targets import load_target

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.3, 0.7]),
       st.sampled_from([(2, 2), (3, 3), (2, 3)]), st.integers(1, 20))
def test_float_gate_on_trains_equals_the_general_gate(seed, rate, kernel, steps):
    """Random trains times an amplitude, odd sizes cropped: the window-maximum gate on the
    bits passes the same values and counts as the cumsum/argmax/gather gate on ``x``."""
    g = torch.Generator().manual_seed(seed)
    bits = (torch.rand(steps, 3, 2, 7, 8, generator=g) < rate).to(torch.float32)
    node = Node(neurons.SpikingMaxPool2d(kernel, kernel), (), Value("gate", TensorType((2, 3, 4))))
    rules = FloatRules(Counters())
    train = Train(bits, 3.1298565027236855, bits.sum(0))
    fast = rules.spiking_max_pool(node, train)
    general = rules.spiking_max_pool(node, Signal(train.x, train.events))
    assert isinstance(fast, Train)
    assert torch.equal(fast.x, general.x)
    assert torch.equal(fast.events, general.events)


def test_stepped_blocks_never_hold_one_row():
    for batch, steps in [(1, 64), (1, 65), (1, 33), (3, 11), (100, 64), (1, 2), (7, 1)]:
        sig = Stepped(steps, batch, lambda lo, hi: torch.arange(lo, hi).reshape(-1, 1))
        cuts = sig.bounds()
        assert cuts[0] == 0 and cuts[-1] == steps
        assert all((hi - lo) * batch >= 2 or steps * batch < 2
                   for lo, hi in pairwise(cuts))
        assert [t for t, _ in step_values(sig, steps)] == list(range(steps))


@pytest.mark.parametrize("cin,hw,cout,k,stride,pad", [
    (16, 28, 16, 3, 1, 1), (16, 14, 32, 3, 2, 1), (16, 14, 32, 1, 2, 0), (32, 7, 32, 3, 1, 1),
    (6, 12, 16, 5, 1, 0)])
def test_convolution_blocks_equal_the_folded_convolution(cin, hw, cout, k, stride, pad):
    """What streaming relies on: the float convolution of a block of >= 2 samples gives the
    bits of the same samples in one folded batch (oneDNN treats a batch of one differently)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(150, cin, hw, hw, generator=g) < 0.2).float() * 3.13
    w, b = torch.randn(cout, cin, k, k, generator=g), torch.randn(cout, generator=g)
    full = F.conv2d(x, w, b, stride=stride, padding=pad)
    for rows in (2, 3, 10, 32, 100):
        cuts = list(range(0, 150, rows))
        if 150 - cuts[-1] < 2:
            cuts.pop()
        blocks = [F.conv2d(x[lo:hi], w, b, stride=stride, padding=pad)
                  for lo, hi in zip(cuts, [*cuts[1:], 150])]
        assert torch.equal(torch.cat(blocks), full), rows


def _run(graph, rules, x):
    with torch.no_grad():
        outs = Interpreter(rules).run(graph, [Signal(x.unsqueeze(0))])
    c = rules.c
    return [o.x for o in outs], c.spikes, c.synops, c.max_spikes


@pytest.mark.parametrize("model,target", [("lenet", "cpu"), ("lenet", "loihi2"),
                                          ("resnet", "cpu"), ("resnet", "loihi2")])
def test_streamed_rate_network_equals_the_unstreamed_one(model, target):
    """Readouts, spike counts and synaptic events, bit for bit, for batches of 1 and 5."""
    calib = np.load(EXAMPLES / model / "calib.npz")["x"]
    g = compile_graph(str(EXAMPLES / model / f"{model}.onnx"), calib,
                      CompileOptions(method="rate", timesteps=12)).graph
    if target != "cpu":
        g = quantize(g, load_target(target), input_absmax=float(np.abs(calib).max()),
                     input_signed=bool(calib.min() < 0))
    test = np.load(EXAMPLES / model / "test.npz")["x"]
    for n in (1, 5):
        x = torch.as_tensor(test[:n], dtype=torch.float64 if target != "cpu" else torch.float32)
        runs = []
        for stream in (True, False):
            rules = FixedRules(Counters()) if target != "cpu" else FloatRules(Counters())
            rules.stream = stream
            runs.append(_run(g, rules, x))
        (o1, s1, y1, m1), (o2, s2, y2, m2) = runs
        assert all(torch.equal(a, b) for a, b in zip(o1, o2))
        assert s1 == s2 and y1 == y2 and m1 == m2
        assert sum(s1.values()) > 0


def test_streamed_synapses_are_built_lazily():
    """A streamed convolution is not computed until a consumer asks for its steps."""
    calls = []
    conv = ops.Conv2d(np.ones((2, 1, 1, 1), np.float32), np.zeros(2, np.float32))
    node = Node(conv, (), Value("conv", TensorType((2, 2, 2))))
    rules = FloatRules(Counters())
    bits = torch.ones(4, 3, 1, 2, 2)
    out = rules.linear(node, Train(bits, 1.0, bits.sum(0)))
    assert isinstance(out, Stepped)
    inner = out._block
    out._block = lambda lo, hi: calls.append((lo, hi)) or inner(lo, hi)
    assert [t for t, _ in step_values(out, 4)] == [0, 1, 2, 3] and calls
