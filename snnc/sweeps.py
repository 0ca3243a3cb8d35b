"""Method sweeps (``snnc sweep``, ``snnc.sweep``): compile one ONNX model with every method
and time window of a grid, simulate each artifact on the same data, and show the trade-off
(accuracy against energy per inference and against latency steps) as a table and Pareto plots:
how a user picks a method and T. Grid points run as Ray tasks with ``ray=True``
(backends/distributed), else one after the other in this process; the rows are the same.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from snnc.api import compile_model
from snnc.backends.distributed import connect_ray, run_tasks
from snnc.compiler.pipeline import METHODS
from snnc.errors import SnncError
from snnc.evaluate import simulate_artifact
from snnc.files import atomic_file
from snnc.report.figures import figure_png

__all__ = ["DEFAULT_TIMESTEPS", "ROW_KEYS", "pareto_front", "quality", "sweep", "sweep_point",
           "write_sweep_html"]

# rate, ttfs: T steps; fs, amos: K steps of a ReLU gate (compile --timesteps)
DEFAULT_TIMESTEPS = {"rate": (16, 32, 64), "fs": (6, 8, 10), "amos": (6, 8, 10),
                     "ttfs": (3, 5, 8)}
ROW_KEYS = ("task", "accuracy", "ann_accuracy", "agreement", "rel_l2_vs_ann",
            "max_abs_error_vs_ann", "energy_uj_per_sample", "ann_energy_uj_per_sample",
            "latency_steps", "throughput_steps", "spikes_per_neuron", "synops_per_sample",
            "samples", "mode")
_MARKERS = {"rate": "o", "fs": "s", "amos": "D", "ttfs": "^"}
_COLORS = {"rate": "#1f77b4", "fs": "#ff7f0e", "amos": "#2ca02c", "ttfs": "#d62728"}


def sweep_point(model: bytes, *, method: str, timesteps: int, target: str, calib, data,
                limit: int | None = None, batch_size: int | None = None) -> dict:
    """Compile ``model`` (ONNX bytes) with one method and time window, simulate it on ``data``;
    one row of the sweep. A method the model cannot be compiled with gives a row with
    ``error`` (the one-line message) instead of metrics."""
    row = {"method": method, "timesteps": timesteps, "target": target, "error": None}
    with tempfile.TemporaryDirectory(prefix="snnc-sweep-") as tmp:
        start = time.perf_counter()
        try:
            art = compile_model(model, target=target, method=method, calib=calib,
                                timesteps=timesteps, out=Path(tmp) / "point.snnc")
        except SnncError as e:
            return {**row, "error": str(e).split("\n")[0]}
        row["compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics = simulate_artifact(art, data, limit=limit, batch_size=batch_size)
        row["simulate_s"] = time.perf_counter() - start
    row.update({k: metrics.get(k) for k in ROW_KEYS})
    return row


def _grid(methods: Sequence[str], timesteps: Mapping[str, Sequence[int]] | Sequence[int] | None):
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise SnncError(f"unknown method '{(unknown or [''])[0]}'; available: "
                        f"{', '.join(METHODS)}")
    points = []
    for m in methods:
        if timesteps is None:
            ts = DEFAULT_TIMESTEPS.get(m, (None,))
        elif isinstance(timesteps, Mapping):
            ts = timesteps.get(m, DEFAULT_TIMESTEPS.get(m, (None,)))
        else:
            ts = timesteps
        for t in ts:
            if t is not None and (isinstance(t, bool) or int(t) != t or t < 1):
                raise SnncError(f"--timesteps must be positive integers, got {t!r} for {m}")
            points.append((m, None if t is None else int(t)))
    return points


def sweep(model, *, calib, data, methods: Sequence[str] = ("rate", "fs", "amos", "ttfs"),
          timesteps: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
          target: str = "cpu", limit: int | None = None, batch_size: int | None = None,
          ray: bool = False, ray_address: str | None = None, workers: int | None = None,
          on_start: Callable[[int], None] | None = None,
          on_point: Callable[[dict], None] | None = None) -> list[dict]:
    """Compile and simulate the grid ``methods`` x ``timesteps`` (one list for all methods, a
    mapping per method, or ``DEFAULT_TIMESTEPS``); returns one row per point in grid order
    (``sweep_point``), each marked ``pareto`` when no other point is at least as accurate with
    less energy. ``model``: an .onnx path or bytes; ``calib``/``data``: DATA.npz paths (on a
    multi-node cluster, at the same path on every node)."""
    if not ray and (ray_address is not None or workers is not None):
        raise SnncError("--ray-address and --workers need --ray")
    for name, path in (("calib", calib), ("data", data)):
        if not isinstance(path, (str, os.PathLike)):
            raise SnncError(f"sweep {name}: give a DATA.npz path (every grid point reads it, "
                            "on a cluster from every node)")
    points = _grid(list(methods), timesteps)
    if on_start is not None:
        on_start(len(points))
    source = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    common = {"target": target, "calib": str(calib), "data": str(data), "limit": limit,
              "batch_size": batch_size}
    done = (lambda i, row: on_point(row)) if on_point is not None else None
    if ray:
        with connect_ray(ray_address, workers) as r:
            ref = r.put(bytes(source))  # the model reaches the object store once
            calls = [dict(model=ref, method=m, timesteps=t, **common) for m, t in points]
            rows = run_tasks(r, sweep_point, calls, limit=workers, done=done,
                             what="a sweep point")
    else:
        rows = []
        for i, (m, t) in enumerate(points):
            rows.append(sweep_point(bytes(source), method=m, timesteps=t, **common))
            if done is not None:
                done(i, rows[-1])
    front = pareto_front(rows, "energy_uj_per_sample")
    return [{**row, "pareto": i in front} for i, row in enumerate(rows)]


def quality(row: Mapping) -> float | None:
    """A row's score, higher is better: its accuracy (classification), else minus its relative
    L2 error against the ANN (regression outputs); None when the row has neither."""
    if row.get("accuracy") is not None:
        return float(row["accuracy"])
    if row.get("rel_l2_vs_ann") is not None:
        return -float(row["rel_l2_vs_ann"])
    return None


def pareto_front(rows: Sequence[dict], cost: str) -> set[int]:
    """Indices of the rows no other row beats: none has at least their quality (accuracy, or
    for regression outputs the smallest error against the ANN) at no more ``cost`` and is
    strictly better in one of the two. Rows without either are left out."""
    ok = [i for i, r in enumerate(rows) if quality(r) is not None and r.get(cost) is not None]
    front = set()
    for i in ok:
        a, c = quality(rows[i]), rows[i][cost]
        if not any(quality(rows[j]) >= a and rows[j][cost] <= c
                   and (quality(rows[j]) > a or rows[j][cost] < c) for j in ok):
            front.add(i)
    return front


def _y(row: Mapping) -> float:
    """What the plots show: accuracy, or the relative L2 error against the ANN, in %."""
    q = quality(row)
    return 100 * abs(q)


def _tradeoff(rows: Sequence[dict], cost: str, label: str, log: bool) -> Figure:
    """Accuracy (or, for regression outputs, the error against the ANN) against ``cost``: one
    marker per method, the Pareto front as a step line."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [r for r in rows if r["method"] == method and quality(r) is not None]
        ax.scatter([r[cost] for r in pts], [_y(r) for r in pts], label=method,
                   marker=_MARKERS.get(method, "o"), facecolors="none", s=48, linewidths=1.6,
                   edgecolors=_COLORS.get(method), zorder=3)  # hollow: ties stay visible
        for r in pts:
            ax.annotate(str(r["timesteps"]), (r[cost], _y(r)), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    front = sorted((rows[i] for i in pareto_front(rows, cost)), key=lambda r: r[cost])
    if front:
        ax.step([r[cost] for r in front], [_y(r) for r in front], where="post",
                color="0.4", linestyle="--", linewidth=1, label="Pareto front", zorder=2)
    ann = next((r["ann_accuracy"] for r in rows if r.get("ann_accuracy") is not None), None)
    if ann is not None:
        ax.axhline(100 * ann, color="0.6", linewidth=0.8, linestyle=":", label="ANN")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    regression = any(r.get("accuracy") is None for r in rows)
    ax.set_ylabel("relative L2 error vs ANN (%)" if regression else "accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def write_sweep_html(rows: Sequence[dict], out: str | Path, *, title: str) -> Path:
    """The sweep as one self-contained HTML page: the table (Pareto points starred) and the
    two trade-off plots (PNG, inline). Written atomically."""
    measured = [r for r in rows if r.get("error") is None and quality(r) is not None]
    regression = any(r.get("accuracy") is None for r in measured)
    images = {}
    if measured:
        for key, cost, label, log in (
                ("energy", "energy_uj_per_sample", "energy per inference (uJ)", True),
                ("latency", "latency_steps", "latency (time steps)", False)):
            png = figure_png(_tradeoff(measured, cost, label, log))
            images[key] = base64.b64encode(png).decode()
    scores = ("rel_l2_vs_ann", "max_abs_error_vs_ann") if regression else ("accuracy",
                                                                          "ann_accuracy")
    cols = ("method", "timesteps", *scores, "energy_uj_per_sample", "latency_steps",
            "throughput_steps", "spikes_per_neuron", "synops_per_sample", "compile_s",
            "simulate_s")
    head = "".join(f"<th>{c}</th>" for c in (*cols, "pareto"))
    body = []
    for r in rows:
        if r.get("error"):
            cells = (f"<td>{_cell(r['method'])}</td><td>{_cell(r['timesteps'])}</td>"
                     f"<td colspan='{len(cols) - 1}'>error: {html.escape(r['error'])}</td>")
        else:
            cells = "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols)
            cells += f"<td>{'&#9733;' if r.get('pareto') else ''}</td>"
        body.append(f"<tr>{cells}</tr>")
    figs = "".join(f"<img alt='{k}' src='data:image/png;base64,{v}'>" for k, v in images.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
            "collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            f"img{{max-width:48%}}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p>&#9733;: on the Pareto front of accuracy (regression outputs: relative L2 "
            "error against the ANN) against energy per inference (no other point is as "
            "good with less energy). timesteps: T for rate and ttfs, K "
            f"for fs and amos.</p>{figs}<table><tr>{head}</tr>{''.join(body)}</table>"
            f"<script type='application/json' id='rows'>"
            f"{html.escape(json.dumps(list(rows)))}</script></body></html>")
    out = Path(out)
    with atomic_file(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out
