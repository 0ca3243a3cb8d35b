"""snnc: compile trained ANNs (ONNX) into spiking networks for Loihi-class hardware."""

__version__ = "0.1.0"

from snnc.errors import SnncError  # noqa: E402


def load_onnx(path_or_model):
    """Load an ONNX model (path, bytes or ModelProto) into snnc's IR. See ``snnc.compiler.frontend``."""
    from snnc.compiler.frontend import load_onnx as _load

    return _load(path_or_model)


__all__ = ["__version__", "SnncError", "load_onnx"]


def compile(model, **kwargs):
    """Compile an ONNX model into an artifact. See :func:`snnc.api.compile_model`."""
    from snnc.api import compile_model

    return compile_model(model, **kwargs)


def load(path):
    """Load a compiled artifact. See :func:`snnc.api.load`."""
    from snnc.api import load as _load

    return _load(path)


def simulate(artifact, data, **kwargs):
    """Simulate an artifact on a data file; returns the metrics dict."""
    from snnc.api import simulate_artifact

    return simulate_artifact(artifact, data, **kwargs)


__all__ += ["compile", "load", "simulate"]
