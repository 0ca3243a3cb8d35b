"""Rate coding at low T, plain versus ``--rate-calibration`` (convert/rate_calibration.py), on
the residual MNIST CNN and, where ../shared/data exists, the CIFAR-10 ResNet-20.

Usage::

    python benchmarks/rate_calibration.py --model resnet --timesteps 16 32 64 --limit 1000
    python benchmarks/rate_calibration.py --model resnet20 --timesteps 32 --limit 300 \
        --calib-samples 512 --modes none threshold+bias --targets cpu loihi2

Each row compiles with ``snnc.compile`` and simulates with ``snnc.simulate`` as
``snnc compile MODEL --method rate --timesteps T [--rate-calibration MODE] [--target loihi2]
--calib CALIB -o out.snnc && snnc simulate out.snnc --data TEST --limit N --json`` does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import snnc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def files(model: str, work: Path, calib_samples: int) -> dict:
    if model == "resnet":
        d = ROOT / "examples" / "resnet"
        return {"model": d / "resnet.onnx", "calib": d / "calib.npz", "test": d / "test.npz"}
    from fidelity import cifar_files  # benchmarks/fidelity.py: the shared preprocessing
    return cifar_files(model, n_eval=2000, n_calib=calib_samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet", help="resnet (examples) or resnet20 (CIFAR)")
    ap.add_argument("--timesteps", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--modes", nargs="+", default=["none", "bias", "threshold+bias"])
    ap.add_argument("--targets", nargs="+", default=["cpu"])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--calib-samples", type=int, default=512)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        f = files(args.model, work, args.calib_samples)
        print("| model | T | calibration | target | accuracy | ANN | agreement | compile s |")
        print("|---|---|---|---|---|---|---|---|")
        for T in args.timesteps:
            for mode in args.modes:
                for target in args.targets:
                    t0 = time.perf_counter()
                    art = snnc.compile(f["model"], method="rate", target=target, timesteps=T,
                                       calib=f["calib"], rate_calibration=mode,
                                       out=work / "out.snnc")
                    secs = time.perf_counter() - t0
                    m = snnc.simulate(art, f["test"], limit=args.limit)
                    agree = m.get("agreement", m.get("top1_agreement", float("nan")))
                    print(f"| {args.model} | {T} | {mode} | {target} ({m['mode']}) | "
                          f"{100 * m['accuracy']:.2f} % | {100 * m['ann_accuracy']:.2f} % | "
                          f"{100 * agree:.1f} % | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
