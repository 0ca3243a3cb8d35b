"""Payload units of general FS tables on graded-spike targets (quantize_pass.payload_headroom):
where the synapses reading a population's 16-bit payloads sit at the smallest weight exponent
with mantissa bits to spare, the unit coarsens by those bits, so the weights use the whole
mantissa; FS-ReLU payloads (exact powers of two) never change."""

from __future__ import annotations

import numpy as np
import torch
from support.model_builders import compile_on_random_inputs, export_module
from torch import nn

from snnc.compiler.quantize import mantissa_max, quantize_pass
from snnc.ir import quantized as q
from snnc.targets import load_target

L2 = load_target("loihi2")


def _gelu_cnn() -> nn.Module:
    """The architecture table's gelu_tanh_cnn: its second conv's weights underflowed (7 of 8
    mantissa bits at the smallest exponent) with the table's finest unit."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        act = nn.GELU(approximate="tanh")
        return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), act, nn.MaxPool2d(2),
                             nn.Conv2d(6, 8, 3, padding=1), nn.GELU(approximate="tanh"),
                             nn.Flatten(), nn.Linear(8 * 7 * 7, 10))


def _synapses_after_tables(graph):
    """(synapse op, population op) for each QConv2d / QDense reading a general FS table's
    payloads through routing and pools."""
    producers = graph.producers()
    out = []
    for n in graph.nodes:
        if not isinstance(n.op, (q.QConv2d, q.QDense)):
            continue
        src = producers.get(n.inputs[0].name)
        while src is not None and not isinstance(src.op, q.QFewSpikeNeurons):
            src = producers.get(src.inputs[0].name) if src.inputs else None
        if src is not None:
            out.append((n.op, src.op))
    return out


def test_underflowing_weights_get_a_coarser_payload_unit(tmp_path, monkeypatch):
    model = export_module(_gelu_cnn(), torch.rand(1, 1, 14, 14))
    art, _ = compile_on_random_inputs(model, (1, 14, 14), tmp_path, "gelu", "fs", "loihi2",
                                      n=200)
    pairs = _synapses_after_tables(art.graph)
    assert len(pairs) == 2  # the second conv and the readout
    for syn, pop in pairs:
        mixed = bool((syn.weight < 0).any() and (syn.weight > 0).any())
        if syn.weight_exp == L2.weights.exp_min:  # no mantissa bit left unused
            assert np.abs(syn.weight).max() * 2 > mantissa_max(L2.weights, mixed)
    # without the coarsening, the same network's second conv leaves a bit unused
    monkeypatch.setattr(quantize_pass, "payload_headroom", lambda *a: {})
    fine, _ = compile_on_random_inputs(model, (1, 14, 14), tmp_path, "gelu-fine", "fs",
                                       "loihi2", n=200)
    (conv, pop), _ = _synapses_after_tables(fine.graph)
    (conv2, pop2), _ = _synapses_after_tables(art.graph)
    assert conv.weight_exp == conv2.weight_exp == L2.weights.exp_min
    assert np.abs(conv.weight).max() * 2 <= mantissa_max(L2.weights, True)
    assert pop2.unit == 2 * pop.unit  # one bit coarser, payloads one bit narrower
    assert np.abs(pop2.d).max() < np.abs(pop.d).max()


def test_relu_payloads_stay_powers_of_two(tmp_path):
    """FS-ReLU payloads are the exact K-bit code: never coarsened."""
    from support.examples import compiled_example

    import snnc

    art = snnc.load(compiled_example("lenet", "loihi2", "fs"))
    for n in art.graph.nodes:
        if isinstance(n.op, q.QFewSpikeNeurons):
            np.testing.assert_array_equal(n.op.d, 2 ** np.arange(n.op.K - 1, -1, -1))
