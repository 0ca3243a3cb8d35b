"""Python API behind the CLI: compile a model to an artifact, load it, simulate it.

Example:
    >>> import snnc  # doctest: +SKIP
    >>> art = snnc.compile("examples/lenet/lenet.onnx", method="fs",
    ...                    calib="examples/lenet/calib.npz", out="lenet.snnc")
    >>> snnc.simulate(art, "examples/lenet/test.npz")["accuracy"]
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from snnc.artifact import Artifact, atomic_file, load_artifact, write_artifact
from snnc.compiler.frontend import read_model
from snnc.compiler.frontend.onnx_loader import model_file_bytes
from snnc.compiler.pipeline import METHODS, CompileOptions, compile_graph, timing_of
from snnc.data import load_dataset
from snnc.errors import BackendError, BadData, SnncError
from snnc.ir import neurons
from snnc.report.model_stats import layer_table

__all__ = ["compile_model", "from_torch", "load", "simulate_artifact", "Metrics", "float_graph",
           "quantization_cost", "export_artifact", "estimate_spikes", "EXPORT_FORMATS"]

_TARGETS = ("cpu", "loihi1", "loihi2")


def compile_model(model, *, target: str = "cpu", method: str = "fs", calib=None,
                  timesteps: int | None = None, percentile: float | None = None, out=None,
                  on_pass: Callable[[str, float], None] | None = None,
                  finetune=None, epochs: int | None = None, seed: int = 0,
                  on_epoch: Callable[..., None] | None = None, target_file=None,
                  approximate_lrn: bool = False) -> Artifact:
    """Compile an ONNX model into an artifact directory; returns the loaded artifact.

    ``model`` is a path to an .onnx file, an ``onnx.ModelProto`` or its serialized bytes.
    ``out`` defaults to MODEL.snnc next to a model file; for an in-memory model (no file) it
    defaults to ``NAME.snnc`` in a fresh temporary directory (``tempfile.mkdtemp``, never removed
    by snnc; ``artifact.path`` says where): pass ``out`` to keep the artifact somewhere known.

    ``calib`` and ``finetune`` are DATA.npz paths or samples in memory (an array ``x``, a tuple
    ``(x, y)``, or a mapping with ``x`` and ``y``). ``finetune`` (with labels) fine-tunes the
    converted network for ``epochs`` (default 10) with a surrogate gradient
    (passes/finetune.py), deterministically for a ``seed``. ``epochs=0`` is a no-op: the
    artifact equals the one compiled without ``finetune``. ``epochs`` without ``finetune`` is
    an error. ``target_file``: a target description (.toml) used instead of ``target``.
    ``approximate_lrn``: replace LRN layers by calibrated per-channel scales
    (passes/approximate_lrn.py; ``manifest["lrn_approximation"]`` reports the cost).
    Fixed-point targets (loihi1, loihi2) get the quantize pass: the artifact's graph is the
    integer one, the float graph is stored beside it (``float_graph``) and
    ``manifest["quantization"]`` holds the quantization report."""
    if method not in METHODS:
        raise SnncError(f"unknown method '{method}'; available: {', '.join(METHODS)}")
    if target_file is not None:  # a custom chip (.toml); overrides `target`
        from snnc.targets import load_target

        load_target(target_file)  # a bad target file fails before any work (BadData)
        target = str(target_file)
    target = str(target)
    if target not in _TARGETS and not target.endswith(".toml") and target_file is None:
        raise SnncError(f"unknown target '{target}'; available: {', '.join(_TARGETS)} or a "
                        "target file (.toml)")
    if target.endswith(".toml"):
        from snnc.targets import load_target

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
    epochs = (10 if epochs is None else epochs) if finetune is not None else 0
    source, source_bytes, source_name = _read_source(model)
    from snnc.compiler.frontend import load_onnx

    frontend_graph = load_onnx(source)
    shape = frontend_graph.inputs[0].shape
    with _data_file(calib, "calib") as path:
        calib_data = load_dataset(path, shape, what="calibration")
    train = None
    if epochs > 0:
        classes = frontend_graph.outputs[0].type.size
        with _data_file(finetune, "finetune") as path:
            train = load_dataset(path, shape, num_classes=classes, require_labels=True,
                                 what="finetune")
    options = CompileOptions(method=method, target=target, timesteps=timesteps,
                             percentile=percentile, finetune_epochs=epochs, seed=seed,
                             approximate_lrn=bool(approximate_lrn))
    result = compile_graph(source, calib_data.x, options, on_pass=on_pass,
                           finetune_data=train, on_epoch=on_epoch)
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
    out = Path(out) if out is not None else _default_out(model, source_name)
    extra = {}
    if result.placement is not None:  # Loihi-class targets: placement.json + manifest summary
        import json

        pl = result.placement
        manifest["placement"] = pl.summary()
        manifest.update(cores=pl.cores, chips=pl.chips, cores_lower_bound=pl.cores_lower_bound,
                        synapses=pl.demand["synapses"])
        extra["placement.json"] = (json.dumps(result.placement.to_json(), sort_keys=True,
                                              indent=1) + "\n").encode()
    if result.quantized is not None:  # fixed-point target: deploy the integer graph and keep
        # the ideal float graph beside it for `simulate --float` (docs/decisions.md)
        manifest["quantization"] = result.quantization
        extra.update(_float_graph_files(graph))
        graph = result.quantized
        from snnc.compiler.passes.split_fanin import split_summary

        splits = split_summary(graph)
        if splits:  # fan-ins split over partial-sum relays
            manifest["fan_in_splits"] = splits
            manifest["latency_steps"] += splits["relay_levels"]  # a synapse more per level
    path = write_artifact(out, graph, manifest, source_bytes, extra_files=extra)
    return load_artifact(path)


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


@contextlib.contextmanager
def _data_file(data, what: str):
    """A DATA.npz path for ``data``: a path as is; in-memory samples -- an array or tensor ``x``,
    a tuple ``(x, y)`` or a mapping with ``x`` and optional ``y`` -- written to a temporary .npz,
    so they get exactly the checks of a file (load_dataset)."""
    if data is None or isinstance(data, (str, os.PathLike)):
        yield data
        return
    import tempfile

    import numpy as np

    def array(a):
        return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)

    if isinstance(data, dict):
        arrays = {k: array(v) for k, v in data.items()}
    elif isinstance(data, tuple) and len(data) == 2:
        arrays = {"x": array(data[0]), "y": array(data[1])}
    else:
        arrays = {"x": array(data)}
    if "x" in arrays and arrays["x"].dtype.kind == "f":
        arrays["x"] = arrays["x"].astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="snnc-data-") as tmp:
        path = Path(tmp) / f"{what}.npz"
        np.savez(path, **arrays)
        try:
            yield path
        except BadData as e:  # name the in-memory samples, not the temporary file
            raise BadData(str(e).replace(f"file {path}", "(in-memory samples)")) from None


FLOAT_GRAPH, FLOAT_TENSORS = "float_graph.json", "float_tensors.npz"


def _float_graph_files(graph) -> dict[str, bytes]:
    import json

    from snnc.ir.serialize import graph_to_json, npz_bytes

    doc, arrays = graph_to_json(graph)
    return {FLOAT_GRAPH: (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode(),
            FLOAT_TENSORS: npz_bytes(arrays)}


def float_graph(art: Artifact):
    """The ideal (unquantized) network of an artifact: its graph for float targets (cpu), the
    stored float graph for fixed-point targets (whose ``art.graph`` is the integer one)."""
    if "quantization" not in art.manifest:
        return art.graph
    import io
    import json
    import zipfile

    import numpy as np

    from snnc.errors import ArtifactError
    from snnc.ir.serialize import graph_from_json

    if art.path is None:
        raise ArtifactError("in-memory artifact has no stored float graph")
    try:
        doc = json.loads((art.path / FLOAT_GRAPH).read_bytes())
        with np.load(io.BytesIO((art.path / FLOAT_TENSORS).read_bytes()),
                     allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return graph_from_json(doc, arrays)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{art.path}: cannot read the float graph ({e})") from None


def load(path) -> Artifact:
    """Load and verify an artifact directory."""
    return load_artifact(path)


EXPORT_FORMATS = ("nir", "netx")


def export_artifact(artifact: Artifact | str | Path, fmt: str, out: str | Path) -> Path:
    """Export the ideal (float) network of a ``rate`` artifact to NIR (``fmt="nir"``) or a
    lava-dl netx HDF5 file (``"netx"``); see backends/nir_export.py and netx_export.py for the
    semantics. Written to a temp file beside ``out`` and renamed: no partial file on error.
    Networks the format cannot express raise BackendError listing the offending layers."""
    if fmt not in EXPORT_FORMATS:
        raise SnncError(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    method = art.manifest.get("method")
    if method != "rate":
        raise BackendError(f"{fmt} export supports rate-coded artifacts (--method rate); this "
                           f"one is '{method}'")
    graph = float_graph(art)
    out = Path(out)
    if out.is_dir():
        raise SnncError(f"{out} is a directory; give the output file")
    if not out.parent.is_dir():
        raise SnncError(f"{out.parent} does not exist")
    with atomic_file(out) as tmp:
        if fmt == "nir":
            from snnc.backends.nir_export import write_nir

            write_nir(graph, tmp, method=method)
        else:
            from snnc.backends.netx_export import write_netx

            write_netx(graph, tmp, method=method)
    return out


class Metrics(dict):
    """The metrics of one simulation: the ``simulate --json`` object (DESIGN.md), a plain dict
    (``json.dumps`` works) whose keys also read as attributes: ``m.accuracy == m["accuracy"]``."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no metric {name!r}; available: {', '.join(self)}") from None

    def __dir__(self):
        return [*super().__dir__(), *self.keys()]


def estimate_spikes(artifact: Artifact | str | Path, data, *, samples: int = 16,
                    max_work: float = 2e8) -> dict | None:
    """A cheap spike estimate after compile: the reference simulator on the first ``samples``
    samples of ``data`` (e.g. the calibration file). Returns ``spikes_per_neuron``,
    ``spikes_per_sample`` and ``samples``, or None when the network is so large (neurons x
    latency steps x samples > ``max_work``) that the estimate would cost more than a compile."""
    from snnc.backends.reference.simulator import simulate

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    m = art.manifest
    if m.get("neurons", 0) * max(m.get("latency_steps", 1), 1) * samples > max_work:
        return None
    with _data_file(data, "data") as path:
        ds = load_dataset(path, art.graph.inputs[0].shape, limit=samples)
    result = simulate(art.graph, ds.x)
    return {"samples": result.samples, "spikes_per_neuron": result.spikes_per_neuron,
            "spikes_per_sample": sum(result.spikes.values()) / max(result.samples, 1)}


def simulate_artifact(artifact: Artifact | str | Path, data, *, backend: str = "cpu",
                      limit: int | None = None, batch_size: int | None = None,
                      on_start: Callable[[int], None] | None = None,
                      on_batch: Callable[[int], None] | None = None,
                      float_mode: bool = False) -> Metrics:
    """Simulate on data; return the metrics of the CLI contract (DESIGN.md) as ``Metrics``, a
    dict that also reads by attribute. ``data``: a DATA.npz path, or samples in memory (an array
    ``x``, a tuple ``(x, y)`` or a mapping with ``x`` and ``y``).
    Artifacts for fixed-point targets run bit-exactly in integers unless ``float_mode`` (the
    ideal, unquantized network); ``mode`` in the result says which ran."""
    from snnc.backends.reference.simulator import simulate
    from snnc.report.metrics import ann_predict, build_metrics

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    if backend not in ("cpu", "lava"):
        raise BackendError(f"unknown backend '{backend}'; available: cpu, lava")
    if backend == "lava" and float_mode:
        raise BackendError("--float runs the ideal network on the cpu backend only; drop "
                           "--backend lava or --float")
    if batch_size is not None and batch_size < 1:
        raise SnncError(f"--batch-size must be >= 1, got {batch_size}")
    graph = float_graph(art) if float_mode else art.graph
    if backend == "lava":  # unsupported layers: one clear error before any work
        from snnc.backends.lava import check_supported

        check_supported(graph)
    classes = graph.outputs[0].type.size if len(graph.outputs[0].shape) == 1 else None
    with _data_file(data, "data") as path:
        ds = load_dataset(path, graph.inputs[0].shape, num_classes=classes, limit=limit)
    if on_start is not None:
        on_start(len(ds))
    if backend == "lava":  # Lava processes under Loihi2SimCfg(select_tag="fixed_pt")
        from snnc.backends.lava.runner import simulate_lava

        result = simulate_lava(graph, ds.x, progress=on_batch)
    else:
        result = simulate(graph, ds.x, batch_size=batch_size, progress=on_batch)
    ann_out = ann_predict(art.source_model, ds.x)
    timing = {k: art.manifest[k] for k in ("latency_steps", "throughput_steps")}
    metrics = Metrics(build_metrics(snn_out=result.outputs[0], ann_out=ann_out, labels=ds.y,
                                    result=result,
                                    ann_graph_macs=art.manifest["ann_macs_per_sample"],
                                    graph=graph, timing=timing))
    from snnc.ir.quantized import is_quantized

    metrics["mode"] = "bit-exact" if is_quantized(graph) else "float"
    if "placement" in art.manifest:  # Loihi-class target: event energies + placement hops
        from snnc.report.energy import loihi_energy
        from snnc.targets import load_target

        target = load_target(art.manifest["target"])
        metrics.update(loihi_energy(result, art.manifest, target))
        metrics["ann_energy_uj_per_sample"] = (art.manifest["ann_macs_per_sample"]
                                               * target.energy.E_mac_ref * 1e-6)
    return metrics


def quantization_cost(artifact: Artifact | str | Path, data, *, limit: int | None = None,
                      batch_size: int | None = None) -> dict:
    """Accuracy cost of quantization: the float (ideal) and bit-exact networks of one artifact
    on the same samples. Returns samples, float_accuracy, fixed_accuracy, delta_pp (fixed minus
    float, percentage points; None without labels) and agreement (fraction of samples whose
    top-1 is the same in both)."""
    import numpy as np

    from snnc.backends.reference.simulator import simulate

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    if "quantization" not in art.manifest:
        raise SnncError(f"artifact for target '{art.manifest.get('target')}' is not quantized; "
                        "compile for a fixed-point target (loihi1, loihi2)")
    fgraph = float_graph(art)
    classes = fgraph.outputs[0].type.size if len(fgraph.outputs[0].shape) == 1 else None
    with _data_file(data, "data") as path:
        ds = load_dataset(path, fgraph.inputs[0].shape, num_classes=classes, limit=limit)
    tops = [simulate(g, ds.x, batch_size=batch_size).outputs[0].reshape(len(ds), -1).argmax(1)
            for g in (fgraph, art.graph)]
    accs = [None if ds.y is None else float((t == ds.y).mean()) for t in tops]
    return {"samples": len(ds), "float_accuracy": accs[0], "fixed_accuracy": accs[1],
            "delta_pp": None if ds.y is None else 100.0 * (accs[1] - accs[0]),
            "agreement": float(np.mean(tops[0] == tops[1]))}
