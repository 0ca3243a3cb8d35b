"""Reference simulator time per sample vs onnxruntime ANN time per sample, on the shipped LeNet,
measured in one run (medians of repeats). Usage: python benchmarks/simulate_vs_ann.py [--n 1000]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import snnc
from snnc.backends.reference.simulator import simulate
from snnc.metrics.inference import ann_predict

LENET = Path(__file__).resolve().parents[1] / "examples" / "lenet"


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--method", default="fs")
    args = ap.parse_args()
    x = np.load(LENET / "test.npz")["x"][: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        art = snnc.compile(LENET / "lenet.onnx", method=args.method, calib=LENET / "calib.npz",
                           out=Path(tmp) / "lenet.snnc")
        source = (LENET / "lenet.onnx").read_bytes()
        t_ann = median_time(lambda: ann_predict(source, x), args.repeats) / len(x)
        t_snn = median_time(lambda: simulate(art.graph, x), args.repeats) / len(x)
    K = art.manifest["throughput_steps"]
    print(f"LeNet, {len(x)} samples, method {args.method} (window {K} steps)")
    print(f"onnxruntime ANN      {t_ann * 1e6:10.1f} us/sample")
    print(f"reference simulator  {t_snn * 1e6:10.1f} us/sample")
    print(f"ratio simulator/ANN  {t_snn / t_ann:10.2f}  (target <= 2 x K = {2 * K})")


if __name__ == "__main__":
    main()
