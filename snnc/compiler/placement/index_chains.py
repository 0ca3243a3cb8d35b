"""Exact incidence of an index chain back to a feature map, from the synapses that exist.

The frontend lowers Resize to ops whose layout maps are not separable per axis: nearest as
repeat concatenations between reshapes, linear as a grouped 1x1 convolution over the flattened
map (a Kronecker interpolation matrix, mostly zeros). Booked through the per-op table, every
output of such a chain reads every input of its source (``all_to_all``): a 16-channel
14x14 -> 28x28 bilinear map books 39 M synapses where 50 k exist. ``index_chain_axes`` follows
the chain element by element instead (routing moves one element; a 1x1 convolution reaches
the input channels of its non-zero weights, what Loihi stores and the synaptic-op counters
count) and projects the incidence on the layout axes: exact where it is separable (both Resize
lowerings), a superset otherwise, and never more than the all-to-all bound it replaces.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.placement.axes import Axis, layout, mat
from snnc.ir import ops
from snnc.ir.graph import Node

__all__ = ["index_chain_axes"]

_ROUTING = (ops.Reshape, ops.Transpose, ops.Concat)


def _pointwise(node: Node) -> bool:
    """A 1x1 convolution over a (C, 1, 1) value: a grouped matrix between channels."""
    op = node.op
    return (isinstance(op, ops.Conv2d) and tuple(op.weight.shape[2:]) == (1, 1)
            and tuple(op.stride) == (1, 1) and not any(op.padding)
            and tuple(node.inputs[0].shape[1:]) == (1, 1))


class _Chain:
    """Incidence (sparse, value elements x source elements) of the values of one chain."""

    def __init__(self, producers: dict, sources: set[str]) -> None:
        self.producers, self.sources = producers, sources
        self.source: str | None = None
        self.source_shape: tuple[int, ...] = ()
        self.synapses: list[Node] = []
        self.joins = 0  # concatenations and convolutions on the way

    def of(self, v):
        """The incidence of value ``v`` (a scipy CSR matrix), None where ``v`` is not reached
        from one source through routing and pointwise convolutions only."""
        from scipy.sparse import identity  # ~0.3 s to import: only where a chain is followed

        if v.name in self.sources:
            if self.source not in (None, v.name):
                return None
            self.source, self.source_shape = v.name, tuple(v.shape)
            return identity(math.prod(v.shape) or 1, dtype=np.int8, format="csr")
        n = self.producers.get(v.name)
        if n is None:
            return None
        if isinstance(n.op, (ops.Reshape, ops.Transpose)):
            m = self.of(n.inputs[0])
            if m is None or isinstance(n.op, ops.Reshape):  # reshapes keep the element order
                return m
            order = np.arange(m.shape[0]).reshape(n.inputs[0].shape).transpose(n.op.perm)
            return m[order.ravel()]
        if isinstance(n.op, ops.Concat):
            return self._concat(n)
        if _pointwise(n):
            return self._pointwise(n)
        return None

    def _concat(self, n: Node):
        from scipy.sparse import vstack

        parts = [self.of(v) for v in n.inputs]
        if any(p is None for p in parts):
            return None
        self.joins += 1
        base = np.cumsum([0] + [p.shape[0] for p in parts])
        idx = [base[i] + np.arange(p.shape[0]).reshape(v.shape)
               for i, (p, v) in enumerate(zip(parts, n.inputs))]
        return vstack(parts, format="csr")[np.concatenate(idx, axis=n.op.axis).ravel()]

    def _pointwise(self, n: Node):
        from scipy.sparse import csr_matrix

        m = self.of(n.inputs[0])
        if m is None:
            return None
        self.joins += 1
        self.synapses.append(n)
        w = n.op.weight[:, :, 0, 0] != 0
        o, cg = w.shape
        rows, cols = np.nonzero(w)
        cols = (rows // (o // n.op.groups)) * cg + cols
        nz = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(o, m.shape[0]))
        return ((nz @ m) != 0).astype(np.int8)


def index_chain_axes(node: Node, producers: dict, sources: set[str]
                     ) -> tuple[str, tuple[Axis, Axis, Axis], bool, tuple[Node, ...]] | None:
    """(source, per-axis incidence, mixed-sign weights, synaptic nodes) of the chain of
    routing and pointwise convolutions ending at ``node``, a Reshape to a (C, H, W) map with
    H x W > 1 reached from one source through at least one Concat or 1x1 convolution; None for
    any other node (the per-op table and ``Terms.layout_chain`` book it)."""
    shape = tuple(node.output.shape)
    if not isinstance(node.op, ops.Reshape) or len(shape) != 3 or shape[1] * shape[2] == 1:
        return None
    chain = _Chain(producers, sources)
    m = chain.of(node.output)
    if m is None or not chain.joins:
        return None
    out_lay, in_lay = layout(shape), layout(chain.source_shape)
    coo = m.tocoo()
    outs = np.unravel_index(coo.row, out_lay)
    ins = np.unravel_index(coo.col, in_lay)
    axes = []
    for a in range(3):
        inc = np.zeros((out_lay[a], in_lay[a]), bool)
        inc[outs[a], ins[a]] = True
        axes.append(mat(inc))
    mixed = any(bool(s.op.weight.size and s.op.weight.min() < 0 < s.op.weight.max())
                for s in chain.synapses)
    return chain.source, tuple(axes), mixed, tuple(chain.synapses)
