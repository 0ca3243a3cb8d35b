"""ONNX test helpers: onnxruntime as the oracle, one-node model builders, tolerances.

Import them as ``from support.onnx_models import ...``, not from ``conftest``: with several
conftest.py files in the tree (tests/backends/lava/ has one), ``import conftest`` gets whichever
pytest imported last.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

__all__ = ["RTOL", "assert_close", "check_against_ort", "one_node_model", "ort_run",
           "random_feeds", "resize_model", "with_output_shapes"]

# Float path vs onnxruntime: max |snnc - ort| <= RTOL * max |ort| per output (normwise relative
# error; elementwise relative error is meaningless at softmax outputs near 0).
RTOL = 1e-4


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` on onnxruntime. Models of opsets ORT no longer implements (e.g. Gemm-6 in
    the onnx backend data) run after onnx's version converter, which preserves semantics."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception:
        converted = onnx.version_converter.convert_version(model, 13)
        sess = ort.InferenceSession(converted.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_close(got: np.ndarray, ref: np.ndarray, rtol: float = RTOL) -> None:
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-12)
    err = float(np.abs(got.astype(np.float64) - ref).max()) / scale
    assert err <= rtol, f"normwise relative error {err:.3g} > {rtol}"


def random_feeds(model: onnx.ModelProto, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else batch
                for d in i.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
        feeds[i.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def check_against_ort(model: onnx.ModelProto, batch: int = 2, seed: int = 0,
                      rtol: float = RTOL):
    """Load ``model`` with snnc, verify the IR, compare the interpreter with onnxruntime."""
    from snnc.compiler.frontend import load_onnx
    from snnc.ir import verify
    from snnc.ir.interpret import run_ann

    graph = verify(load_onnx(model))
    feeds = random_feeds(model, batch, seed)
    refs = ort_run(model, feeds)
    outs = run_ann(graph, *feeds.values())
    assert len(outs) == len(refs)
    for got, ref in zip(outs, refs):
        assert_close(got, ref, rtol)
    return graph


def one_node_model(op_type: str, input_shape, output_rank=None, *, initializers=(),
                   extra_inputs=(), opset: int = 13, **attrs) -> onnx.ModelProto:
    """A model with one node ``op_type(x, *initializers)``; output shape left to inference."""
    inits = [numpy_helper.from_array(np.asarray(a), name=f"c{i}")
             for i, a in enumerate(initializers)]
    node = helper.make_node(op_type, ["x", *extra_inputs, *(t.name for t in inits)], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "one_node",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        inits)
    return with_output_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def resize_model(shape, out=None, *, scales=None, sizes=None, opset: int = 13,
                 **attrs) -> onnx.ModelProto:
    """One Resize node on (N, *shape) inputs with an empty roi and ``scales`` or ``sizes`` as
    initializers; ``out``: the per-sample output shape (default: from sizes, else the scales
    rounded down)."""
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    names = ["x", "roi"]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
        names.append("scales")
    else:
        names.append("")
    if sizes is not None:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        names.append("sizes")
    if out is None:
        out = sizes[1:] if sizes is not None else [int(d * f) for d, f in zip(shape, scales[1:])]
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "resize",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", *out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def with_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fill graph output shapes by shape inference (the checker requires them)."""
    model.ir_version = min(model.ir_version, 8)  # what onnxruntime reads
    inferred = onnx.shape_inference.infer_shapes(model)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model
