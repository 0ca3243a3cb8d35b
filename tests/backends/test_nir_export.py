"""NIR export: round trip through nir.write / nir.read with identical arrays, the read-back
graph run with the metadata's semantics equals snnc's reference simulator, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from support.export_models import TIMESTEPS, assert_one_line_error, build, compile_rate_lenet, snnc
from snnc.api import export_artifact
from snnc.backends.nir_export import nir_node_name
from snnc.backends.reference.simulator import simulate
from snnc.errors import BackendError
from snnc.ir import neurons, ops

nir = pytest.importorskip("nir")


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def exported(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    art, x = build(tmp, request.param)
    path = export_artifact(art, "nir", tmp / "model.nir")
    return art, x, nir.read(str(path))


def test_round_trip_identical_weights(exported):
    art, _, g = exported
    amp = 1.0  # amplitude of the IF population feeding the next synapse (folded into W)
    checked = 0
    for n in art.graph.nodes:
        node = g.nodes[nir_node_name(n.name)]
        if isinstance(n.op, (ops.Dense, ops.Conv2d)):
            expected = (n.op.weight * amp).astype(np.float32)
            assert np.array_equal(node.weight, expected), n.name
            assert np.array_equal(node.bias, n.op.bias.astype(np.float32)), n.name
            checked += 1
        elif isinstance(n.op, neurons.IFNeurons):
            assert isinstance(node, nir.IF)
            assert np.array_equal(node.v_threshold, np.full(n.output.shape, n.op.threshold,
                                                            np.float32))
            assert np.array_equal(node.r, np.ones(n.output.shape, np.float32))
            amp = n.op.amplitude
    assert checked >= 2
    assert g.metadata["dt"] == 1.0 and g.metadata["reset"] == "subtract"
    assert int(g.metadata["timesteps"]) == TIMESTEPS
    assert np.array_equal(g.metadata["v_init"], [0.5] * sum(
        isinstance(n.op, neurons.IFNeurons) for n in art.graph.nodes))
    assert isinstance(g.nodes["input"], nir.Input) and isinstance(g.nodes["output"], nir.Output)


def run_nir(g, x: np.ndarray) -> np.ndarray:
    """Run a read-back NIR chain with the semantics its metadata states: dt = 1, IF reset by
    subtraction, spike if v >= threshold, v(0) = v_init * threshold, analog input every step,
    readout = mean over the steps of the output's input."""
    order, edges = ["input"], dict(g.edges)
    while order[-1] != "output":
        order.append(edges[order[-1]])
    steps = int(g.metadata["timesteps"])
    v_init = dict(zip(g.metadata["if_nodes"].split(","), g.metadata["v_init"]))
    state = {k: None for k in v_init}
    total = 0.0
    for _ in range(steps):
        h = torch.as_tensor(x, dtype=torch.float64)
        for name in order[1:-1]:
            node = g.nodes[name]
            if isinstance(node, nir.Affine):
                h = h @ torch.as_tensor(node.weight, dtype=torch.float64).T + node.bias
            elif isinstance(node, nir.Conv2d):
                h = F.conv2d(h, torch.as_tensor(node.weight, dtype=torch.float64),
                             torch.as_tensor(node.bias, dtype=torch.float64),
                             tuple(node.stride), tuple(node.padding), tuple(node.dilation),
                             int(node.groups))
            elif isinstance(node, nir.Flatten):
                h = h.flatten(1)
            elif isinstance(node, nir.IF):
                th = torch.as_tensor(node.v_threshold, dtype=torch.float64)
                if state[name] is None:
                    state[name] = v_init[name] * th.expand_as(h).clone()
                state[name] += torch.as_tensor(node.r, dtype=torch.float64) * h
                s = (state[name] >= th).to(torch.float64)
                state[name] -= s * th
                h = s
            else:
                raise AssertionError(f"unexpected node {type(node).__name__}")
        total = total + h
    return (total / steps).numpy()


def test_read_back_graph_reproduces_reference(exported):
    art, x, g = exported
    ref = simulate(art.graph, x, dtype=torch.float64, device="cpu").outputs[0]
    got = run_nir(g, x)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-5), np.abs(got - ref).max()


def test_lenet_maxpool_is_refused_by_cli(tmp_path):
    art = compile_rate_lenet(tmp_path)
    out = tmp_path / "lenet.nir"
    line = assert_one_line_error(snnc("export", str(art), "--format", "nir", "-o", str(out)),
                                 "NIR cannot express", "/MaxPool_output_0",
                                 "/MaxPool_1_output_0", "SpikingMaxPool2d")
    assert "Traceback" not in line
    assert not out.exists() and list(tmp_path.glob(".lenet.nir*")) == []


def test_non_rate_artifact_is_refused(tmp_path):
    art, _ = build(tmp_path, "mlp", method="fs")
    with pytest.raises(BackendError, match="rate"):
        export_artifact(art, "nir", tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()


def test_cli_export_nir(tmp_path):
    art, _ = build(tmp_path, "mlp")
    out = tmp_path / "m.nir"
    proc = snnc("export", str(art.path), "--format", "nir", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    g = nir.read(str(out))
    dense = [n for n in art.graph.nodes if isinstance(n.op, ops.Dense)]
    assert np.array_equal(g.nodes[nir_node_name(dense[0].name)].weight,
                          dense[0].op.weight.astype(np.float32))
