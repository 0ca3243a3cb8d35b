"""canonicalize: structure after the pass and numerical equivalence with the input graph."""

from __future__ import annotations

import numpy as np

from snnc.compiler.passes.canonicalize import canonicalize
from snnc.ir import GraphBuilder, TensorType, ops, verify
from snnc.ir.interpret import run_ann


def _kinds(g):
    return [ops.op_name(n.op) + (f":{n.op.kind}" if isinstance(n.op, ops.Activation) else "")
            for n in g.nodes]


def test_silu_identity_bias_and_reshape_chain():
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", TensorType((2, 3, 4)))
    i = b.add("id", ops.Identity(), x)
    s = b.add("sig", ops.Activation("sigmoid"), i)
    m = b.add("mul", ops.Mul(), s, i)  # sigmoid first: both operand orders are matched
    r1 = b.add("r1", ops.Reshape((6, 4)), m)
    r2 = b.add("r2", ops.Reshape((24,)), r1)
    d = b.add("fc", ops.Dense(rng.standard_normal((5, 24)).astype(np.float32),
                              np.zeros(5, np.float32)), r2)
    c = b.add("c", ops.Constant(rng.standard_normal(5).astype(np.float32)))
    y = b.add("y", ops.Add(), d, c)
    g = verify(b.build([y]))
    out = verify(canonicalize(g))
    assert _kinds(out) == ["activation:silu", "reshape", "dense"]
    assert out.nodes[1].op.shape == (24,)
    xs = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_ann(out, xs)[0], run_ann(g, xs)[0], rtol=1e-5, atol=1e-5)


def test_shared_dense_output_keeps_its_bias():
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    d = b.add("fc", ops.Dense(np.ones((2, 4), np.float32), np.zeros(2, np.float32)), x)
    c = b.add("c", ops.Constant(np.ones(2, np.float32)))
    y1 = b.add("y1", ops.Add(), d, c)
    y2 = b.add("y2", ops.Activation("relu"), d)  # fc is used twice: no fusion
    g = verify(b.build([y1, y2]))
    assert _kinds(canonicalize(g)) == _kinds(g)


def test_no_change_is_identity():
    b = GraphBuilder()
    x = b.input("x", TensorType((4,)))
    g = b.build([b.add("r", ops.Activation("relu"), x)])
    assert canonicalize(g) is g
