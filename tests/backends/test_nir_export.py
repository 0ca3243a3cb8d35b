"""NIR export: round trip through nir.write / nir.read with identical arrays and only portable
fields, the read-back graph run with the semantics the file states equals snnc's reference
simulator (sequential, residual, concat and pooled networks), and clear errors."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.export_models import (
    TIMESTEPS,
    assert_one_line_error,
    build,
    compile_rate_lenet,
    residual_concat_model,
    snnc,
)

from snnc.api import export_artifact
from snnc.backends.nir_export import nir_node_name, write_nir
from snnc.backends.nir_export.portable import PORTABLE_FIELDS, strip_to_portable
from snnc.backends.reference.simulator import simulate
from snnc.errors import BackendError
from snnc.ir import neurons, ops

nir = pytest.importorskip("nir")


@pytest.fixture(scope="module", params=["mlp", "cnn", "rescat"])
def exported(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "rescat":
        art, x = residual_concat_model(tmp)
    else:
        art, x = build(tmp, request.param)
    path = export_artifact(art, "nir", tmp / "model.nir")
    return art, x, nir.read(str(path)), path


def test_round_trip_identical_weights(exported):
    art, _, g, _ = exported
    producers = art.graph.producers()
    amplitudes = [n.op.amplitude for n in art.graph.nodes
                  if isinstance(n.op, neurons.IFNeurons)]
    checked = 0
    for n in art.graph.nodes:
        src = producers.get(n.inputs[0].name) if n.inputs else None
        if (isinstance(n.op, (ops.Dense, ops.Conv2d)) and nir_node_name(n.name) in g.nodes
                and (src is None or isinstance(src.op, neurons.IFNeurons))):
            # the amplitude of the IF population feeding the synapse is folded into W
            amp = 1.0 if src is None else src.op.amplitude
            node = g.nodes[nir_node_name(n.name)]
            # a summand of a residual Add is brought to the scale of the spikes it meets
            k = next((k for k in (1.0, *amplitudes) if np.allclose(
                node.bias * k, n.op.bias, rtol=1e-5, atol=0)), None)
            assert k is not None, n.name
            expected = (n.op.weight * amp).astype(np.float32)
            assert np.allclose(node.weight * k, expected, rtol=1e-5, atol=1e-7), n.name
            checked += 1
        elif isinstance(n.op, neurons.IFNeurons):
            node = g.nodes[nir_node_name(n.name)]
            assert isinstance(node, nir.IF)
            # input divided by its pending scale k (1, or the amplitude of spikes summed in)
            th = np.unique(node.v_threshold)
            assert len(th) == 1 and node.v_threshold.shape == n.output.shape
            k = n.op.threshold / float(th[0])
            assert any(k == pytest.approx(a, rel=1e-6) for a in (1.0, *amplitudes)), k
            assert np.array_equal(node.r, np.ones(n.output.shape, np.float32))
            assert node.metadata["reset"] == "subtract"
            assert node.metadata["v_init"] == pytest.approx(n.op.v_init * n.op.threshold / k)
    assert checked >= 1
    assert g.metadata["dt"] == 1.0 and g.metadata["reset"] == "subtract"
    assert int(g.metadata["timesteps"]) == TIMESTEPS
    assert np.array_equal(g.metadata["v_init"], [0.5] * sum(
        isinstance(n.op, neurons.IFNeurons) for n in art.graph.nodes))
    assert isinstance(g.nodes["input"], nir.Input) and isinstance(g.nodes["output"], nir.Output)


def test_names_and_fields_are_portable(exported):
    """No '.' or '/' in node names; each node holds only the fields nir 1.0.4 reads (no IF
    v_reset); nodes come in creation order, Input first, then a topological order."""
    _, _, g, path = exported
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) for name in g.nodes), list(g.nodes)
    with h5py.File(path, "r") as f:
        for name, group in f["node/nodes"].items():
            kind = group["type"][()].decode()
            assert set(group) <= PORTABLE_FIELDS[kind], (name, set(group))
    order = list(g.nodes)
    assert order[0] == "input" and order[-1] == "output"
    assert all(order.index(a) < order.index(b) for a, b in g.edges)


def test_strip_removes_fields_old_nir_rejects(tmp_path):
    """A field a newer nir writes (IF.v_reset) is removed, and nir 1.0.4 reads the file."""
    art, _ = build(tmp_path, "mlp")
    path = tmp_path / "m.nir"
    write_nir(art.graph, path)
    ifs = [k for k, n in nir.read(str(path)).nodes.items() if isinstance(n, nir.IF)]
    with h5py.File(path, "r+") as f:
        f[f"node/nodes/{ifs[0]}"].create_dataset("v_reset", data=np.zeros(16, np.float32))
    assert strip_to_portable(path) == [f"{ifs[0]}.v_reset"]
    assert isinstance(nir.read(str(path)).nodes[ifs[0]], nir.IF)


def _topological(g) -> list[str]:
    order, done = [], set()
    while len(order) < len(g.nodes):
        for name in g.nodes:
            if name not in done and all(a in done for a, b in g.edges if b == name):
                order.append(name)
                done.add(name)
    return order


def _apply(node, h: torch.Tensor) -> torch.Tensor:
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    if isinstance(node, nir.Affine):
        return h @ t(node.weight).T + t(node.bias)
    if isinstance(node, nir.Conv2d):
        return F.conv2d(h, t(node.weight), t(node.bias), tuple(node.stride),
                        tuple(node.padding), tuple(node.dilation), int(node.groups))
    if isinstance(node, nir.Flatten):  # dims per sample: shift non-negative ones by the batch
        return h.flatten(*(int(d) + 1 if d >= 0 else int(d)
                           for d in (node.start_dim, node.end_dim)))
    if isinstance(node, nir.SumPool2d):
        k = tuple(int(v) for v in node.kernel_size)
        return F.avg_pool2d(h, k, tuple(int(v) for v in node.stride)) * np.prod(k)
    raise AssertionError(f"unexpected node {type(node).__name__}")


def run_nir(g, x: np.ndarray) -> np.ndarray:
    """Run a read-back NIR graph with the semantics the file states: every node sums its input
    edges; dt = 1; IF: v += r I, spike if v >= threshold, v -= threshold on a spike, v(0) =
    node metadata v_init; analog input every step; readout = mean of the output's input."""
    order = _topological(g)
    inputs = {name: [a for a, b in g.edges if b == name] for name in order}
    steps = int(g.metadata["timesteps"])
    state, total = {}, 0.0
    for _ in range(steps):
        out = {"input": torch.as_tensor(x, dtype=torch.float64)}
        for name in order[1:]:
            h = sum(out[a] for a in inputs[name])
            node = g.nodes[name]
            if isinstance(node, nir.Output):
                out[name] = h
            elif isinstance(node, nir.IF):
                th = torch.as_tensor(node.v_threshold, dtype=torch.float64)
                v = state.get(name, torch.full_like(h, float(node.metadata["v_init"])))
                v = v + torch.as_tensor(node.r, dtype=torch.float64) * h
                s = (v >= th).to(torch.float64)
                state[name], out[name] = v - s * th, s
            else:
                out[name] = _apply(node, h)
        total = total + out["output"]
    return (total / steps).numpy()


def test_read_back_graph_reproduces_reference(exported):
    art, x, g, _ = exported
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


def test_every_inexpressible_layer_is_named_in_one_error():
    """A concat feeding a pool, a max-pool gate, a constant and a broadcasting add: one
    BackendError naming the four layers."""
    from snnc.backends.nir_export import to_nir
    from snnc.ir import GraphBuilder, TensorType

    b = GraphBuilder()
    x = b.input("x", TensorType((2, 4, 4)))
    s1 = b.add("s1", neurons.IFNeurons(threshold=1.0, amplitude=1.0, timesteps=4), x)
    s2 = b.add("s2", neurons.IFNeurons(threshold=1.0, amplitude=1.0, timesteps=4), x)
    cat = b.add("cat", ops.Concat(axis=0), s1, s2)
    pooled = b.add("pool", ops.AvgPool2d(kernel=(2, 2), stride=(2, 2)), cat)
    gate = b.add("gate", neurons.SpikingMaxPool2d(kernel=(2, 2), stride=(2, 2)), pooled)
    bias = b.add("bias", ops.Constant(np.ones((1, 1, 1), np.float32)))
    out = b.add("sum", ops.Add(), gate, bias)
    with pytest.raises(BackendError) as e:
        to_nir(b.build(outputs=[out]))
    msg = str(e.value)
    for part in ("'cat' (Concat): concatenation feeding 'pool' (AvgPool2d)",
                 "'gate' (SpikingMaxPool2d)", "'sum' (Add): broadcasting sum", "'bias'"):
        assert part in msg, (part, msg)
