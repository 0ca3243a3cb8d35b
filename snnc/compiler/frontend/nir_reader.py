"""Reading NIR graphs (a .nir HDF5 file, its bytes, or an in-memory ``nir.NIRGraph``) into plain
records, without the ``nir`` package's own reader: files written by any nir version (1.0.4 has
no ``v_reset``, 1.0.8 adds fields) read alike, and a corrupt file fails with one clear error."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.errors import InvalidModel

__all__ = ["NirGraph", "NirNode", "nir_source", "read_nir"]


@dataclass(frozen=True)
class NirNode:
    """One NIR node: its type name (``LIF``, ``Affine``...) and its fields (arrays, numbers,
    strings, nested dicts for ``input_type``/``output_type``/``nodes``)."""

    name: str
    type: str
    params: dict
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NirGraph:
    nodes: dict[str, NirNode]
    edges: list[tuple[str, str]]
    metadata: dict


def _text(v) -> object:
    if isinstance(v, bytes):
        return v.decode("utf8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO" and v.ndim == 0:
        return _text(v[()])
    return v


def _h5_dict(group) -> dict:
    import h5py

    out = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _h5_dict(item)
        elif isinstance(item, h5py.Dataset):
            out[key] = _text(item[()])
        else:  # a corrupt link (h5py gives None) or an object that is not data
            raise ValueError(f"'{key}' is not a dataset or group")  # noqa: TRY004
    return out


def _graph_from_dict(d: dict, where: str) -> NirGraph:
    if not isinstance(d, dict) or d.get("type") != "NIRGraph":
        raise InvalidModel(f"{where}: the top node is not a NIRGraph")
    nodes_d, edges_d = d.get("nodes"), d.get("edges")
    if not isinstance(nodes_d, dict) or edges_d is None:
        raise InvalidModel(f"{where}: the graph has no 'nodes' or no 'edges'")
    nodes = {}
    for name, nd in nodes_d.items():
        if not isinstance(nd, dict) or "type" not in nd:
            raise InvalidModel(f"{where}: node '{name}' has no type")
        params = {k: v for k, v in nd.items() if k not in ("type", "metadata")}
        nodes[str(name)] = NirNode(str(name), str(nd["type"]), params, nd.get("metadata") or {})
    try:
        edges = [(str(_text(a)), str(_text(b))) for a, b in np.asarray(edges_d).reshape(-1, 2)]
    except ValueError:
        raise InvalidModel(f"{where}: 'edges' is not a list of (source, target) pairs") from None
    return NirGraph(nodes, edges, d.get("metadata") or {})


def _from_object(graph) -> NirGraph:
    """An in-memory ``nir.NIRGraph`` as records (dataclass fields of every node)."""
    def node_dict(node) -> dict:
        d = {k: v for k, v in vars(node).items()}
        d["type"] = type(node).__name__
        if d["type"] == "NIRGraph":
            d["nodes"] = {k: node_dict(n) for k, n in node.nodes.items()}
        return d

    return _graph_from_dict(node_dict(graph), "NIRGraph")


def read_nir(source) -> NirGraph:
    """Records of a NIR graph from a path, bytes or a ``nir.NIRGraph``.

    Records already read (a ``NirGraph``) pass through unchanged, so a caller parses a file once.

    Raises:
        InvalidModel: missing, truncated or corrupt file, or not a NIR graph.
    """
    if isinstance(source, NirGraph):
        return source
    if type(source).__name__ == "NIRGraph" and hasattr(source, "nodes"):
        return _from_object(source)
    import h5py

    if isinstance(source, (bytes, bytearray)):
        where, handle = "<bytes>", io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidModel(f"model file '{path}' does not exist")
        where, handle = str(path), path
    else:
        raise InvalidModel(f"a NIR model must be a path, bytes or a nir.NIRGraph, got "
                           f"{type(source).__name__}")
    try:
        with h5py.File(handle, "r") as f:
            if "node" not in f:
                raise InvalidModel(f"{where}: not a NIR file (no 'node' group)")
            d = _h5_dict(f["node"])
    except InvalidModel:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        text = " ".join(str(e).split())[:200]
        raise InvalidModel(f"{where}: not a readable NIR file (HDF5): truncated or corrupt "
                           f"({text})") from None
    return _graph_from_dict(d, where)


def nir_source(model) -> tuple[bytes, str]:
    """(file bytes, file name) of a .nir path or an in-memory ``nir.NIRGraph`` (written with the
    installed ``nir`` package), as the artifact stores its source."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise InvalidModel(f"model file '{path}' does not exist")
        return path.read_bytes(), path.name
    import tempfile

    import nir

    with tempfile.TemporaryDirectory(prefix="snnc-nir-") as tmp:
        path = Path(tmp) / "model.nir"
        try:
            nir.write(path, model)
        except (TypeError, ValueError, KeyError, AttributeError, OSError) as e:
            raise InvalidModel(f"nir.write cannot serialize this NIRGraph: {e}") from None
        return path.read_bytes(), "model.nir"
