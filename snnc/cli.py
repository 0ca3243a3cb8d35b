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
    model: Path = typer.Argument(..., help="An ONNX model (.onnx) or a compiled artifact."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show a model's layers: ops, shapes, parameter counts and MACs per layer."""
    if model.is_dir():
        _inspect_artifact(model, as_json)
        return
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


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far. Linux: VmHWM, since ru_maxrss also counts
    the parent's memory at the time of a vfork/exec; elsewhere ru_maxrss (bytes on macOS)."""
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss * 1024 / 1e6


def _inspect_artifact(path: Path, as_json: bool) -> None:
    """`inspect` of an artifact: loading verifies schema version and every sha256 first."""
    from snnc.api import load

    m = load(path).manifest
    keys = ("target", "method", "source_model", "source_sha256", "neurons", "populations",
            "layers", "latency_steps", "throughput_steps", "cores", "chips", "cores_lower_bound",
            "synapses")
    summary = {"artifact": str(path), "schema_version": m["schema_version"],
               **{k: m[k] for k in keys if k in m}}
    if "placement" in m:  # Loihi-class targets: per-layer slices, cores and utilization
        summary["placement"] = m["placement"]["layers"]
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{path.name}: {m.get('method')} on {m.get('target')} (hashes verified)")
    for col in ("population", "model", "shape", "neurons"):
        table.add_column(col)
    for p in m.get("populations", []):
        table.add_row(str(p.get("name")), str(p.get("model")),
                      "x".join(map(str, p.get("shape", []))), str(p.get("neurons")))
    console.print(table)
    if "placement" in m:
        _print_placement(m)


def _print_placement(m: dict) -> None:
    pl = m["placement"]
    table = Table(title=f"placement on {m.get('target')}: {pl['cores']:,} cores on "
                        f"{pl['chips']} chip(s), lower bound {pl['cores_lower_bound']:,}")
    for col in ("layer", "neurons", "synapses", "slices", "cores", "tile", "use % n/in/out/mem"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in pl["layers"]:
        u = r["utilization"]
        pct = "/".join("-" if u[k] is None else f"{100 * u[k]:.0f}"
                       for k in ("neurons", "in_axons", "out_axons", "synapse_bits"))
        table.add_row(r["name"], f"{r['neurons']:,}", f"{r['synapses']:,}", str(r["slices"]),
                      str(r["cores"]), "x".join(map(str, r["tile"])), pct)
    console.print(table)
    console.print(f"neurons: {pl['demand']['neurons']:,}  synapses: {pl['demand']['synapses']:,}"
                  f"  inter-core spike routes: {pl['traffic']['inter_core']:,.0f} of "
                  f"{pl['traffic']['routes']:,.0f}")


@app.command()
def compile(
    model: Path = typer.Argument(..., help="The trained ANN (.onnx)."),
    target: str = typer.Option("cpu", help="Hardware target: cpu, loihi1, loihi2 or a target "
                                            "file (.toml, e.g. base = \"loihi2\")."),
    method: str = typer.Option("fs", help="Conversion method: fs (few-spikes), amos (at most "
                                          "one spike per neuron), ttfs (single spike, hybrid "
                                          "input) or rate."),
    calib: Path = typer.Option(None, help="Calibration data (.npz with x) for normalization."),
    timesteps: int = typer.Option(None, help="rate: time steps T (default 64); fs/amos: K of "
                                             "ReLU gates (default 10); ttfs: T (default 5)."),
    percentile: float = typer.Option(None, help="Activation percentile for normalization "
                                                "(default: rate 99.99, fs 100)."),
    finetune: Path = typer.Option(None, help="Labelled training data (.npz with x, y): "
                                             "fine-tune the converted SNN (ttfs, rate, fs)."),
    epochs: int = typer.Option(None, help="Fine-tuning epochs (default 10 with --finetune; "
                                          "0 = no fine-tuning)."),
    seed: int = typer.Option(0, help="Seed of the fine-tuning (shuffling)."),
    target_file: Path = typer.Option(None, "--target-file", help="A custom chip description "
                                     "(.toml, may set base = \"loihi2\"); overrides --target."),
    out: Path = typer.Option(None, "-o", "--out", help="Output artifact (default MODEL.snnc)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
) -> None:
    """Compile an ONNX model into a spiking-network artifact (a directory)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.progress import TimeElapsedColumn

    from snnc.api import compile_model

    err = Console(stderr=True, quiet=quiet)
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=err, disable=quiet)
    with err.status("compiling") as status:
        def on_pass(name: str, seconds: float) -> None:
            err.print(f"  {name:<16} {seconds * 1e3:8.1f} ms")
            status.update(f"compiling: {name} done")

        task = None

        def on_epoch(epoch: int, total: int, loss: float | None, acc: float | None) -> None:
            nonlocal task
            if task is None:  # one live display at a time: the bar replaces the spinner
                status.stop()
                progress.start()
                task = progress.add_task("fine-tuning", total=total, info="")
            if epoch > 0:
                info = f"loss {loss:.4f}  train acc {acc:.2%}"
                progress.update(task, completed=epoch, info=info)
                progress.console.print(f"  epoch {epoch}/{total}  {info}")
            if epoch == total:
                progress.stop()
                status.start()

        artifact = compile_model(model, target=target, method=method, calib=calib,
                                 timesteps=timesteps, percentile=percentile, out=out,
                                 on_pass=on_pass, finetune=finetune, epochs=epochs, seed=seed,
                                 on_epoch=on_epoch, target_file=target_file)
    m = artifact.manifest
    err.print(f"wrote {artifact.path}: {m['method']} on {m['target']}, {m['neurons']:,} neurons "
              f"in {len(m['populations'])} populations, latency {m['latency_steps']} steps, "
              f"one image every {m['throughput_steps']} steps")
    err.print(f"peak memory {_peak_rss_mb():,.0f} MB")


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
            on_batch=lambda k: progress.advance(task, k), float_mode=float_mode)
    if as_json:
        print(json.dumps(metrics, indent=1))
        return
    table = Table(title=f"{artifact.name}: {art.manifest['method']} on {art.manifest['target']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("mode", "samples", "accuracy", "ann_accuracy", "agreement", "spikes_per_neuron",
                "latency_steps", "throughput_steps", "synops_per_sample",
                "energy_uj_per_sample", "ann_energy_uj_per_sample", "wall_s"):
        v = metrics[key]
        table.add_row(key, "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    console.print(table)


@app.command()
def export(
    artifact: Path = typer.Argument(..., help="A compiled artifact (.snnc directory, rate)."),
    fmt: str = typer.Option(..., "--format", help="nir (NIR graph) or netx (lava-dl HDF5)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output file (.nir, .net)."),
) -> None:
    """Export a rate-coded artifact to NIR or lava-dl netx (see README "Export")."""
    from snnc.api import export_artifact

    path = export_artifact(artifact, fmt, out)
    Console(stderr=True).print(f"wrote {path} ({fmt})")


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
