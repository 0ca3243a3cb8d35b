"""Edge order for readers that run a NIR graph in depth-first pre-order.

sinabs 3.1.3 and norse 1.1.0 load files through nirtorch's deprecated ``load``, whose
``GraphExecutor`` runs the nodes in the order of ``graph_utils.trace_execution``: a pre-order
depth-first walk from the input that visits each node's children in the order of the file's
edge list, and returns the last node it runs. A join (a node with several input edges) reached
before one of its parents reads that parent's output of the previous step (nothing at step 0),
so a residual block runs one step late on one branch and the walk may end on a hidden layer.

Two edits make that walk a topological order without changing what the graph computes:

- each node's output edges are listed longest branch first (a skip edge comes after the branch
  it skips), so a join with a parent that is an ancestor of its other parents runs last;
- a join whose early parent ``P`` ends a chain ``H -> ... -> P`` off a fork ``F`` (a projection
  shortcut, one branch of a concatenation) gets a guide: a Conv2d / Affine ``<P>_order`` with
  zero weights and bias from ``P`` into the first node ``A`` of the other branch, listed first
  among ``P``'s edges, with ``F -> H`` listed before ``F -> A``. The walk then runs
  ``F, H, ..., P, guide, A, ..., join``; the guide adds exact zeros to ``A``'s input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["depth_first_order", "order_for_depth_first"]


def depth_first_order(edges: list[tuple[str, str]], start: str = "input") -> list[str]:
    """The order nirtorch's ``trace_execution`` runs the nodes in (children in edge order)."""
    children: dict[str, list[str]] = {}
    for src, dst in edges:
        children.setdefault(src, []).append(dst)
    order, seen, stack = [], set(), [start]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        stack += reversed([c for c in children.get(node, []) if c not in seen])
    return order


def early_joins(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(join, parent) pairs where the depth-first walk runs ``join`` before ``parent``."""
    index = {n: i for i, n in enumerate(depth_first_order(edges))}
    return [(dst, src) for src, dst in edges
            if src in index and dst in index and index[src] > index[dst]]


def _longest(edges: list[tuple[str, str]]) -> dict[str, int]:
    """Nodes on the longest path from each node to a sink (edges form a DAG)."""
    children: dict[str, list[str]] = {}
    for src, dst in edges:
        children.setdefault(src, []).append(dst)
    memo: dict[str, int] = {}

    def walk(n: str) -> int:
        if n not in memo:
            memo[n] = 1 + max((walk(c) for c in children.get(n, [])), default=0)
        return memo[n]

    for src, _ in edges:
        walk(src)
    return memo


def _guide(nir, p_shape, a_shape):
    """A node with zero weights and bias from a ``p_shape`` value to an ``a_shape`` one, or
    None when no Conv2d / Affine maps the one shape to the other."""
    if len(p_shape) == 1 and len(a_shape) == 1:
        return nir.Affine(weight=np.zeros((a_shape[0], p_shape[0]), np.float32),
                          bias=np.zeros(a_shape[0], np.float32))
    if len(p_shape) != 3 or len(a_shape) != 3:
        return None
    grow = [a - p for p, a in zip(p_shape[1:], a_shape[1:])]
    if min(grow) < 0:
        return None
    kernel = tuple(1 + g % 2 for g in grow)  # out = in + 2 pad - kernel + 1
    pad = tuple((g + k - 1) // 2 for g, k in zip(grow, kernel))
    return nir.Conv2d(input_shape=tuple(int(s) for s in p_shape[1:]),
                      weight=np.zeros((a_shape[0], p_shape[0], *kernel), np.float32),
                      stride=(1, 1), padding=pad, dilation=(1, 1), groups=1,
                      bias=np.zeros(a_shape[0], np.float32))


def order_for_depth_first(nodes: dict, edges: list[tuple[str, str]],
                          shapes: dict[str, tuple]) -> list[tuple[str, str]]:
    """``edges`` reordered (and guide nodes added to ``nodes``, see the module docstring) so
    that a depth-first pre-order walk runs every node after its parents where it can.

    Requires: ``edges`` form a DAG from ``input``; ``shapes[n]`` is node ``n``'s output shape.
    Ensures: the same edges plus guide edges; ``nodes`` reordered in the walk's order (a
    topological one where it could be made so); what each node computes is unchanged."""
    import nir

    longest = _longest(edges)
    edges = sorted(edges, key=lambda e: -longest.get(e[1], 0))  # stable: per source too
    for _ in range(len(nodes)):
        bad = early_joins(edges)
        if not bad:
            break
        join, parent = bad[0]
        if [d for s, d in edges if s == parent] != [join]:
            break
        head, fork = _branch(edges, parent)
        first = next((d for s, d in edges if s == fork and d != head), None)
        guide = _guide(nir, shapes[parent], shapes[fork]) if fork else None
        name = f"{parent}_order"
        if first is None or guide is None or name in nodes:
            break
        nodes[name] = guide
        shapes[name] = shapes[fork]
        edges.remove((fork, head))
        edges.remove((parent, join))
        edges = [(fork, head), (parent, name), (name, first), (parent, join), *edges]
    walk = depth_first_order(edges)  # nodes stored in the order the walk runs them
    rank = {n: i for i, n in enumerate(walk)}
    items = sorted(nodes.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    nodes.clear()
    nodes.update(items)
    return edges


def _branch(edges: list[tuple[str, str]], last: str) -> tuple[str, str | None]:
    """(head, fork) of the chain of one-input, one-output nodes that ends at ``last``: ``head``
    is its first node, ``fork`` the one node feeding it (None if not exactly one)."""
    head = last
    while True:
        parents = [s for s, d in edges if d == head]
        if len(parents) != 1:
            return head, None
        p = parents[0]
        if [d for s, d in edges if s == p] != [head]:
            return head, p
        head = p
