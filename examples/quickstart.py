"""Quickstart: compile the shipped LeNet into a spiking network and simulate it, from Python.

    .venv/bin/python examples/quickstart.py [--method fs] [--target cpu] [--limit 200]

The same as ``snnc compile examples/lenet/lenet.onnx --calib examples/lenet/calib.npz -o
out/examples/lenet-fs.snnc`` followed by ``snnc simulate out/examples/lenet-fs.snnc --data
examples/lenet/test.npz --limit 200``. The last line printed is ``RESULT {json}`` (the
simulation metrics, for scripts and CI).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import snnc

LENET = Path(__file__).resolve().parent / "lenet"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="fs", choices=["rate", "fs", "amos", "ttfs"])
    p.add_argument("--target", default="cpu", help="cpu, loihi1 or loihi2")
    p.add_argument("--limit", type=int, default=200, help="test images to simulate (max 1000)")
    p.add_argument("--out", type=Path, default=None, help="artifact (default out/examples/...)")
    args = p.parse_args(argv)
    out = args.out or Path("out/examples") / f"lenet-{args.method}-{args.target}.snnc"

    # 1. compile: ONNX -> spiking network artifact (a directory; snnc.load(out) reads it back)
    art = snnc.compile(LENET / "lenet.onnx", method=args.method, target=args.target,
                       calib=LENET / "calib.npz", out=out)
    print("compiled:", json.dumps(art.summary()))

    # 2. simulate on the test split with the reference simulator (bit-exact for loihi targets)
    m = art.simulate(LENET / "test.npz", limit=args.limit)
    print(f"{m.samples} test images: SNN accuracy {m.accuracy:.2%} (ANN {m.ann_accuracy:.2%}, "
          f"agreement {m.agreement:.2%}), {m.spikes_per_neuron:.2f} spikes per neuron, "
          f"latency {m.latency_steps} steps, one image every {m.throughput_steps} steps")
    result = {k: m[k] for k in ("samples", "accuracy", "ann_accuracy", "agreement",
                                "spikes_per_neuron", "latency_steps", "throughput_steps",
                                "energy_uj_per_sample", "mode")}
    result["artifact"] = str(art.path)
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
