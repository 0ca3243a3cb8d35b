"""Save and load graphs as JSON structure + a dict of numpy arrays (stored in .npz, no pickle).

Generic over dataclass fields: adding an op needs no serialization code, only that its fields are
numbers, strings, bools, None, tuples of those, or numpy arrays.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from snnc.errors import ArtifactError
from snnc.ir.graph import Graph, Node
from snnc.ir.ops import ALL_OPS, Op
from snnc.ir.types import TensorType, Value

__all__ = ["graph_to_json", "graph_from_json", "save_graph", "load_graph", "npz_bytes", "OP_CLASSES"]

OP_CLASSES: dict[str, type[Op]] = {cls.__name__: cls for cls in ALL_OPS}


def register_op_class(cls: type[Op]) -> type[Op]:
    """Make an op class defined outside ``ir.ops`` (e.g. spiking populations) serializable."""
    if OP_CLASSES.get(cls.__name__, cls) is not cls:
        raise ValueError(f"op class name {cls.__name__} registered twice")
    OP_CLASSES[cls.__name__] = cls
    return cls


def _encode(v: object, key: str, arrays: dict[str, np.ndarray]) -> object:
    if isinstance(v, np.ndarray):
        arrays[key] = v
        return {"array": key}
    if isinstance(v, tuple):
        return {"tuple": [_encode(x, f"{key}.{i}", arrays) for i, x in enumerate(v)]}
    if isinstance(v, float) and not math.isfinite(v):
        return {"float": repr(v)}
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"cannot serialize {type(v).__name__} at {key}")


def _decode(v: object, arrays) -> object:
    if isinstance(v, dict):
        if "array" in v:
            return np.asarray(arrays[v["array"]])
        if "tuple" in v:
            return tuple(_decode(x, arrays) for x in v["tuple"])
        if "float" in v:
            return float(v["float"])
        raise ArtifactError(f"unknown encoded value {v}")
    return v


def _value(v: Value) -> dict:
    return {"name": v.name, "shape": list(v.shape), "dtype": v.type.dtype}


def graph_to_json(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for n in graph.nodes:
        params = {f.name: _encode(getattr(n.op, f.name), f"{n.name}.{f.name}", arrays)
                  for f in dataclasses.fields(n.op)}
        nodes.append({"op": type(n.op).__name__, "inputs": [v.name for v in n.inputs],
                      "output": _value(n.output), "params": params})
    doc = {"name": graph.name, "inputs": [_value(v) for v in graph.inputs],
           "outputs": [v.name for v in graph.outputs], "nodes": nodes}
    return doc, arrays


def graph_from_json(doc: dict, arrays) -> Graph:
    try:
        values: dict[str, Value] = {}

        def mk(d: dict) -> Value:
            v = Value(d["name"], TensorType(tuple(d["shape"]), d["dtype"]))
            values[v.name] = v
            return v

        inputs = tuple(mk(d) for d in doc["inputs"])
        nodes = []
        for d in doc["nodes"]:
            cls = OP_CLASSES.get(d["op"])
            if cls is None:
                raise ArtifactError(f"unknown op {d['op']!r} in serialized graph")
            op = cls(**{k: _decode(v, arrays) for k, v in d["params"].items()})
            nodes.append(Node(op, tuple(values[n] for n in d["inputs"]), mk(d["output"])))
        outputs = tuple(values[n] for n in doc["outputs"])
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"malformed serialized graph: {e!r}") from e
    return Graph(tuple(nodes), inputs, outputs, doc.get("name", "main"))


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write ``path`` (.json) and its arrays beside it (.npz). Deterministic bytes."""
    path = Path(path)
    doc, arrays = graph_to_json(graph)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    path.with_suffix(".npz").write_bytes(npz_bytes(arrays))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with sorted entries and fixed timestamps: same arrays, same bytes
    (``np.savez`` stamps the current time into the zip)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            entry = io.BytesIO()
            a = np.asarray(arrays[key])  # (ascontiguousarray would turn 0-d into 1-d)
            np.lib.format.write_array(entry, a if a.flags.c_contiguous else a.copy(),
                                      allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        entry.getvalue())
    return buf.getvalue()


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    doc = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
        return graph_from_json(doc, {k: arrays[k] for k in arrays.files})
