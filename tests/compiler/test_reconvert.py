"""reconvert: an artifact's stored calibration refits fs/amos codes exactly as compiling does."""

import numpy as np
import pytest

import snnc
from snnc.backends.reference.simulator import simulate
from snnc.compiler.pipeline import prepared_ann, reconvert
from snnc.data import load_dataset
from snnc.errors import SnncError

LENET = "examples/lenet"


@pytest.mark.parametrize("method", ["fs", "amos"])
def test_reconvert_equals_compile_with_timesteps(tmp_path, method):
    art = snnc.compile(f"{LENET}/lenet.onnx", method=method, calib=f"{LENET}/calib.npz",
                       timesteps=6, out=tmp_path / "a.snnc")
    x = load_dataset(f"{LENET}/test.npz", art.graph.inputs[0].shape).x[:64]
    refit = reconvert(prepared_ann(art.source_model), art.manifest["calibration"], method, 6)
    want = simulate(art.graph, x).outputs[0]
    got = simulate(refit, x).outputs[0]
    np.testing.assert_array_equal(got, want)


def test_reconvert_refuses_other_methods(tmp_path):
    with pytest.raises(SnncError, match="only fs and amos"):
        reconvert(prepared_ann(f"{LENET}/lenet.onnx"), {}, "ttfs", 5)
