"""An imported SNN (``snnc compile model.nir``) in ``snnc report`` with time-series data
(N, T, *input_shape), and its energy: the input spike train is sent as spike messages, so the
first layer costs synaptic events per input spike, never analog MACs."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from support.cli import assert_user_error, snnc

import snnc as api
from snnc.metrics.inference import E_AC_PJ

RNG = np.random.default_rng(3)
N_IN, HIDDEN, OUT, STEPS = 12, 16, 4, 10


def _lif(n):
    return nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                   v_threshold=np.full(n, 1.0))


def _graph() -> nir.NIRGraph:
    nodes = {
        "in": nir.Input(input_type={"input": np.array([N_IN])}),
        "fc1": nir.Affine(weight=RNG.normal(0, 0.6, (HIDDEN, N_IN)), bias=np.zeros(HIDDEN)),
        "lif1": _lif(HIDDEN),
        "fc2": nir.Linear(weight=RNG.normal(0, 0.6, (OUT, HIDDEN))),
        "lif2": _lif(OUT),
        "out": nir.Output(output_type={"output": np.array([OUT])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
                                            ("fc2", "lif2"), ("lif2", "out")])


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nir_report")
    x = (RNG.random((16, STEPS, N_IN)) < 0.3).astype(np.float32)
    np.savez(tmp / "d.npz", x=x, y=RNG.integers(0, OUT, 16))
    art = api.compile(_graph(), target="loihi2", calib=tmp / "d.npz", out=tmp / "a.snnc")
    return tmp, art, x


def test_report_reads_time_series_data(imported):
    tmp, _, _ = imported
    proc = snnc("report", tmp / "a.snnc", "--data", tmp / "d.npz", "-o", tmp / "r.html",
                "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "nir" in (tmp / "r.html").read_text()


def test_report_names_a_series_of_the_wrong_shape(imported):
    tmp, _, x = imported
    np.savez(tmp / "flat.npz", x=x[:, 0])  # (N, 12): no time axis
    proc = snnc("report", tmp / "a.snnc", "--data", tmp / "flat.npz", "-o", tmp / "f.html")
    assert_user_error(proc, "flat.npz")
    assert not (tmp / "f.html").exists()


@pytest.mark.parametrize("target", ["cpu", "loihi2"])
def test_input_spikes_count_as_synaptic_events_not_macs(imported, target):
    tmp, art, x = imported
    if target == "cpu":
        art = api.compile(_graph(), target="cpu", timesteps=STEPS, out=tmp / "cpu.snnc")
    m = api.simulate(art, tmp / "d.npz")
    assert m["analog_macs_per_sample"] == 0
    layers = {layer["name"]: layer for layer in m["layers"]}
    hidden = layers["lif1"]["spikes_per_neuron"] * HIDDEN  # per sample
    input_spikes = float(x.sum()) / len(x)
    every_synapse = input_spikes * HIDDEN + hidden * OUT  # synops per spike: its fan-out
    if target == "cpu":  # float weights: none is zero; energy = synaptic events only
        assert m["synops_per_sample"] == pytest.approx(every_synapse)
        assert m["energy_uj_per_sample"] == pytest.approx(
            m["synops_per_sample"] * E_AC_PJ * 1e-6)
    else:  # weights quantized to 0 carry no synaptic event; Loihi's event energy model
        assert input_spikes * HIDDEN * 0.8 < m["synops_per_sample"] <= every_synapse
        assert set(m["energy_breakdown_uj"]) == {"synops", "neuron_updates", "spike_routing"}
