"""Per-sample time of the bit-exact reference simulator vs the Lava backend on the same LeNet
artifact, measured in one run, printed as a ratio (and a spike-for-spike check of the two).

Lava time is the whole ``snnc.backends.lava.run`` call for ``--n`` samples (process build,
Lava compile, the run under Loihi2SimCfg("fixed_pt") and reading the spike records back), and
separately without building the processes (``wall_s``: Lava compile + run + readback). The
reference time is ``simulate_fixed`` on the CPU over ``--ref-n`` samples (the test images
repeated as needed), amortized over the whole run in chunks of ``--batch-size`` (small chunks
stay in the CPU caches; the per-chunk Python overhead is part of the time). Both run on the
same machine; the reference uses ``torch.get_num_threads()`` threads (OMP_NUM_THREADS), Lava
one OS process per Lava process.

Usage: OMP_NUM_THREADS=1 python benchmarks/reference_vs_lava.py [--method rate,fs,amos]
       [--n 20] [--ref-n 1000] [--batch-size 32] [--T 16]
(``--method`` takes one method or a comma-separated list; default: all three, one after the
other in the same run.)
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
    ap.add_argument("--n", type=int, default=20, help="samples run on Lava (default 20)")
    ap.add_argument("--ref-n", type=int, default=1000,
                    help="samples run on the reference simulator (default 1000)")
    ap.add_argument("--batch-size", type=int, default=32,
                    help="reference chunk size (default 32)")
    ap.add_argument("--T", type=int, default=16, help="rate: time steps (default 16)")
    ap.add_argument("--method", default="rate,fs,amos",
                    help="rate, fs, amos or a comma-separated list (default: all three)")
    args = ap.parse_args()
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("rate", "fs", "amos")]
    if bad or not methods:
        ap.error(f"unknown method(s) {bad}; choose from rate, fs, amos")
    for method in methods:
        measure(method, args)


def measure(method: str, args) -> None:
    """Compile LeNet for loihi2 with ``method``, time both backends, print the ratio."""
    import torch

    import snnc
    from snnc.backends.lava import run
    from snnc.backends.reference.fixed_point import simulate_fixed
    from snnc.backends.reference.record import reference_spikes
    from snnc.data import load_dataset

    d = EXAMPLES / "lenet"
    with tempfile.TemporaryDirectory() as tmp:
        art = snnc.compile(d / "lenet.onnx", target="loihi2", method=method,
                           timesteps=args.T if method == "rate" else None,
                           calib=d / "calib.npz", out=Path(tmp) / "a.snnc")
        xs = load_dataset(d / "test.npz", art.graph.inputs[0].shape).x
        x = xs[:args.n]
        x_ref = np.concatenate([xs] * (-(-args.ref_n // len(xs))))[:args.ref_n]
        simulate_fixed(art.graph, x[:2], device="cpu")  # warm-up
        t = time.perf_counter()
        ref_big = simulate_fixed(art.graph, x_ref, device="cpu", batch_size=args.batch_size)
        t_ref = (time.perf_counter() - t) / len(x_ref)
        t = time.perf_counter()
        lava = run(art, x)
        t_lava = (time.perf_counter() - t) / len(x)
        t_lava_run = lava.wall_s / len(x)
        ref = simulate_fixed(art.graph, x, device="cpu", batch_size=args.batch_size)
        _, trains = reference_spikes(art.graph, x)
    equal = (all(np.array_equal(lava.spikes[k], trains[k]) for k in lava.spikes)
             and np.array_equal(lava.outputs, ref.outputs[0])
             and np.array_equal(ref.outputs[0], ref_big.outputs[0][:len(x)]))
    steps = f"T={args.T}" if method == "rate" else "K=10"
    print(f"LeNet, {method}, loihi2, {steps}; Lava {len(x)} samples, reference "
          f"{len(x_ref)} samples (batches of {args.batch_size}, {torch.get_num_threads()} "
          f"torch thread(s)); spikes equal on every layer: {equal}")
    print(f"reference (bit-exact, cpu): {t_ref * 1e3:.3f} ms/sample")
    print(f"lava (fixed_pt, whole call): {t_lava * 1e3:.1f} ms/sample")
    print(f"lava (Lava compile + run + readback): {t_lava_run * 1e3:.1f} ms/sample")
    print(f"ratio lava/reference: {t_lava / t_ref:.0f}x "
          f"(without process build: {t_lava_run / t_ref:.0f}x)")


if __name__ == "__main__":
    main()
