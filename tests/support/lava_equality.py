"""Lava against the bit-exact reference simulator, spike for spike, on a few samples: the check
the example tests (tests/examples) run on every shipped model."""

from __future__ import annotations

import numpy as np

import snnc
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.ir import quantized as q

__all__ = ["assert_example_on_lava", "assert_lava_spike_for_spike"]


def assert_lava_spike_for_spike(artifact, x: np.ndarray, population_op: type,
                                populations: int) -> None:
    """Every ``population_op`` population's spike trains (``populations`` of them, each firing)
    and the readout of a Lava run on ``x`` equal the reference simulator's."""
    res = run(artifact, x)
    ref_out, ref = reference_spikes(artifact.graph, x)
    pops = [n.name for n in artifact.graph.nodes if isinstance(n.op, population_op)]
    assert len(pops) == populations and sorted(res.spikes) == sorted(pops)
    for name in pops:
        assert ref[name].sum() > 0, name  # something to compare
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    assert res.outputs.shape == ref_out.shape == (len(x), *artifact.graph.outputs[0].shape)
    np.testing.assert_array_equal(res.outputs, ref_out)


def assert_example_on_lava(example, model: str, method: str, fs_artifact, tmp_path,
                           populations: int) -> None:
    """A shipped example (``example``/``model``, its calib.npz and test.npz) on loihi2, fs (the
    given artifact) or rate (compiled here): 2 test samples spike for spike on Lava."""
    art = fs_artifact if method == "fs" else snnc.compile(
        example / model, method="rate", target="loihi2", calib=example / "calib.npz",
        out=tmp_path / "rate.snnc")
    population = q.QFewSpikeNeurons if method == "fs" else q.QIFNeurons
    x = np.load(example / "test.npz")["x"][:2]
    assert_lava_spike_for_spike(art, x, population, populations=populations)
