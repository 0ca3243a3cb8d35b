"""Seeded mutations of real ONNX models for the fuzz suite.

Each mutator takes a private copy of a model, a ``random.Random`` and the case directory, and
returns the bytes to write as the model file plus a short description. Mutators may also create
files in the case directory (external data) or next to it (files that must never be read).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["MUTATORS", "mutate"]

Mutator = Callable[[onnx.ModelProto, random.Random, Path], tuple[bytes, str]]
HUGE = (2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1)


def _bytes(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))] if len(seq) else None


def _float_inits(m: onnx.ModelProto) -> list[TensorProto]:
    return [t for t in m.graph.initializer
            if t.data_type == TensorProto.FLOAT and not t.external_data]


def truncate(m, rng, case):
    data = _bytes(m)
    cut = rng.randrange(len(data))
    return data[:cut], f"truncate to {cut}/{len(data)} bytes"


def flip_bytes(m, rng, case):
    data = bytearray(_bytes(m))
    k = rng.choice((1, 2, 4, 16))
    for _ in range(k):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    return bytes(data), f"flip {k} bytes"


def drop_initializer(m, rng, case):
    if not m.graph.initializer:
        return truncate(m, rng, case)
    i = rng.randrange(len(m.graph.initializer))
    name = m.graph.initializer[i].name
    del m.graph.initializer[i]
    return _bytes(m), f"drop initializer {name}"


def bad_dims(m, rng, case):
    value = rng.choice((0, -1, -7) + HUGE)
    where = rng.random()
    if where < 0.4 and m.graph.initializer:
        t = _pick(rng, m.graph.initializer)
        if t.dims:
            d = rng.randrange(len(t.dims))
            t.dims[d] = value
            return _bytes(m), f"initializer {t.name} dim {d} = {value}"
    if where < 0.7:
        inp = _pick(rng, [i for i in m.graph.input if i.type.tensor_type.shape.dim])
        if inp is not None:
            dims = inp.type.tensor_type.shape.dim
            d = rng.randrange(len(dims))
            dims[d].dim_value = value if value >= 0 else 0
            if value < 0:  # protobuf keeps negative int64 too; write it raw
                dims[d].dim_value = value
            return _bytes(m), f"input {inp.name} dim {d} = {value}"
    # Shape-like int64 initializers (Reshape targets, ConstantOfShape shapes, pads...).
    ints = [t for t in m.graph.initializer if t.data_type == TensorProto.INT64 and t.dims
            and len(t.dims) == 1 and 0 < t.dims[0] <= 8]
    t = _pick(rng, ints)
    if t is None:
        return flip_bytes(m, rng, case)
    a = numpy_helper.to_array(t).copy()
    a[rng.randrange(a.size)] = value
    t.CopyFrom(numpy_helper.from_array(a.astype(np.int64), t.name))
    return _bytes(m), f"int initializer {t.name} = {a.tolist()}"


def nonfinite_weights(m, rng, case):
    value = rng.choice((np.nan, np.inf, -np.inf, 1e-45, 1e-39, 3.4e38, -3.4e38))
    inits = _float_inits(m)
    fills = [n for n in m.graph.node if n.op_type in ("ConstantOfShape", "Constant")
             and any(a.type == onnx.AttributeProto.TENSOR for a in n.attribute)]
    if fills and (not inits or rng.random() < 0.3):
        n = _pick(rng, fills)
        a = next(a for a in n.attribute if a.type == onnx.AttributeProto.TENSOR)
        arr = numpy_helper.to_array(a.t).copy()
        if arr.dtype.kind != "f" or arr.size == 0:
            return truncate(m, rng, case)
        arr.flat[rng.randrange(arr.size)] = value
        a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
        return _bytes(m), f"{n.op_type} {n.name or n.output[0]} value {value}"
    t = _pick(rng, inits)
    if t is None:
        return flip_bytes(m, rng, case)
    arr = numpy_helper.to_array(t).copy()
    if arr.size == 0:
        return flip_bytes(m, rng, case)
    k = rng.choice((1, max(1, arr.size // 2), arr.size))
    idx = np.random.default_rng(rng.randrange(2**32)).choice(arr.size, k, replace=False)
    arr.flat[idx] = value
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return _bytes(m), f"initializer {t.name}: {k} values = {value}"


def insert_cycle(m, rng, case):
    nodes = m.graph.node
    if len(nodes) < 2:
        return truncate(m, rng, case)
    i = rng.randrange(len(nodes) - 1)
    j = rng.randrange(i, len(nodes)) if rng.random() < 0.8 else i  # self-loop sometimes
    if not nodes[i].input or not nodes[j].output:
        return flip_bytes(m, rng, case)
    k = rng.randrange(len(nodes[i].input))
    nodes[i].input[k] = nodes[j].output[0]
    return _bytes(m), f"node {i} input {k} <- node {j} output (cycle)"


def unknown_op(m, rng, case):
    n = _pick(rng, m.graph.node)
    if n is None:
        return truncate(m, rng, case)
    kind = rng.random()
    if kind < 0.4:
        n.op_type = rng.choice(("FooBarOp", "LSTM", "NonMaxSuppression", "Loop", "If", "Scan",
                                "RandomNormalLike", "", "Conv\x00", "Ré lu"))
        what = f"op {n.op_type!r}"
    elif kind < 0.8:
        n.domain = rng.choice(("com.evil", "ai.onnx.ml", "com.microsoft",
                               "ai.onnx.preview.training"))
        if rng.random() < 0.5:
            m.opset_import.append(helper.make_opsetid(n.domain, rng.choice((1, 3, 99))))
        what = f"domain {n.domain!r}"
    else:
        o = _pick(rng, m.opset_import)
        o.version = rng.choice((0, 1, 6, 7, 9, 11, 12, 14, 17, 22, 25, 99, 2**40))
        what = f"opset {o.domain or 'ai.onnx'} = {o.version}"
    return _bytes(m), f"node {n.name or n.output[0]}: {what}"


def flip_attribute(m, rng, case):
    cands = [(n, a) for n in m.graph.node for a in n.attribute
             if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS,
                           onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING)]
    if not cands:
        return unknown_op(m, rng, case)
    n, a = _pick(rng, cands)
    if a.type == onnx.AttributeProto.INT:
        a.i = rng.choice((0, -1, -3, 1, 2, 7, 99) + HUGE)
        new = a.i
    elif a.type == onnx.AttributeProto.INTS:
        vals = list(a.ints)
        op = rng.random()
        if op < 0.3 or not vals:
            vals = vals + [rng.choice((0, 1, -1, 5))]
        elif op < 0.5:
            vals = vals[:-1]
        else:
            vals[rng.randrange(len(vals))] = rng.choice((0, -1, -5, 3, 1000) + HUGE[:3])
        del a.ints[:]
        a.ints.extend(vals)
        new = vals
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = rng.choice((float("nan"), float("inf"), -1.0, 0.0, 1e30, 1e-45))
        new = a.f
    else:
        a.s = rng.choice((b"", b"BOGUS", b"\xff\xfe", b"NOTSET", b"SAME_UPPER", b"wrap"))
        new = a.s
    if rng.random() < 0.15:  # also change the attribute's type
        a.type = rng.choice((onnx.AttributeProto.FLOAT, onnx.AttributeProto.GRAPH,
                             onnx.AttributeProto.TENSOR, onnx.AttributeProto.UNDEFINED))
    return _bytes(m), f"node {n.name or n.op_type} attr {a.name} = {new!r}"


def flip_dtype(m, rng, case):
    t = _pick(rng, m.graph.initializer)
    if t is None:
        return truncate(m, rng, case)
    t.data_type = rng.choice((TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16,
                              TensorProto.STRING, TensorProto.UNDEFINED, TensorProto.BFLOAT16,
                              TensorProto.UINT8, TensorProto.BOOL, 99))
    return _bytes(m), f"initializer {t.name} data_type {t.data_type}"


def rewire(m, rng, case):
    g = m.graph
    kind = rng.random()
    if kind < 0.25 and g.node:
        i = rng.randrange(len(g.node))
        del g.node[i]
        return _bytes(m), f"remove node {i}"
    if kind < 0.45 and g.node:
        n = _pick(rng, g.node)
        g.node.append(n)  # two producers of one value
        return _bytes(m), "duplicate a node (SSA violation)"
    if kind < 0.6 and g.output:
        g.output[0].name = rng.choice(("nowhere", g.input[0].name if g.input else "x"))
        return _bytes(m), f"graph output renamed to {g.output[0].name}"
    if kind < 0.75:
        nodes = list(g.node)
        rng.shuffle(nodes)
        del g.node[:]
        g.node.extend(nodes)
        return _bytes(m), "shuffle node order"
    if kind < 0.85 and g.input:
        del g.input[:]
        return _bytes(m), "remove all graph inputs"
    n = _pick(rng, g.node)
    if n is None or not n.input:
        return truncate(m, rng, case)
    n.input[rng.randrange(len(n.input))] = rng.choice(("", "undefined_tensor"))
    return _bytes(m), "node input emptied/undefined"


def external_data(m, rng, case):
    """Move a weight to external data; the location is inside the folder (valid), or escapes it
    (relative traversal, absolute path, symlink), or the offset/length are wrong."""
    inits = [t for t in _float_inits(m) if np.prod(t.dims) >= 4]
    if not inits:
        return flip_bytes(m, rng, case)
    t = _pick(rng, inits)
    raw = numpy_helper.to_array(t).tobytes()
    outside = case.parent / f"outside-{case.name}.bin"
    outside.write_bytes(raw)  # a file with the right bytes: reading it would "work"
    kind = rng.choice(("inside", "inside", "dotdot", "absolute", "etc_passwd", "symlink",
                       "nested_dotdot", "bad_offset", "missing", "dir"))
    location, offset, length = "weights.bin", 0, len(raw)
    if kind in ("inside", "bad_offset"):
        (case / "weights.bin").write_bytes(raw)
        if kind == "bad_offset":
            offset, length = rng.choice(((-8, length), (len(raw) + 64, length), (0, 2**40),
                                         (0, length - 4)))
    elif kind == "dotdot":
        location = f"../{outside.name}"
    elif kind == "nested_dotdot":
        (case / "sub").mkdir(exist_ok=True)
        location = f"sub/../../{outside.name}"
    elif kind == "absolute":
        location = str(outside.resolve())
    elif kind == "etc_passwd":
        location = rng.choice(("../../../../../../etc/passwd", "/etc/passwd", "/proc/self/environ"))
    elif kind == "symlink":
        (case / "link.bin").symlink_to(outside.resolve())
        location = "link.bin"
    elif kind == "dir":
        (case / "adir").mkdir(exist_ok=True)
        location = "adir"
    else:
        location = "not-there.bin"
    t.ClearField("raw_data")
    del t.float_data[:]
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        t.external_data.add(key=k, value=v)
    return _bytes(m), f"external data {kind}: {location!r} offset {offset} length {length}"


MUTATORS: dict[str, Mutator] = {
    "truncate": truncate,
    "flip_bytes": flip_bytes,
    "drop_initializer": drop_initializer,
    "bad_dims": bad_dims,
    "nonfinite_weights": nonfinite_weights,
    "insert_cycle": insert_cycle,
    "unknown_op": unknown_op,
    "flip_attribute": flip_attribute,
    "flip_dtype": flip_dtype,
    "rewire": rewire,
    "external_data": external_data,
}


def mutate(model: onnx.ModelProto, rng: random.Random, case: Path) -> tuple[bytes, str]:
    """One or two stacked mutations (the second only for structural ones), chosen by ``rng``."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    name = rng.choice(sorted(MUTATORS))
    if name not in ("truncate", "flip_bytes", "external_data") and rng.random() < 0.2:
        second = rng.choice(sorted(set(MUTATORS) - {"truncate", "flip_bytes", "external_data"}))
        data, first_desc = MUTATORS[second](m, rng, case)
        m = onnx.ModelProto()
        try:
            m.ParseFromString(data)
        except Exception:
            return data, f"{second}: {first_desc}"
        data, desc = MUTATORS[name](m, rng, case)
        return data, f"{second}: {first_desc}; {name}: {desc}"
    data, desc = MUTATORS[name](m, rng, case)
    return data, f"{name}: {desc}"
