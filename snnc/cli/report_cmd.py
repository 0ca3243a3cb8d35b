"""`snnc report`: the self-contained HTML report of an artifact."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from snnc.cli.app import app
from snnc.errors import SnncError


@app.command()
def report(
    artifact: Path = typer.Argument(..., show_default=False,
                                    help="A compiled artifact (.snnc directory)."),
    data: Path = typer.Option(..., show_default=False,
                              help="Test data (.npz with x and optional labels y)."),
    out: Path = typer.Option(None, "-o", "--out", show_default=False,
                             help="Output HTML file (default: ARTIFACT_NAME.html beside the "
                                  "artifact, never inside it)."),
    limit: int = typer.Option(200, help="Use the first N samples (the report re-simulates "
                                        "several times; 0 = all)."),
    backend: str = typer.Option("cpu", help="cpu (reference simulator) or lava for the "
                                            "main run."),
    task: str = typer.Option("auto", help="auto, classification or regression (the output "
                             "error against the ANN instead of accuracies)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
) -> None:
    """Write a self-contained HTML report: summary table, spikes per layer, accuracy vs time
    steps, a spike raster, the core map and the energy breakdown (see README "HTML report")."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from snnc.report.html import write_report

    if limit < 0:
        raise SnncError(f"--limit must be >= 0 (0 = all samples), got {limit}")
    err = Console(stderr=True, quiet=quiet)
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                        disable=quiet or not err.is_terminal, transient=True)
    with progress:  # terminals only: elsewhere a live display leaves a stray blank line
        bar = progress.add_task("loading", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(bar, description=stage, completed=done, total=total)

        path = write_report(artifact, data, out, limit=limit or None, backend=backend,
                            on_progress=on_progress, task=task)
    err.print(f"wrote {path}")
