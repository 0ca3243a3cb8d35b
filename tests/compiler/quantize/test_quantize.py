"""quantize pass: integer parameters within the target formats, exact FS-ReLU tables, the
report, serialization, and the errors for what it cannot express."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from snnc.compiler import fs_params
from snnc.compiler.pipeline import CompileOptions, compile_graph
from snnc.compiler.quantize import (
    NotQuantizable,
    mantissa_max,
    quantize,
    quantize_with_report,
    synapse_bits,
    weight_exponent,
)
from snnc.errors import SnncError
from snnc.ir import GraphBuilder, TensorType, neurons, ops, verify
from snnc.ir import quantized as q
from snnc.ir.serialize import graph_from_json, graph_to_json
from snnc.targets import load_target

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
L1, L2 = load_target("loihi1"), load_target("loihi2")


@pytest.fixture(scope="module")
def lenet_graphs():
    calib = np.load(EXAMPLES / "lenet" / "calib.npz")["x"]
    return {m: compile_graph(str(EXAMPLES / "lenet" / "lenet.onnx"), calib,
                             CompileOptions(method=m)).graph for m in ("fs", "rate", "amos")}


def _int(a) -> bool:
    return np.asarray(a).dtype.kind == "i"


@pytest.mark.parametrize("method", ["fs", "rate", "amos"])
@pytest.mark.parametrize("target", [L1, L2], ids=["loihi1", "loihi2"])
def test_every_parameter_is_an_integer_within_its_format(lenet_graphs, method, target):
    g, report = quantize_with_report(lenet_graphs[method], target, input_absmax=1.0)
    verify(g)
    assert q.is_quantized(g)
    n, w = target.neuron, target.weights
    lim = 2 ** (n.uv_bits - 1) - 1
    kinds = set()
    for node in g.nodes:
        op = node.op
        kinds.add(type(op))
        assert type(op) not in (ops.Conv2d, ops.Dense, neurons.IFNeurons,
                                neurons.FewSpikeNeurons, neurons.AmosNeurons), node.name
        if isinstance(op, (q.QConv2d, q.QDense)):
            assert _int(op.weight) and not op.bias.any()
            mixed = bool((op.weight < 0).any() and (op.weight > 0).any())
            assert np.abs(op.weight).max() <= mantissa_max(w, mixed)
            assert w.exp_min <= op.weight_exp <= w.exp_max
            assert synapse_bits(node) == op.weight_bits <= w.mantissa_bits + w.mixed_sign_extra_bit
            assert weight_exponent(node) == op.weight_exp
        if isinstance(op, (q.QIFNeurons, q.QFewSpikeNeurons, q.QAmosNeurons)):
            assert _int(op.bias_mant) and op.bias_mant.shape == node.output.shape
            assert np.abs(op.bias_mant).max() <= 2 ** (n.bias_mant_bits - 1) - 1
            assert 0 <= op.bias_exp <= n.bias_exp_max
        if isinstance(op, q.QIFNeurons):
            vth_mant = np.asarray(op.vth_mant)
            assert _int(vth_mant) and op.vth_shift == n.vth_shift
            assert 1 <= vth_mant.min() and vth_mant.max() < 2**n.vth_mant_bits
            assert np.max(op.vth) * 16 <= lim + 1  # headroom: v can reach 16x the threshold
            # per-channel thresholds where neurons are programmable (Loihi 2)
            assert vth_mant.shape == ((node.output.shape[0],) + (1,) * (len(node.output.shape)
                                      - 1) if n.programmable else ())
            assert op.reset == ("subtract" if n.programmable else n.reset)
        if isinstance(op, (q.QFewSpikeNeurons, q.QAmosNeurons)):
            assert _int(op.T) and _int(op.h) and _int(op.d)
            assert np.abs(op.T).max() <= lim and np.abs(op.h).max() <= lim
            assert op.graded == bool(n.graded_spike_bits)
    assert {q.InputQuantizer, q.QReadout, q.QDense, q.QConv2d} <= kinds
    assert report["weights_saturated"] == 0 and report["biases_saturated"] == 0
    assert len(report["synapses"]) == 4 and len(report["populations"]) == 3
    for r in report["synapses"]:
        # half a step of a mantissa that uses its top bit: <= 1/mantissa_max of the range
        assert 0 < r["max_rel_error"] <= 1.0 / mantissa_max(w, True)
        assert r["mantissa_bits"] == w.mantissa_bits + w.mixed_sign_extra_bit  # all mixed-sign
    if method in ("fs", "amos") and not n.graded_spike_bits:  # d(t) folded into per-step exponents
        steps = [r["per_step_exp"] for r in report["synapses"] if "per_step_exp" in r]
        assert len(steps) == 3 and all(r.get("per_step_exp_in_range", True)
                                       for r in report["synapses"])
        assert all(hi - lo == 9 for lo, hi in steps)  # K = 10 steps


def test_rate_thresholds_per_channel_fill_each_channel_mantissa(lenet_graphs):
    """Loihi 2 (per-neuron thresholds): each IF channel gets its own state scale, so with the
    layer's one weight exponent every channel's largest weight uses the whole mantissa, unless
    its threshold is already at the layer's largest (the scale's lower limit); thresholds stay
    at >= 2^14 state units (rounding to multiples of 2^6 costs <= 0.2 %). Loihi 1 keeps one
    threshold per population (a core has 8-16 threshold registers)."""
    g = quantize(lenet_graphs["rate"], L2, input_absmax=1.0)
    producers = g.producers()
    full = 0
    for node in g.nodes:
        if not isinstance(node.op, q.QIFNeurons):
            continue
        syn = producers[node.inputs[0].name].op
        assert isinstance(syn, (q.QConv2d, q.QDense))
        vth = np.asarray(node.op.vth).reshape(-1)
        rows = np.abs(np.asarray(syn.weight, np.int64)).reshape(len(vth), -1).max(1)
        mixed = bool((syn.weight < 0).any() and (syn.weight > 0).any())
        assert vth.min() >= 2**14 and len(np.unique(vth)) > 1
        coarser = vth < vth.max()
        assert (rows[coarser] == mantissa_max(L2.weights, mixed)).all()
        full += int(coarser.sum())
    assert full > 0
    g1 = quantize(lenet_graphs["rate"], L1, input_absmax=1.0)
    assert all(np.ndim(n.op.vth_mant) == 0 for n in g1.nodes if isinstance(n.op, q.QIFNeurons))


def test_fs_relu_tables_become_exact_powers_of_two(lenet_graphs):
    g = quantize(lenet_graphs["fs"], L2, input_absmax=1.0)
    pops = [n.op for n in g.nodes if isinstance(n.op, q.QFewSpikeNeurons)]
    assert len(pops) == 3
    for op in pops:
        K = op.K
        np.testing.assert_array_equal(op.d, 2 ** np.arange(K - 1, -1, -1))
        np.testing.assert_array_equal(op.T, op.h)
        m = int(np.log2(op.T[-1]))
        np.testing.assert_array_equal(op.T, 2 ** (m + np.arange(K - 1, -1, -1)))
        # the float table is the same quantizer: T(t) = state_scale * T_int(t) exactly
        assert op.state_scale * op.T[-1] == pytest.approx(op.unit, rel=1e-12)


@pytest.mark.parametrize("target", [L1, L2], ids=["loihi1", "loihi2"])
def test_amos_circuits_get_the_fs_integer_tables(lenet_graphs, target):
    """AMOS is the FS table unrolled in space: the same graph quantizes to the same integers
    (weights, exponents, biases, h/d/T tables), only the population op differs."""
    gf = quantize(lenet_graphs["fs"], target, input_absmax=1.0)
    ga = quantize(lenet_graphs["amos"], target, input_absmax=1.0)
    assert len(gf.nodes) == len(ga.nodes)
    pops = 0
    for f, a in zip(gf.nodes, ga.nodes):
        assert f.name == a.name
        if type(f.op) is q.QFewSpikeNeurons:
            assert type(a.op) is q.QAmosNeurons and isinstance(a.op, neurons.AmosNeurons)
            pops += 1
        else:
            assert type(f.op) is type(a.op)
        for fld in dataclasses.fields(f.op):
            x, y = getattr(f.op, fld.name), getattr(a.op, fld.name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and np.array_equal(x, y), (f.name, fld.name)
            else:
                assert x == y, (f.name, fld.name)
    assert pops == 3


def test_quantized_graph_round_trips_through_serialization(lenet_graphs):
    g = quantize(lenet_graphs["rate"], L1, input_absmax=1.0)
    doc, arrays = graph_to_json(g)
    back = graph_from_json(doc, arrays)
    assert str(back) == str(g)
    for a, b in zip(g.nodes, back.nodes):
        assert type(a.op) is type(b.op)
        for f in dataclasses.fields(a.op):
            x, y = getattr(a.op, f.name), getattr(b.op, f.name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and np.array_equal(x, y)
            else:
                assert x == y


def test_skip_connections_become_one_to_one_synapses():
    calib = np.load(EXAMPLES / "resnet" / "calib.npz")["x"]
    g = compile_graph(str(EXAMPLES / "resnet" / "resnet.onnx"), calib,
                      CompileOptions(method="fs")).graph
    qg, report = quantize_with_report(g, L2, input_absmax=1.0)
    skips = [n for n in qg.nodes if isinstance(n.op, q.QScale)]
    assert [n.name for n in skips] == ["/block1/Add_output_0/skip1"]
    assert skips[0].op.weight > 0 and synapse_bits(skips[0]) == skips[0].op.weight_bits
    assert any(isinstance(n.op, q.GlobalSumPool) for n in qg.nodes)
    assert report["weights_saturated"] == 0


def _fs_graph(table: fs_params.FSTable):
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    h = b.add("fc", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), x)
    p = b.add("pop", neurons.FewSpikeNeurons(table.h, table.d, table.T, "sigmoid"), h)
    y = b.add("out", ops.Dense(np.ones((2, 4), np.float32), np.zeros(2, np.float32)), p)
    return verify(b.build([y]))


def test_general_fs_table_needs_graded_spikes():
    g = _fs_graph(fs_params.SIGMOID)
    qg = quantize(g, L2)  # graded payloads: d(t) as 16-bit integers
    pop = next(n.op for n in qg.nodes if isinstance(n.op, q.QFewSpikeNeurons))
    # the unit spans the table's whole output range sum |d(t)| in 15 bits (to rounding)
    assert pop.payload_bits == 16 and abs(np.abs(pop.d).sum() - (2**15 - 1)) <= pop.K / 2
    assert np.abs(pop.d * pop.unit - fs_params.SIGMOID.d).max() <= pop.unit / 2
    with pytest.raises(NotQuantizable, match="binary spikes only"):
        quantize(g, L1)


def test_errors_name_the_layer_and_the_reason():
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    h = b.add("fc1", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), x)
    y = b.add("fc2", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), h)
    with pytest.raises(NotQuantizable, match="layer 'fc2'.*two synaptic layers"):
        quantize(verify(b.build([y])), L2)
    with pytest.raises(SnncError, match="not fixed-point"):
        quantize(verify(b.build([y])), load_target("cpu"))
    assert issubclass(NotQuantizable, SnncError)
