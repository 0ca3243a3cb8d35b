"""The HTML report of an artifact on a data set (``snnc report ART --data DATA.npz``).

One self-contained file: the figures of ``snnc/report/figures.py`` as base64 PNG ``<img>``
tags, a summary table, inline CSS; no scripts and no external references. It is written to a
temp file beside the output and renamed: a failure leaves no partial file. The default output is
``ART_NAME.html`` beside the artifact, never inside it (the artifact's files are hash-verified).

What runs:
    * the artifact on the first ``limit`` samples (``simulate_artifact``: the metrics, per-layer
      spikes, energy, the ANN via onnxruntime);
    * accuracy vs time steps: rate networks are re-simulated with T/8, T/4, T/2 and 2T steps
      (IF weights and thresholds do not depend on T: the same as compiling with
      ``--timesteps`` from the same calibration); few-spike and amos codes are refitted at
      K = 4..16 from the calibration statistics the artifact stores (float networks, as
      ``compile --timesteps K`` gives them); ttfs codes are fitted to T on calibration data the
      artifact does not keep, so ttfs gets its one point (plus the ideal float network beside
      the bit-exact one for fixed-point artifacts);
    * the per-step spikes of sample 0 (``backends/reference/record.py``) for the raster.

A regression (``task``; metrics/tasks.py) shows the output's errors (``TASK_ROWS``) instead of
accuracies, and the relative L2 error against the ANN instead of accuracy over time steps.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Callable
from pathlib import Path

import numpy as np

from snnc.files import atomic_file
from snnc.errors import SnncError

__all__ = ["FIGURES", "core_table", "default_report_path", "with_timesteps", "write_report"]

# (id, title, caption) of every figure, in page order
FIGURES = (
    ("spikes", "Spikes per neuron",
     "Mean spikes per neuron and sample of every neuron population (n: neurons); a "
     "few-spike or amos gate counts each of its spikes."),
    ("accuracy", "Accuracy vs time steps",
     "SNN accuracy on the same samples as the ANN (dashed: the ONNX model on onnxruntime). "
     "Without labels: agreement of the SNN's top-1 with the ANN's."),
    ("raster", "Spike raster",
     "Spikes of the first sample over time: evenly spaced neurons of every population, one "
     "color per population."),
    ("cores", "Core utilization",
     "Each used core at its mesh position, colored by its utilization of its binding "
     "resource (the highest of neurons, input axons, output axons and synaptic memory "
     "relative to the core's limit); grey: unused mesh positions."),
    ("energy", "Energy breakdown",
     "Estimated energy per sample by component, beside the ANN's."),
)

REGRESSION_CAPTION = ("Regression: relative L2 error of the SNN's output against the ANN's "
                      "(onnxruntime) on the same samples, in percent; 0 is the ANN.")

Progress = Callable[[str, int, int], None]  # (stage, completed, total)


def default_report_path(artifact_path: str | Path) -> Path:
    """``ART_NAME.html`` beside the artifact directory: ``out/lenet.snnc`` -> ``out/lenet.html``."""
    p = Path(artifact_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.parent / f"{stem or 'report'}.html"


def write_report(artifact_path: str | Path, data_path: str | Path,
                 out_path: str | Path | None = None, *, limit: int | None = None,
                 backend: str = "cpu", on_progress: Progress | None = None,
                 task: str = "auto") -> Path:
    """Simulate the artifact on the data and write the HTML report; returns its path.

    Args:
        artifact_path: A compiled artifact directory.
        data_path: DATA.npz with ``x`` (and ``y`` for accuracies).
        out_path: The HTML file; default ``default_report_path(artifact_path)``.
        limit: Use the first ``limit`` samples (default: all).
        backend: ``cpu`` (reference simulator) or ``lava`` for the main run; sweeps and the
            raster always use the reference simulator.
        on_progress: Called as ``(stage, completed, total)`` while simulating and rendering.
        task: ``auto``, ``classification`` or ``regression`` (``simulate_artifact``); a
            regression report shows the output error against the ANN (and the targets ``y``)
            instead of accuracies, and that error against the time steps.

    Raises:
        SnncError: bad artifact, data, options or output path (one-line messages); nothing is
            written then.
    """
    from snnc.api import load, simulate_artifact

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SnncError(f"--limit must be an integer >= 1, got {limit!r}")
    art = load(artifact_path)
    out = Path(out_path) if out_path is not None else default_report_path(art.path)
    _check_out(out, art.path)

    def report(stage: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(stage, done, total)

    state = {"n": 0, "total": 0}

    def start(n: int) -> None:
        state["total"] = n
        report("simulating", 0, n)

    def batch(k: int) -> None:
        state["n"] += k
        report("simulating", state["n"], state["total"])

    metrics = simulate_artifact(art, data_path, backend=backend, limit=limit, on_start=start,
                                on_batch=batch, task=task)
    ds = _dataset(art, data_path, limit, task)
    points, note, metric = _accuracy_points(art, ds, metrics, report)
    report("recording spikes of sample 0", 0, 1)
    raster = _raster(art, ds.x[:1])
    report("recording spikes of sample 0", 1, 1)
    from snnc.report import figures as F

    figs = {
        "spikes": lambda: F.spikes_per_layer(metrics["layers"]),
        "accuracy": lambda: F.accuracy_vs_timesteps(
            points, ann={"accuracy": metrics["ann_accuracy"],
                         REGRESSION_METRIC: 0.0}.get(metric, 1.0),
            metric=metric, note=note),
        "raster": lambda: F.spike_raster(raster["trains"], offsets=raster["offsets"],
                                         note=raster["note"]),
        "cores": lambda: _core_figure(art),
        "energy": lambda: _energy_figure(metrics),
    }
    images = {}
    for i, (key, _, _) in enumerate(FIGURES):
        report("rendering figures", i, len(FIGURES))
        images[key] = F.figure_png(figs[key]())
    report("rendering figures", len(FIGURES), len(FIGURES))
    page = _page(art, data_path, metrics, images)
    with atomic_file(out) as tmp:
        tmp.write_bytes(page.encode())
    return out


# ---------------------------------------------------------------------------------------------
# data and simulations


def _check_out(out: Path, artifact_dir: Path) -> None:
    if out.is_dir():
        raise SnncError(f"{out} is a directory; give the output file (e.g. report.html)")
    if not out.parent.is_dir():
        raise SnncError(f"{out.parent} does not exist")
    a, o = artifact_dir.resolve(), out.resolve()
    if a == o or a in o.parents:
        raise SnncError(f"{out} is inside the artifact {artifact_dir} (its files are "
                        "hash-verified); write the report elsewhere")


def _dataset(art, data_path, limit, task: str = "auto"):
    from snnc.data import load_dataset
    from snnc.metrics.tasks import data_y_kind

    graph = art.graph
    out = graph.outputs[0].shape
    classes = graph.outputs[0].type.size if len(out) == 1 else None
    return load_dataset(data_path, graph.inputs[0].shape, num_classes=classes, limit=limit,
                        y_kind=data_y_kind(task, out))


def with_timesteps(graph, steps: int):
    """The rate network run for ``steps`` time steps (every IF population's ``timesteps``)."""
    from snnc.ir import neurons

    return graph.replace(nodes=tuple(
        n.replace(op=dataclasses.replace(n.op, timesteps=steps))
        if isinstance(n.op, neurons.IFNeurons) else n for n in graph.nodes))


def _accuracy_points(art, ds, metrics, report) -> tuple[list[dict], str, str]:
    """(points, note, metric) of the accuracy-vs-time-steps figure."""
    from snnc.api import float_graph
    from snnc.backends.reference.simulator import simulate
    from snnc.ir import neurons

    m = art.manifest
    method = m.get("method")
    mode = metrics.get("mode", "float")
    metric, main, score = _scorer(art, ds, metrics, simulate)
    label = f"SNN {mode}" + (f" ({m.get('target')})" if mode == "bit-exact" else "")
    if method == "rate":
        t0 = max(n.op.timesteps for n in art.graph.nodes
                 if isinstance(n.op, neurons.IFNeurons))
        sweep = sorted({max(1, t0 // 8), max(1, t0 // 4), max(1, t0 // 2), 2 * t0} - {t0})
        points = [{"steps": t0, "value": main, "label": label}]
        for i, t in enumerate(sweep):
            report(f"re-simulating at T = {t}", i, len(sweep))
            points.append({"steps": t, "value": score(with_timesteps(art.graph, t)),
                           "label": label})
        report("re-simulating", len(sweep), len(sweep))
        tuned = " (fine-tuned at T = %d: other T are off its training point)" % t0 \
            if m.get("options", {}).get("finetune_epochs") else ""
        note = (f"rate: the compiled network (T = {t0}) re-simulated with T = "
                f"{', '.join(map(str, sweep))}; weights and thresholds do not depend on T, so "
                f"this equals compiling with --timesteps T{tuned}.")
        return points, note, metric
    if method in ("fs", "amos"):
        return _k_sweep(art, main, label, mode, score, report, metric)
    steps = m.get("latency_steps")
    points = [{"steps": int(steps or 1), "value": main, "label": label}]
    if mode == "bit-exact":
        report("simulating the float network", 0, 1)
        points.append({"steps": int(steps or 1), "value": score(float_graph(art)),
                       "label": "SNN float (ideal, unquantized)"})
        report("simulating the float network", 1, 1)
    note = (f"{method}: T = {steps} is fixed at compile time (the code is fitted to it on the "
            "calibration data, which the artifact does not keep), so one point; compile with "
            "--timesteps to compare other T.")
    return points, note, metric


REGRESSION_METRIC = "relative L2 error vs ANN"


def _scorer(art, ds, metrics, simulate):
    """(metric, its value in ``metrics``, score(graph) on ``ds``) of the time-step figure:
    top-1 accuracy with labels, top-1 agreement with the ANN without, and for regression the
    relative L2 error of the outputs against the ANN's."""
    from snnc.metrics.inference import ann_predict
    from snnc.metrics.tasks import regression_metrics

    regression = metrics.get("task") == "regression"
    labelled = ds.y is not None and not regression
    if labelled:
        metric, main, ref = "accuracy", metrics["accuracy"], ds.y
    else:
        ann = ann_predict(art.source_model, ds.x)
        ref = ann.reshape(len(ds), -1).argmax(1)
        metric, main = (REGRESSION_METRIC, metrics["rel_l2_vs_ann"]) if regression \
            else ("agreement with ANN top-1", metrics["agreement"])

    def score(graph) -> float:
        out = simulate(graph, ds.x).outputs[0]
        if regression:
            return regression_metrics(out, ann, None)["rel_l2_vs_ann"]
        return float((out.reshape(len(ds), -1).argmax(1) == ref).mean())

    return metric, main, score


def _k_sweep(art, main: float, label: str, mode: str, score, report, metric: str):
    """fs/amos: the compiled network plus its float network refitted at other K from the
    artifact's own calibration statistics (what ``compile --timesteps K`` gives)."""
    from snnc.compiler.convert.fs import DEFAULT_K
    from snnc.compiler.pipeline import prepared_ann, reconvert

    m = art.manifest
    k0 = int(m.get("options", {}).get("timesteps") or DEFAULT_K)
    points = [{"steps": k0, "value": main, "label": label}]
    sweep = [k for k in (4, 6, 8, 10, 12, 16) if k != k0 or mode == "bit-exact"]
    ann = prepared_ann(art.source_model)
    for i, k in enumerate(sweep):
        report(f"refitting the {m['method']} code at K = {k}", i, len(sweep))
        graph = reconvert(ann, m["calibration"], m["method"], k)
        points.append({"steps": k, "value": score(graph), "label": "SNN float, refitted K"})
    report("refitting", len(sweep), len(sweep))
    tuned = (f"; the artifact was fine-tuned at K = {k0}, the refitted networks are not"
             if m.get("options", {}).get("finetune_epochs") else "")
    note = (f"{m['method']}: the compiled network (K = {k0}) and its float network refitted at "
            f"K = {', '.join(map(str, sweep))} from the artifact's calibration statistics, as "
            f"compile --timesteps K would give (ReLU gates; other gates keep their K){tuned}.")
    return points, note, metric


def _raster(art, x: np.ndarray) -> dict:
    """Per-step spikes of one sample, per population, with pipeline offsets for few-spike."""
    from snnc.backends.reference.record import record_spikes

    rec = record_spikes(art.graph, x)
    trains = {k: v[:, 0] for k, v in rec.trains.items()}
    m = art.manifest
    offsets, note = {}, "reference simulator, local time steps of each population"
    window = m.get("throughput_steps") or 1
    if m.get("method") == "fs" and len(trains) * window == m.get("latency_steps"):
        offsets = {k: i * window for i, k in enumerate(trains)}
        note = (f"few-spike pipeline: population i fires in steps [i·K, (i+1)·K), K = {window}"
                f" (hardware adds the fixed synaptic delays)")
    elif m.get("method") == "rate":
        note = ("rate: all populations step together (reference time; hardware adds one step "
                "per synapse)")
    if rec.missing:
        note += f"; no per-step record in float mode for: {', '.join(rec.missing)}"
    return {"trains": trains, "offsets": offsets, "note": note}


def core_table(art) -> list[dict] | None:
    """Per used core: chip, mesh x/y, binding resource and its utilization, populations.
    None for artifacts without placement.json (cpu target)."""
    import json

    from snnc.compiler.placement import LIMIT_FIELD, RESOURCES, core_xy
    from snnc.targets import load_target

    path = art.path / "placement.json"
    if "placement" not in art.manifest or not path.is_file():
        return None
    slices = json.loads(path.read_text())["slices"]
    target = load_target(art.manifest["target"])
    limits = {r: getattr(target.core, LIMIT_FIELD[r]) for r in RESOURCES}
    cores: dict[tuple[int, int], dict] = {}
    for s in slices:
        c = cores.setdefault((s["chip"], s["core"]),
                             {"usage": dict.fromkeys(RESOURCES, 0), "populations": []})
        for r in RESOURCES:
            c["usage"][r] += s[r]
        if s["population"] not in c["populations"]:
            c["populations"].append(s["population"])
    rows = []
    for (chip, core), c in sorted(cores.items()):
        util = {r: c["usage"][r] / limits[r] for r in RESOURCES if limits[r]}
        binding = max(util, key=util.get) if util else "neurons"
        x, y = core_xy(target.chip, core)
        rows.append({"chip": chip, "core": core, "x": int(x), "y": int(y),
                     "resource": binding, "utilization": util.get(binding, 0.0),
                     "populations": c["populations"]})
    return rows


def _core_figure(art):
    from snnc.report import figures as F
    from snnc.targets import load_target

    m = art.manifest
    try:
        rows = core_table(art)
    except SnncError as e:  # e.g. a custom target file that no longer exists
        return F.core_utilization(None, title="placement not shown",
                                  note=f"target description unavailable: {e}")
    if rows is None:
        return F.core_utilization(None, title=f"no placement (target {m.get('target')})",
                                  note="cpu artifacts are not placed on cores; compile with "
                                       "--target loihi2 (or loihi1) for the core map")
    chip = load_target(m["target"]).chip
    pl = m["placement"]
    return F.core_utilization(
        rows, mesh_cols=chip.mesh_cols or 1, mesh_rows=chip.mesh_rows or 1,
        chips=max(r["chip"] for r in rows) + 1,
        title=f"{pl['cores']} cores on {pl['chips']} chip(s) of {Path(m['target']).stem} "
              f"(lower bound {pl['cores_lower_bound']})",
        note="cores fill each chip's mesh along a boustrophedon path; text: utilization and "
             "binding resource")


def _energy_figure(metrics: dict):
    """Loihi-target artifacts: the event energy breakdown of ``simulate``; others: Datta's
    compute energy (metrics.py) split into analog-input MACs and synaptic events."""
    from snnc.report import figures as F
    from snnc.metrics.inference import E_AC_PJ, E_MAC_PJ

    ann = metrics.get("ann_energy_uj_per_sample")
    if "energy_breakdown_uj" in metrics:
        return F.energy_breakdown(metrics["energy_breakdown_uj"], ann,
                                  model=metrics.get("energy_model", ""))
    parts = {"analog input MACs": metrics["analog_macs_per_sample"] * E_MAC_PJ * 1e-6,
             "synaptic events (AC)": metrics["synops_per_sample"] * E_AC_PJ * 1e-6}
    return F.energy_breakdown(parts, ann, model=f"compute energy (Datta et al. 2021, 45 nm): "
                              f"E_MAC {E_MAC_PJ} pJ, E_AC {E_AC_PJ} pJ; memory and routing "
                              "not modelled")


# ---------------------------------------------------------------------------------------------
# page


_CSS = """
body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 10px; }
th { background: #f3f3f3; text-align: left; } td.v { text-align: right; }
figure { margin: 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .meta { font-size: 0.9em; color: #555; }
"""


def _fmt(v, pct: bool = False, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:.4g}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else f"{v}{unit}"


# task -> (metric key, title, as percent) of the summary rows that score the outputs
TASK_ROWS = {
    "classification": (("accuracy", "accuracy (SNN)", True),
                       ("ann_accuracy", "accuracy (ANN, onnxruntime)", True),
                       ("agreement", "agreement with ANN top-1", True)),
    "regression": (("rel_l2_vs_ann", "relative L2 error of the output vs ANN", True),
                   ("max_abs_error_vs_ann", "max abs error of the output vs ANN", False),
                   ("mse", "MSE vs targets y (SNN)", False),
                   ("ann_mse", "MSE vs targets y (ANN, onnxruntime)", False),
                   ("mae", "MAE vs targets y (SNN)", False),
                   ("r2", "R² vs targets y (SNN)", False),
                   ("ann_r2", "R² vs targets y (ANN)", False),
                   ("relative_error", "relative L2 error vs targets y (SNN)", False)),
}


def _summary_rows(art, metrics: dict) -> list[tuple[str, str]]:
    m = art.manifest
    pl = m.get("placement")
    cores = (f"{pl['cores']:,} on {pl['chips']} chip(s) (lower bound {pl['cores_lower_bound']:,})"
             if pl else f"n/a (no placement: target {m.get('target')})")
    ratio = (metrics["energy_uj_per_sample"] / metrics["ann_energy_uj_per_sample"]
             if metrics.get("ann_energy_uj_per_sample") else None)
    task = metrics.get("task", "classification")
    return [
        ("method", str(m.get("method"))),
        ("target", str(m.get("target"))),
        ("simulation", f"{metrics.get('mode', 'n/a')}, {metrics['samples']:,} samples"),
        ("task", task),
        *[(title, _fmt(metrics.get(key), pct=pct)) for key, title, pct in TASK_ROWS[task]],
        ("spikes / neuron / sample", _fmt(metrics["spikes_per_neuron"])),
        ("neurons", _fmt(m.get("neurons"))),
        ("latency (steps, input to decision)", _fmt(metrics["latency_steps"])),
        ("throughput (steps between samples)", _fmt(metrics["throughput_steps"])),
        ("cores", cores),
        ("synaptic ops / sample", _fmt(metrics["synops_per_sample"])),
        ("energy / sample (SNN)", _fmt(metrics["energy_uj_per_sample"], unit=" µJ")),
        ("energy / sample (ANN)", _fmt(metrics["ann_energy_uj_per_sample"], unit=" µJ")),
        ("energy SNN / ANN", _fmt(ratio, unit=" x")),
        ("simulation wall time", _fmt(metrics.get("wall_s"), unit=" s")),
    ]


def _page(art, data_path, metrics: dict, images: dict[str, bytes]) -> str:
    from snnc.version import __version__ as version

    e = html.escape
    name = art.path.name
    rows = "\n".join(f"<tr><th>{e(k)}</th><td class=\"v\">{e(v)}</td></tr>"
                     for k, v in _summary_rows(art, metrics))
    figs = []
    for key, title, caption in FIGURES:
        if key == "accuracy" and metrics.get("task") == "regression":
            title, caption = "Output error vs time steps", REGRESSION_CAPTION
        if key == "cores" and "placement" not in art.manifest:
            caption = (f"No placement: target {art.manifest.get('target')} has no cores; "
                       "compile for loihi1 or loihi2 for the core map.")
        b64 = base64.b64encode(images[key]).decode("ascii")
        figs.append(
            f'<h2 id="h-{key}">{e(title)}</h2>\n<figure id="fig-{key}">'
            f'<img id="img-{key}" class="figure" alt="{e(title)}" '
            f'src="data:image/png;base64,{b64}">\n'
            f"<figcaption>{e(caption)}</figcaption></figure>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>snnc report: {e(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>snnc report: {e(name)}</h1>
<p class="meta">artifact {e(str(art.path))} · data {e(str(data_path))} ·
snnc {e(str(version))} · source model {e(str(art.manifest.get('source_model')))}</p>
<h2 id="h-summary">Summary</h2>
<table id="summary">
{rows}
</table>
{chr(10).join(figs)}
</body>
</html>
"""
