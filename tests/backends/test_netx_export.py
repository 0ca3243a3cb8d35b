"""netx export: the file loads in lava-dl's ``netx.hdf5.Network``, runs in Lava (fixed_pt), and its
spikes and readout equal snnc's numpy model of the same semantics (simulate_netx) bit for bit;
that model agrees with snnc's float reference; unsupported networks fail with one clear line."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from support.export_models import TIMESTEPS, assert_one_line_error, build, compile_rate_lenet, snnc

from snnc.api import export_artifact
from snnc.backends.netx_export import INPUT_MESSAGE_BITS, netx_layers, simulate_netx
from snnc.backends.planar import as_planar
from snnc.backends.reference.simulator import simulate
from snnc.errors import BackendError


def run_lava(path, x: np.ndarray, steps: int):
    """Run the netx file in Lava on one sample: per-layer spikes (steps, *snnc shape) and the
    readout layer's v."""
    netx = pytest.importorskip("lava.lib.dl.netx")
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    with h5py.File(path, "r") as f:
        input_exp = int(f["snnc/input_exp"][()])
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=INPUT_MESSAGE_BITS)
    g = np.rint(x * 2.0 ** input_exp).astype(np.int32)
    if g.ndim == 3:
        g = g.transpose(2, 1, 0)  # snnc (C, H, W) -> Lava (W, H, C)
    src = RingBuffer(data=np.repeat(g[..., None], steps, axis=-1))
    src.s_out.connect(net.inp)
    monitors = []
    for layer in net.layers:
        m = Monitor()
        m.probe(layer.neuron.s_out, steps)
        monitors.append(m)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        spikes = [next(iter(next(iter(m.get_data().values())).values())) for m in monitors]
        v = net.layers[-1].neuron.v.get()
    finally:
        net.stop()
    spikes = [s.transpose(0, 3, 2, 1) if s.ndim == 4 else s for s in spikes]  # back to CHW
    return [s.astype(bool) for s in spikes], v


@pytest.mark.parametrize("kind", ["mlp", "cnn", "conv1d"])
def test_netx_file_runs_in_lava_bit_exact(tmp_path, kind):
    art, x = build(tmp_path, kind)
    path = export_artifact(art, "netx", tmp_path / "model.net")
    layers = netx_layers(art.graph)
    steps = TIMESTEPS + len(layers)
    ref_spikes, ref_v = simulate_netx(art.graph, x[:2], steps)
    x = x.reshape(len(x), *as_planar(art.graph).inputs[0].shape)  # conv1d: (C, 1, L)
    for i in range(2):
        spikes, v = run_lava(path, x[i], steps)
        assert len(spikes) == len(layers)
        for k, (got, want) in enumerate(zip(spikes, ref_spikes)):
            assert np.array_equal(got, want[:, i]), (i, k, got.sum(), want[:, i].sum())
        assert np.array_equal(v.astype(np.int64), ref_v[i])
    assert sum(s.sum() for s in ref_spikes[:-1]) > 0  # the hidden layers do spike


@pytest.mark.parametrize("kind", ["mlp", "cnn", "conv1d"])
def test_netx_semantics_track_the_float_reference(tmp_path, kind):
    art, x = build(tmp_path, kind)
    layers = netx_layers(art.graph)
    _, v = simulate_netx(art.graph, x, TIMESTEPS + len(layers))
    readout = v / layers[-1]["scale"]
    ref = simulate(art.graph, x, device="cpu").outputs[0] * TIMESTEPS
    agree = float(np.mean(readout.argmax(1) == ref.argmax(1)))
    assert agree >= 0.75, agree


def test_lenet_maxpool_is_refused_by_cli(tmp_path):
    art = compile_rate_lenet(tmp_path)
    out = tmp_path / "lenet.net"
    assert_one_line_error(snnc("export", str(art), "--format", "netx", "-o", str(out)),
                          "netx cannot express 2 layer(s)", "/MaxPool_output_0",
                          "/MaxPool_1_output_0")
    assert not out.exists() and list(tmp_path.glob(".lenet.net*")) == []


def test_non_rate_artifact_is_refused_by_cli(tmp_path):
    art, _ = build(tmp_path, "mlp", method="fs")
    out = tmp_path / "m.net"
    assert_one_line_error(snnc("export", str(art.path), "--format", "netx", "-o", str(out)),
                          "rate", "fs")
    assert not out.exists()


def test_unknown_format(tmp_path):
    art, _ = build(tmp_path, "mlp")
    with pytest.raises(Exception, match="unknown export format"):
        export_artifact(art, "onnx", tmp_path / "m.x")
    assert_one_line_error(snnc("export", str(art.path), "--format", "onnx", "-o",
                               str(tmp_path / "m.x")), "unknown export format")
    assert not (tmp_path / "m.x").exists()


def test_error_lists_every_problem(tmp_path):
    art, _ = build(tmp_path, "cnn")
    from snnc.ir import ops

    bad = art.graph.replace(nodes=tuple(
        n.replace(op=ops.AvgPool2d((1, 1), (1, 1))) if isinstance(n.op, ops.Reshape) else n
        for n in art.graph.nodes))
    with pytest.raises(BackendError, match="AvgPool2d"):
        netx_layers(bad)
