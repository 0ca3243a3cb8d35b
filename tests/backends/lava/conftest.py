"""Fixtures of the Lava backend tests: the rate LeNet artifact and 20 test images (compiled
once per session: the network and execution tests share them)."""

from __future__ import annotations

import pytest
from support.lava import IMAGES, LENET, STEPS

from snnc.api import compile_model
from snnc.data import load_dataset


@pytest.fixture(scope="session")
def rate_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("lava") / "lenet-rate.snnc"
    return compile_model(LENET / "lenet.onnx", target="loihi2", method="rate",
                         timesteps=STEPS, calib=LENET / "calib.npz", out=out)


@pytest.fixture(scope="session")
def images(rate_artifact):
    return load_dataset(LENET / "test.npz", rate_artifact.graph.inputs[0].shape,
                        limit=IMAGES).x
