"""Python API behind the CLI: compile a model to an artifact, load it, simulate it.

Example:
    >>> import snnc  # doctest: +SKIP
    >>> art = snnc.compile("examples/lenet/lenet.onnx", method="fs",
    ...                    calib="examples/lenet/calib.npz", out="lenet.snnc")
    >>> snnc.simulate(art, "examples/lenet/test.npz")["accuracy"]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from snnc import evaluate
from snnc.artifact import Artifact, load_artifact, write_artifact
from snnc.compiler.convert.rate_calibration import check_rate_calibration
from snnc.compiler.frontend import is_nir_model, load_nir, load_onnx, read_model
from snnc.compiler.frontend.nir_loader import nir_dt
from snnc.compiler.frontend.nir_reader import nir_source, read_nir
from snnc.compiler.frontend.onnx_loader import model_file_bytes
from snnc.compiler.nir_pipeline import compile_nir
from snnc.compiler.pipeline import METHODS, CompileOptions, compile_graph, timing_of
from snnc.compiler.placement import split_summary
from snnc.data import load_dataset
from snnc.errors import SnncError
from snnc.evaluate import (
    EXPORT_FORMATS,
    Metrics,
    data_file,
    float_graph,
    float_graph_files,
    float_vs_fixed,
)
from snnc.ir import neurons
from snnc.metrics.model_stats import layer_table
from snnc.targets import load_target

__all__ = ["compile_model", "from_torch", "load", "simulate_artifact", "Metrics", "float_graph",
           "quantization_cost", "export_artifact", "estimate_spikes", "EXPORT_FORMATS"]

_TARGETS = ("cpu", "loihi1", "loihi2")


def compile_model(model, *, target: str = "cpu", method: str = "fs", calib=None,
                  timesteps: int | None = None, percentile: float | None = None, out=None,
                  on_pass: Callable[[str, float], None] | None = None,
                  finetune=None, epochs: int | None = None, seed: int = 0,
                  on_epoch: Callable[..., None] | None = None, target_file=None,
                  approximate_lrn: bool = False, dt: float | None = None,
                  rate_calibration: str = "none", approximate_norm: bool = False,
                  deterministic: bool = False) -> Artifact:
    """Compile an ONNX model into an artifact directory; returns the loaded artifact.

    ``model`` is a path to an .onnx file, an ``onnx.ModelProto`` or its serialized bytes.
    ``out`` defaults to MODEL.snnc next to a model file; for an in-memory model (no file) it
    defaults to ``NAME.snnc`` in a fresh temporary directory (``tempfile.mkdtemp``, never removed
    by snnc; ``artifact.path`` says where): pass ``out`` to keep the artifact somewhere known.

    ``calib`` and ``finetune`` are DATA.npz paths or samples in memory (an array ``x``, a tuple
    ``(x, y)``, or a mapping with ``x`` and ``y``). ``finetune`` (with labels) fine-tunes the
    converted network for ``epochs`` (default 10) with a surrogate gradient
    (convert/finetune.py), reproducibly for a ``seed`` on one machine; ``deterministic=True``
    trains in float64 so that the result is the same on any machine and thread count (about 3x
    slower), from the ONNX file on (conversion calibrates in float64, so the converted graph is
    machine-independent too). ``epochs=0`` is a no-op: the
    artifact equals the one compiled without ``finetune``. ``epochs`` without ``finetune`` is
    an error. ``target_file``: a target description (.toml) used instead of ``target``.
    ``approximate_lrn``: replace LRN layers by calibrated per-channel scales
    (passes/approximate_lrn.py; ``manifest["lrn_approximation"]`` reports the cost).
    ``approximate_norm``: replace LayerNorm/InstanceNorm/GroupNorm layers by fixed affine maps
    calibrated on ``calib`` (passes/approximate_norm.py; ``manifest["norm_approximation"]``
    reports the cost); without it such layers are an error (where not exactly foldable).
    ``rate_calibration`` (method rate): "bias" or "threshold+bias" calibrates the converted
    network layer by layer on ``calib`` (convert/rate_calibration.py); default "none".
    Fixed-point targets (loihi1, loihi2) get the quantize pass: the artifact's graph is the
    integer one, the float graph is stored beside it (``float_graph``) and
    ``manifest["quantization"]`` holds the quantization report.

    A NIR model (a .nir path or a ``nir.NIRGraph``) is a spiking network already: it is imported
    (``dt``: the discretization step, default the graph's metadata or 1e-4 s; ``timesteps``: T of
    the time-series input, default from ``calib`` or 25), quantized and placed; ``method`` and
    ``calib`` are not needed (docs/nir-import.md)."""
    if is_nir_model(model):
        return _compile_nir_model(model, target=target, calib=calib, timesteps=timesteps, dt=dt,
                                  out=out, on_pass=on_pass, target_file=target_file)
    target = _checked_options(method, target, target_file, timesteps, percentile, calib, epochs,
                              finetune)
    check_rate_calibration(rate_calibration, method)
    epochs = (10 if epochs is None else epochs) if finetune is not None else 0
    source, source_bytes, source_name = _read_source(model)
    frontend_graph = load_onnx(source)
    shape = frontend_graph.inputs[0].shape
    with data_file(calib, "calib") as path:
        calib_data = load_dataset(path, shape, what="calibration", y_kind="auto")
    train = None
    if epochs > 0:
        classes = frontend_graph.outputs[0].type.size
        with data_file(finetune, "finetune") as path:
            train = load_dataset(path, shape, num_classes=classes, require_labels=True,
                                 what="finetune")
    options = CompileOptions(method=method, target=target, timesteps=timesteps,
                             percentile=percentile, finetune_epochs=epochs, seed=seed,
                             deterministic=bool(deterministic),
                             approximate_lrn=bool(approximate_lrn),
                             approximate_norm=bool(approximate_norm),
                             rate_calibration=rate_calibration)
    result = compile_graph(source, calib_data.x, options, on_pass=on_pass,
                           finetune_data=train, on_epoch=on_epoch)
    out = Path(out) if out is not None else _default_out(model, source_name)
    graph, manifest, extra = _artifact_contents(result, options, source_name)
    path = write_artifact(out, graph, manifest, source_bytes, extra_files=extra)
    return load_artifact(path)


def _compile_nir_model(model, *, target, calib, timesteps, dt, out, on_pass,
                       target_file) -> Artifact:
    """compile_model for NIR graphs: import, quantize and place (compiler/nir_pipeline.py)."""
    target = _checked_options("rate", target, target_file, timesteps, None, "-", None, None)
    source_bytes, name = nir_source(model)
    # parsed once (errors name the file); the records are imported by compile_nir
    parsed = read_nir(model if isinstance(model, (str, os.PathLike)) else source_bytes)
    calib_data = None
    if calib is not None:
        with data_file(calib, "calib") as path:
            if timesteps is None:  # T of the calibration time series, when it has one
                timesteps = _series_steps(path, load_nir(parsed, dt=dt).inputs[0].shape)
            shape = load_nir(parsed, dt=dt, timesteps=timesteps).inputs[0].shape
            calib_data = load_dataset(path, shape, what="calibration", num_classes=None)
    result = compile_nir(parsed, target, dt=dt, timesteps=timesteps,
                         calib_x=None if calib_data is None else calib_data.x, on_pass=on_pass)
    graph = result.graph
    opts = {"target": target, "dt": nir_dt(parsed, dt),
            "timesteps": graph.inputs[0].shape[0]}
    result = replace(result, calibration={})
    graph, manifest, extra = _artifact_contents(result, CompileOptions("nir", target), name)
    steps = opts["timesteps"]
    manifest.update(options=opts, ann_macs_per_sample=manifest["ann_macs_per_sample"] * steps)
    if result.quantized is not None and calib_data is not None:
        manifest["quantization"]["cost"] = float_vs_fixed(
            result.graph, result.quantized, calib_data.x, calib_data.y)
    out = Path(out) if out is not None else _default_out(model, name)
    path = write_artifact(out, graph, manifest, source_bytes, extra_files=extra)
    return load_artifact(path)


def _series_steps(path, shape) -> int | None:
    """T of a DATA.npz whose x is (N, T, *shape[1:]); None when it is not (load_dataset then
    names the mismatch)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            x_shape = z["x"].shape
    except Exception:  # any unreadable file: load_dataset reports it
        return None
    return int(x_shape[1]) if len(x_shape) == len(shape) + 1 and x_shape[1] > 0 else None


def _checked_options(method, target, target_file, timesteps, percentile, calib, epochs,
                     finetune) -> str:
    """Every user error in the options, before any work; returns the target to compile for
    (a target file overrides ``target``)."""
    if method not in METHODS:
        raise SnncError(f"unknown method '{method}'; available: {', '.join(METHODS)}")
    if target_file is not None:  # a custom chip (.toml); overrides `target`
        load_target(target_file)  # a bad target file fails before any work (BadData)
        target = str(target_file)
    target = str(target)
    if target not in _TARGETS and not target.endswith(".toml") and target_file is None:
        raise SnncError(f"unknown target '{target}'; available: {', '.join(_TARGETS)} or a "
                        "target file (.toml)")
    if target.endswith(".toml"):
        load_target(target)  # a bad target file fails before any work
    if timesteps is not None and timesteps < 1:
        raise SnncError(f"--timesteps must be >= 1, got {timesteps}")
    if percentile is not None and not 0 < percentile <= 100:
        raise SnncError(f"--percentile must be in (0, 100], got {percentile}")
    if calib is None:
        raise SnncError("--calib DATA.npz is required: normalization needs activation statistics")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 0):
        raise SnncError(f"--epochs must be an integer >= 0, got {epochs!r}")
    if epochs is not None and finetune is None:
        raise SnncError("--epochs needs --finetune DATA.npz (the labelled training data)")
    if finetune is not None and method == "amos":
        raise SnncError("fine-tuning is not available for amos (its circuits compute the fs "
                        "values exactly: fine-tune with --method fs)")
    return target


def _artifact_contents(result, options: CompileOptions, source_name: str):
    """The deployed graph, the manifest and the extra files of a compile ``result``."""
    method, target = options.method, options.target
    graph = result.graph
    # on fixed-point targets the ttfs hybrid encoder runs on the host (q.QHybridInput)
    host_side = neurons.HybridInputNeurons if result.quantized is not None else ()
    populations = [
        {"name": n.name, "model": type(n.op).__name__, "shape": list(n.output.shape),
         "neurons": n.output.type.size * neurons.neurons_per_gate(n.op)}
        for n in graph.nodes
        if isinstance(n.op, neurons.NEURON_OPS) and not isinstance(n.op, host_side)
    ]
    manifest = {
        "target": target,
        "method": method,
        "options": {**options.to_dict(), "percentile": options.effective_percentile},
        "source_model": source_name,
        "layers": layer_table(graph),
        "populations": populations,
        "neurons": sum(p["neurons"] for p in populations),
        "ann_macs_per_sample": sum(r["macs"] for r in layer_table(result.ann)),
        "calibration": result.calibration,
        **timing_of(graph, method),
    }
    if result.lrn_approximation:
        manifest["lrn_approximation"] = result.lrn_approximation
    if result.norm_approximation:
        manifest["norm_approximation"] = result.norm_approximation
    extra = {}
    if result.placement is not None:  # Loihi-class targets: placement.json + manifest summary
        pl = result.placement
        manifest["placement"] = pl.summary()
        manifest.update(cores=pl.cores, chips=pl.chips, cores_lower_bound=pl.cores_lower_bound,
                        synapses=pl.demand["synapses"])
        extra["placement.json"] = (json.dumps(result.placement.to_json(), sort_keys=True,
                                              indent=1) + "\n").encode()
    if result.quantized is not None:  # fixed-point target: deploy the integer graph and keep
        # the ideal float graph beside it for `simulate --float` (docs/decisions.md)
        manifest["quantization"] = result.quantization
        extra.update(float_graph_files(graph))
        graph = result.quantized
        splits = split_summary(graph)
        if splits:  # fan-ins split over partial-sum relays
            manifest["fan_in_splits"] = splits
            manifest["latency_steps"] += splits["relay_levels"]  # a synapse more per level
    return graph, manifest, extra


def _read_source(model) -> tuple[object, bytes, str]:
    """(parsed model, self-contained ONNX bytes, file name) of a path, ModelProto or bytes."""
    import onnx

    if isinstance(model, (onnx.ModelProto, bytes, bytearray)):
        proto = read_model(model if isinstance(model, onnx.ModelProto) else bytes(model))
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in proto.graph.name)
        return proto, proto.SerializeToString(), f"{name.strip('._') or 'model'}.onnx"
    if not isinstance(model, (str, os.PathLike)):
        raise SnncError(f"model must be a path to an .onnx file, an onnx.ModelProto or its "
                        f"bytes, got {type(model).__name__}")
    path = Path(model)
    return read_model(path), model_file_bytes(path), path.name  # external data inlined


def _default_out(model, source_name: str) -> Path:
    """MODEL.snnc beside a model file; NAME.snnc in a fresh temp directory for in-memory ones."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model).with_suffix(".snnc")
    import tempfile

    return Path(tempfile.mkdtemp(prefix="snnc-")) / Path(source_name).with_suffix(".snnc")


def from_torch(module, example_input, *, calib=None, out=None, opset: int = 13,
               **compile_kwargs) -> Artifact:
    """Export a PyTorch module with ``torch.onnx.export`` and compile it (see ``compile_model``).

    Args:
        module: A ``torch.nn.Module`` (put in eval mode for the export).
        example_input: One input batch (a tensor, e.g. ``torch.zeros(1, 1, 28, 28)``); the
            batch axis is exported as dynamic.
        calib: Calibration data: an .npz path with ``x``, or an array/tensor of samples
            (N, ...). Default: ``example_input`` itself (use real samples for good accuracy).
        out: Output artifact; default ``NAME.snnc`` in a fresh temporary directory.
        opset: ONNX opset of the export (13, what the shipped examples use).
        **compile_kwargs: ``target``, ``method``, ``timesteps``, ``percentile``, ``finetune``...

    Raises:
        SnncError: the export failed (the message names torch's reason), or any compile error.

    Example:
        >>> art = snnc.from_torch(net, torch.zeros(1, 1, 28, 28), calib=x_train[:256],
        ...                       method="fs")  # doctest: +SKIP
    """
    import io

    import numpy as np
    import torch

    if not isinstance(module, torch.nn.Module):
        raise SnncError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor):
        example_input = torch.as_tensor(np.asarray(example_input, dtype=np.float32))
    buf = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        torch.onnx.export(module, (example_input,), buf, opset_version=opset,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, do_constant_folding=True)
    except Exception as e:  # torch raises many types (RuntimeError, TorchExportError, ...)
        text = " ".join(str(e).split())[:300]
        raise SnncError(f"torch.onnx.export failed for {type(module).__name__}: "
                        f"{type(e).__name__}: {text}") from None
    finally:
        module.train(was_training)
    import onnx

    proto = onnx.load_from_string(buf.getvalue())
    proto.graph.name = type(module).__name__
    return compile_model(proto, calib=example_input if calib is None else calib, out=out,
                         **compile_kwargs)


def load(path) -> Artifact:
    """Load and verify an artifact directory."""
    return load_artifact(path)


def _loaded(artifact: Artifact | str | Path) -> Artifact:
    return artifact if isinstance(artifact, Artifact) else load_artifact(artifact)


def simulate_artifact(artifact: Artifact | str | Path, data, **kwargs) -> Metrics:
    """Simulate an artifact (or its path) on data; see :func:`snnc.evaluate.simulate_artifact`
    for ``backend``, ``limit``, ``batch_size``, ``float_mode`` and the progress callbacks."""
    return evaluate.simulate_artifact(_loaded(artifact), data, **kwargs)


def export_artifact(artifact: Artifact | str | Path, fmt: str, out: str | Path, *,
                    nir_reader: str = "generic") -> Path:
    """Export an artifact (or its path); see :func:`snnc.evaluate.export_artifact`."""
    return evaluate.export_artifact(_loaded(artifact), fmt, out, nir_reader=nir_reader)


def estimate_spikes(artifact: Artifact | str | Path, data, **kwargs) -> dict | None:
    """A cheap spike estimate after compile; see :func:`snnc.evaluate.estimate_spikes`."""
    return evaluate.estimate_spikes(_loaded(artifact), data, **kwargs)


def quantization_cost(artifact: Artifact | str | Path, data, **kwargs) -> dict:
    """Float vs bit-exact accuracy of one artifact; see
    :func:`snnc.evaluate.quantization_cost`."""
    return evaluate.quantization_cost(_loaded(artifact), data, **kwargs)
