"""Command-line interface (typer). User errors print one ``error: ...`` line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.table import Table

from snnc.errors import SnncError

__all__ = ["app", "main"]

app = typer.Typer(
    name="snnc",
    help="snnc: compile trained ANNs (ONNX) into spiking networks for Loihi-class hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@app.command()
def inspect(
    model: Path = typer.Argument(..., help="An ONNX model (.onnx)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show a model's layers: ops, shapes, parameter counts and MACs per layer."""
    from snnc.compiler.frontend import load_onnx
    from snnc.compiler.passes.canonicalize import canonicalize
    from snnc.report.model_stats import layer_table

    graph = canonicalize(load_onnx(model))
    rows = layer_table(graph)
    summary = {
        "model": str(model),
        "inputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.inputs],
        "outputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.outputs],
        "layers": rows,
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
    }
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{model.name}: {len(rows)} layers", show_lines=False)
    for col, just in (("layer", "left"), ("op", "left"), ("inputs", "left"),
                      ("output", "left"), ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["name"], r["op"], ", ".join(r["inputs"]), "x".join(map(str, r["shape"])),
                      f"{r['params']:,}", f"{r['macs']:,}")
    console.print(table)
    ins = ", ".join(f"{i['name']} {i['shape']}" for i in summary["inputs"])
    console.print(f"inputs: {ins} (batch axis implicit)  params: {summary['params']:,}  "
                  f"MACs/sample: {summary['macs']:,}")


@app.command()
def compile(
    model: Path = typer.Argument(..., help="The trained ANN (.onnx)."),
    target: str = typer.Option("cpu", help="Hardware target: cpu (loihi1/loihi2 need the "
                                            "quantization and placement passes, not built yet)."),
    method: str = typer.Option("fs", help="Conversion method: fs (few-spikes) or rate."),
    calib: Path = typer.Option(None, help="Calibration data (.npz with x) for normalization."),
    timesteps: int = typer.Option(None, help="rate: time steps T (default 64); fs: K of ReLU "
                                             "gates (default 10)."),
    percentile: float = typer.Option(None, help="Activation percentile for normalization "
                                                "(default: rate 99.99, fs 100)."),
    out: Path = typer.Option(None, "-o", "--out", help="Output artifact (default MODEL.snnc)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
) -> None:
    """Compile an ONNX model into a spiking-network artifact (a directory)."""
    from snnc.api import compile_model

    err = Console(stderr=True, quiet=quiet)
    with err.status("compiling") as status:
        def on_pass(name: str, seconds: float) -> None:
            err.print(f"  {name:<16} {seconds * 1e3:8.1f} ms")
            status.update(f"compiling: {name} done")

        artifact = compile_model(model, target=target, method=method, calib=calib,
                                 timesteps=timesteps, percentile=percentile, out=out,
                                 on_pass=on_pass)
    m = artifact.manifest
    err.print(f"wrote {artifact.path}: {m['method']} on {m['target']}, {m['neurons']:,} neurons "
              f"in {len(m['populations'])} populations, latency {m['latency_steps']} steps, "
              f"one image every {m['throughput_steps']} steps")


@app.command()
def simulate(
    artifact: Path = typer.Argument(..., help="A compiled artifact (.snnc directory)."),
    data: Path = typer.Option(..., help="Test data (.npz with x and optional labels y)."),
    backend: str = typer.Option("cpu", help="cpu (torch reference simulator) or lava."),
    float_mode: bool = typer.Option(False, "--float", help="Ideal (unquantized) network."),
    limit: int = typer.Option(None, help="Simulate only the first N samples."),
    batch_size: int = typer.Option(None, help="Samples per batch (default: from memory)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Simulate an artifact on a data set; print accuracy, spikes, latency and energy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from snnc.api import load, simulate_artifact

    art = load(artifact)
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), disable=quiet, transient=True)
    with progress:
        task = progress.add_task("simulating", total=None)
        metrics = simulate_artifact(
            art, data, backend=backend, limit=limit, batch_size=batch_size,
            on_start=lambda n: progress.update(task, total=n),
            on_batch=lambda k: progress.advance(task, k))
    if as_json:
        print(json.dumps(metrics, indent=1))
        return
    table = Table(title=f"{artifact.name}: {art.manifest['method']} on {art.manifest['target']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("samples", "accuracy", "ann_accuracy", "agreement", "spikes_per_neuron",
                "latency_steps", "throughput_steps", "synops_per_sample",
                "energy_uj_per_sample", "ann_energy_uj_per_sample", "wall_s"):
        v = metrics[key]
        table.add_row(key, "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    console.print(table)


@app.command()
def targets(
    as_json: bool = typer.Option(False, "--json", help="Print the full target descriptions."),
) -> None:
    """List the built-in hardware targets and their main limits."""
    from snnc.targets import builtin_targets, format_targets, load_target, target_to_dict

    specs = [load_target(name) for name in builtin_targets()]
    if as_json:
        print(json.dumps({s.name: target_to_dict(s) for s in specs}, indent=1))
        return
    console.print(format_targets(specs))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snnc`` script; returns the exit code."""
    try:
        app(args=argv, prog_name="snnc", standalone_mode=False)
    except SnncError as e:
        print(f"error: {' '.join(str(e).split(chr(10))[:1])}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except click.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
