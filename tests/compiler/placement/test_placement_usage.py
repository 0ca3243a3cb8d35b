"""Per-core usage helpers (placement/usage.py)."""

from __future__ import annotations

import numpy as np

from snnc.compiler.placement.usage import group_mem, mem_bits


def _hist(rng) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(0, 4))  # empty histograms too
    return rng.integers(1, 300, n), rng.integers(1, 50, n)


def test_group_mem_sums_each_terms_mem_bits_per_channel_tile():
    """``group_mem`` (all histogram triples of a group of terms at once) equals ``mem_bits``
    per term and triple, summed over the terms at each channel tile's histogram."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        hr = [_hist(rng) for _ in range(int(rng.integers(1, 4)))]
        hx = [_hist(rng) for _ in range(int(rng.integers(1, 4)))]
        word = (None, 64, 32)[trial % 3]
        n_tiles = int(rng.integers(1, 6))
        terms, want = [], np.zeros((n_tiles, len(hr), len(hx)), np.int64)
        for _ in range(int(rng.integers(1, 5))):
            hc = [_hist(rng) for _ in range(int(rng.integers(1, 5)))]
            ids = rng.integers(0, len(hc), n_tiles)
            wbits, k_src = int(rng.integers(1, 10)), int(rng.integers(1, 4))
            table = np.array([[[mem_bits(c, r, x, wbits, word, k_src) for x in hx] for r in hr]
                              for c in hc], np.int64)
            want += table[ids]
            terms.append((hc, ids, wbits, k_src))
        got = group_mem(terms, hr, hx, word)
        assert got.dtype == np.int64 and np.array_equal(got, want), trial
