"""What an artifact does once compiled: simulate it on data (the metrics of ``simulate --json``),
export it (NIR, netx), the cost of its quantization. Functions take a loaded ``Artifact``;
``snnc.api`` accepts paths too, and ``Artifact``'s methods call these."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnc.backends.distributed import simulate_sharded
from snnc.backends.lava import check_supported
from snnc.backends.lava.leaky import check_leaky_supported, is_leaky_graph, simulate_leaky_lava
from snnc.backends.lava.runner import simulate_lava
from snnc.backends.netx_export import write_netx
from snnc.backends.nir_export import check_nir_reader, write_nir
from snnc.backends.reference.simulator import simulate
from snnc.data import load_dataset
from snnc.data_shards import is_data_directory
from snnc.errors import ArtifactError, BackendError, BadData, SnncError
from snnc.files import atomic_file
from snnc.ir.quantized import is_quantized
from snnc.ir.serialize import graph_from_json, graph_to_json, npz_bytes
from snnc.metrics.energy import loihi_energy
from snnc.metrics.inference import ann_predict, build_metrics
from snnc.metrics.tasks import data_y_kind, scored_as
from snnc.targets import load_target

if TYPE_CHECKING:  # annotations only: artifact.py calls this module
    from snnc.artifact import Artifact

__all__ = ["Metrics", "data_file", "float_graph", "float_graph_files", "export_artifact",
           "simulate_artifact", "estimate_spikes", "quantization_cost", "EXPORT_FORMATS",
           "FLOAT_GRAPH", "FLOAT_TENSORS", "float_vs_fixed"]


@contextlib.contextmanager
def data_file(data, what: str):
    """A DATA.npz path for ``data``: a path as is; in-memory samples -- an array or tensor ``x``,
    a tuple ``(x, y)`` or a mapping with ``x`` and optional ``y`` -- written to a temporary .npz,
    so they get exactly the checks of a file (load_dataset)."""
    if data is None or isinstance(data, (str, os.PathLike)):
        yield data
        return
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


def float_graph_files(graph) -> dict[str, bytes]:
    doc, arrays = graph_to_json(graph)
    return {FLOAT_GRAPH: (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode(),
            FLOAT_TENSORS: npz_bytes(arrays)}


def float_graph(art: Artifact):
    """The ideal (unquantized) network of an artifact: its graph for float targets (cpu), the
    stored float graph for fixed-point targets (whose ``art.graph`` is the integer one)."""
    if "quantization" not in art.manifest:
        return art.graph
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


EXPORT_FORMATS = ("nir", "netx")


def export_artifact(artifact: Artifact, fmt: str, out: str | Path, *,
                    nir_reader: str = "generic") -> Path:
    """Export the ideal (float) network of a ``rate`` artifact to NIR (``fmt="nir"``) or a
    lava-dl netx HDF5 file (``"netx"``); see backends/nir_export/ and netx_export.py for the
    semantics. ``nir_reader`` (NIR only): ``"generic"`` (IF, SumPool2d) or ``"snntorch"`` (LIF,
    AvgPool2d: what snntorch 1.0.0 runs; docs/nir.md). Written to a temp file beside ``out``
    and renamed: no partial file on error. Networks the format cannot express raise
    BackendError listing the offending layers."""
    if fmt not in EXPORT_FORMATS:
        raise SnncError(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    check_nir_reader(nir_reader, fmt)
    art = artifact
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
            write_nir(graph, tmp, method=method, reader=nir_reader)
        else:
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


def estimate_spikes(artifact: Artifact, data, *, samples: int = 16,
                    max_work: float = 2e8) -> dict | None:
    """A cheap spike estimate after compile: the reference simulator on the first ``samples``
    samples of ``data`` (e.g. the calibration file). Returns ``spikes_per_neuron``,
    ``spikes_per_sample`` and ``samples``, or None when the network is so large (neurons x
    latency steps x samples > ``max_work``) that the estimate would cost more than a compile."""
    art = artifact
    m = art.manifest
    if m.get("neurons", 0) * max(m.get("latency_steps", 1), 1) * samples > max_work:
        return None
    with data_file(data, "data") as path:
        ds = load_dataset(path, art.graph.inputs[0].shape, limit=samples)
    result = simulate(art.graph, ds.x)
    return {"samples": result.samples, "spikes_per_neuron": result.spikes_per_neuron,
            "spikes_per_sample": sum(result.spikes.values()) / max(result.samples, 1)}


def simulate_artifact(artifact: Artifact, data, *, backend: str = "cpu",
                      limit: int | None = None, batch_size: int | None = None,
                      on_start: Callable[[int], None] | None = None,
                      on_batch: Callable[[int], None] | None = None,
                      float_mode: bool = False, ray: bool = False,
                      ray_address: str | None = None, workers: int | None = None,
                      device: str | None = None, task: str = "auto") -> Metrics:
    """Simulate on data; return the metrics of the CLI contract (DESIGN.md) as ``Metrics``, a
    dict that also reads by attribute. ``data``: a DATA.npz path, or samples in memory (an array
    ``x``, a tuple ``(x, y)`` or a mapping with ``x`` and ``y``).
    Artifacts for fixed-point targets run bit-exactly in integers unless ``float_mode`` (the
    ideal, unquantized network); ``mode`` in the result says which ran.
    ``ray=True`` shards the samples over Ray tasks (a local cluster, or the one at
    ``ray_address``; ``workers`` tasks at once): same metrics but ``wall_s``
    (docs/scale-out.md). ``data`` may also be a directory of .npz shards.
    ``device``: where the reference simulator runs, "cpu" or "cuda" (default: CUDA when
    present); the results are the same.
    ``task``: "classification" (top-1 against labels), "regression" (the output values against
    the ANN's and against float targets ``y``) or "auto" (classification for a vector output
    with integer labels or none); metrics/tasks.py."""
    art = artifact
    check_device(device, backend)
    if not ray and (ray_address is not None or workers is not None):
        raise SnncError("--ray-address and --workers need --ray")
    if backend not in ("cpu", "lava"):
        raise BackendError(f"unknown backend '{backend}'; available: cpu, lava")
    if backend == "lava" and float_mode:
        raise BackendError("--float runs the ideal network on the cpu backend only; drop "
                           "--backend lava or --float")
    if batch_size is not None and batch_size < 1:
        raise SnncError(f"--batch-size must be >= 1, got {batch_size}")
    graph = float_graph(art) if float_mode else art.graph
    leaky_lava = backend == "lava" and is_leaky_graph(graph)  # imported SNN: stock Lava LIF
    if leaky_lava:  # unsupported layers: one clear error before any work
        check_leaky_supported(graph)
    elif backend == "lava":
        check_supported(graph)
    classes = graph.outputs[0].type.size if len(graph.outputs[0].shape) == 1 else None
    out_shape = graph.outputs[0].shape
    y_kind = data_y_kind(task, out_shape)  # an unknown task fails before any work
    sharded = ray or is_data_directory(data)
    # the baseline: the ONNX source in onnxruntime, or an imported SNN's float network
    baseline = float_graph(art) if art.manifest["method"] == "nir" else None
    with data_file(data, "data") as path:
        if sharded:  # shards: backends/distributed, exact merge
            result, ann_out, labels = simulate_sharded(
                graph, art.source_model, path, backend=backend, limit=limit,
                batch_size=batch_size, ray=ray, address=ray_address, workers=workers,
                device=device, on_start=on_start, on_batch=on_batch, baseline=baseline,
                y_kind=y_kind)
        else:
            ds = load_dataset(path, graph.inputs[0].shape, num_classes=classes, limit=limit,
                              y_kind=y_kind)
            # labels, or targets shaped as the output: checked before any work
            task, labels = scored_as(task, out_shape, ds.y, f"data file {path}")
    if not sharded:
        if on_start is not None:
            on_start(len(ds))
        if leaky_lava:
            result = simulate_leaky_lava(graph, ds.x, progress=on_batch)
        elif backend == "lava":  # Lava processes under Loihi2SimCfg(select_tag="fixed_pt")
            result = simulate_lava(graph, ds.x, progress=on_batch)
        else:
            result = simulate(graph, ds.x, batch_size=batch_size, progress=on_batch,
                              device=device)
        ann_out = (ann_predict(art.source_model, ds.x) if baseline is None
                   else simulate(baseline, ds.x).outputs[0])
    task, labels = scored_as(task, out_shape, labels, "data")  # sharded: after the run
    timing = {k: art.manifest[k] for k in ("latency_steps", "throughput_steps")}
    metrics = Metrics(build_metrics(snn_out=result.outputs[0], ann_out=ann_out, labels=labels,
                                    result=result,
                                    ann_graph_macs=art.manifest["ann_macs_per_sample"],
                                    graph=graph, timing=timing, task=task))
    metrics["mode"] = "bit-exact" if is_quantized(graph) else "float"
    if "placement" in art.manifest:  # Loihi-class target: event energies + placement hops
        target = load_target(art.manifest["target"])
        metrics.update(loihi_energy(result, art.manifest, target))
        metrics["ann_energy_uj_per_sample"] = (art.manifest["ann_macs_per_sample"]
                                               * target.energy.E_mac_ref * 1e-6)
    return metrics


def check_device(device: str | None, backend: str = "cpu") -> None:
    """A user's ``--device`` for the reference simulator: cpu, or cuda where torch sees one."""
    if device is None:
        return
    if device not in ("cpu", "cuda"):
        raise SnncError(f"unknown device '{device}'; available: cpu, cuda")
    if backend != "cpu":
        raise SnncError(f"--device selects the reference simulator's device (backend cpu); "
                        f"the {backend} backend has none")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda: no CUDA device is available to torch here")


def quantization_cost(artifact: Artifact, data, *, limit: int | None = None,
                      batch_size: int | None = None) -> dict:
    """Accuracy cost of quantization: the float (ideal) and bit-exact networks of one artifact
    on the same samples. Returns samples, float_accuracy, fixed_accuracy, delta_pp (fixed minus
    float, percentage points; None without labels) and agreement (fraction of samples whose
    top-1 is the same in both)."""
    art = artifact
    if "quantization" not in art.manifest:
        raise SnncError(f"artifact for target '{art.manifest.get('target')}' is not quantized; "
                        "compile for a fixed-point target (loihi1, loihi2)")
    fgraph = float_graph(art)
    classes = fgraph.outputs[0].type.size if len(fgraph.outputs[0].shape) == 1 else None
    with data_file(data, "data") as path:
        ds = load_dataset(path, fgraph.inputs[0].shape, num_classes=classes, limit=limit)
    return float_vs_fixed(fgraph, art.graph, ds.x, ds.y, batch_size=batch_size)


def float_vs_fixed(fgraph, qgraph, x: np.ndarray, y: np.ndarray | None, *,
                   batch_size: int | None = None) -> dict:
    """The float graph against its quantized twin on samples ``x`` (labels ``y`` optional):
    what ``quantization_cost`` returns, and an imported SNN's manifest ``quantization.cost``."""
    tops = [simulate(g, x, batch_size=batch_size).outputs[0].reshape(len(x), -1).argmax(1)
            for g in (fgraph, qgraph)]
    accs = [None if y is None else float((t == y).mean()) for t in tops]
    return {"samples": int(len(x)), "float_accuracy": accs[0], "fixed_accuracy": accs[1],
            "delta_pp": None if y is None else 100.0 * (accs[1] - accs[0]),
            "agreement": float(np.mean(tops[0] == tops[1]))}
