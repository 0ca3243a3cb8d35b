"""The NIR fields every reader in use reads, and the pass that keeps a written file to them.

``nir`` 1.0.4 (what sinabs 3.1.3 pins) builds a node with ``NodeClass(**fields)`` and rejects
any field it does not know; ``nir`` 1.0.8 added ``v_reset`` to IF / LIF / CubaLIF and writes
it, but reads files without it (``v_reset`` = 0). A file is portable when each node group holds
only the fields below (the 1.0.4 dataclass fields of the node types snnc writes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.errors import BackendError

__all__ = ["PORTABLE_FIELDS", "check_round_trip", "strip_to_portable"]

_COMMON = {"type", "metadata", "input_type", "output_type"}
PORTABLE_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(_COMMON | set(fields)) for kind, fields in {
        "Input": ("shape",),
        "Output": ("shape",),
        "Affine": ("weight", "bias"),
        "Conv2d": ("input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"),
        "IF": ("r", "v_threshold"),
        "LIF": ("tau", "r", "v_leak", "v_threshold"),
        "SumPool2d": ("kernel_size", "stride", "padding"),
        "AvgPool2d": ("kernel_size", "stride", "padding"),
        "Flatten": ("start_dim", "end_dim"),
        "NIRGraph": ("nodes", "edges"),
    }.items()}


def strip_to_portable(path: Path | str) -> list[str]:
    """Delete from the NIR file ``path`` every node field outside ``PORTABLE_FIELDS`` (what a
    newer ``nir`` wrote, e.g. IF.v_reset); returns the ``node.field`` names removed.

    Requires: a file written by ``nir.write`` holding only node types of ``PORTABLE_FIELDS``.
    Ensures: ``nir.read`` of every version from 1.0.4 on accepts the file."""
    import h5py

    removed = []
    with h5py.File(path, "r+") as f:
        for name, group in f["node/nodes"].items():
            kind = group["type"][()].decode()
            if kind not in PORTABLE_FIELDS:
                raise BackendError(f"NIR node '{name}' has type {kind}, not a portable one")
            for field in [k for k in group if k not in PORTABLE_FIELDS[kind]]:
                del group[field]
                removed.append(f"{name}.{field}")
    return removed


def check_round_trip(written, path: Path | str) -> None:
    """Raise BackendError unless ``nir.read(path)`` gives back the nodes, arrays and edges of
    the graph ``written``."""
    import nir

    back = nir.read(str(path))
    if set(back.nodes) != set(written.nodes) or sorted(back.edges) != sorted(written.edges):
        raise BackendError("NIR round trip changed the graph's nodes or edges")
    for name, node in written.nodes.items():
        for field in ("weight", "bias", "v_threshold", "r", "tau", "v_leak", "kernel_size",
                      "stride"):
            a, b = getattr(node, field, None), getattr(back.nodes[name], field, None)
            if a is not None and not np.array_equal(a, b):
                raise BackendError(f"NIR round trip changed {name}.{field}")
