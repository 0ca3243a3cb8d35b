"""Accuracy of the imported network in snntorch's own simulation, in snnc float and in snnc
loihi2 bit-exact, on the same test spike trains; then Lava (stock LIF) against the bit-exact
reference on 10 samples, spike for spike.

Usage: python examples/nir_import/compare.py [--lava 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import snnc
from snnc.backends.lava.leaky import run_leaky
from snnc.ir.interpret import Interpreter
from snnc.sim import Counters, FixedRules
from snnc.sim.signals import Signal

HERE = Path(__file__).resolve().parent


def snntorch_counts(x: np.ndarray) -> np.ndarray:
    """Output spike counts of the snntorch network holding model.nir's weights."""
    import sys

    import nir

    sys.path.insert(0, str(HERE))
    from train_snntorch import Net

    g = nir.read(HERE / "model.nir")
    net = Net()
    with torch.no_grad():
        for fc in ("fc1", "fc2"):
            getattr(net, fc).weight.copy_(torch.as_tensor(g.nodes[fc].weight))
            getattr(net, fc).bias.copy_(torch.as_tensor(g.nodes[fc].bias))
        return net(torch.as_tensor(x, dtype=torch.float32).transpose(0, 1)).sum(0).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lava", type=int, default=10, help="samples run on Lava (0: none)")
    args = ap.parse_args()
    data = np.load(HERE / "test.npz")
    x, y = data["x"].astype(np.float32), data["y"]
    src = snntorch_counts(x).argmax(1)
    tmp = Path(tempfile.mkdtemp(prefix="nir-example-"))
    rows = {"snntorch (source)": (float((src == y).mean()), 1.0)}
    arts = {}
    for target in ("cpu", "loihi2"):
        arts[target] = snnc.compile(HERE / "model.nir", target=target, calib=HERE / "test.npz",
                                    out=tmp / f"{target}.snnc")
        m = snnc.simulate(arts[target], HERE / "test.npz")
        name = "snnc float" if target == "cpu" else "snnc loihi2 bit-exact"
        rows[name] = (m["accuracy"], None)
    # per-sample agreement with the source (top-1)
    from snnc.backends.reference.simulator import simulate
    for target, name in (("cpu", "snnc float"), ("loihi2", "snnc loihi2 bit-exact")):
        pred = simulate(arts[target].graph, x).outputs[0].argmax(1)
        rows[name] = (rows[name][0], float((pred == src).mean()))
    print(f"{len(x)} test spike trains, T = {x.shape[1]}")
    print("| simulation | accuracy | top-1 agreement with snntorch |")
    print("|---|---|---|")
    for name, (acc, agree) in rows.items():
        print(f"| {name} | {100 * acc:.2f} % | {100 * agree:.2f} % |")
    print("quantization cost (manifest):",
          json.dumps(arts["loihi2"].manifest["quantization"]["cost"]))
    if args.lava:
        qg, xs = arts["loihi2"].graph, x[:args.lava]
        lava = run_leaky(qg, xs)
        env = {}
        Interpreter(FixedRules(Counters())).run(
            qg, [Signal(torch.as_tensor(xs, dtype=torch.float64).unsqueeze(0))],
            observe=lambda n, s: env.__setitem__(n.name, s.x.numpy()))
        equal = all(np.array_equal(v, env[k]) for k, v in lava.items())
        spikes = sum(int(v.sum()) for v in lava.values())
        print(f"Lava (stock LIF, fixed_pt) on {len(xs)} samples: {spikes} spikes, "
              f"{'spike for spike equal to' if equal else 'DIFFERENT from'} the bit-exact "
              "reference")


if __name__ == "__main__":
    main()
