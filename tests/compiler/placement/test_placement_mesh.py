"""Mesh layout: the barycenter refinement of a path order (placement/mesh.py)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix

from snnc.compiler.placement.mesh import barycentric


def _arrangement_cost(adj, order) -> float:
    pos = np.empty(len(order))
    pos[order] = np.arange(len(order))
    a = adj.tocoo()
    return float((a.data * np.abs(pos[a.row] - pos[a.col])).sum()) / 2


def test_barycentric_order_shortens_routes_and_keeps_a_good_one():
    n = 40  # two chains 0..19 and 20..39, joined end to end
    a = np.r_[np.arange(19), np.arange(20, 39), 19]
    b = a + 1
    adj = coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    straight = np.arange(n)
    assert _arrangement_cost(adj, barycentric(adj, straight)) == n - 1  # already optimal
    shuffled = np.random.default_rng(0).permutation(n)
    refined = barycentric(adj, shuffled)
    assert sorted(refined) == list(range(n))  # a permutation of the cores
    assert _arrangement_cost(adj, refined) < 0.5 * _arrangement_cost(adj, shuffled)
