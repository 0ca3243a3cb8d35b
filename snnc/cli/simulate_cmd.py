"""`snnc simulate`: an artifact on a data set; the metrics as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from snnc.cli.app import app
from snnc.cli.common import check_verbosity, console, progress_display
from snnc.metrics.tasks import HEADLINE


@app.command()
def simulate(
    artifact: Path = typer.Argument(..., show_default=False,
                                    help="A compiled artifact (.snnc directory)."),
    data: Path = typer.Option(..., show_default=False,
                              help="Test data (.npz with x and optional y: class labels, or "
                              "float targets for regression)."),
    task: str = typer.Option("auto", help="auto, classification (top-1 against labels) or "
                             "regression (output values against the ANN and targets y)."),
    backend: str = typer.Option("cpu", help="cpu (torch reference simulator) or lava."),
    float_mode: bool = typer.Option(False, "--float", help="Run the ideal (unquantized) "
                                    "network instead of the bit-exact one."),
    limit: int = typer.Option(None, show_default=False, help="Simulate only the first N samples."),
    batch_size: int = typer.Option(None, show_default=False,
                                   help="Samples per batch (default: from memory)."),
    device: str = typer.Option(None, show_default=False, help="cpu or cuda: where the "
                               "reference simulator runs (default: cuda when present)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (the metrics "
                                 "contract: accuracy, spikes, latency, energy...)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the "
                               "results (or errors)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print spikes per neuron "
                                 "of every population."),
    ray: bool = typer.Option(False, "--ray", help="Shard the samples over Ray tasks (a local "
                             "cluster unless --ray-address); same metrics (docs/scale-out.md)."),
    ray_address: str = typer.Option(None, "--ray-address", show_default=False,
                                    help="An existing Ray cluster: host:port or "
                                    "ray://host:port."),
    workers: int = typer.Option(None, show_default=False, help="Ray tasks at once (default: "
                                "the cluster's CPUs)."),
) -> None:
    """Simulate an artifact on a data set; print accuracy, spikes, latency and energy."""
    from snnc.api import load, simulate_artifact

    check_verbosity(quiet, verbose)
    art = load(artifact)
    with progress_display(Console(stderr=True), quiet) as progress:
        bar = progress.add_task(f"simulating ({backend})", total=None, info="samples")
        metrics = simulate_artifact(
            art, data, backend=backend, limit=limit, batch_size=batch_size,
            on_start=lambda n: progress.update(bar, total=n),
            on_batch=lambda k: progress.advance(bar, k), float_mode=float_mode,
            ray=ray, ray_address=ray_address, workers=workers, device=device, task=task)
    if as_json:
        print(json.dumps(metrics, indent=1))
        return
    table = Table(title=f"{artifact.name}: {art.manifest['method']} on {art.manifest['target']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    headline = HEADLINE[metrics.get("task", "classification")]
    for key in ("mode", "samples", *headline, "spikes_per_neuron", "latency_steps",
                "throughput_steps", "synops_per_sample", "energy_uj_per_sample",
                "ann_energy_uj_per_sample", "wall_s"):
        v = metrics[key]
        table.add_row(key, "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    console().print(table)
    if verbose:
        layers = Table(title="spikes per population")
        for col in ("population", "neurons", "spikes/neuron", "max spikes of one neuron"):
            layers.add_column(col, justify="left" if col == "population" else "right")
        for r in metrics.get("layers", []):
            mx = r.get("max_spikes_per_neuron")
            layers.add_row(r["name"], f"{r['neurons']:,}", f"{r['spikes_per_neuron']:.4g}",
                           "n/a" if mx is None else f"{mx:g}")
        console().print(layers)
