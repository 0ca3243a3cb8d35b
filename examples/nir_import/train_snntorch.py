"""Train a small spiking MLP with snntorch on MNIST-5k (rate-coded input), write it as NIR, and
measure its accuracy in snntorch's own simulation on the shipped test spike trains.

The network: 784 -> Linear(128) -> Leaky -> Linear(10) -> Leaky, beta = 0.9, threshold 1,
reset to zero without delay (the NIR LIF semantics snnc imports). Inputs are Bernoulli spike
trains of T = 16 steps (p = pixel intensity). Training: 4,000 images of examples/lenet,
cross-entropy on output spike counts (snntorch's ce_rate_loss), a few epochs on the CPU.

Writes, beside this file: ``model.nir`` (built from the trained weights with the ``nir``
package: snntorch 1.0's ``export_to_nir`` passes ``v_reset``, which nir 1.0.4 -- the version
sinabs pins -- does not accept), ``test.npz`` (x: (300, 16, 784) spike trains, y: labels) and
``snntorch_accuracy.json``.

Usage: python examples/nir_import/train_snntorch.py [--epochs 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch import functional as SF

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "lenet"
T, HIDDEN, BETA, DT, N_TEST = 16, 128, 0.9, 1e-4, 300


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(784, HIDDEN)
        self.lif1 = snn.Leaky(beta=BETA, reset_mechanism="zero", reset_delay=False)
        self.fc2 = torch.nn.Linear(HIDDEN, 10)
        self.lif2 = snn.Leaky(beta=BETA, reset_mechanism="zero", reset_delay=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, N, 784) spikes -> output spikes (T, N, 10)."""
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out)


def spike_trains(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 784) intensities -> (N, T, 784) Bernoulli spikes (uint8)."""
    return (rng.random((len(x), T, x.shape[1])) < x[:, None, :]).astype(np.uint8)


def to_nir(net: Net) -> nir.NIRGraph:
    """The trained network as NIR (forward Euler at DT, snntorch's own mapping of Leaky)."""
    tau = np.float64(DT / (1 - BETA))

    def lif(n):
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n),
                       v_threshold=np.ones(n))

    w = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    nodes = {"input": nir.Input(input_type={"input": np.array([784])}),
             "fc1": nir.Affine(weight=w["fc1.weight"], bias=w["fc1.bias"]), "lif1": lif(HIDDEN),
             "fc2": nir.Affine(weight=w["fc2.weight"], bias=w["fc2.bias"]), "lif2": lif(10),
             "output": nir.Output(output_type={"output": np.array([10])})}
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(chain)),
                        metadata={"dt": DT, "source": "snntorch 1.0.0 Leaky(reset zero)"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, test = np.load(DATA / "train.npz"), np.load(DATA / "test.npz")
    xtr, ytr = train["x"].reshape(len(train["x"]), -1), torch.as_tensor(train["y"])
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.ce_rate_loss()
    t0 = time.time()
    for epoch in range(args.epochs):
        order = rng.permutation(len(xtr))
        for lo in range(0, len(order), 100):
            idx = order[lo:lo + 100]
            x = torch.as_tensor(spike_trains(xtr[idx], rng), dtype=torch.float32)
            loss = loss_fn(net(x.transpose(0, 1)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    xte = spike_trains(test["x"][:N_TEST].reshape(N_TEST, -1), np.random.default_rng(1))
    yte = test["y"][:N_TEST]
    with torch.no_grad():
        counts = net(torch.as_tensor(xte, dtype=torch.float32).transpose(0, 1)).sum(0)
    acc = float((counts.argmax(1).numpy() == yte).mean())
    print(f"snntorch accuracy on {N_TEST} test spike trains: {acc:.2%}")
    try:  # snntorch's own writer, for the record
        from snntorch.export_nir import export_to_nir
        export_to_nir(net, torch.zeros(1, 784))
        writer = "snntorch export_to_nir"
    except Exception as e:  # noqa: BLE001 - report whatever the writer raises
        writer = f"nir package (snntorch export_to_nir failed: {type(e).__name__}: {e})"
    print("NIR written with:", writer)
    nir.write(HERE / "model.nir", to_nir(net))
    np.savez_compressed(HERE / "test.npz", x=xte, y=yte)
    (HERE / "snntorch_accuracy.json").write_text(json.dumps(
        {"samples": N_TEST, "timesteps": T, "snntorch_accuracy": acc, "epochs": args.epochs,
         "nir_writer": writer}, indent=1) + "\n")


if __name__ == "__main__":
    main()
