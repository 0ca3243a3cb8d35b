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
from snnc.compiler.frontend.onnx_loader import model_file_bytes
from snnc.compiler.pipeline import METHODS, CompileOptions, compile_graph, timing_of
from snnc.data import load_dataset
from snnc.errors import BackendError, SnncError
from snnc.ir import neurons
from snnc.report.model_stats import layer_table

__all__ = ["compile_model", "load", "simulate_artifact", "float_graph", "quantization_cost",
           "export_artifact", "EXPORT_FORMATS"]

_TARGETS = ("cpu", "loihi1", "loihi2")


def compile_model(model, *, target: str = "cpu", method: str = "fs", calib=None,
                  timesteps: int | None = None, percentile: float | None = None, out=None,
                  on_pass: Callable[[str, float], None] | None = None,
                  finetune=None, epochs: int | None = None, seed: int = 0,
                  on_epoch: Callable[..., None] | None = None, target_file=None) -> Artifact:
    """Compile an ONNX model (path) into an artifact directory; returns the loaded artifact.

    ``finetune`` (DATA.npz with labels) fine-tunes the converted network for ``epochs``
    (default 10) with a surrogate gradient (passes/finetune.py), deterministically for a
    ``seed``. ``epochs=0`` is a no-op: the artifact equals the one compiled without
    ``finetune``. ``epochs`` without ``finetune`` is an error. ``target_file``: a target
    description (.toml) used instead of ``target``. Fixed-point targets (loihi1, loihi2) get the
    quantize pass: the artifact's graph is the integer one, the float graph is stored beside it
    (``float_graph``) and ``manifest["quantization"]`` holds the quantization report."""
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
    model_path = Path(model)
    source = read_model(model_path)
    source_bytes = model_file_bytes(model_path)  # external data inlined
    from snnc.compiler.frontend import load_onnx

    frontend_graph = load_onnx(source)
    shape = frontend_graph.inputs[0].shape
    calib_data = load_dataset(calib, shape, what="calibration")
    train = None
    if epochs > 0:
        classes = frontend_graph.outputs[0].type.size
        train = load_dataset(finetune, shape, num_classes=classes, require_labels=True,
                             what="finetune")
    options = CompileOptions(method=method, target=target, timesteps=timesteps,
                             percentile=percentile, finetune_epochs=epochs, seed=seed)
    result = compile_graph(source, calib_data.x, options, on_pass=on_pass,
                           finetune_data=train, on_epoch=on_epoch)
    graph = result.graph
    populations = [
        {"name": n.name, "model": type(n.op).__name__, "shape": list(n.output.shape),
         "neurons": n.output.type.size * neurons.neurons_per_gate(n.op)}
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
    path = write_artifact(out, graph, manifest, source_bytes, extra_files=extra)
    return load_artifact(path)


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
    import os
    import secrets

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
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        if fmt == "nir":
            from snnc.backends.nir_export import write_nir

            write_nir(graph, tmp, method=method)
        else:
            from snnc.backends.netx_export import write_netx

            write_netx(graph, tmp, method=method)
        os.replace(tmp, out)
    except OSError as e:
        raise SnncError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def simulate_artifact(artifact: Artifact | str | Path, data, *, backend: str = "cpu",
                      limit: int | None = None, batch_size: int | None = None,
                      on_start: Callable[[int], None] | None = None,
                      on_batch: Callable[[int], None] | None = None,
                      float_mode: bool = False) -> dict:
    """Simulate on a data file; return the metrics dict of the CLI contract (DESIGN.md).
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
    ds = load_dataset(data, graph.inputs[0].shape, num_classes=classes, limit=limit)
    if on_start is not None:
        on_start(len(ds))
    if backend == "lava":  # Lava processes under Loihi2SimCfg(select_tag="fixed_pt")
        from snnc.backends.lava.runner import simulate_lava

        result = simulate_lava(graph, ds.x, progress=on_batch)
    else:
        result = simulate(graph, ds.x, batch_size=batch_size, progress=on_batch)
    ann_out = ann_predict(art.source_model, ds.x)
    metrics = build_metrics(snn_out=result.outputs[0], ann_out=ann_out, labels=ds.y,
                            result=result, ann_graph_macs=art.manifest["ann_macs_per_sample"],
                            graph=graph, timing={k: art.manifest[k] for k in ("latency_steps",
                                                                              "throughput_steps")})
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
    ds = load_dataset(data, fgraph.inputs[0].shape, num_classes=classes, limit=limit)
    tops = [simulate(g, ds.x, batch_size=batch_size).outputs[0].reshape(len(ds), -1).argmax(1)
            for g in (fgraph, art.graph)]
    accs = [None if ds.y is None else float((t == ds.y).mean()) for t in tops]
    return {"samples": len(ds), "float_accuracy": accs[0], "fixed_accuracy": accs[1],
            "delta_pp": None if ds.y is None else 100.0 * (accs[1] - accs[0]),
            "agreement": float(np.mean(tops[0] == tops[1]))}
