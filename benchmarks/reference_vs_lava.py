"""Per-sample time of the bit-exact reference simulator vs the Lava backend on the same LeNet
artifact, measured in one run, printed as a ratio (and a spike-for-spike check of the two).

Lava time is the whole ``snnc.backends.lava.run`` call (process build, Lava compile, the run
under Loihi2SimCfg("fixed_pt") and reading the spike records back), and separately without
building the processes; the reference time is ``simulate_fixed`` on the CPU, one batch of all
samples.

Usage: OMP_NUM_THREADS=1 python benchmarks/reference_vs_lava.py [--n 20] [--T 16]
       [--method rate|fs]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="test images (default 20)")
    ap.add_argument("--T", type=int, default=16, help="time steps (default 16)")
    ap.add_argument("--method", default="rate")
    args = ap.parse_args()

    import snnc
    from snnc.backends.lava import run
    from snnc.backends.lava.compare import reference_spikes
    from snnc.backends.reference.fixed_point import simulate_fixed
    from snnc.data import load_dataset

    d = EXAMPLES / "lenet"
    with tempfile.TemporaryDirectory() as tmp:
        art = snnc.compile(d / "lenet.onnx", target="loihi2", method=args.method,
                           timesteps=args.T, calib=d / "calib.npz", out=Path(tmp) / "a.snnc")
        x = load_dataset(d / "test.npz", art.graph.inputs[0].shape, limit=args.n).x
        n = len(x)
        simulate_fixed(art.graph, x[:1], device="cpu")  # warm-up
        t = time.perf_counter()
        ref = simulate_fixed(art.graph, x, device="cpu", batch_size=n)
        t_ref = (time.perf_counter() - t) / n
        t = time.perf_counter()
        lava = run(art, x)
        t_lava = (time.perf_counter() - t) / n
        t_lava_run = lava.wall_s / n
        _, trains = reference_spikes(art.graph, x)
    equal = (all(np.array_equal(lava.spikes[k], trains[k]) for k in lava.spikes)
             and np.array_equal(lava.outputs, ref.outputs[0]))
    steps = f"T={args.T}" if args.method == "rate" else "default steps"
    print(f"LeNet, {args.method}, loihi2, {steps}, {n} samples; spikes equal on every "
          f"layer: {equal}")
    print(f"reference (bit-exact, cpu): {t_ref * 1e3:.2f} ms/sample")
    print(f"lava (fixed_pt, whole call): {t_lava * 1e3:.1f} ms/sample")
    print(f"lava (Lava compile + run + readback): {t_lava_run * 1e3:.1f} ms/sample")
    print(f"ratio lava/reference: {t_lava / t_ref:.0f}x (without process build: {t_lava_run / t_ref:.0f}x)")


if __name__ == "__main__":
    main()
