"""Placement on the onnx package's light zoo models: time, cores, lower bound, traffic.

For each zoo model that converts (frontend -> canonicalize -> fold_bn -> prepare_spiking ->
approximate_lrn -> convert_fs with synthetic calibration stats; placement does not depend on the
statistics), place it on a Loihi 2 sized like Hala Point (1,152 chips) and a Loihi 1 sized like
Pohoiki Springs (768 chips), and print: neurons, placement time, cores, cores_lower_bound, their
ratio, the resource that sets the lower bound, and the hop energy of spike routes relative to a
Lava-style sequential fill of the same slices (one slice per core, chip = id // cores_per_chip,
row-major mesh order). Models whose single neurons exceed a core (fan-in above the input-axon limit)
print the one-line error instead. On Loihi 2 such fan-ins are first spread over partial-sum relays
(``split_fanin``; the ``relays`` column counts the relay populations it added). Times are wall-clock
seconds of ``split_fanin`` + ``place`` (the frontend and conversion are not timed).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compile_scaling.py [--in-axons N]
        [--population-axons] [--target loihi2|loihi1] [--chips N] [MODEL...]

``--in-axons N`` overrides max_in_axons (Loihi 2's is unpublished; 4,096 is Loihi 1's).
``--chips N`` places on a system of N chips instead (VGG-19 needs 1,285 loihi2 chips with
discrete axons, more than Hala Point's 1,152).
``--population-axons`` places with conv-style population axons (README "Population axons").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "frontend")]

from test_onnx_backend_models import LIGHT, randomize_fills  # noqa: E402

from snnc.compiler.frontend import load_onnx  # noqa: E402
from snnc.compiler.passes.calibrate import ActivationStats  # noqa: E402
from snnc.compiler.passes.approximate_lrn import approximate_lrn  # noqa: E402
from snnc.compiler.passes.canonicalize import canonicalize  # noqa: E402
from snnc.compiler.convert.fs import convert_fs  # noqa: E402
from snnc.compiler.passes.fold_bn import fold_batchnorm  # noqa: E402
from snnc.compiler.passes.prepare_spiking import prepare_spiking  # noqa: E402
from snnc.compiler.placement import (  # noqa: E402
    LIMIT_FIELD,
    RESOURCES,
    place,
    sequential_fill_cost,
    split_fanin,
)
from snnc.ir import neurons  # noqa: E402
from snnc.errors import SnncError  # noqa: E402
from snnc.ir import ops  # noqa: E402
from snnc.targets import load_target  # noqa: E402

SYSTEMS = {"loihi2": ("Hala Point", 1152), "loihi1": ("Pohoiki Springs", 768)}


def snn_graph(path: Path):
    g = prepare_spiking(fold_batchnorm(canonicalize(load_onnx(randomize_fills(onnx.load(path))))))
    # LRN (AlexNet, ZFNet, GoogLeNet): calibrated per-channel scales (compile --approximate-lrn),
    # here on 4 random images
    x = np.random.default_rng(0).random((4, *g.inputs[0].shape)).astype(np.float32)
    g, _ = approximate_lrn(g, x)
    stats = {n.name: ActivationStats(1.0, 1.0, 0.0) for n in g.nodes
             if isinstance(n.op, ops.Activation)}
    return convert_fs(g, stats)


def big_target(base: str, in_axons: int | None, tmp: Path, population_axons: bool = False,
               chips: int | None = None):
    system, default_chips = SYSTEMS[base]
    if chips:
        system = f"{chips:,} chips"
    chips = chips or default_chips
    suffix = "-pop" if population_axons else ""
    text = f'base = "{base}"\nname = "{base}-{chips}{suffix}"\n[chip]\n' \
           f'chips_per_system = {chips}\nsystem = "{system}"\n[core]\n' \
           f"population_axons = {str(population_axons).lower()}\n"
    if in_axons:
        text += f"max_in_axons = {in_axons}\n"
    f = tmp / f"{base}{suffix}.toml"
    f.write_text(text)
    return load_target(f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--in-axons", type=int, default=None)
    ap.add_argument("--population-axons", action="store_true")
    ap.add_argument("--target", choices=list(SYSTEMS), default=None)
    ap.add_argument("--chips", type=int, default=None)
    args = ap.parse_args()
    paths = [p for p in LIGHT if not args.models or any(m in p.stem for m in args.models)]
    tmp = Path(tempfile.mkdtemp())
    targets = [big_target(b, args.in_axons, tmp, args.population_axons, args.chips)
               for b in SYSTEMS if args.target in (None, b)]
    print(f"{'model':<22}{'target':<13}{'neurons':>11}{'place s':>9}{'cores':>8}{'bound':>8}"
          f"{'ratio':>7}  {'bound by':<14}{'hop E vs seq':>12}{'relays':>8}")
    for path in paths:
        try:
            g = snn_graph(path)
        except SnncError as e:
            print(f"{path.stem:<22}not convertible: {e}")
            continue
        for t in targets:
            t0 = time.perf_counter()
            try:
                gs = split_fanin(g, t)
                pl = place(gs, t)
            except SnncError as e:
                print(f"{path.stem:<22}{t.name:<13}error after {time.perf_counter() - t0:.1f} s: "
                      f"{e}")
                continue
            dt = time.perf_counter() - t0
            seq = sequential_fill_cost(pl, gs, t)
            relays = sum(isinstance(n.op, neurons.PartialSumRelay) for n in gs.nodes)
            ratio = pl.traffic["hop_energy_pj"] / seq if seq else float("nan")
            limits = {r: getattr(t.core, LIMIT_FIELD[r]) for r in RESOURCES}
            bound_by = max((r for r in RESOURCES if limits[r]),
                           key=lambda r: pl.demand[r] / limits[r])
            print(f"{path.stem:<22}{t.name:<13}{pl.demand['neurons']:>11,}{dt:>9.1f}"
                  f"{pl.cores:>8,}{pl.cores_lower_bound:>8,}"
                  f"{pl.cores / pl.cores_lower_bound:>7.3f}  {bound_by:<14}{ratio:>12.3f}"
                  f"{relays:>8}",
                  flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
