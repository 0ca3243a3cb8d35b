"""Regenerate the fidelity tables from scratch: every method on the shipped MNIST examples and,
where ``../shared/data`` exists, on the trained CIFAR-10 models. Prints one markdown row per run
with the exact commands that reproduce it (the README's methods table and RESULTS.md's
"Conversion accuracy" are this script's output).

Usage::

    python benchmarks/fidelity.py                    # MNIST examples (about 10 min, 2 cores)
    python benchmarks/fidelity.py --only lenet       # one model
    python benchmarks/fidelity.py --method ttfs      # one method
    python benchmarks/fidelity.py --cifar            # also the CIFAR-10 models (slow)
    python benchmarks/fidelity.py --json rows.json   # also write the rows as JSON

Each row compiles with ``snnc.compile`` and simulates with ``snnc.simulate`` exactly as the
printed CLI commands do (same defaults, same data), so a row and its commands agree.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import snnc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Row:
    """One fidelity measurement: a model, a method and its options, and the target."""

    model: str          # key of MODELS
    method: str
    options: dict = field(default_factory=dict)
    target: str = "cpu"
    label: str = ""     # what the row shows beyond the method (e.g. "T=128")
    target_file: str = ""  # a target TOML (relative to the repository) instead of ``target``


# The shipped examples (tests may not depend on ../shared, but these do not need it).
MNIST_ROWS = [
    Row("lenet", "fs"), Row("resnet", "fs"), Row("silu_se", "fs"),
    Row("lenet", "amos"), Row("resnet", "amos"),
    Row("lenet", "ttfs"), Row("resnet", "ttfs"),
    Row("lenet", "rate"), Row("resnet", "rate"),
    Row("resnet", "rate", {"timesteps": 128}, label="T=128"),
    Row("resnet", "rate", {"percentile": 99.5}, label="percentile 99.5"),
    Row("lenet", "fs", target="loihi2"), Row("lenet", "rate", target="loihi2"),
    Row("lenet", "amos", target="loihi2"), Row("lenet", "ttfs", target="loihi2"),
    Row("lenet", "fs", target="loihi1"), Row("lenet", "rate", target="loihi1"),
]
# Bit-exact rows that need more than the stock loihi2 target's 8 chips (AMOS circuits,
# SqueezeNet's relays) run on a 1,152-chip Loihi 2 system (Hala Point).
HALA_POINT = "benchmarks/targets/loihi2_hala_point.toml"
_BEYOND_8_CHIPS = {("resnet20", "amos"), ("squeezenet", "fs"), ("squeezenet", "amos"),
                   ("squeezenet", "rate")}
CIFAR_ROWS = [Row(m, meth, opts, target=t, label=lab,
                  target_file=HALA_POINT if t != "cpu" and (m, meth) in _BEYOND_8_CHIPS else "")
              for m in ("resnet20", "squeezenet")
              for meth, opts, lab in (("fs", {}, ""), ("amos", {}, ""),
                                      ("rate", {"timesteps": 32}, "T=32"),
                                      ("rate", {"timesteps": 64}, "T=64"))
              for t in ("cpu", "loihi2")]


def mnist_files(name: str) -> dict:
    d = EXAMPLES / name
    return {"model": d / f"{name}.onnx", "calib": d / "calib.npz", "test": d / "test.npz"}


@functools.cache  # one preprocessing per model and split, not one per row
def cifar_files(name: str, n_eval: int, n_calib: int) -> dict:
    """The shared CIFAR-10 model with its preprocessing (../shared/data/README.md): images
    0..n_eval-1 for evaluation, calibration from images 2,000 on, written to out/cifar10/ so
    that the printed commands run as they are."""
    work = ROOT / "out" / "cifar10"
    work.mkdir(parents=True, exist_ok=True)
    raw = np.load(SHARED / "cifar10" / "test_jpeg_q75.npz")
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    x = ((raw["x"].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)
    y = raw["y"].astype(np.int64)
    test = work / f"test_{n_eval}.npz"
    calib = work / f"calib_2000-{2000 + n_calib - 1}.npz"
    np.savez(test, x=x[:n_eval], y=y[:n_eval])
    np.savez(calib, x=x[2000:2000 + n_calib])
    return {"model": SHARED / "cifar10" / f"{name}.onnx", "calib": calib, "test": test}


def commands(files: dict, row: Row) -> str:
    """The CLI commands that reproduce ``row``."""
    opts = "".join(f" --{k} {v}" for k, v in row.options.items())
    target = ("" if row.target == "cpu" else f" --target-file {row.target_file}"
              if row.target_file else f" --target {row.target}")
    model, calib, test = (os.path.relpath(files[k], ROOT) for k in ("model", "calib", "test"))
    return (f"snnc compile {model} --method {row.method}{target}{opts} "
            f"--calib {calib} -o out.snnc && snnc simulate out.snnc --data {test} --json")


def measure(files: dict, row: Row, work: Path) -> dict:
    """Compile and simulate ``row``; the metrics that the tables show."""
    t0 = time.perf_counter()
    where = ({"target_file": ROOT / row.target_file} if row.target_file
             else {"target": row.target})
    art = snnc.compile(files["model"], method=row.method, calib=files["calib"],
                       out=work / "out.snnc", **where, **row.options)
    m = snnc.simulate(art, files["test"])
    target = Path(row.target_file).stem if row.target_file else row.target
    return {"model": row.model, "method": row.method, "target": target, "label": row.label,
            "options": row.options, "accuracy": m["accuracy"], "ann_accuracy": m["ann_accuracy"],
            "agreement": m["agreement"], "spikes_per_neuron": m["spikes_per_neuron"],
            "latency_steps": m["latency_steps"], "throughput_steps": m["throughput_steps"],
            "samples": m["samples"], "seconds": round(time.perf_counter() - t0, 1),
            "command": commands(files, row)}


def markdown(rows: list[dict]) -> str:
    head = ("| model | method | target | ANN acc. | SNN acc. | agreement | spikes/neuron | "
            "latency / throughput | commands |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        method = r["method"] + (f" ({r['label']})" if r["label"] else "")
        lines.append(f"| {r['model']} | {method} | {r['target']} | {r['ann_accuracy']:.2%} | "
                     f"{r['accuracy']:.2%} | {r['agreement']:.2%} | "
                     f"{r['spikes_per_neuron']:.3g} | {r['latency_steps']} / "
                     f"{r['throughput_steps']} | `{r['command']}` |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="only rows of this model (lenet, resnet, silu_se, resnet20, "
                                   "squeezenet)")
    ap.add_argument("--method", help="only rows of this method (fs, amos, rate, ttfs)")
    ap.add_argument("--cifar", action="store_true", help="also the CIFAR-10 models "
                                                         "(needs ../shared/data)")
    ap.add_argument("--cifar-eval", type=int, default=2000, help="CIFAR evaluation images")
    ap.add_argument("--cifar-calib", type=int, default=500, help="CIFAR calibration images")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args()
    rows = [r for r in MNIST_ROWS + (CIFAR_ROWS if args.cifar else [])
            if args.only in (None, r.model) and args.method in (None, r.method)]
    if args.cifar and not SHARED.exists():
        raise SystemExit(f"--cifar needs {SHARED} (see its README)")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, row in enumerate(rows, 1):
            files = (mnist_files(row.model) if (EXAMPLES / row.model).is_dir()
                     else cifar_files(row.model, args.cifar_eval, args.cifar_calib))
            r = measure(files, row, work)
            out.append(r)
            print(f"[{i}/{len(rows)}] {row.model} {row.method} {row.label} {row.target}: "
                  f"{r['accuracy']:.2%} (ANN {r['ann_accuracy']:.2%}, {r['seconds']} s)",
                  flush=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}\n")
    print(markdown(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
