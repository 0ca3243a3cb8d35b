"""IR: verifier (negative cases with messages), printer goldens, serialization round trip,
interpreter error context, and rule-table coverage."""

from __future__ import annotations

import re

import numpy as np
import pytest

from snnc.errors import IRVerificationError
from snnc.ir import GraphBuilder, TensorType, Value, format_graph, ops, verify
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES, run_ann
from snnc.ir.serialize import graph_from_json, graph_to_json, load_graph, save_graph


def small_graph():
    rng = np.random.default_rng(0)
    b = GraphBuilder("net")
    x = b.input("x", TensorType((1, 6, 6)))
    c = b.add("conv", ops.Conv2d(rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
                                 np.zeros(2, np.float32), padding=(1, 1, 1, 1)), x)
    r = b.add("relu", ops.Activation("relu"), c)
    p = b.add("pool", ops.MaxPool2d((2, 2), (2, 2)), r)
    f = b.add("flat", ops.Reshape((18,)), p)
    d = b.add("fc", ops.Dense(rng.standard_normal((3, 18)).astype(np.float32),
                              np.ones(3, np.float32)), f)
    return b.build([d])


def test_printer_golden():
    assert format_graph(small_graph()) == """\
graph net(%x : f32[1,6,6]) {
  %conv : f32[2,6,6] = conv2d(%x) {weight=f32[2,1,3,3], bias=f32[0.,0.], stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1}
  %relu : f32[2,6,6] = activation(%conv) {kind='relu', alpha=0.0, beta=0.0, lo=-inf, hi=inf}
  %pool : f32[2,3,3] = max_pool2d(%relu) {kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0), dilation=(1, 1), ceil_mode=False}
  %flat : f32[18] = reshape(%pool) {shape=(18,)}
  %fc : f32[3] = dense(%flat) {weight=f32[3,18], bias=f32[1.,1.,1.]}
  return %fc
}"""


def test_verify_accepts_valid_graph():
    g = small_graph()
    assert verify(g) is g


def _corrupt(g, index, **changes):
    nodes = list(g.nodes)
    nodes[index] = nodes[index].replace(**changes)
    return g.replace(nodes=tuple(nodes))


def test_verify_wrong_declared_shape():
    g = small_graph()
    bad = _corrupt(g, 1, output=Value("relu", TensorType((2, 6, 5))))
    with pytest.raises(IRVerificationError, match=r"node %relu \(activation\): declares shape "
                                                  r"\(2, 6, 5\), shape rule gives \(2, 6, 6\)"):
        verify(bad)


def test_verify_use_before_definition():
    g = small_graph()
    nodes = list(g.nodes)
    nodes[1], nodes[2] = nodes[2], nodes[1]
    with pytest.raises(IRVerificationError, match=r"node %pool \(max_pool2d\): uses %relu before "
                                                  r"it is defined"):
        verify(g.replace(nodes=tuple(nodes)))


def test_verify_error_shows_ir_window():
    g = small_graph()
    with pytest.raises(IRVerificationError) as e:
        verify(_corrupt(g, 1, output=Value("relu", TensorType((9,)))))
    text = str(e.value)
    assert re.search(r"^>>%relu : f32\[9\] = activation", text, re.M), text


def test_verify_arity_and_dead_nodes_and_redefinition():
    g = small_graph()
    with pytest.raises(IRVerificationError, match="takes 1 inputs, got 2"):
        verify(_corrupt(g, 1, inputs=(g.nodes[0].output, g.nodes[0].output)))
    dead = Node(ops.Activation("tanh"), (g.inputs[0],), Value("unused", g.inputs[0].type))
    with pytest.raises(IRVerificationError, match="dead node"):
        verify(g.replace(nodes=g.nodes + (dead,)))
    twice = Node(ops.Identity(), (g.nodes[0].output,), Value("conv", g.nodes[0].output.type))
    with pytest.raises(IRVerificationError, match="redefines %conv"):
        verify(g.replace(nodes=g.nodes[:1] + (twice,) + g.nodes[1:]))


def test_verify_type_mismatch_of_use():
    g = small_graph()
    wrong = Value("conv", TensorType((2, 6, 6), "float64"))
    with pytest.raises(IRVerificationError, match="uses %conv as f64"):
        verify(_corrupt(g, 1, inputs=(wrong,)))


def test_verify_undefined_output():
    g = small_graph()
    with pytest.raises(IRVerificationError, match="graph output %ghost is never defined"):
        verify(g.replace(outputs=(Value("ghost", TensorType((3,))),)))


def test_serialize_round_trip(tmp_path):
    g = small_graph()
    doc, arrays = graph_to_json(g)
    back = graph_from_json(doc, arrays)
    assert format_graph(back) == format_graph(g)
    x = np.random.default_rng(1).standard_normal((4, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(run_ann(back, x)[0], run_ann(g, x)[0])
    save_graph(g, tmp_path / "g.json")
    first = (tmp_path / "g.npz").read_bytes()
    save_graph(load_graph(tmp_path / "g.json"), tmp_path / "g.json")
    assert (tmp_path / "g.npz").read_bytes() == first, "saving is not deterministic"
    assert format_graph(load_graph(tmp_path / "g.json")) == format_graph(g)


def test_serialize_infinite_floats():
    b = GraphBuilder()
    x = b.input("x", TensorType((3,)))
    g = b.build([b.add("c", ops.Activation("clip", lo=0.0, hi=float("inf")), x)])
    back = graph_from_json(*graph_to_json(g))
    assert back.nodes[0].op.hi == float("inf")


def test_every_op_has_an_interpreter_rule():
    missing = [cls.__name__ for cls in ops.ALL_OPS if cls not in ANN_RULES]
    assert not missing, missing


def test_interpreter_error_names_node():
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    g = b.build([b.add("fc", ops.Dense(np.ones((2, 4), np.float32), np.zeros(2, np.float32)), x)])
    with pytest.raises(RuntimeError, match=r"while executing %fc \(Dense\)"):
        run_ann(g, np.ones((1, 5), np.float32))


def test_activation_kind_is_checked():
    with pytest.raises(ValueError, match="unknown activation 'celu'"):
        ops.Activation("celu")
