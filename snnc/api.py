"""Python API behind the CLI: compile a model to an artifact, load it, simulate it.

Example:
    >>> import snnc  # doctest: +SKIP
    >>> art = snnc.compile("examples/lenet/lenet.onnx", method="fs",
    ...                    calib="examples/lenet/calib.npz", out="lenet.snnc")
    >>> snnc.simulate(art, "examples/lenet/test.npz")["accuracy"]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from snnc.artifact import Artifact, load_artifact, write_artifact
from snnc.compiler.frontend import read_model
from snnc.compiler.pipeline import METHODS, CompileOptions, compile_graph, timing_of
from snnc.data import load_dataset
from snnc.errors import BackendError, SnncError
from snnc.ir import neurons
from snnc.report.model_stats import layer_table

__all__ = ["compile_model", "load", "simulate_artifact"]

_TARGETS = ("cpu", "loihi1", "loihi2")


def compile_model(model, *, target: str = "cpu", method: str = "fs", calib=None,
                  timesteps: int | None = None, percentile: float | None = None, out=None,
                  on_pass: Callable[[str, float], None] | None = None) -> Artifact:
    """Compile an ONNX model (path) into an artifact directory; returns the loaded artifact."""
    if method not in METHODS:
        raise SnncError(f"unknown method '{method}'; available: {', '.join(METHODS)}")
    if target not in _TARGETS:
        raise SnncError(f"unknown target '{target}'; available: {', '.join(_TARGETS)}")
    if target != "cpu":
        raise SnncError(f"target '{target}': fixed-point quantization and core placement are not "
                        "implemented yet; use --target cpu")
    if timesteps is not None and timesteps < 1:
        raise SnncError(f"--timesteps must be >= 1, got {timesteps}")
    if percentile is not None and not 0 < percentile <= 100:
        raise SnncError(f"--percentile must be in (0, 100], got {percentile}")
    if calib is None:
        raise SnncError("--calib DATA.npz is required: normalization needs activation statistics")
    model_path = Path(model)
    source = read_model(model_path)
    source_bytes = model_path.read_bytes()
    from snnc.compiler.frontend import load_onnx

    shape = load_onnx(source).inputs[0].shape
    calib_data = load_dataset(calib, shape, what="calibration")
    options = CompileOptions(method=method, target=target, timesteps=timesteps,
                             percentile=percentile)
    result = compile_graph(source, calib_data.x, options, on_pass=on_pass)
    graph = result.graph
    populations = [
        {"name": n.name, "model": type(n.op).__name__, "shape": list(n.output.shape),
         "neurons": n.output.type.size}
        for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)
    ]
    manifest = {
        "target": target,
        "method": method,
        "options": {**options.to_dict(), "percentile": options.effective_percentile},
        "source_model": model_path.name,
        "layers": layer_table(graph),
        "populations": populations,
        "neurons": sum(p["neurons"] for p in populations),
        "ann_macs_per_sample": sum(r["macs"] for r in layer_table(result.ann)),
        "calibration": result.calibration,
        **timing_of(graph, method),
    }
    out = Path(out) if out is not None else model_path.with_suffix(".snnc")
    path = write_artifact(out, graph, manifest, source_bytes)
    return load_artifact(path)


def load(path) -> Artifact:
    """Load and verify an artifact directory."""
    return load_artifact(path)


def simulate_artifact(artifact: Artifact | str | Path, data, *, backend: str = "cpu",
                      limit: int | None = None, batch_size: int | None = None,
                      on_start: Callable[[int], None] | None = None,
                      on_batch: Callable[[int], None] | None = None) -> dict:
    """Simulate on a data file; return the metrics dict of the CLI contract (DESIGN.md)."""
    from snnc.backends.reference.simulator import simulate
    from snnc.report.metrics import ann_predict, build_metrics

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    if backend != "cpu":
        raise BackendError(f"backend '{backend}' is not available yet; use --backend cpu")
    if batch_size is not None and batch_size < 1:
        raise SnncError(f"--batch-size must be >= 1, got {batch_size}")
    graph = art.graph
    classes = graph.outputs[0].type.size if len(graph.outputs[0].shape) == 1 else None
    ds = load_dataset(data, graph.inputs[0].shape, num_classes=classes, limit=limit)
    if on_start is not None:
        on_start(len(ds))
    result = simulate(graph, ds.x, batch_size=batch_size, progress=on_batch)
    ann_out = ann_predict(art.source_model, ds.x)
    return build_metrics(snn_out=result.outputs[0], ann_out=ann_out, labels=ds.y, result=result,
                         ann_graph_macs=art.manifest["ann_macs_per_sample"], graph=graph,
                         timing={k: art.manifest[k] for k in ("latency_steps",
                                                              "throughput_steps")})
