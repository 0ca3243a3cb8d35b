"""Figures of the HTML report (``snnc report``): one function per figure, plain data in,
a matplotlib ``Figure`` out. Figures are built with ``matplotlib.figure.Figure`` and rendered
by the Agg canvas (``figure_png``): no pyplot, no global state, no window.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = ["spikes_per_layer", "accuracy_vs_timesteps", "spike_raster", "core_utilization",
           "energy_breakdown", "figure_png"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


_ABBREV = {"neurons": "neur", "in_axons": "in ax", "out_axons": "out ax",
           "synapse_bits": "syn"}


def _color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def _short(name: str, width: int = 22) -> str:
    """Layer names from ONNX exporters are long paths (``/Relu_1_output_0``): keep the end."""
    name = name.strip("/")
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _plain_text(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure with mathtext off: layer names come from the ONNX file and may hold
    ``$`` (texts take the setting when they are created)."""

    @functools.wraps(fn)
    def build(*args, **kwargs) -> Figure:
        with rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)

    return build


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _note(fig: Figure, text: str) -> None:
    """A small grey line under the axes (part of the constrained layout: never clipped)."""
    fig.supxlabel(text, fontsize=7, color="#444444")


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg, no timestamp metadata: same data, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


@_plain_text
def spikes_per_layer(layers: Sequence[Mapping]) -> Figure:
    """Bar chart of the mean spikes per neuron and sample of every population.

    Args:
        layers: ``{"name", "spikes_per_neuron", "neurons"}`` per population, in graph order
            (``metrics["layers"]`` of ``simulate``).
    """
    fig = _figure(8.0, 3.8)
    ax = fig.add_subplot()
    names = [_short(r["name"]) for r in layers]
    vals = [float(r["spikes_per_neuron"]) for r in layers]
    bars = ax.bar(range(len(vals)), vals, color=[_color(i) for i in range(len(vals))])
    for b, r in zip(bars, layers):
        ax.annotate(f"{b.get_height():.3g}\n({int(r['neurons']):,} n)",
                    (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(vals)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("spikes / neuron / sample")
    ax.set_ylim(0, max(vals + [1e-9]) * 1.3)
    ax.set_title("Spikes per neuron, per population")
    ax.grid(axis="y", alpha=0.3)
    return fig


@_plain_text
def accuracy_vs_timesteps(points: Sequence[Mapping], *, ann: float | None, metric: str,
                          note: str = "") -> Figure:
    """SNN accuracy at one or more window lengths, with the ANN as a horizontal line.

    Args:
        points: ``{"steps", "value", "label"}`` per SNN run; runs with the same label form
            one line (e.g. a rate network re-simulated at several T).
        ann: The ANN's value on the same samples (None: no line).
        metric: y-axis label ("accuracy" or "agreement with ANN top-1").
        note: One line under the plot saying how the points were obtained.
    """
    fig = _figure(8.0, 3.8)
    ax = fig.add_subplot()
    labels = list(dict.fromkeys(p["label"] for p in points))
    for i, label in enumerate(labels):
        pts = sorted((p["steps"], p["value"]) for p in points if p["label"] == label)
        xs, ys = zip(*pts)
        # later runs get smaller, other markers: coinciding points stay visible
        ax.plot(xs, [100 * y for y in ys], marker="osD^v"[i % 5], color=_color(i), label=label,
                linestyle="-" if len(xs) > 1 else "none", markersize=max(9 - 3 * i, 4))
        for x, y in pts:
            ax.annotate(f"{100 * y:.1f}", (x, 100 * y), fontsize=8, textcoords="offset points",
                        xytext=(6, -12) if i % 2 == 0 else (-30, 6))
    if ann is not None:
        ax.axhline(100 * ann, color="black", linestyle="--", linewidth=1,
                   label=f"ANN (onnxruntime) {100 * ann:.1f} %" if metric == "accuracy"
                   else "ANN top-1 (onnxruntime): the reference" if metric.startswith("agree")
                   else "ANN (onnxruntime): the reference")
    steps = sorted({p["steps"] for p in points})
    if len(steps) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlim(steps[0] / 1.5, steps[-1] * 1.5)
    values = [100 * p["value"] for p in points] + ([100 * ann] if ann is not None else [])
    ax.set_ylim(max(0.0, min(values) - 5), min(100.0, max(values) + 3) + 0.5)
    ax.set_xlabel("time steps per sample (T, or K for few-spike codes)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"SNN {metric} vs time steps")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if note:
        _note(fig, note)
    return fig


@_plain_text
def spike_raster(trains: Mapping[str, np.ndarray], *, offsets: Mapping[str, int] | None = None,
                 per_layer: int = 64, note: str = "") -> Figure:
    """Spike raster of one sample: time step vs neuron, ``per_layer`` evenly spaced neurons of
    every population, one color per population.

    Args:
        trains: Per population, bool (steps, *shape) spikes of the sample.
        offsets: Per population, the global step of its local step 0 (pipelined few-spike
            windows); default 0.
        per_layer: Neurons drawn per population (evenly spaced over its flat index).
        note: One line under the plot.
    """
    fig = _figure(10.0, 4.8)
    ax = fig.add_subplot()
    row, ticks, tick_labels = 0, [], []
    total_spikes, steps_max = 0, 1
    for i, (name, train) in enumerate(trains.items()):
        flat = np.asarray(train, dtype=bool).reshape(train.shape[0], -1)
        n = flat.shape[1]
        idx = np.unique(np.linspace(0, n - 1, min(per_layer, n)).round().astype(int))
        t, k = np.nonzero(flat[:, idx])
        start = (offsets or {}).get(name, 0)
        ax.scatter(t + start, row + k, s=6, marker="|", color=_color(i), linewidths=1.2,
                   label=f"{_short(name)}: {len(idx)} of {n:,} neurons, "
                         f"{int(flat.sum()):,} spikes")
        total_spikes += int(flat.sum())
        steps_max = max(steps_max, start + flat.shape[0])
        ticks.append(row + len(idx) / 2)
        tick_labels.append(_short(name, 16))
        row += len(idx)
        ax.axhline(row - 0.5, color="#cccccc", linewidth=0.6)
    ax.set_yticks(ticks, tick_labels, fontsize=8)
    ax.set_ylim(-1, max(row, 1))
    ax.set_xlim(-0.5, steps_max - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron (sampled per population)")
    ax.set_title(f"Spike raster of sample 0 ({total_spikes:,} spikes in all recorded neurons)")
    if trains:
        fig.legend(loc="outside right upper", fontsize=7, markerscale=3)
    else:
        ax.text(0.5, 0.5, "no per-step spike record", ha="center", va="center",
                transform=ax.transAxes)
    ax.grid(axis="x", alpha=0.3)
    if note:
        _note(fig, note)
    return fig


@_plain_text
def core_utilization(cores: Sequence[Mapping] | None, *, mesh_cols: int = 1,
                     mesh_rows: int = 1, chips: int = 1, title: str = "",
                     note: str = "") -> Figure:
    """Heatmap of each used core's utilization of its binding resource at its mesh position.

    Args:
        cores: ``{"chip", "x", "y", "utilization", "resource", "populations"}`` per used core
            (utilization of the resource with the highest usage/limit, 0..1); None: the
            artifact has no placement, and the figure is a panel saying so (``note``).
        mesh_cols, mesh_rows: The chip's mesh (tiles E-W x N-S); chips are drawn side by side.
        chips: Chips shown.
    """
    if cores is None:
        fig = _figure(8.0, 2.2)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.add_patch(FancyBboxPatch(
            (0.02, 0.1), 0.96, 0.8, boxstyle="round,pad=0.01", facecolor="#f3f3f3",
            edgecolor="#999999", transform=ax.transAxes))
        ax.text(0.5, 0.6, title or "no placement", ha="center", va="center", fontsize=15,
                transform=ax.transAxes)
        ax.text(0.5, 0.3, note, ha="center", va="center", fontsize=9, color="#444444",
                transform=ax.transAxes)
        return fig
    grid = np.full((mesh_rows, mesh_cols * chips), np.nan)
    for c in cores:
        grid[int(c["y"]), int(c["chip"]) * mesh_cols + int(c["x"])] = float(c["utilization"])
    fig = _figure(min(3.0 + 1.6 * chips, 12.0), 6.0)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, origin="upper",
                   aspect="equal")
    for c in cores:
        u = float(c["utilization"])
        text = f"{100 * u:.0f}%\n{_ABBREV.get(c['resource'], c['resource'])}"
        ax.text(int(c["chip"]) * mesh_cols + int(c["x"]), int(c["y"]), text, ha="center",
                va="center", fontsize=6, color="white" if u < 0.6 else "black")
    for k in range(1, chips):
        ax.axvline(k * mesh_cols - 0.5, color="black", linewidth=1.5)
    cols = range(mesh_cols * chips)
    ax.set_xticks(cols, [str(i % mesh_cols) for i in cols], fontsize=7)
    ax.set_yticks(range(mesh_rows), [str(i) for i in range(mesh_rows)], fontsize=7)
    ax.set_xlabel("mesh x (E-W)" + (f", {chips} chips side by side" if chips > 1 else ""))
    ax.set_ylabel("mesh y (N-S)")
    ax.set_title(title or f"Core utilization ({len(cores)} cores)", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="utilization of the binding resource")
    if note:
        _note(fig, note)
    return fig


@_plain_text
def energy_breakdown(parts: Mapping[str, float], ann_uj: float | None, *,
                     model: str = "") -> Figure:
    """Stacked bar of the SNN's energy per sample by component, beside the ANN baseline.

    Args:
        parts: Component name -> µJ per sample (e.g. synops, neuron updates, spike routing).
        ann_uj: The ANN's energy per sample (µJ), or None.
        model: The energy model, printed under the plot.
    """
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    bottom = 0.0
    for i, (name, value) in enumerate(parts.items()):
        ax.bar(0, value, bottom=bottom, color=_color(i), width=0.5,
               label=f"{name.replace('_', ' ')}: {value:.3g} µJ")
        bottom += value
    ax.annotate(f"{bottom:.3g} µJ", (0, bottom), ha="center", va="bottom", xytext=(0, 2),
                textcoords="offset points", fontsize=9)
    ticks, labels = [0], ["SNN"]
    if ann_uj is not None:
        ax.bar(1, ann_uj, color="#555555", width=0.5, label=f"ANN MACs: {ann_uj:.3g} µJ")
        ax.annotate(f"{ann_uj:.3g} µJ", (1, ann_uj), ha="center", va="bottom", xytext=(0, 2),
                    textcoords="offset points", fontsize=9)
        ticks, labels = [0, 1], ["SNN", "ANN"]
    ax.set_xticks(ticks, labels)
    ax.set_xlim(-0.6, 2.4 if ann_uj is not None else 1.6)
    ax.set_ylim(0, max(bottom, ann_uj or 0.0, 1e-12) * 1.2)
    ax.set_ylabel("energy per sample (µJ)")
    ax.set_title("Energy per sample")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if model:
        _note(fig, model)
    return fig
