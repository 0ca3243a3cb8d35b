"""snnc: compile trained ANNs (ONNX) into spiking networks for Loihi-class hardware."""

from snnc.errors import SnncError
from snnc.version import __version__


def load_onnx(path_or_model):
    """Load an ONNX model (path, bytes or ModelProto) into snnc's IR (see
    ``snnc.compiler.frontend``)."""
    from snnc.compiler.frontend import load_onnx as _load

    return _load(path_or_model)


__all__ = ["__version__", "SnncError", "load_onnx"]


def compile(model_or_path, *, target: str = "cpu", method: str = "fs", calib=None, out=None,
            **kwargs):
    """Compile an ONNX model (path, ``onnx.ModelProto`` or bytes), or a spiking network in NIR
    (a .nir path or a ``nir.NIRGraph``; ``dt=``, no ``method``/``calib`` needed), into an
    ``Artifact``.

    ``calib`` is a DATA.npz path or samples in memory; ``out`` defaults to MODEL.snnc beside a
    model file, or a fresh temporary directory for in-memory models. See
    :func:`snnc.api.compile_model` for ``timesteps``, ``percentile``, ``finetune``...

    Example:
        >>> art = snnc.compile("examples/lenet/lenet.onnx", method="fs",
        ...                    calib="examples/lenet/calib.npz")  # doctest: +SKIP
        >>> art.simulate("examples/lenet/test.npz", limit=100).accuracy  # doctest: +SKIP
    """
    from snnc.api import compile_model

    return compile_model(model_or_path, target=target, method=method, calib=calib, out=out,
                         **kwargs)


def from_torch(module, example_input, **kwargs):
    """Export a ``torch.nn.Module`` with ``torch.onnx.export`` and compile it; returns an
    ``Artifact``. See :func:`snnc.api.from_torch` (``calib``, ``method``, ``target``, ``out``)."""
    from snnc.api import from_torch as _from_torch

    return _from_torch(module, example_input, **kwargs)


def load(path):
    """Load a compiled artifact. See :func:`snnc.api.load`."""
    from snnc.api import load as _load

    return _load(path)


def simulate(artifact, data, **kwargs):
    """Simulate an artifact (or its path) on data; returns ``Metrics``, the metrics dict of
    ``simulate --json`` with attribute access. See :func:`snnc.api.simulate_artifact`."""
    from snnc.api import simulate_artifact

    return simulate_artifact(artifact, data, **kwargs)


def sweep(model, *, calib, data, **kwargs):
    """Compile and simulate a grid of methods x time windows; returns one row (dict) per
    point: accuracy, energy per inference, latency steps, ``pareto``. ``ray=True`` runs the
    points as Ray tasks. See :func:`snnc.sweeps.sweep` and docs/scale-out.md."""
    from snnc.sweeps import sweep as _sweep

    return _sweep(model, calib=calib, data=data, **kwargs)


__all__ += ["compile", "from_torch", "load", "simulate", "sweep"]
