"""Small rate-compiled models for the NIR / netx export tests (built with torch.onnx.export)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from snnc.api import compile_model

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"
TIMESTEPS = 16


def build(tmp: Path, kind: str, method: str = "rate"):
    """Compile a small random MLP ("mlp"), conv net ("cnn") or temporal conv net ("conv1d",
    input (C, L)); returns (artifact, x)."""
    torch.manual_seed(0)
    if kind == "conv1d":
        model = torch.nn.Sequential(
            torch.nn.Conv1d(3, 6, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv1d(6, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(8 * 7, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))
        x = torch.rand(32, 3, 16)
    elif kind == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(4, 6, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(6 * 3 * 3, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))
        x = torch.rand(32, 1, 8, 8)
    else:
        model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 4))
        x = torch.rand(32, 12)
    onnx_path = tmp / f"{kind}.onnx"
    torch.onnx.export(model, x[:1], str(onnx_path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}})
    np.savez(tmp / f"{kind}_calib.npz", x=x.numpy())
    art = compile_model(onnx_path, method=method, calib=tmp / f"{kind}_calib.npz",
                        timesteps=TIMESTEPS if method == "rate" else None,
                        out=tmp / f"{kind}_{method}.snnc")
    return art, x.numpy()


def snnc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnc.cli", *args], check=False,
                          capture_output=True, text=True, timeout=300)


def compile_rate_lenet(tmp: Path) -> Path:
    """LeNet (max-pool) compiled with --method rate through the CLI."""
    art = tmp / "lenet.snnc"
    proc = snnc("compile", str(LENET / "lenet.onnx"), "--calib", str(LENET / "calib.npz"),
                "--method", "rate", "--timesteps", "8", "-o", str(art), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return art


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


EXAMPLES = LENET.parent
READER_TIMESTEPS = 32
RESIDUAL_TIMESTEPS = 64


def without_max_pool(src: Path, dst: Path) -> Path:
    """``src`` ONNX model with every MaxPool replaced by an AveragePool of the same window
    (weights unchanged, not retrained): the max-pool-free variants of the shipped examples."""
    import onnx

    model = onnx.load(str(src))
    for node in model.graph.node:
        if node.op_type == "MaxPool":
            node.op_type = "AveragePool"
            keep = [a for a in node.attribute
                    if a.name in ("kernel_shape", "strides", "pads", "ceil_mode")]
            del node.attribute[:]
            node.attribute.extend(keep)
    onnx.save(model, str(dst))
    return dst


def example_without_max_pool(tmp: Path, name: str, limit: int = 200):
    """The shipped example ``name`` (lenet, resnet) with average instead of max pooling,
    compiled with --method rate, T = READER_TIMESTEPS; returns (artifact, x_test, y_test)."""
    src = EXAMPLES / name
    onnx_path = without_max_pool(src / f"{name}.onnx", tmp / f"{name}-avgpool.onnx")
    art = compile_model(onnx_path, method="rate", calib=src / "calib.npz",
                        timesteps=READER_TIMESTEPS, out=tmp / f"{name}-avgpool-rate.snnc")
    with np.load(src / "test.npz") as d:
        return art, d["x"][:limit], d["y"][:limit]


class ResidualAvgPool(torch.nn.Module):
    """examples/resnet's network (batch norm folded into the convs) with average pooling."""

    LAYERS = ("stem", "a1", "b1", "proj", "a2", "b2")

    def __init__(self) -> None:
        super().__init__()
        conv = torch.nn.Conv2d
        self.stem, self.a1, self.b1 = conv(1, 16, 3, padding=1), conv(16, 16, 3, padding=1), \
            conv(16, 16, 3, padding=1)
        self.proj, self.a2 = conv(16, 32, 1, stride=2), conv(16, 32, 3, stride=2, padding=1)
        self.b2, self.fc = conv(32, 32, 3, padding=1), torch.nn.Linear(32, 10)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.nn.functional.avg_pool2d(torch.relu(self.b1(torch.relu(self.a1(h))) + h), 2)
        h = torch.relu(self.b2(torch.relu(self.a2(h))) + self.proj(h))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


def residual_cnn_without_max_pool(tmp: Path, limit: int = 200, epochs: int = 2):
    """examples/resnet with its max-pool replaced by an average pool, weights taken from
    resnet.onnx and fine-tuned ``epochs`` epochs on its train split (seeded Adam, lr 1e-3), then
    compiled with --method rate --percentile 99.5, T = RESIDUAL_TIMESTEPS (the settings of
    benchmarks/RESULTS.md for the residual CNN); returns (artifact, x_test, y_test)."""
    import onnx
    from onnx import numpy_helper

    src = EXAMPLES / "resnet"
    proto = onnx.load(str(src / "resnet.onnx"))
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
            for t in proto.graph.initializer}
    params = [list(n.input[1:]) for n in proto.graph.node if n.op_type in ("Conv", "Gemm")]
    torch.manual_seed(0)
    model = ResidualAvgPool()
    for layer, (w, b) in zip((*ResidualAvgPool.LAYERS, "fc"), params):
        getattr(model, layer).weight.data, getattr(model, layer).bias.data = init[w], init[b]
    with np.load(src / "train.npz") as d:
        x_train, y_train = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train)).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
    onnx_path = tmp / "resnet-avgpool.onnx"
    torch.onnx.export(model.eval(), x_train[:1], str(onnx_path), input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "n"}})
    art = compile_model(onnx_path, method="rate", calib=src / "calib.npz",
                        timesteps=RESIDUAL_TIMESTEPS, percentile=99.5,
                        out=tmp / "resnet-avgpool-rate.snnc")
    with np.load(src / "test.npz") as d:
        return art, d["x"][:limit], d["y"][:limit]


def export_example_model(tmp: Path, limit: int = 200):
    """The network of examples/export.py (digits CNN of examples/from_pytorch.py, trained 30
    epochs, --method rate, T = 32); returns (artifact, x_test, y_test)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from export import TIMESTEPS
        from from_pytorch import digits, digits_cnn, train
    finally:
        sys.path.remove(str(EXAMPLES))
    from snnc.api import from_torch

    x_train, y_train, x_test, y_test = digits()
    model = train(digits_cnn(), x_train, y_train)
    art = from_torch(model, torch.zeros(1, 1, 8, 8), calib=x_train[:256], method="rate",
                     timesteps=TIMESTEPS, out=tmp / "digits-rate.snnc")
    return art, x_test[:limit], y_test[:limit]


def residual_concat_model(tmp: Path):
    """A small random CNN with a residual add, a channel concat, average and global average
    pooling and a batch norm after the pool, compiled with --method rate; returns (artifact,
    x)."""
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.a = torch.nn.Conv2d(4, 3, 3, padding=1)
            self.b = torch.nn.Conv2d(4, 5, 1)
            self.mix = torch.nn.Conv2d(8, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)  # after a pool: left in the float graph
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x):
            h = torch.relu(self.stem(x))
            cat = torch.cat([torch.relu(self.a(h)), torch.relu(self.b(h))], 1)
            h = torch.relu(self.mix(cat) + h)
            h = self.bn(torch.nn.functional.avg_pool2d(h, 2))
            return self.fc(torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))

    x = torch.rand(32, 1, 8, 8)
    onnx_path = tmp / "rescat.onnx"
    torch.onnx.export(Net().eval(), x[:1], str(onnx_path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}})
    np.savez(tmp / "rescat_calib.npz", x=x.numpy())
    art = compile_model(onnx_path, method="rate", calib=tmp / "rescat_calib.npz",
                        timesteps=TIMESTEPS, out=tmp / "rescat_rate.snnc")
    return art, x.numpy()
