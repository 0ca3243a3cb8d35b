"""The integer helpers of snnc's Lava process models (snnc/backends/lava/integers.py)."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.lava.integers import pack, unpack

pytestmark = pytest.mark.lava


def test_pack_roundtrip():
    rng = np.random.default_rng(0)
    for bits in (1, 16):
        v = rng.integers(0, 2**bits, 1001)
        assert np.array_equal(unpack(pack(v, bits), bits, len(v)), v)
        assert np.all(pack(v, bits) < 2**48)  # exact through Var.get's float64
