"""Relay populations on Lava (issue 25): models with weighted layers and no activation
between them (a Dense bottleneck, conv -> conv, an average pool of a conv, a bilinear or 1-D
linear Resize before a conv, conv -> Resize -> conv) run as Lava processes spike for spike
with the bit-exact reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from support.relay_models import build, random_data

from snnc.api import compile_model
from snnc.backends.lava import run
from snnc.backends.reference.record import reference_spikes
from snnc.ir import quantized as q

pytestmark = [pytest.mark.lava, pytest.mark.slow]


@pytest.mark.parametrize("name,method", [("bottleneck", "fs"), ("conv_conv", "rate"),
                                         ("conv_pool", "fs"), ("bilinear", "fs"),
                                         ("bilinear_signed", "fs"), ("linear_1d", "fs"),
                                         ("conv_chain3", "fs")])
def test_relay_spike_for_spike(tmp_path, name, method):
    onnx.save(build(name), tmp_path / "m.onnx")
    np.savez(tmp_path / "x.npz", x=random_data(name, 32))
    art = compile_model(tmp_path / "m.onnx", target="loihi2", method=method,
                        calib=tmp_path / "x.npz", timesteps=16 if method == "rate" else None,
                        out=tmp_path / "a.snnc")
    assert any("/relay" in n.name for n in art.graph.nodes)
    x = random_data(name, 2, seed=1)
    res = run(art, x)
    ref_out, ref = reference_spikes(art.graph, x)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, (q.QFewSpikeNeurons,
                                                                 q.QIFNeurons))]
    assert sorted(res.spikes) == sorted(pops)
    for p in pops:
        assert ref[p].sum() > 0, p
        np.testing.assert_array_equal(res.spikes[p], ref[p], err_msg=p)
    np.testing.assert_array_equal(res.outputs, ref_out)
