"""Frontends: ``load_onnx(path)`` -> IR graph of ANN ops; ``load_nir(path)`` -> IR graph of an
imported spiking network (NIR)."""

from snnc.compiler.frontend.nir_loader import is_nir_model, load_nir
from snnc.compiler.frontend.onnx_loader import load_onnx, read_model
from snnc.compiler.frontend.registry import converter, supported_ops

__all__ = ["load_onnx", "read_model", "converter", "supported_ops", "load_nir", "is_nir_model"]
