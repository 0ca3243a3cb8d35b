"""`snnc sweep`: compile and simulate a grid of methods x time windows; a table, Pareto plots
(HTML) or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from snnc.cli.app import app
from snnc.cli.common import console, progress_display
from snnc.errors import SnncError


def parse_timesteps(specs: list[str] | None) -> dict[str, list[int]] | list[int] | None:
    """``--timesteps 4,8,16`` (every method) or ``--timesteps rate=16,32`` (repeatable)."""
    if not specs:
        return None
    shared: list[int] = []
    per: dict[str, list[int]] = {}
    for spec in specs:
        method, _, values = spec.rpartition("=")
        try:
            ts = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise SnncError(f"--timesteps '{spec}': expected integers such as 4,8,16 or "
                            "rate=16,32,64") from None
        if method:
            per[method.strip()] = ts
        else:
            shared = ts
    if per and shared:
        raise SnncError("--timesteps: give one list for all methods or METHOD=LIST each, "
                        "not both")
    return per or shared


@app.command()
def sweep(
    model: Path = typer.Argument(..., show_default=False, help="The ONNX model."),
    calib: Path = typer.Option(..., show_default=False, help="Calibration data (.npz)."),
    data: Path = typer.Option(..., show_default=False, help="Test data (.npz with x, y)."),
    methods: str = typer.Option("rate,fs,amos,ttfs", help="Methods, comma-separated."),
    timesteps: list[str] = typer.Option(None, show_default=False, help="Time windows: 4,8,16 "
                                        "for every method, or METHOD=LIST (repeatable); "
                                        "default rate 16,32,64, fs/amos K 6,8,10, ttfs 3,5,8."),
    target: str = typer.Option("cpu", help="Target of every compile (cpu, loihi1, loihi2)."),
    limit: int = typer.Option(None, show_default=False, help="Simulate only the first N samples."),
    batch_size: int = typer.Option(None, show_default=False, help="Samples per batch."),
    ray: bool = typer.Option(False, "--ray", help="Run the grid points as Ray tasks."),
    ray_address: str = typer.Option(None, "--ray-address", show_default=False,
                                    help="An existing Ray cluster: host:port or ray://host:port."),
    workers: int = typer.Option(None, show_default=False, help="Ray tasks at once."),
    out: Path = typer.Option(Path("sweep.html"), "-o", "--out", help="The HTML page."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as one JSON object."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compile and simulate every method x time window; table and Pareto plots (accuracy
    against energy per inference and latency) to pick a method."""
    from snnc.sweeps import sweep as run_sweep
    from snnc.sweeps import write_sweep_html

    if out.is_dir() or not out.parent.is_dir():
        raise SnncError(f"-o {out}: give an HTML file in an existing directory")
    names = [m.strip() for m in methods.split(",") if m.strip()]
    with progress_display(Console(stderr=True), quiet) as progress:
        task = progress.add_task("sweeping", total=None, info="points")
        rows = run_sweep(model, calib=calib, data=data, methods=names,
                         timesteps=parse_timesteps(timesteps), target=target, limit=limit,
                         batch_size=batch_size, ray=ray, ray_address=ray_address,
                         workers=workers, on_start=lambda n: progress.update(task, total=n),
                         on_point=lambda row: progress.advance(task, 1))
    write_sweep_html(rows, out, title=f"snnc sweep: {model.name} on {target}")
    if as_json:
        print(json.dumps({"model": str(model), "target": target, "html": str(out),
                          "points": rows}, indent=1))
        return
    table = Table(title=f"{model.name} on {target} ({out})")
    regression = any(r.get("accuracy") is None and r.get("rel_l2_vs_ann") is not None
                     for r in rows)
    score = "rel. L2 vs ANN" if regression else "accuracy"
    for col in ("method", "T/K", score, "energy uJ", "latency", "pareto"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        if r["error"]:
            table.add_row(r["method"], str(r["timesteps"]), f"error: {r['error']}", "", "", "")
            continue
        value = r["rel_l2_vs_ann"] if regression else r["accuracy"]
        acc = "n/a" if value is None else f"{100 * value:.2f}%"
        table.add_row(r["method"], str(r["timesteps"]), acc, f"{r['energy_uj_per_sample']:.4g}",
                      str(r["latency_steps"]), "*" if r["pareto"] else "")
    console().print(table)
