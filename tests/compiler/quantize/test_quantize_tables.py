"""quantize's per-op tables: every op class is lowered or refused (never both), the payload
rules and the lowering cover the same classes, every population that integrates synaptic input
has a scaling rule, and refusals keep the messages users see word for word."""

from __future__ import annotations

import re

import numpy as np
import pytest

import snnc.ir.quantized  # noqa: F401  (registers the quantized op classes)
from snnc.compiler.quantize import (
    LOWERING,
    PAYLOAD_RULES,
    REFUSED,
    SCALES,
    SENDS,
    NotQuantizable,
    quantize,
)
from snnc.ir import GraphBuilder, TensorType, neurons, ops, verify
from snnc.ir import quantized as q
from snnc.ir.serialize import OP_CLASSES
from snnc.targets import load_target

L2 = load_target("loihi2")


def test_every_op_class_is_lowered_or_refused():
    classes = set(OP_CLASSES.values())
    assert classes <= set(LOWERING) | set(REFUSED), classes - set(LOWERING) - set(REFUSED)
    assert not set(LOWERING) & set(REFUSED)
    assert set(PAYLOAD_RULES) == set(LOWERING)
    assert set(SCALES) == set(SENDS) <= set(LOWERING)


def test_slice_is_refused_although_routing():
    """The IR calls Slice routing, but quantize never saw one (split_fanin adds them to the
    integer graph): it stays refused."""
    assert ops.Slice.role is ops.Role.ROUTING
    assert REFUSED[ops.Slice] == "not yet quantizable"
    assert ops.Slice not in LOWERING


def _graph(mid_name: str, mid_op, n_in: int, mid_out: int):
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    h = b.add("fc", ops.Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), x)
    p = b.add("pop", neurons.IFNeurons(1.0, 1.0, 8), h)
    m = b.add(mid_name, mid_op, *[p] * n_in)
    y = b.add("out", ops.Dense(np.ones((2, mid_out), np.float32), np.zeros(2, np.float32)), m)
    return verify(b.build([y]))


@pytest.mark.parametrize("name,op,n_in,out,message", [
    ("/se/Mul_output_0", ops.Mul(), 2, 4,
     "layer '/se/Mul_output_0' (mul): not yet quantizable"),
    ("sl", ops.Slice(0, 2), 1, 2, "layer 'sl' (slice): not yet quantizable"),
    ("relay", neurons.PartialSumRelay(), 1, 4,
     ("layer 'relay' (partial_sum_relay): PartialSumRelay is not yet quantizable (fixed point "
     "supports rate (IF), fs, amos and ttfs populations)")),
    ("qpop", q.QIFNeurons(1.0, 1.0, 8, 0.0, vth_mant=1, vth_shift=6,
                          bias_mant=np.zeros(4, np.int32), bias_exp=0), 1, 4,
     ("layer 'qpop' (qifneurons): QIFNeurons is not yet quantizable (fixed point supports "
     "rate (IF), fs, amos and ttfs populations)")),
])
def test_refusals_name_the_layer_word_for_word(name, op, n_in, out, message):
    with pytest.raises(NotQuantizable, match=f"^{re.escape(message)}$"):
        quantize(_graph(name, op, n_in, out), L2)
