"""Residual NIR exports run in nirtorch's depth-first GraphExecutor (what sinabs and norse
load files with) in an order where every node runs after its parents: skip edges listed after
the branch they skip, a projection shortcut guided by a zero-weight node
(snnc/backends/nir_export/order.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.nir_readers import GRAPH_EXECUTOR, try_reader

from snnc.api import compile_model, export_artifact
from snnc.backends.nir_export.order import depth_first_order, early_joins
from snnc.backends.reference.simulator import simulate

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

STEPS = 16


class TwoBlocks(torch.nn.Module):
    """An identity-shortcut block, an average pool, a projection-shortcut block."""

    def __init__(self) -> None:
        super().__init__()
        c = torch.nn.Conv2d
        self.stem, self.a1, self.b1 = c(1, 4, 3, padding=1), c(4, 4, 3, padding=1), \
            c(4, 4, 3, padding=1)
        self.proj, self.a2, self.b2 = c(4, 6, 1, stride=2), c(4, 6, 3, stride=2, padding=1), \
            c(6, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.nn.functional.avg_pool2d(torch.relu(self.b1(torch.relu(self.a1(h))) + h), 2)
        h = torch.relu(self.b2(torch.relu(self.a2(h))) + self.proj(h))
        return self.fc(h.flatten(1))


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("residual")
    torch.manual_seed(0)
    x = torch.rand(12, 1, 8, 8)
    torch.onnx.export(TwoBlocks().eval(), x[:1], str(tmp / "r.onnx"), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}})
    np.savez(tmp / "calib.npz", x=x.numpy())
    art = compile_model(tmp / "r.onnx", method="rate", calib=tmp / "calib.npz",
                        timesteps=STEPS, out=tmp / "r.snnc")
    path = export_artifact(art, "nir", tmp / "r.nir")
    return path, x.numpy(), simulate(art.graph, x.numpy(), device="cpu").outputs[0]


def test_depth_first_walk_is_a_topological_order(residual):
    g = nir.read(str(residual[0]))
    order = depth_first_order(g.edges)
    assert early_joins(g.edges) == [] and order[-1] == "output", order
    assert set(order) == set(g.nodes)
    guides = [n for n in g.nodes if n.endswith("_order")]
    assert len(guides) == 1 and not np.any(g.nodes[guides[0]].weight)  # the projection block


def test_skip_connection_is_one_edge_from_the_spikes(residual):
    """The identity shortcut needs no scaling node: the join's threshold carries the scale."""
    g = nir.read(str(residual[0]))
    assert not [n for n in g.nodes if n.endswith("_scale")], list(g.nodes)
    ifs = [n for n, node in g.nodes.items() if isinstance(node, nir.IF)]
    assert any(src in ifs and dst in ifs for src, dst in g.edges), g.edges


def test_graph_executor_runs_the_residual_file_like_the_fx_reader(residual):
    path, x, ref = residual
    fx = try_reader("nirtorch", path, x, STEPS)
    dfs = try_reader(GRAPH_EXECUTOR, path, x, STEPS)
    assert fx.runs and dfs.runs, (fx.error, dfs.error)
    np.testing.assert_allclose(dfs.outputs, fx.outputs, rtol=1e-5, atol=1e-5)
    assert fx.agreement(ref) == 1.0


@pytest.mark.parametrize("reader", ["sinabs", "norse"])
def test_residual_file_runs_in_sinabs_and_norse(residual, reader):
    path, x, _ = residual
    out = try_reader(reader, path, x, STEPS, batch=8)
    assert out.loads and out.runs, out.error
