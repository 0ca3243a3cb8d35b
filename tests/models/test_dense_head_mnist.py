"""Issue 25's Keras-MNIST failure rebuilt in PyTorch: a small CNN ending in Flatten ->
Dense(98->4) -> Dense(4->10) with no activation between, trained on MNIST-5k (15 epochs; the
ONNX file is in tests/models/data, ``python tests/models/test_dense_head_mnist.py`` retrains it).
On loihi2 the Dense pair merges into one layer (compiler/passes/fold_linear.py) and fs and rate
run bit-exactly within 0.5 pp of the float ANN on the 1,000 test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import snnc
from snnc.compiler.pipeline import prepared_ann
from snnc.ir import ops

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet"
MODEL = Path(__file__).resolve().parent / "data" / "dense_head_mnist.onnx"


def train(out: Path = MODEL, epochs: int = 15) -> float:
    """Train the model on examples/lenet/train.npz and export it (opset 13); test accuracy."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    d = np.load(LENET / "train.npz")
    x, y = torch.tensor(d["x"]), torch.tensor(d["y"])
    m = nn.Sequential(nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),
                      nn.Conv2d(16, 2, 3, stride=2, padding=1), nn.ReLU(),
                      nn.Flatten(), nn.Linear(98, 4), nn.Linear(4, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    steps = epochs * ((len(x) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=steps)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    t = np.load(LENET / "test.npz")
    with torch.no_grad():
        acc = float((m(torch.tensor(t["x"])).argmax(1).numpy() == t["y"]).mean())
    torch.onnx.export(m.eval(), x[:1], out, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return acc


def test_the_dense_pair_merges_into_one_layer():
    g = prepared_ann(MODEL)
    dense = [n.op for n in g.nodes if isinstance(n.op, ops.Dense)]
    assert [d.weight.shape for d in dense] == [(10, 98)]


@pytest.mark.slow
@pytest.mark.parametrize("method,timesteps", [("fs", None), ("rate", 128)])
def test_loihi2_bit_exact_within_half_a_point_of_float(tmp_path, method, timesteps):
    art = snnc.compile(MODEL, target="loihi2", method=method, calib=LENET / "calib.npz",
                       timesteps=timesteps, out=tmp_path / f"m-{method}.snnc")
    m = snnc.simulate(art, LENET / "test.npz")
    assert m["samples"] == 1000
    assert abs(m["accuracy"] - m["ann_accuracy"]) <= 0.005, m


if __name__ == "__main__":
    print(f"test accuracy {train():.3f}; wrote {MODEL}")
