"""Command-line interface (typer). User errors print one ``error: ...`` line and exit 2."""

from __future__ import annotations

import contextlib
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
    epilog="Example: snnc compile examples/lenet/lenet.onnx --calib examples/lenet/calib.npz "
           "-o lenet.snnc && snnc simulate lenet.snnc --data examples/lenet/test.npz. "
           "Run snnc COMMAND --help for each command's options; docs/ has the guides.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@app.command()
def inspect(
    model: Path = typer.Argument(..., show_default=False,
                                 help="An ONNX model (.onnx) or a compiled artifact."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show a model's layers: ops, shapes, parameter counts and MACs per layer."""
    if model.is_dir():
        _inspect_artifact(model, as_json)
        return
    from snnc.compiler.frontend import load_onnx
    from snnc.compiler.passes.canonicalize import canonicalize
    from snnc.metrics.model_stats import layer_table

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
    fs = m.get("fan_in_splits")
    if fs:
        console.print(f"fan-in split over partial-sum relays: {', '.join(fs['layers'])} "
                      f"({fs['relay_populations']} relay populations, +{fs['relay_levels']} "
                      "step(s) of latency)")


@app.command()
def compile(
    model: Path = typer.Argument(..., show_default=False, help="The trained ANN (.onnx)."),
    target: str = typer.Option("cpu", help="Hardware target: cpu, loihi1, loihi2 or a target "
                                            "file (.toml, e.g. base = \"loihi2\")."),
    method: str = typer.Option("fs", help="Conversion method: fs (few-spikes), amos (at most "
                                          "one spike per neuron), ttfs (single spike, hybrid "
                                          "input) or rate."),
    calib: Path = typer.Option(None, show_default=False,
                               help="Calibration data (.npz with x) for normalization "
                                    "(required)."),
    timesteps: int = typer.Option(None, show_default=False,
                                  help="rate: time steps T (default 64); fs/amos: K of ReLU gates "
                                       "(default 10); ttfs: T (default 5)."),
    percentile: float = typer.Option(None, show_default=False,
                                     help="Activation percentile for normalization (default: rate "
                                          "99.99, fs 100)."),
    finetune: Path = typer.Option(None, show_default=False,
                                  help="Labelled training data (.npz with x, y): fine-tune the "
                                       "converted SNN (ttfs, rate, fs)."),
    epochs: int = typer.Option(None, show_default=False,
                               help="Fine-tuning epochs (default 10 with --finetune; 0 = no "
                                    "fine-tuning)."),
    seed: int = typer.Option(0, help="Seed of the fine-tuning (shuffling)."),
    target_file: Path = typer.Option(None, "--target-file", show_default=False,
                                     help="A custom chip description (.toml, may set base = "
                                     "\"loihi2\"); overrides --target."),
    approximate_lrn: bool = typer.Option(
        False, "--approximate-lrn", help="Replace LRN layers (AlexNet, GoogLeNet) by per-channel "
        "scales calibrated on --calib, folded into the conv before them; the manifest reports "
        "the top-1 agreement with the exact ANN."),
    out: Path = typer.Option(None, "-o", "--out", show_default=False,
                             help="Output artifact (default MODEL.snnc)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print per-pass timings, "
                                 "the populations and the core placement."),
) -> None:
    """Compile an ONNX model into a spiking-network artifact (a directory).

    Shows a progress bar per pass (and per fine-tuning epoch), then a summary table: layers,
    neurons, cores and chips, latency, throughput and a spike estimate on calibration samples.
    """
    import time

    from snnc.api import compile_model, estimate_spikes
    from snnc.compiler.pipeline import CompileOptions, pass_plan

    _check_verbosity(quiet, verbose)
    err = Console(stderr=True, quiet=quiet)
    plan = None  # for the progress bar; bad options fail in compile_model, with their message
    with contextlib.suppress(SnncError):
        plan = pass_plan(CompileOptions(method=method, target=str(target_file or target),
                                        finetune_epochs=int(finetune is not None and epochs != 0),
                                        approximate_lrn=approximate_lrn))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with _progress(err, quiet) as progress:
        passes, on_pass, on_epoch = _compile_progress(progress, plan, timings, verbose)
        artifact = compile_model(model, target=target, method=method, calib=calib,
                                 timesteps=timesteps, percentile=percentile, out=out,
                                 on_pass=on_pass, finetune=finetune, epochs=epochs, seed=seed,
                                 on_epoch=on_epoch, target_file=target_file,
                                 approximate_lrn=approximate_lrn)
        seconds = time.perf_counter() - t0
        estimate = None
        if not quiet:
            progress.update(passes, description="estimating spikes (calibration samples)")
            estimate = estimate_spikes(artifact, calib)
    if quiet:
        return
    if verbose:
        _print_pass_timings(timings)
        _print_populations(artifact.manifest, artifact.path)
        if "placement" in artifact.manifest:
            _print_placement(artifact.manifest)
    _print_compile_summary(artifact, seconds, estimate)


def _compile_progress(progress, plan: list[str] | None, timings: dict[str, float],
                      verbose: bool):
    """The compile's progress task (one step per pass, named after the pass now running) and
    its callbacks: ``on_pass`` records each pass's time, ``on_epoch`` adds a fine-tuning bar."""
    def running(done: int) -> str:  # the pass now running, from the plan
        return f"compiling: {plan[done]}" if plan and done < len(plan) else "compiling"

    passes = progress.add_task(running(0), total=len(plan) if plan else None, info="")

    def on_pass(name: str, seconds: float) -> None:
        timings[name] = seconds
        progress.update(passes, advance=1, description=running(len(timings)),
                        info=f"{name} {seconds * 1e3:,.1f} ms")

    epochs_task = None

    def on_epoch(epoch: int, total: int, loss: float | None, acc: float | None) -> None:
        nonlocal epochs_task
        if epochs_task is None:
            epochs_task = progress.add_task("fine-tuning", total=total, info="")
        if epoch > 0:
            info = f"loss {loss:.4f}  train acc {acc:.2%}"
            progress.update(epochs_task, completed=epoch, info=info)
            if verbose:
                progress.console.print(f"  epoch {epoch}/{total}  {info}")

    return passes, on_pass, on_epoch


def _check_verbosity(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise SnncError("--quiet and --verbose exclude each other; give one")


def _progress(console: Console, quiet: bool, transient: bool = True):
    """One live display for a command (on a terminal): spinner, task, bar, done/total, info,
    elapsed time."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    return Progress(SpinnerColumn(), "[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                    console=console, transient=transient,
                    # terminals only: elsewhere a live display leaves a stray blank line
                    disable=quiet or not console.is_terminal)


def _print_pass_timings(timings: dict[str, float]) -> None:
    table = Table(title="passes")
    table.add_column("pass")
    table.add_column("time (ms)", justify="right")
    table.add_column("share", justify="right")
    total = sum(timings.values()) or 1.0
    for name, sec in timings.items():
        table.add_row(name, f"{sec * 1e3:,.1f}", f"{sec / total:.0%}")
    console.print(table)


def _print_populations(m: dict, path) -> None:
    table = Table(title=f"{Path(path).name}: {m.get('method')} on {m.get('target')}")
    for col in ("population", "model", "shape", "neurons"):
        table.add_column(col, justify="right" if col == "neurons" else "left")
    for p in m.get("populations", []):
        table.add_row(str(p.get("name")), str(p.get("model")),
                      "x".join(map(str, p.get("shape", []))), f"{p.get('neurons', 0):,}")
    console.print(table)


def _print_compile_summary(artifact, seconds: float, estimate: dict | None) -> None:
    """The table after `compile`: what was built, where it runs, how fast, how many spikes."""
    s = artifact.summary()
    table = Table(title=f"wrote {artifact.path}")
    table.add_column("summary")
    table.add_column("value")
    rows = [("model", s.get("source_model")),
            ("method / target", f"{s['method']} on {s['target']}"),
            ("layers", f"{s['layers']:,}"), ("populations", f"{s['populations']:,}"),
            ("neurons", f"{s['neurons']:,}")]
    if "cores" in s:
        rows += [("synapses", f"{s['synapses']:,}"),
                 ("cores / chips", f"{s['cores']:,} on {s['chips']:,} chip(s) "
                                   f"(lower bound {s['cores_lower_bound']:,})")]
        splits = artifact.manifest.get("fan_in_splits")
        if splits:
            rows.append(("fan-in splits", f"{len(splits['layers'])} layer(s) over "
                                          f"{splits['relay_populations']} relay populations"))
    else:
        rows.append(("cores / chips", "not placed (cpu target)"))
    rows += [("latency", f"{s['latency_steps']:,} steps (input to decision)"),
             ("throughput", f"one sample every {s['throughput_steps']:,} steps")]
    if estimate is not None:
        rows.append(("spikes (estimate)", f"{estimate['spikes_per_neuron']:.3g} per neuron, "
                                          f"{estimate['spikes_per_sample']:,.0f} per sample "
                                          f"(on {estimate['samples']} calibration samples)"))
    else:
        rows.append(("spikes (estimate)", "skipped (large network): run snnc simulate"))
    rows += [("compile time", f"{seconds:.2f} s"),
             ("peak memory", f"{_peak_rss_mb():,.0f} MB")]
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)


@app.command()
def simulate(
    artifact: Path = typer.Argument(..., show_default=False,
                                    help="A compiled artifact (.snnc directory)."),
    data: Path = typer.Option(..., show_default=False,
                              help="Test data (.npz with x and optional labels y)."),
    backend: str = typer.Option("cpu", help="cpu (torch reference simulator) or lava."),
    float_mode: bool = typer.Option(False, "--float", help="Run the ideal (unquantized) "
                                    "network instead of the bit-exact one."),
    limit: int = typer.Option(None, show_default=False, help="Simulate only the first N samples."),
    batch_size: int = typer.Option(None, show_default=False,
                                   help="Samples per batch (default: from memory)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (the metrics "
                                 "contract: accuracy, spikes, latency, energy...)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the "
                               "results (or errors)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print spikes per neuron "
                                 "of every population."),
) -> None:
    """Simulate an artifact on a data set; print accuracy, spikes, latency and energy."""
    from snnc.api import load, simulate_artifact

    _check_verbosity(quiet, verbose)
    art = load(artifact)
    with _progress(Console(stderr=True), quiet) as progress:
        task = progress.add_task(f"simulating ({backend})", total=None, info="samples")
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
    if verbose:
        layers = Table(title="spikes per population")
        for col in ("population", "neurons", "spikes/neuron", "max spikes of one neuron"):
            layers.add_column(col, justify="left" if col == "population" else "right")
        for r in metrics.get("layers", []):
            mx = r.get("max_spikes_per_neuron")
            layers.add_row(r["name"], f"{r['neurons']:,}", f"{r['spikes_per_neuron']:.4g}",
                           "n/a" if mx is None else f"{mx:g}")
        console.print(layers)


@app.command()
def export(
    artifact: Path = typer.Argument(..., show_default=False,
                                    help="A compiled artifact (.snnc directory, rate)."),
    fmt: str = typer.Option(..., "--format", show_default=False,
                            help="nir (NIR graph) or netx (lava-dl HDF5)."),
    out: Path = typer.Option(..., "-o", "--out", show_default=False,
                             help="Output file (.nir, .net)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the exported "
                                 "populations and the file size."),
) -> None:
    """Export a rate-coded artifact to NIR or lava-dl netx (see README "Export")."""
    from snnc.api import export_artifact, load

    _check_verbosity(quiet, verbose)
    art = load(artifact)
    path = export_artifact(art, fmt, out)
    err = Console(stderr=True, quiet=quiet)
    if verbose:
        _print_populations(art.manifest, artifact)
        err.print(f"{path.stat().st_size:,} bytes")
    err.print(f"wrote {path} ({fmt})")


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
        task = progress.add_task("loading", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        path = write_report(artifact, data, out, limit=limit or None, backend=backend,
                            on_progress=on_progress)
    err.print(f"wrote {path}")


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
