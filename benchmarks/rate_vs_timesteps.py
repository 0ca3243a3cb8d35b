"""Rate-coded conversion accuracy vs simulation length T on a shipped example (Rueckauer 2017:
the error of the rate code falls roughly as 1/T). Prints one markdown table row per T.

Usage: python benchmarks/rate_vs_timesteps.py [--model lenet] [--n 1000] [--T 16 32 64 128 256]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import snnc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--n", type=int, default=1000, help="test images (default 1000)")
    ap.add_argument("--T", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    ap.add_argument("--percentile", type=float, default=None, help="default: the compiler's")
    args = ap.parse_args()
    d = EXAMPLES / args.model
    p = "default" if args.percentile is None else args.percentile
    print(f"{args.model}, rate method, percentile {p}, {args.n} test images")
    print("| T | ANN acc. | SNN acc. | agreement | error vs ANN (pp) | spikes/neuron |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for T in args.T:
            art = snnc.compile(d / f"{args.model}.onnx", method="rate", timesteps=T, percentile=args.percentile,
                               calib=d / "calib.npz", out=Path(tmp) / f"T{T}.snnc")
            m = snnc.simulate(art, d / "test.npz", limit=args.n)
            gap = 100 * (m["ann_accuracy"] - m["accuracy"])
            print(f"| {T} | {100 * m['ann_accuracy']:.2f} % | {100 * m['accuracy']:.2f} % | "
                  f"{100 * m['agreement']:.1f} % | {gap:.2f} | {m['spikes_per_neuron']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
