"""`snnc compile`: an ONNX model to an artifact, with a progress bar per pass and a summary."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from snnc.cli.app import app
from snnc.cli.common import (
    check_verbosity,
    console,
    peak_rss_mb,
    print_placement,
    print_populations,
    progress_display,
)
from snnc.errors import SnncError


_LRN_HELP = ("Replace LRN layers (AlexNet, GoogLeNet) by per-channel scales calibrated on --calib, "
             "folded into the conv before them; the manifest reports the top-1 agreement with "
             "the exact ANN.")
_DETERMINISTIC_HELP = ("Fine-tune in float64, rounded to float32 after every step: the same "
                       "--seed gives the same network on any machine and thread count (about "
                       "3x slower); conversion is machine-independent too, so from the ONNX "
                       "file on.")
_NORM_HELP = ("Replace LayerNorm, InstanceNorm and GroupNorm layers by fixed affine maps "
              "calibrated on --calib (frozen statistics, folded into the layer before them); "
              "the manifest reports their error and the top-1 agreement with the exact ANN.")


@app.command()
def compile(
    model: Path = typer.Argument(..., show_default=False, help="The trained ANN (.onnx), or a "
                                 "spiking network in NIR (.nir: no --method/--calib needed)."),
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
    deterministic: bool = typer.Option(False, "--deterministic", help=_DETERMINISTIC_HELP),
    target_file: Path = typer.Option(None, "--target-file", show_default=False,
                                     help="A custom chip description (.toml, may set base = "
                                     "\"loihi2\"); overrides --target."),
    approximate_lrn: bool = typer.Option(False, "--approximate-lrn", help=_LRN_HELP),
    approximate_norm: bool = typer.Option(False, "--approximate-norm", help=_NORM_HELP),
    rate_calibration: str = typer.Option(
        "none", "--rate-calibration", help="rate: post-training calibration on --calib: none, "
        "bias (layer-wise bias correction, Li et al. 2021) or threshold+bias (also a per-layer "
        "threshold search); see docs/methods.md."),
    dt: float = typer.Option(None, "--dt", show_default=False, help="NIR models: the time "
                             "step in seconds (default: the graph's metadata, else 1e-4)."),
    out: Path = typer.Option(None, "-o", "--out", show_default=False,
                             help="Output artifact (default MODEL.snnc)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print per-pass timings, "
                                 "the populations and the core placement."),
) -> None:
    """Compile an ONNX model (or a NIR spiking network) into an artifact (a directory).

    Shows a progress bar per pass (and per fine-tuning epoch), then a summary table: layers,
    neurons, cores and chips, latency, throughput and a spike estimate on calibration samples.
    """
    import time

    from snnc.api import compile_model, estimate_spikes

    check_verbosity(quiet, verbose)
    err = Console(stderr=True, quiet=quiet)
    plan = _pass_plan(model, str(target_file or target), method, int(
        finetune is not None and epochs != 0), approximate_lrn, rate_calibration, approximate_norm)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with progress_display(err, quiet) as progress:
        passes, on_pass, on_epoch = _compile_progress(progress, plan, timings, verbose)
        artifact = compile_model(model, target=target, method=method, calib=calib,
                                 timesteps=timesteps, percentile=percentile, out=out,
                                 on_pass=on_pass, finetune=finetune, epochs=epochs, seed=seed,
                                 deterministic=deterministic,
                                 on_epoch=on_epoch, target_file=target_file, dt=dt,
                                 approximate_lrn=approximate_lrn, approximate_norm=approximate_norm,
                                 rate_calibration=rate_calibration)
        seconds = time.perf_counter() - t0
        estimate = None
        if not quiet and calib is not None:
            progress.update(passes, description="estimating spikes (calibration samples)")
            estimate = estimate_spikes(artifact, calib)
    if quiet:
        return
    if verbose:
        _print_details(artifact, timings)
    _print_compile_summary(artifact, seconds, estimate)


def _print_details(artifact, timings: dict[str, float]) -> None:
    """--verbose: per-pass timings, the populations and the core placement."""
    _print_pass_timings(timings)
    print_populations(artifact.manifest, artifact.path)
    if "placement" in artifact.manifest:
        print_placement(artifact.manifest)


def _pass_plan(model, target: str, method: str, finetune_epochs: int, approximate_lrn: bool,
               rate_calibration, approximate_norm: bool = False) -> list[str] | None:
    """The passes compile will run, for the progress bar; None when the options are bad
    (compile_model then fails with their message)."""
    from snnc.compiler.frontend import is_nir_model
    from snnc.compiler.nir_pipeline import nir_pass_plan
    from snnc.compiler.pipeline import CompileOptions, pass_plan

    with contextlib.suppress(SnncError):
        if is_nir_model(model):  # an imported SNN: frontend, quantize, split_fanin, place
            return nir_pass_plan(target)
        return pass_plan(CompileOptions(method=method, target=target,
                                        finetune_epochs=finetune_epochs,
                                        approximate_lrn=approximate_lrn,
                                        rate_calibration=rate_calibration,
                                        approximate_norm=approximate_norm))
    return None


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
                progress.console().print(f"  epoch {epoch}/{total}  {info}")

    return passes, on_pass, on_epoch


def _print_pass_timings(timings: dict[str, float]) -> None:
    table = Table(title="passes")
    table.add_column("pass")
    table.add_column("time (ms)", justify="right")
    table.add_column("share", justify="right")
    total = sum(timings.values()) or 1.0
    for name, sec in timings.items():
        table.add_row(name, f"{sec * 1e3:,.1f}", f"{sec / total:.0%}")
    console().print(table)


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
             ("peak memory", f"{peak_rss_mb():,.0f} MB")]
    for k, v in rows:
        table.add_row(k, str(v))
    console().print(table)
