"""Compare the four conversion methods on the shipped LeNet in one table.

    .venv/bin/python examples/compare_methods.py [--limit 200] [--target cpu]

Compiles examples/lenet/lenet.onnx with rate (T=64), fs (K=10), amos (k=10) and ttfs (T=5),
default options, and simulates each on the first ``--limit`` test images. Columns: SNN and ANN
accuracy, spikes per neuron, latency (steps from input to decision), throughput (steps between
pipelined images), synaptic events and energy per image, compile time. docs/methods.md explains
the trade-offs; README "Conversion results" has the numbers on all 1,000 test images. The last
line printed is ``RESULT {json}`` (one row per method).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import snnc

LENET = Path(__file__).resolve().parent / "lenet"
METHODS = ("rate", "fs", "amos", "ttfs")


def compare(limit: int, target: str = "cpu", out_dir: Path = Path("out/examples")) -> list[dict]:
    rows = []
    for method in METHODS:
        t0 = time.perf_counter()
        art = snnc.compile(LENET / "lenet.onnx", method=method, target=target,
                           calib=LENET / "calib.npz", out=out_dir / f"lenet-{method}.snnc")
        compile_s = time.perf_counter() - t0
        m = art.simulate(LENET / "test.npz", limit=limit)
        rows.append({"method": method, "accuracy": m.accuracy, "ann_accuracy": m.ann_accuracy,
                     "spikes_per_neuron": m.spikes_per_neuron, "latency_steps": m.latency_steps,
                     "throughput_steps": m.throughput_steps,
                     "synops_per_sample": m.synops_per_sample,
                     "energy_uj_per_sample": m.energy_uj_per_sample,
                     "compile_s": compile_s, "samples": m.samples})
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"LeNet, {rows[0]['samples']} test images, one row per method")
    for col in ("method", "SNN acc.", "ANN acc.", "spikes/neuron", "latency", "throughput",
                "synops/image", "energy uJ/image", "compile s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        table.add_row(r["method"], f"{r['accuracy']:.2%}", f"{r['ann_accuracy']:.2%}",
                      f"{r['spikes_per_neuron']:.3f}", str(r["latency_steps"]),
                      str(r["throughput_steps"]), f"{r['synops_per_sample']:,.0f}",
                      f"{r['energy_uj_per_sample']:.3f}", f"{r['compile_s']:.1f}")
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=200, help="test images to simulate (max 1000)")
    p.add_argument("--target", default="cpu",
                   help="cpu (default); loihi targets quantize rate and fs only")
    args = p.parse_args(argv)
    rows = compare(args.limit, args.target)
    print_table(rows)
    print("RESULT " + json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
