"""ONNX op converters, one module per op family; importing this package registers them all."""

from snnc.compiler.frontend.converters import (  # noqa: F401
    activations,
    conv,
    elementwise,
    gemm,
    normalization,
    pool,
    resize,
    shape_ops,
)
