"""The 2-D form of 1-D networks that the exporters write (snnc/backends/planar.py)."""

from __future__ import annotations

import numpy as np
from support.export_models import build

from snnc.backends.planar import as_planar, is_one_dimensional, planar_shape
from snnc.ir import GraphBuilder, TensorType, ops


def test_conv1d_network_becomes_two_dimensional(tmp_path):
    art, _ = build(tmp_path, "conv1d")
    g = art.graph
    flat = as_planar(g)
    assert is_one_dimensional(g) and not is_one_dimensional(flat)
    assert flat.inputs[0].shape == (3, 1, 16)
    assert all(len(n.output.shape) != 2 for n in flat.nodes)
    kept = [n.name for n in g.nodes if not (isinstance(n.op, ops.Reshape)
                                            and len(n.op.shape) > 1)]
    assert [n.name for n in flat.nodes] == kept  # only the height reshapes go
    for n in flat.nodes:  # every input is produced before it is read
        assert all(v.name in {m.name for m in flat.nodes[:flat.nodes.index(n)]}
                   or v in flat.inputs for v in n.inputs)


def test_two_dimensional_networks_are_untouched(tmp_path):
    for kind in ("mlp", "cnn"):
        g = build(tmp_path, kind)[0].graph
        assert as_planar(g) is g


def test_planar_shape():
    assert planar_shape((4, 9)) == (4, 1, 9)
    assert planar_shape((4, 2, 9)) == (4, 2, 9)
    assert planar_shape((7,)) == (7,)


def test_a_graph_whose_ops_need_the_one_dimensional_shape_is_left_as_it_is():
    """A transpose of the (C, L) axes has no planar meaning: the graph stays, and the
    exporter names the reshapes it cannot express."""
    b = GraphBuilder()
    x = b.input("x", TensorType((3, 16)))
    h = b.add("h2d", ops.Reshape((3, 1, 16)), x)
    h = b.add("conv", ops.Conv2d(np.ones((4, 3, 1, 3), np.float32), np.zeros(4, np.float32)), h)
    h = b.add("h1d", ops.Reshape((4, 14)), h)
    y = b.add("t", ops.Transpose((1, 0)), h)
    g = b.build([y])
    assert is_one_dimensional(g) and as_planar(g) is g
