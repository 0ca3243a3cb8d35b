"""What the commands share: the stdout console, progress display, verbosity check and the
population and placement tables."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from snnc.errors import SnncError

__all__ = [
    "check_verbosity",
    "console",
    "peak_rss_mb",
    "print_placement",
    "print_populations",
    "progress_display",
]


def console() -> Console:
    """A console on the stdout of this moment (so its colour system follows what the user gave
    the command, also when the CLI runs in-process)."""
    return Console()


def check_verbosity(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise SnncError("--quiet and --verbose exclude each other; give one")


def progress_display(console: Console, quiet: bool, transient: bool = True):
    """One live display for a command (on a terminal): spinner, task, bar, done/total, info,
    elapsed time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(), "[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                    console=console, transient=transient,
                    # terminals only: elsewhere a live display leaves a stray blank line
                    disable=quiet or not console.is_terminal)


def print_populations(m: dict, path) -> None:
    table = Table(title=f"{Path(path).name}: {m.get('method')} on {m.get('target')}")
    for col in ("population", "model", "shape", "neurons"):
        table.add_column(col, justify="right" if col == "neurons" else "left")
    for p in m.get("populations", []):
        table.add_row(str(p.get("name")), str(p.get("model")),
                      "x".join(map(str, p.get("shape", []))), f"{p.get('neurons', 0):,}")
    console().print(table)


def print_placement(m: dict) -> None:
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
    console().print(table)
    console().print(f"neurons: {pl['demand']['neurons']:,}  synapses: {pl['demand']['synapses']:,}"
                  f"  inter-core spike routes: {pl['traffic']['inter_core']:,.0f} of "
                  f"{pl['traffic']['routes']:,.0f}")
    fs = m.get("fan_in_splits")
    if fs:
        console().print(f"fan-in split over partial-sum relays: {', '.join(fs['layers'])} "
                      f"({fs['relay_populations']} relay populations, +{fs['relay_levels']} "
                      "step(s) of latency)")


def peak_rss_mb() -> float:
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
