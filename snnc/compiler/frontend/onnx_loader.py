"""ONNX -> IR. Steps: read (external data kept inside the model's folder), structural checks
(undefined inputs, cycles; unsorted nodes are sorted), onnx checker, NaN/Inf weights, version
conversion to the canonical opset, shape inference, tensor size cap (``MAX_TENSOR_ELEMENTS``),
one pre-scan that lists every unsupported node,
then conversion node by node with constant folding of everything that does not depend on the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import onnx
from onnx import numpy_helper

from snnc.compiler.frontend import converters  # noqa: F401  (registers the converters)
from snnc.compiler.frontend.registry import BATCH, lookup, supported_ops
from snnc.errors import InvalidModel, UnsupportedOp
from snnc.ir.graph import Graph, GraphBuilder, eliminate_dead_nodes
from snnc.ir.ops import Constant, Op, ShapeError
from snnc.ir.types import TensorType, Value

__all__ = ["load_onnx", "read_model", "model_file_bytes", "ConversionContext", "CANONICAL_OPSET",
           "BATCH"]

CANONICAL_OPSET = 13
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}
# Largest tensor (elements, batch included where static) snnc will materialize: 2^30 float32 is
# 4 GiB, far beyond any network that fits neuromorphic hardware; a model asking for more is
# refused before constant folding could exhaust memory.
MAX_TENSOR_ELEMENTS = 2**30
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return node.name or (node.output[0] if node.output else f"{node.op_type}_{index}")


def _to_array(t: onnx.TensorProto) -> np.ndarray:
    """numpy_helper.to_array with malformed tensors (data size vs dims/dtype) as InvalidModel."""
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # ValueError, TypeError, KeyError (unknown dtype) from onnx/numpy
        raise InvalidModel(f"tensor '{t.name}' is malformed ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# --------------------------------------------------------------------------------------- reading
def read_model(source: str | os.PathLike | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Parse a model; external data may only come from files inside the model's folder."""
    if isinstance(source, (onnx.ModelProto, bytes)):
        model = source if isinstance(source, onnx.ModelProto) else _parse(source, "<bytes>")
        # Without a file there is no folder to confine external data to (onnx would read paths
        # relative to the working directory).
        if _external_tensors(model):
            raise InvalidModel(f"tensor '{_external_tensors(model)[0].name}' refers to external "
                               "data; load the model from its file path")
        return model
    path = Path(source)
    if not path.is_file():
        raise InvalidModel(f"model file '{path}' does not exist")
    model = _parse(path.read_bytes(), str(path))
    _load_external_data(model, path.parent)
    return model


def model_file_bytes(path: str | os.PathLike) -> bytes:
    """A model file's bytes as a self-contained ONNX model: the file itself, or, when it keeps
    weights in external data files, the model with those weights inlined -- an artifact must
    never point back into the source folder (nor make onnxruntime read files relative to the
    working directory)."""
    path = Path(path)
    raw = path.read_bytes()
    model = _parse(raw, str(path))
    if not _external_tensors(model):
        return raw
    _load_external_data(model, path.parent)
    return model.SerializeToString()


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and, on some bytes, RuntimeWarning/ValueError
        raise InvalidModel(f"'{label}' is not an ONNX model ({_first_line(e)})") from e
    if not model.HasField("graph") or not model.opset_import:
        raise InvalidModel(f"'{label}' is not an ONNX model (no graph or opset)")
    return model


def _load_external_data(model: onnx.ModelProto, base: Path) -> None:
    """Inline every external tensor, reading only regular files inside ``base`` (after resolving
    symlinks and ``..``). snnc reads the bytes itself from the checked path rather than letting
    onnx join the location again, and validates offset and length against the file."""
    base = base.resolve()
    for tensor in _external_tensors(model):
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        label = f"tensor '{tensor.name}': external data '{loc}'"
        if not loc or "\0" in loc:
            raise InvalidModel(f"tensor '{tensor.name}': external data has no valid location")
        try:
            target = (base / loc).resolve()
        except (OSError, RuntimeError, ValueError) as e:  # symlink loops, bad names
            raise InvalidModel(f"{label} cannot be resolved ({_first_line(e)})") from None
        if os.path.isabs(loc) or (base != target and base not in target.parents):
            raise InvalidModel(f"{label} lies outside the model's folder")
        if not target.is_file():
            raise InvalidModel(f"{label}: file not found (or not a regular file)")
        try:
            offset = int(info.get("offset", "0") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise InvalidModel(f"{label}: offset/length are not integers") from None
        size = target.stat().st_size
        if offset < 0 or (length is not None and length < 0) or offset > size \
                or offset + (length or 0) > size:
            raise InvalidModel(f"{label}: offset {offset} and length {length} do not fit the "
                               f"file ({size} bytes)")
        with open(target, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(-1 if length is None else length)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


# -------------------------------------------------------------------------------- validation
def _opset(model: onnx.ModelProto, domain: str = "") -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and domain == "" or o.domain == domain:
            return o.version
    return 0


def _check_structure(model: onnx.ModelProto) -> None:
    """Undefined inputs and cycles get precise messages; acyclic unsorted graphs are sorted."""
    import networkx as nx

    g = model.graph
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    producer = {}
    for idx, n in enumerate(g.node):
        for o in n.output:
            producer[o] = idx
    for idx, n in enumerate(g.node):
        for name in n.input:
            if name not in defined and name not in producer:
                raise InvalidModel(f"node '{_node_label(n, idx)}' ({n.op_type}): input '{name}' is "
                                   "not produced by any node, initializer or graph input")
    for o in g.output:
        if o.name not in defined and o.name not in producer:
            raise InvalidModel(f"graph output '{o.name}' is not produced by any node")
    dg = nx.DiGraph()
    dg.add_nodes_from(range(len(g.node)))
    dg.add_edges_from((producer[i], idx) for idx, n in enumerate(g.node) for i in n.input
                      if i in producer)
    if not nx.is_directed_acyclic_graph(dg):
        cycle = [_node_label(g.node[u], u) for u, _ in nx.find_cycle(dg)]
        raise InvalidModel(f"graph has a cycle: {' -> '.join(cycle + cycle[:1])}")
    order = list(nx.lexicographical_topological_sort(dg))
    if order != sorted(order):
        nodes = [g.node[i] for i in order]
        del g.node[:]
        g.node.extend(nodes)


def _check_weights(model: onnx.ModelProto) -> None:
    # Constant values and ConstantOfShape fills are weights too.
    tensors = [(f"initializer '{t.name}'", t) for t in model.graph.initializer] + [
        (f"node '{_node_label(n, i)}' ({n.op_type}) attribute '{a.name}'", a.t)
        for i, n in enumerate(model.graph.node) for a in n.attribute
        if a.type == onnx.AttributeProto.TENSOR]
    for label, t in tensors:
        if t.data_type not in _FLOAT_TYPES:
            continue
        a = _to_array(t)
        if not np.all(np.isfinite(a)):
            bad = "NaN" if np.isnan(a).any() else "Inf"
            raise InvalidModel(f"{label} contains {bad} values")


def _validate(model: onnx.ModelProto) -> onnx.ModelProto:
    _check_structure(model)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise InvalidModel(f"invalid ONNX model: {_first_line(e)}") from e
    _check_weights(model)
    opset = _opset(model)
    if opset < CANONICAL_OPSET:
        upsampled = {n.output[0] for n in model.graph.node if n.op_type == "Upsample"}
        try:
            model = onnx.version_converter.convert_version(model, CANONICAL_OPSET)
        except Exception:
            pass  # old-opset converters in the registry handle what the converter cannot
        _keep_upsample_semantics(model, upsampled)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:
        raise InvalidModel(f"ONNX shape inference failed: {_first_line(e)}") from e
    _check_sizes(model)
    return model


def _keep_upsample_semantics(model: onnx.ModelProto, upsampled: set[str]) -> None:
    """Give the Resize nodes onnx's version converter made of Upsample nodes (producing the
    values ``upsampled``) Upsample's own coordinates: the converter keeps only ``mode``, so
    the Resize defaults (half_pixel, round_prefer_floor) applied, while Upsample (and
    onnxruntime running it) maps output o to input o / scale, floored in nearest mode."""
    for n in model.graph.node:
        if n.op_type != "Resize" or n.output[0] not in upsampled:
            continue
        kept = [a for a in n.attribute
                if a.name not in ("coordinate_transformation_mode", "nearest_mode")]
        del n.attribute[:]
        n.attribute.extend([*kept, onnx.helper.make_attribute(
            "coordinate_transformation_mode", "asymmetric"),
            onnx.helper.make_attribute("nearest_mode", "floor")])


def _check_sizes(model: onnx.ModelProto) -> None:
    """Refuse tensors (as declared or inferred) larger than MAX_TENSOR_ELEMENTS."""
    g = model.graph
    declared = [(v.name, [d.dim_value if d.HasField("dim_value") else 1
                          for d in v.type.tensor_type.shape.dim])
                for v in [*g.input, *g.value_info, *g.output]]
    declared += [(t.name, list(t.dims)) for t in g.initializer]
    for name, dims in declared:
        if any(d < 0 for d in dims):
            raise InvalidModel(f"tensor '{name}' has a negative dimension {dims}")
        size = 1
        for d in dims:
            size *= d
        if size > MAX_TENSOR_ELEMENTS:
            raise InvalidModel(f"tensor '{name}' of shape {dims} has {size:,} elements; snnc "
                               f"materializes at most {MAX_TENSOR_ELEMENTS:,} per tensor")


# -------------------------------------------------------------------------------- conversion
class ConversionContext:
    """What a converter sees: the builder, the current node, and helpers for errors/constants."""

    def __init__(self, builder: GraphBuilder, opset: int, static_batch: int | None) -> None:
        self.builder = builder
        self.opset = opset
        self.static_batch = static_batch
        self.node: onnx.NodeProto | None = None
        self.label = ""

    def fail(self, what: str) -> NoReturn:
        raise UnsupportedOp(f"node '{self.label}' ({self.node.op_type}, opset {self.opset}): {what}")

    def add(self, op: Op, *inputs: Value, suffix: str = "") -> Value:
        name = (self.node.output[0] or self.label) + suffix
        try:
            return self.builder.add(name, op, *inputs)
        except ShapeError as e:
            self.fail(str(e))

    def tensor(self, x: Value | np.ndarray, full_rank: int) -> Value:
        """``x`` as an IR value that broadcasts against a full-rank (batch included) tensor."""
        if isinstance(x, Value):
            return x
        a = np.asarray(x)
        if a.ndim == full_rank:
            if a.shape[0] != 1:
                self.fail(f"constant operand of shape {list(a.shape)} varies along the batch axis")
            a = a[0]
        elif a.ndim > full_rank:
            self.fail(f"constant operand of rank {a.ndim} broadcasts the input to a higher rank")
        if a.dtype.kind in "fiub":
            a = a.astype(np.float32)
        return self.add(Constant(a), suffix=f"/const{len(self.builder._nodes)}")

    def axis(self, axis: int, full_rank: int) -> int:
        """ONNX axis (batch is axis 0) -> per-sample axis; the batch axis is rejected."""
        a = axis + full_rank if axis < 0 else axis
        if not 0 <= a < full_rank:
            self.fail(f"axis {axis} out of range for rank {full_rank}")
        if a == 0:
            self.fail("operating along the batch axis is unsupported")
        return a - 1

    def constant(self, x: object, what: str) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            self.fail(f"{what} must be a constant (initializer), not computed from the input")
        return x


def _attributes(node: onnx.NodeProto) -> dict[str, object]:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = _to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def _fold(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None], opset: int) -> list:
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    feeds = {n: x for n, x in zip(names, inputs) if x is not None}
    folded = onnx.helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                                   domain=node.domain)
    folded.attribute.extend(node.attribute)
    graph = onnx.helper.make_graph(
        [folded], "fold",
        [onnx.helper.make_tensor_value_info(
            n, onnx.helper.np_dtype_to_tensor_dtype(x.dtype), None) for n, x in feeds.items()],
        [onnx.helper.make_empty_tensor_value_info(o) for o in folded.output])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    # Overflow/invalid warnings would print to stderr; non-finite results are refused by the
    # caller with an error naming the node instead.
    with np.errstate(all="ignore"):
        return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, feeds)]


def _graph_inputs(model: onnx.ModelProto, b: GraphBuilder) -> tuple[dict, int | None]:
    inits = {t.name for t in model.graph.initializer}
    env: dict[str, object] = {}
    static_batch = None
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
            raise UnsupportedOp(f"graph input '{inp.name}' is not a float tensor")
        dims = list(tt.shape.dim)
        if not tt.HasField("shape") or len(dims) < 2:
            raise UnsupportedOp(f"graph input '{inp.name}' needs a static shape with a batch axis "
                                f"first (got rank {len(dims)})")
        for i, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise UnsupportedOp(f"graph input '{inp.name}' has dynamic dimension "
                                    f"'{d.dim_param or '?'}' at axis {i}; only the batch axis (0) "
                                    "may be dynamic")
        if dims[0].HasField("dim_value"):
            static_batch = dims[0].dim_value
        env[inp.name] = b.input(inp.name, TensorType(tuple(d.dim_value for d in dims[1:])))
    if not b._inputs:
        raise UnsupportedOp("the model has no non-constant graph input")
    return env, static_batch


def _prescan(model: onnx.ModelProto, opset: int) -> None:
    """Report every node that has no converter and cannot be constant-folded, all at once."""
    const = {t.name for t in model.graph.initializer}
    bad = []
    for idx, n in enumerate(model.graph.node):
        inputs_const = all(i in const or i == "" for i in n.input)
        foldable = (inputs_const or n.op_type == "Shape") and n.op_type not in _NONDETERMINISTIC \
            and n.domain in ("", "ai.onnx")
        if foldable:
            const.update(n.output)
        elif lookup(n.op_type, opset, n.domain) is None:
            dom = f"{n.domain}." if n.domain not in ("", "ai.onnx") else ""
            bad.append(f"node '{_node_label(n, idx)}' ({dom}{n.op_type}, opset {opset})")
    if bad:
        raise UnsupportedOp(f"unsupported op{'s' if len(bad) > 1 else ''}: {'; '.join(bad)}. "
                            f"Supported: {', '.join(supported_ops())}")


def load_onnx(source: str | os.PathLike | bytes | onnx.ModelProto) -> Graph:
    """Load an ONNX model into the IR (ANN ops, static per-sample shapes, dead code removed).

    Raises:
        InvalidModel: the file is not a valid ONNX model.
        UnsupportedOp: valid ONNX that snnc cannot lower; the message names every offending node.
    """
    model = _validate(read_model(source))
    opset = _opset(model)
    _prescan(model, opset)
    b = GraphBuilder(model.graph.name or "main")
    env, static_batch = _graph_inputs(model, b)
    for t in model.graph.initializer:
        env[t.name] = _to_array(t)
    ctx = ConversionContext(b, opset, static_batch)
    unsupported_outputs: dict[str, str] = {}
    for idx, node in enumerate(model.graph.node):
        ctx.node, ctx.label = node, _node_label(node, idx)
        for name in node.input:
            if name in unsupported_outputs:
                ctx.fail(unsupported_outputs[name])
        inputs = [env[i] if i else None for i in node.input]
        dynamic = any(isinstance(x, Value) for x in inputs)
        if node.op_type == "Shape" and isinstance(inputs[0], Value):
            attrs = _attributes(node)
            full = np.array([BATCH, *inputs[0].shape], np.int64)
            env[node.output[0]] = full[attrs.get("start", 0):attrs.get("end", len(full))]
            continue
        if not dynamic and node.op_type not in _NONDETERMINISTIC:
            try:
                outs = _fold(node, inputs, opset)
            except Exception as e:
                ctx.fail(f"constant folding failed: {_first_line(e)}")
            for o in outs:  # finite weights can still fold to NaN/Inf (overflow, 0/0, log 0)
                if o.dtype.kind in "fc" and not np.all(np.isfinite(o)):
                    raise InvalidModel(f"node '{ctx.label}' ({node.op_type}): constant-folded "
                                       "weights contain NaN/Inf values")
            env.update(zip(node.output, outs))
            continue
        fn = lookup(node.op_type, opset, node.domain)
        try:
            out = fn(ctx, *inputs, **_attributes(node))
        except TypeError as e:
            if "unexpected keyword argument" in str(e):
                ctx.fail(f"attribute {str(e).split('argument')[-1].strip()} unsupported")
            raise
        env[node.output[0]] = out
        for k, extra in enumerate(node.output[1:], start=1):
            if extra:
                unsupported_outputs[extra] = f"output {k} ('{extra}') is unsupported"
    outputs = []
    for o in model.graph.output:
        v = env[o.name]
        if not isinstance(v, Value):
            raise UnsupportedOp(f"graph output '{o.name}' does not depend on the model input")
        outputs.append(v)
    return eliminate_dead_nodes(b.build(outputs))

