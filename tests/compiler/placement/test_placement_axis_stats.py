"""Per-tile axis statistics: shared weight patterns and halo compartments
(placement/axis_stats.py)."""

from __future__ import annotations

from snnc.compiler.placement.axes import window
from snnc.compiler.placement.axis_stats import axis_stats


def test_shared_weight_patterns_along_an_axis():
    conv = window(13, 13, 3, 1, 1, 1)  # 3-tap window, stride 1, padding 1
    whole = axis_stats(conv, 13, shared=True)
    # edge rows reach 2 outputs, inner rows 3 through the same weights: 3 patterns, not 13
    assert [tuple(map(tuple, h)) for h in whole.shared] == [((2, 3), (2, 1))]
    # tiles [0, 5) [5, 10) [10, 13): cut windows at tile edges
    tiles = axis_stats(conv, 5, shared=True)
    vals, cnt = tiles.shared[tiles.shared_id[1]]
    assert dict(zip(vals.tolist(), cnt.tolist())) == {1: 2, 2: 2, 3: 1}
    # stride 2: even and odd rows have their own weights
    stride2 = axis_stats(window(6, 13, 3, 2, 1, 1), 6, shared=True)
    assert sum(stride2.shared[0][1]) > 2
    # 2x2 pooling: one set
    pool = axis_stats(window(6, 12, 2, 2, 0, 1, uniform=True), 6, shared=True)
    assert [tuple(map(tuple, h)) for h in pool.shared] == [((1,), (1,))]
    assert axis_stats(window(6, 12, 2, 2, 0, 1), 6, shared=True).shared[0][1].tolist() == [2]


def test_halo_compartments_keep_whole_layer_patterns():
    def hist(st, t):
        vals, cnt = st.halo[st.halo_id[t]]
        return dict(zip(vals.tolist(), cnt.tolist()))

    conv = window(13, 13, 3, 1, 1, 1)  # tiles [0,5) [5,10) [10,13)
    whole = axis_stats(conv, 5, shared=True, halo=1 << 20)
    # inputs 4..10 reach the inner tile: one whole 3-tap pattern (cut at its edges: 5 patterns)
    assert hist(whole, 1) == {3: 1}
    # the window continues beyond the layer (padding): the edge tiles' compartments reach one
    # row outside it, where inputs 0 and 12 keep the inner pattern, so no tile has a 2-tap one
    assert hist(whole, 0) == {3: 1} and hist(whole, 2) == {3: 1}
    assert whole.lo.tolist() == [-1, 3, 8] and whole.hi.tolist() == [7, 12, 14]
    # a halo of one: the outermost inputs' windows are cut at its edges, 3 patterns
    one = axis_stats(conv, 5, shared=True, halo=1)
    assert hist(one, 1) == {2: 2, 3: 1} and hist(one, 0) == {2: 1, 3: 1}
    assert one.lo.tolist() == [-1, 4, 9] and one.hi.tolist() == [6, 11, 14]
    # stride 2: each phase keeps its own weights; no input's window is cut at the layer's
    # edges here, so no compartment lies beyond them
    s2 = axis_stats(window(7, 13, 3, 2, 1, 1), 3, shared=True, halo=1 << 20)
    assert hist(s2, 1) == {1: 1, 2: 1} and hist(s2, 0) == {1: 1, 2: 1}
    assert s2.lo.tolist() == [0, 2, 5] and s2.hi.tolist() == [4, 7, 7]
    # a valid (unpadded) window: edge inputs reach one output, continued to the full 5 taps
    valid = axis_stats(window(8, 12, 5, 1, 0, 1), 4, shared=True, halo=1 << 20)
    assert hist(valid, 0) == {5: 1} and valid.lo.tolist() == [-4, 0]
    # where no output sees a whole window (a 5-tap window over 4 rows), nothing continues
    small = axis_stats(window(4, 4, 5, 1, 2, 1), 2, shared=True, halo=1 << 20)
    assert small.lo.tolist() == [0, 0] and small.hi.tolist() == [4, 4]
