"""Another machine's float32 kernels on this one: torch's thread count and its convolution
(oneDNN or the reference kernel) change the order of float32 sums, as another CPU would."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import torch

# (threads, oneDNN): the configurations whose float32 sums differ (measured, decisions.md)
MACHINES = ((2, True), (1, False))


@contextlib.contextmanager
def torch_kernels(threads: int, onednn: bool):
    """Run the block with ``threads`` torch threads and oneDNN on or off, then restore both."""
    saved = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.mkldnn.enabled = saved[1]


def assert_same_graph(a, b) -> None:
    """Node for node the same ops with bit-identical parameters."""
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    for x, y in zip(a.nodes, b.nodes):
        assert type(x.op) is type(y.op), x.name
        for f in dataclasses.fields(x.op):
            u, v = getattr(x.op, f.name), getattr(y.op, f.name)
            assert np.array_equal(np.asarray(u), np.asarray(v)), (x.name, f.name)
