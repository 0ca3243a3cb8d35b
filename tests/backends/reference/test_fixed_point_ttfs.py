"""Bit-exact ttfs (single-spike) networks: hand-derived integer neurons, the hybrid input's
event code against the float encoder, the first-spike max-pool on events, the integrating
readout, and LeNet / the residual CNN quantized for loihi1 and loihi2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.sim.fixed_rules import FixedRules
from snnc.sim.integers import hybrid_events
from snnc.backends.reference.simulator import simulate
from snnc.ir.graph import Node
from snnc.ir.types import Value
from snnc.sim.kernels import hybrid_input
from snnc.sim.signals import Counters, Signal
from snnc.compiler.quantize import quantize_with_report
from snnc.compiler.pipeline import CompileOptions, compile_graph
from snnc.ir import GraphBuilder, TensorType, neurons, quantized as q, verify
from snnc.targets import load_target
from test_fixed_point import _run  # the rules' raw per-step signals

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _single_spike_graph(vth: list[int], bias: int = 0, compare: str = ">"):
    b = GraphBuilder()
    x = b.input("x", TensorType((1,)))
    code = b.add("code", q.InputQuantizer(1.0, 8), x)
    a = b.add("syn", q.QDense(np.eye(1, dtype=np.int16), np.zeros(1, np.int32), 0, 2), code)
    pop = b.add("pop", q.QSingleSpikeNeurons(
        1.0, 1.0, len(vth), vth=np.array(vth, np.int64).reshape(-1, 1),
        bias_mant=np.full((1,), bias, np.int32), compare=compare), a)
    return verify(b.build([pop]))


def test_single_spike_neuron_hand_derived():
    # code 26 arrives once (step 1) and switches on u = 26 << 6 = 1664 for good;
    # v = 1664 3328 4992 6656 8320 against vth 5000 5000 4000 9000 0: fires in step 3 only
    (sig,), c = _run(_single_spike_graph([5000, 5000, 4000, 9000, 0]), np.array([[26.0]]))
    assert sig.x[:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    assert c.spikes["pop"] == 1 and c.max_spikes["pop"] == 1
    # the comparison is strict on Loihi ('>'): v = 4992 does not cross vth = 4992 ...
    (sig,), _ = _run(_single_spike_graph([9000, 9000, 4992, 9000, 9000]), np.array([[26.0]]))
    assert sig.x[:, 0, 0].tolist() == [0, 0, 0, 0, 0]
    # ... unless the target says '>='
    (sig,), _ = _run(_single_spike_graph([9000, 9000, 4992, 9000, 9000], compare=">="),
                     np.array([[26.0]]))
    assert sig.x[:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    # the bias enters v every step: code 0, bias 100 -> v = 100 t, crosses 250 in step 3
    (sig,), _ = _run(_single_spike_graph([250] * 5, bias=100), np.array([[0.0]]))
    assert sig.x[:, 0, 0].tolist() == [0, 0, 1, 0, 0]


@pytest.mark.parametrize("timesteps", [2, 5, 9])
def test_hybrid_events_integrate_to_the_float_encoder(timesteps):
    # 8-bit pixels (multiples of 1/255): the running sum of the integer events, in units of
    # the code scale, is the float encoder's a(t) exactly, and the spikes are the same
    rng = np.random.default_rng(timesteps)
    x = torch.as_tensor(rng.integers(0, 256, (64, 3, 5)) / 255.0)
    op = q.QHybridInput(1 / 255, 8, False, timesteps, 255)
    events, spikes = hybrid_events(op, x)
    assert events.shape == (timesteps, 64, 3, 5)
    level = torch.cumsum(events.double(), 0) / 255
    a, float_spikes = hybrid_input(neurons.HybridInputNeurons(1.0, timesteps), x)
    np.testing.assert_allclose(level.numpy(), a.numpy(), atol=1e-12)
    np.testing.assert_array_equal(spikes.numpy(), float_spikes.numpy())
    assert float(events.abs().max()) <= 255  # every event fits the 8-bit code range + sign


def _node(op, shape) -> Node:
    """A node of its own for calling one rule directly."""
    return Node(op, (), Value(type(op).__name__, TensorType(shape)))


def test_first_spike_max_pool_on_events_and_integrating_readout():
    rules = FixedRules(Counters())
    # one 2x2 window: cells spike in steps 3, 2, never, 4 -> the window fires in step 2 only
    ev = torch.zeros(4, 1, 1, 2, 2)
    ev[2, 0, 0, 0, 0] = ev[1, 0, 0, 0, 1] = ev[3, 0, 0, 1, 1] = 1
    pool = neurons.FirstSpikeMaxPool2d((2, 2), (2, 2))
    out = rules.first_spike_events(_node(pool, (1, 1, 1)), Signal(ev, ev.sum(0)))
    assert out.x.flatten().tolist() == [0, 1, 0, 0] and float(out.events.sum()) == 1
    # readout of events a = (3, 0, 2, 0) over T = 4: running sums 3 3 5 5 -> mean 4
    acc = torch.tensor([3.0, 0.0, 2.0, 0.0]).reshape(4, 1, 1)
    readout = q.QReadout(0.5, np.array([1.0], np.float32), "integrate")
    y = rules.readout(_node(readout, (1,)), Signal(acc))
    assert y.x.flatten().tolist() == [4 * 0.5 + 1.0]


def _ttfs(model: str, target: str):
    calib = np.load(EXAMPLES / model / "calib.npz")["x"]
    g = compile_graph(str(EXAMPLES / model / f"{model}.onnx"), calib,
                      CompileOptions(method="ttfs")).graph
    qg, report = quantize_with_report(g, load_target(target), input_absmax=1.0,
                                      input_signed=False)
    return g, verify(qg), report


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_lenet_ttfs_bit_exact_tracks_float(target):
    """Measured on the 1,000 test images: loihi2 98.2 % (float 97.5 %), loihi1 97.9 %.
    At T = 5 a spike's step is a fifth of a neuron's range, so 8-bit weight rounding that
    moves a spike by one step matters more than for fs codes: within 1 pp, not 0.3."""
    g, qg, report = _ttfs("lenet", target)
    nrn = load_target(target).neuron
    for p in report["populations"]:
        assert p["model"] == "QSingleSpikeNeurons"
        assert p["current_bound_bits"] <= nrn.uv_bits - 1  # u provably never wraps
        assert p["thresholds_saturated"] == 0 and p["bias_saturated"] == 0
    assert report["weights_saturated"] == 0
    assert not any(isinstance(n.op, q.InputQuantizer) for n in qg.nodes)
    assert sum(isinstance(n.op, q.QHybridInput) for n in qg.nodes) == 1
    data = np.load(EXAMPLES / "lenet" / "test.npz")
    x, y = data["x"], data["y"]
    rf, rq = simulate(g, x, device="cpu"), simulate(qg, x, device="cpu")
    acc_f, acc_q = (rf.outputs[0].argmax(1) == y).mean(), (rq.outputs[0].argmax(1) == y).mean()
    assert acc_f >= 0.97 and abs(acc_q - acc_f) <= 0.01, (acc_f, acc_q)
    assert (rf.outputs[0].argmax(1) == rq.outputs[0].argmax(1)).mean() >= 0.98
    assert max(rq.max_spikes.values()) == 1.0
    # the on-chip populations spike alike (the host-side encoder is not one of them)
    for name, n in rq.spikes.items():
        assert abs(n - rf.spikes[name]) <= 0.01 * rf.spikes[name], name
    assert "x/hybrid_input" not in rq.spikes
    # a re-run in other batches gives identical spikes and readouts
    again = simulate(qg, x[:48], batch_size=7, device="cpu")
    first = simulate(qg, x[:48], batch_size=48, device="cpu")
    np.testing.assert_array_equal(first.outputs[0], again.outputs[0])
    assert first.spikes == again.spikes and first.synops == again.synops


def test_residual_ttfs_per_channel_skip_is_a_depthwise_synapse():
    _, qg, _ = _ttfs("resnet", "loihi2")
    skip = qg.node("/block1/Add_output_0/skip1").op
    assert type(skip) is q.QConv2d and skip.groups == skip.weight.shape[0] == 16
    assert skip.weight.shape[1:] == (1, 1, 1)
    # the per-channel amplitudes of the identity's source differ, so do the integer weights
    assert len(set(skip.weight.ravel().tolist())) > 1
