"""ONNX frontend: ``load_onnx(path)`` -> IR graph of ANN ops."""

from snnc.compiler.frontend.onnx_loader import load_onnx, read_model
from snnc.compiler.frontend.registry import converter, supported_ops

__all__ = ["load_onnx", "read_model", "converter", "supported_ops"]
