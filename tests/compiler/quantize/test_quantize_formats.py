"""quantize's number formats: weight quantization (property tests) and saturation counting."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from snnc.compiler.quantize import mantissa_max, quantize_weights
from snnc.targets import load_target

L1, L2 = load_target("loihi1"), load_target("loihi2")

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None)
@given(w=arrays(np.float64, st.integers(1, 40), elements=finite),
       scale=st.sampled_from([1e-4, 1e-2, 1.0, 1e2]), loihi2=st.booleans())
@example(w=np.array([5e-324]), scale=1.0, loihi2=False)  # found by CI: the ratio underflowed
def test_quantize_dequantize_within_half_step_and_no_overflow(w, scale, loihi2):
    fmt = (L2 if loihi2 else L1).weights
    w = w * scale
    r = quantize_weights(w, fmt)
    mixed = bool((w < 0).any() and (w > 0).any())
    mmax = mantissa_max(fmt, mixed)
    assert fmt.exp_min <= r.exp <= fmt.exp_max
    assert np.abs(r.mantissa).max() <= mmax
    assert r.mantissa.dtype.kind == "i"
    deq = r.mantissa * 2.0**r.exp
    if r.saturated == 0:
        assert np.abs(deq - w).max() <= 2.0**r.exp / 2
        # the exponent is the smallest without overflow: one lower would not fit the mantissa
        if r.exp > fmt.exp_min:
            assert np.abs(np.rint(w * 2.0 ** -(r.exp - 1))).max() > mmax
    else:  # only when the exponent hit its bound
        assert r.exp == fmt.exp_max
    if (w >= 0).all():
        assert (r.mantissa >= 0).all()  # unsigned weights keep every mantissa bit


def test_saturation_is_counted_at_the_exponent_bound():
    w = np.array([1e9, 1.0, -3.0])
    r = quantize_weights(w, L2.weights)
    assert r.exp == L2.weights.exp_max and r.saturated == 1
    assert r.mantissa[0] == mantissa_max(L2.weights, True) == 127
    assert mantissa_max(L1.weights, True) == 255  # Loihi 1 has a sign bit beyond the 8
