"""Peak memory (max RSS) of real `snnc` runs, each measured in its own child process.

    .venv/bin/python benchmarks/memory.py [--quick] [--json OUT.json]

Runs:
  * ``snnc simulate`` of LeNet (fs) on 1,000 test images: default (auto) batch size and a few
    explicit ``--batch-size`` values, to show that peak memory follows the batch size, not the
    data set size. The 2 GB bound of the reliability issue is asserted.
  * ``snnc compile`` of the largest model of the onnx package's light zoo (by parameters: VGG-19,
    143.7 M parameters), with a small random calibration set of its input shape.

Peak RSS is the child's own VmHWM (/proc/self/status), read by a two-line wrapper around
``snnc.cli.main`` (the function the ``snnc`` script runs) just before it exits. Not ru_maxrss
from wait4: on Linux that also counts the parent's resident memory at the time of the
vfork/exec, which inflates a measurement started from a big process (e.g. pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet"
LIMIT_BYTES = 2 * 10**9  # "a 1,000-image LeNet run stays under 2 GB peak RSS"
CHILD = """
import os, sys
from snnc.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
with open(os.environ["SNNC_BENCH_HWM_FILE"], "w") as f:
    f.write(str(hwm * 1024))
sys.exit(rc)
"""


def peak_rss(cmd: list[str], env: dict | None = None) -> tuple[int, float, int, str]:
    """Run ``cmd`` (from ``snnc()``); return (peak RSS bytes, wall s, exit code, stderr tail)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        hwm = Path(d) / "hwm"
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1",
                                   "SNNC_BENCH_HWM_FILE": str(hwm), **(env or {})})
        peak = int(hwm.read_text()) if hwm.exists() else -1
    tail = proc.stderr.decode(errors="replace")[-400:]
    return peak, time.perf_counter() - start, proc.returncode, tail


def snnc(*args: str) -> list[str]:
    """Command line running the `snnc` CLI with the peak-memory wrapper."""
    return [sys.executable, "-c", CHILD, *map(str, args)]


def largest_zoo_model() -> Path:
    import onnx

    light = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"

    def params(p: Path) -> int:
        m = onnx.load(p)
        inits = {t.name: t for t in m.graph.initializer}
        total = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == 1)
        for n in m.graph.node:  # the light models' weights are ConstantOfShape fills
            if n.op_type == "ConstantOfShape" and n.input[0] in inits:
                total += int(np.prod(onnx.numpy_helper.to_array(inits[n.input[0]])))
        return total

    return max(sorted(light.glob("*.onnx")), key=params)


def input_shape(model: Path) -> tuple[int, ...]:
    import onnx

    m = onnx.load(model)
    inits = {t.name for t in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in inits)
    return tuple(d.dim_value for d in inp.type.tensor_type.shape.dim[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="LeNet only (skip the zoo compile)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        art = tmp / "lenet.snnc"
        rss, wall, rc, err = peak_rss(snnc("compile", LENET / "lenet.onnx", "--calib",
                                           LENET / "calib.npz", "-o", art, "-q"))
        assert rc == 0, err
        results["compile lenet"] = {"peak_rss_mb": rss / 1e6, "wall_s": wall}
        with np.load(LENET / "test.npz") as z:
            assert len(z["x"]) >= 1000, len(z["x"])
        for bs in (None, 1, 64, 256, 1024):
            extra = [] if bs is None else ["--batch-size", str(bs)]
            rss, wall, rc, err = peak_rss(snnc("simulate", art, "--data", LENET / "test.npz",
                                               "--limit", "1000", "--json", "-q", *extra))
            assert rc == 0, err
            key = f"simulate lenet 1000 images, batch {bs or 'auto'}"
            results[key] = {"peak_rss_mb": rss / 1e6, "wall_s": wall}
            if bs is None:
                assert rss < LIMIT_BYTES, f"{key}: peak RSS {rss / 1e6:.0f} MB >= 2 GB"
        if not args.quick:
            model = largest_zoo_model()
            x = np.random.default_rng(0).random((8, *input_shape(model)), dtype=np.float32)
            np.savez(tmp / "calib.npz", x=x)
            rss, wall, rc, err = peak_rss(snnc("compile", model, "--calib", tmp / "calib.npz",
                                               "-o", tmp / "zoo.snnc", "-q"))
            results[f"compile {model.stem} (8 calibration images)"] = {
                "peak_rss_mb": rss / 1e6, "wall_s": wall, "exit_code": rc,
                **({"error": err.strip().splitlines()[-1]} if rc else {})}
    width = max(map(len, results))
    for k, v in results.items():
        extra = f"  exit {v['exit_code']}: {v.get('error', '')}" if v.get("exit_code") else ""
        print(f"{k:<{width}}  peak RSS {v['peak_rss_mb']:8.0f} MB  {v['wall_s']:7.1f} s{extra}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
