"""Shared fixtures. The ONNX helpers (onnxruntime oracle, one-node builders, tolerances) live in
tests/support/onnx_models.py; they are re-exported here for older imports."""

from __future__ import annotations

import numpy as np
import pytest

from support.onnx_models import (RTOL, assert_close, check_against_ort,  # noqa: F401
                                 one_node_model, ort_run, random_feeds, with_output_shapes)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
