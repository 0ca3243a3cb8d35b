"""Tests of snnc.compiler.fs_params against ALGORITHMS.md section 2 (FS-neurons)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.compiler import fs_params
from snnc.compiler.fs_params import (
    SIGMOID,
    SWISH,
    FSTable,
    encode,
    encode_torch,
    fit,
    mse,
    relu_table,
    table_for,
)

EPS = np.finfo(np.float64).eps


def _swish(x):
    return x / (1.0 + np.exp(-x))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _clipped_relu(x):
    return np.clip(x, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# FS-ReLU == K-bit quantizer


def _exact_codes(x: np.ndarray, alpha: float, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantizer codes of the real number u = 2^K x / alpha, free of float rounding.

    Returns
    * ``strict = clip(ceil(u) - 1, 0, 2^K - 1)``: the largest n with n alpha 2^-K < x, i.e. the
      greedy binary expansion under the neuron's strict ``v > T``;
    * ``floor = clip(floor(u), 0, 2^K - 1)``: the textbook quantizer of ALGORITHMS.md 2.2.
    They differ only when x lies exactly on a bin edge alpha n 2^-K with 1 <= n <= 2^K - 1: there
    v(t) == T(t) at the deciding step, no spike, and the neuron rounds down one code.

    The float quotient u_f is within 2^-40 of u while |u| <= 2^12, so floor/ceil of u_f are
    exact unless u_f is within 2^-30 of an integer; those few inputs are redone in exact integer
    arithmetic. Beyond |u| > 2^12 only the clipping matters.
    """
    top = (1 << K) - 1
    with np.errstate(over="ignore", invalid="ignore"):  # |x| near float max: u_f = +-inf
        u_f = x * 2.0**K / alpha
        strict = np.clip(np.ceil(u_f) - 1, 0, top).astype(np.int64)
        floor = np.clip(np.floor(u_f), 0, top).astype(np.int64)
        close = (np.abs(u_f) <= 2.0**12) & (np.abs(u_f - np.round(u_f)) <= 2.0**-30)
    a, b = float(alpha).as_integer_ratio()
    for i in np.flatnonzero(close):
        p, q = float(x[i]).as_integer_ratio()
        num, den = p * b << K, a * q  # u = num / den exactly, den > 0
        strict[i] = min(max((num - 1) // den, 0), top)  # ceil(u) - 1 == (num - 1) // den
        floor[i] = min(max(num // den, 0), top)
    return strict, floor


def _relu_inputs(alpha: float, K: int, n: int, seed: int) -> np.ndarray:
    """n inputs: bin edges and their float neighbours, specials, and random values in/out of range."""
    delta = alpha * 2.0**-K
    edges = np.arange(-2, (1 << K) + 3) * delta
    specials = np.array([
        0.0, -0.0, 5e-324, -5e-324, alpha, alpha * (1 - 2.0**-K), 2 * alpha, 1e300, -1e300,
        np.finfo(np.float64).max, -np.finfo(np.float64).max,
    ])
    fixed = np.concatenate([
        edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf), specials,
    ])
    rng = np.random.default_rng(seed)
    n_rand = n - fixed.size
    rand = np.concatenate([
        rng.uniform(-0.25 * alpha, 1.25 * alpha, n_rand - n_rand // 10),  # mostly near the range
        rng.normal(0.0, 10 * alpha, n_rand // 10),  # far outside, both signs
    ])
    x = np.concatenate([fixed, rand])
    assert x.size == n
    return x


def _spike_codes(spikes: np.ndarray) -> np.ndarray:
    """Integer whose binary digits (MSB first) are the spike train z(1..K)."""
    K = spikes.shape[0]
    weights = (1 << np.arange(K - 1, -1, -1, dtype=np.int64)).reshape((K,) + (1,) * (spikes.ndim - 1))
    return (spikes.astype(np.int64) * weights).sum(axis=0)


def _popcount(n: np.ndarray, K: int) -> np.ndarray:
    return sum((n >> k) & 1 for k in range(K))


@pytest.mark.parametrize("alpha", [25.0, 3.7])
def test_fs_relu_is_exactly_the_k_bit_quantizer(alpha):
    K = 10
    x = _relu_inputs(alpha, K, n=10**6, seed=1)
    y, spikes = encode(relu_table(alpha, K), x)
    strict, floor = _exact_codes(x, alpha, K)

    # Spike train == binary digits of the quantizer code, bit for bit, on all 10^6 inputs.
    codes = _spike_codes(spikes)
    np.testing.assert_array_equal(codes, strict)
    np.testing.assert_array_equal(spikes.sum(axis=0), _popcount(strict, K))

    # The floor formula agrees except exactly on interior bin edges (x = alpha n 2^-K, n >= 1):
    # there the strict '>' gives no spike at the deciding step, so the neuron is one code lower.
    # The neuron is the reference (it is what the hardware does); the quantizer must use
    # ceil(u) - 1 to match it. Float neighbours of the edges are not edges and agree with floor.
    differs = strict != floor
    np.testing.assert_array_equal(floor[differs] - strict[differs], 1)
    u = x[differs] * 2.0**K / alpha
    np.testing.assert_array_equal(u, np.round(u))  # every disagreement is an edge ...
    assert 1 <= u.min() and u.max() <= 2**K - 1
    if alpha == 25.0:
        assert np.unique(u).size == 2**K - 1  # ... and every interior edge was hit (all exact here)

    delta = alpha * 2.0**-K
    if alpha == 25.0:
        # 25 * 2^-10 has 5 significant bits: every partial sum of d(t) is exact, so y is exactly
        # the quantizer output.
        np.testing.assert_array_equal(y, delta * strict)
        with np.errstate(over="ignore"):
            n = np.clip(np.ceil(x * 2.0**K / 25.0) - 1, 0, 2**K - 1)  # plain float64 formula
        np.testing.assert_array_equal(y, 25.0 * 2.0**-K * n)
    else:
        # 3.7 has a full 53-bit mantissa: y = sum_t d(t) z(t) is a K-term float sum, which may
        # differ from the once-rounded alpha 2^-K n by an ulp or so. The code is still exact.
        np.testing.assert_allclose(y, delta * strict, rtol=4 * EPS, atol=0)


def test_fs_relu_spikes_per_neuron_matches_table():
    # ALGORITHMS.md 2.3 table: ReLU alpha=25 on x ~ N(-0.063, 1.563^2): 1.50; N(0, 1): 1.40.
    rng = np.random.default_rng(1234)
    x = rng.normal(-0.063, 1.563, 10**5)
    _, spikes = encode(relu_table(25.0, 10), x)
    assert abs(spikes.sum(axis=0).mean() - 1.50) < 0.05
    _, spikes = encode(relu_table(25.0, 10), rng.normal(0.0, 1.0, 10**5))
    assert abs(spikes.sum(axis=0).mean() - 1.40) < 0.05


@settings(max_examples=300, deadline=None)
@given(
    alpha=st.floats(1e-3, 1e3),
    K=st.integers(1, 24),
    u=st.floats(0.0, 1.0),
    x_any=st.floats(allow_nan=False, allow_infinity=False),
)
def test_fs_relu_error_and_range(alpha, K, u, x_any):
    table = relu_table(alpha, K)
    delta = alpha * 2.0**-K
    top = alpha * (1 - 2.0**-K)
    # Slack for float64 rounding of the K-term output sum (zero when alpha has few bits).
    slack = 4 * K * EPS * alpha
    x_in = u * top  # in [0, alpha (1 - 2^-K)]
    y_in, _ = encode(table, np.array([x_in, x_any]))
    assert abs(y_in[0] - x_in) <= delta + slack
    assert y_in[0] <= x_in + slack  # rounds down
    assert -0.0 <= y_in[1] <= top + slack


# ---------------------------------------------------------------------------------------------
# Shipped tables


def test_shipped_tables_shapes():
    assert SWISH.K == 16 and SIGMOID.K == 12
    assert SWISH.h[-1] == 0 and SIGMOID.h[-1] == 0
    # Spot-check the copy against ALGORITHMS.md 2.3 (first/last entries).
    assert SWISH.h[0] == 0.7844085 and SWISH.d[-1] == -0.14830568 and SWISH.T[-1] == -4.109145
    assert SIGMOID.h[2] == 10.7739 and SIGMOID.d[0] == 0.37689912 and SIGMOID.T[-1] == -5.5447803


def test_shipped_swish_accuracy():
    m = mse(SWISH, _swish, (-8.0, 12.0), n_points=200_001)
    assert 3.3e-3 < m < 3.5e-3  # ALGORITHMS.md: 3.4e-3
    assert m < 4e-3
    y, _ = encode(SWISH, np.array([-2.0, 0.0, 1.0, 4.0]))
    np.testing.assert_allclose(y, [-0.262, 0.066, 0.72, 3.844], atol=1e-3)
    # "Below x ~ -5 the output is 0".
    y, _ = encode(SWISH, np.linspace(-8.0, -5.5, 1001))
    assert np.all(y == 0)


def test_shipped_sigmoid_accuracy():
    m = mse(SIGMOID, _sigmoid, (-10.0, 10.0), n_points=200_001)
    assert m < 2e-4  # ALGORITHMS.md: 1.4e-4
    assert 1.3e-4 < m < 1.5e-4


def test_shipped_tables_spikes_per_neuron():
    # ALGORITHMS.md 2.3 table, x ~ N(-0.063, 1.563^2) and N(0, 1).
    rng = np.random.default_rng(99)
    x_eff, x_std = rng.normal(-0.063, 1.563, 10**5), rng.normal(0.0, 1.0, 10**5)
    for table, want_eff, want_std in [(SWISH, 2.35, 2.26), (SIGMOID, 4.23, 4.30)]:
        assert abs(encode(table, x_eff)[1].sum(axis=0).mean() - want_eff) < 0.05
        assert abs(encode(table, x_std)[1].sum(axis=0).mean() - want_std) < 0.05


def test_fitting_script_order_is_wrong_for_shipped_tables():
    # ALGORITHMS.md 2.2: with find_coeffs.py's order (reset with h(t) before the spike of step t)
    # the shipped Swish table is useless (MSE 0.376). Guards against "fixing" the order.
    x = np.linspace(-8.0, 12.0, 100_001)
    v, y, z = x.copy(), np.zeros_like(x), np.zeros_like(x)
    for t in range(SWISH.K):
        v = v - z * SWISH.h[t]
        z = (v > SWISH.T[t]).astype(np.float64)
        y += SWISH.d[t] * z
    assert np.mean((y - _swish(x)) ** 2) > 0.3


# ---------------------------------------------------------------------------------------------
# encode / encode_torch


def _random_table(rng, K):
    return FSTable(h=rng.normal(0, 2, K), d=rng.normal(0, 1, K), T=rng.normal(0, 1, K), name="rnd")


def test_encode_shapes_and_dtypes():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10
    y, spikes = encode(SWISH, x)
    assert y.shape == x.shape and y.dtype == np.float64
    assert spikes.shape == (16, 2, 3, 4) and spikes.dtype == bool
    y0, s0 = encode(SIGMOID, 0.5)  # scalars work too
    assert y0.shape == () and s0.shape == (12,)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_encode_torch_equals_numpy_exactly(device):
    rng = np.random.default_rng(7)
    tables = [relu_table(25.0), relu_table(3.7, 16), SWISH, SIGMOID, _random_table(rng, 9)]
    x = np.concatenate([rng.normal(0, 4, 50_000), [0.0, -0.0, 25.0, 12.5, 1.0, -4.109145]])
    x = x.reshape(2, -1)
    for table in tables:
        y_np, s_np = encode(table, x)
        y_t, s_t = encode_torch(table, torch.tensor(x, dtype=torch.float64, device=device))
        assert y_t.dtype == torch.float64 and s_t.shape == (table.K,) + x.shape
        np.testing.assert_array_equal(y_t.cpu().numpy(), y_np)
        np.testing.assert_array_equal(s_t.cpu().numpy(), s_np.astype(np.float64))


def test_encode_torch_float32_keeps_dtype():
    x = torch.linspace(-5, 5, 101)
    y, s = encode_torch(SWISH, x)
    assert y.dtype == torch.float32 and s.dtype == torch.float32 and s.shape == (16, 101)
    y64, _ = encode(SWISH, x.double().numpy())
    np.testing.assert_allclose(y.numpy(), y64, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# FSTable and table_for


def test_fstable_validation_and_immutability():
    t = FSTable(h=[1, 2], d=[3, 4], T=[5, 6], name="t")
    assert t.K == 2 and t.h.dtype == np.float64
    with pytest.raises(ValueError):
        t.h[0] = 9.0  # read-only
    with pytest.raises(AttributeError):
        t.name = "x"  # frozen
    assert t == FSTable(h=[1.0, 2.0], d=[3, 4], T=[5, 6], name="t")
    assert t != FSTable(h=[1.0, 2.5], d=[3, 4], T=[5, 6], name="t")
    assert hash(t) == hash(FSTable.from_dict(json.loads(json.dumps(t.to_dict()))))
    with pytest.raises(ValueError):
        FSTable(h=[1, 2], d=[3], T=[5, 6])
    with pytest.raises(ValueError):
        FSTable(h=[np.nan], d=[3], T=[5])


def test_relu_table_values():
    t = relu_table(25.0)
    assert t.K == 10
    np.testing.assert_array_equal(t.T, 25.0 / 2.0 ** np.arange(1, 11))
    assert t.T[0] == 12.5 and t.T[-1] == 25.0 / 1024
    np.testing.assert_array_equal(t.h, t.T)
    np.testing.assert_array_equal(t.d, t.T)
    with pytest.raises(ValueError):
        relu_table(0.0)
    with pytest.raises(ValueError):
        relu_table(1.0, K=0)


def test_table_for():
    assert table_for("relu", alpha=25.0) == relu_table(25.0, 10)
    assert table_for("ReLU", alpha=2.0, K=6) == relu_table(2.0, 6)
    assert table_for("silu") is SWISH and table_for("swish", K=16) is SWISH
    assert table_for("sigmoid") is SIGMOID
    with pytest.raises(ValueError, match="relu.*silu.*swish.*sigmoid"):
        table_for("tanh")
    with pytest.raises(ValueError, match="alpha"):
        table_for("relu")
    with pytest.raises(ValueError, match="K=16"):
        table_for("swish", K=8)
    with pytest.raises(ValueError, match="alpha"):
        table_for("sigmoid", alpha=1.0)


# ---------------------------------------------------------------------------------------------
# fit()

# Small budget so the whole fit test stays well under 20 s on 2 loaded CPU cores.
QUICK = dict(restarts=8, steps=300, n_points=1000, seed=3)
QUICK_RANGE = (-2.0, 3.0)
QUICK_MSE = 2e-3


@pytest.mark.slow
def test_fit_quick_is_accurate_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    a = fit(_clipped_relu, 12, QUICK_RANGE, cache=False, **QUICK)
    assert a.K == 12 and a.h[-1] == 0
    assert mse(a, _clipped_relu, QUICK_RANGE) < QUICK_MSE
    b = fit(_clipped_relu, 12, QUICK_RANGE, cache=False, **QUICK)
    assert a == b  # bit-identical arrays
    assert list(tmp_path.iterdir()) == []  # cache=False writes nothing

    c = fit(_clipped_relu, 12, QUICK_RANGE, **QUICK)  # computes and writes the cache
    assert c == a
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"  # no temp files left behind
    record = json.loads(files[0].read_text())
    assert record["K"] == 12 and len(record["h"]) == 12

    def boom(*args, **kwargs):
        raise AssertionError("cache miss: fit() retrained")

    monkeypatch.setattr(fs_params, "_train", boom)
    d = fit(_clipped_relu, 12, QUICK_RANGE, **QUICK)  # served from the JSON file
    assert d == a
    # A different seed is a different key: it must retrain.
    with pytest.raises(AssertionError, match="cache miss"):
        fit(_clipped_relu, 12, QUICK_RANGE, **(QUICK | {"seed": 4}))
    # A corrupt entry is ignored (retrain), not trusted.
    files[0].write_text("{not json")
    with pytest.raises(AssertionError, match="cache miss"):
        fit(_clipped_relu, 12, QUICK_RANGE, **QUICK)


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError):
        fit(np.tanh, 0, cache=False)
    with pytest.raises(ValueError):
        fit(np.tanh, 4, (1.0, -1.0), cache=False)
    with pytest.raises(ValueError):
        fit(lambda x: np.full_like(x, np.nan), 4, cache=False)


def test_importance_weights_knots():
    x = np.array([-10.0, -6.0, -4.0, 0.0, 4.0, 6.0, 10.0])
    w = fs_params.importance_weights(x, mean=0.0, std=2.0)
    np.testing.assert_array_equal(w, [0.5, 1, 10, 11, 10, 1, 0.5])
    assert math.isclose(fs_params.importance_weights(np.array([-8.0, 10.0]), 0, 2, (-10, 10))[0],
                        0.75)
