"""Issue 25's architecture measurement: common small PyTorch architectures (the classic kinds
that already compiled and the new kinds of issue 25), exported to ONNX (opset 13), compiled
with fs and rate on cpu and loihi2, and simulated on random inputs. Prints one markdown row
per model: top-1 agreement with the ANN, or the error line a user would see.

    .venv/bin/python benchmarks/architectures.py [--samples 200] [--only NAME ...] [--list]

Random weights (seeded; BatchNorm statistics randomized) and inputs uniform in [0, 1);
calibration on the same inputs. A model's third entry holds extra compile options (the
opt-in approximations a user would pass).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import snnc
from snnc.errors import SnncError


def _cnn(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), act, nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), type(act)(), nn.Flatten(),
                         nn.Linear(8 * 7 * 7, 10))


def _mlp(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(196, 64), act, nn.Linear(64, 10))


class _Upsample(nn.Module):
    """Conv down, nearest upsampling back (Resize, scale 2), conv, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 14 * 14, 10))

    def forward(self, x):
        return self.dec(nn.functional.interpolate(self.enc(x), scale_factor=2, mode="nearest"))


class _Fire(nn.Module):
    """SqueezeNet's fire module: squeeze 1x1, expand 1x1 and 3x3 branches concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(12, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        h = self.squeeze(x)
        return self.head(torch.cat([self.e1(h), self.e3(h)], dim=1))


def _prelu_channels(c: int) -> nn.PReLU:
    """nn.PReLU(c) with a different (seeded) slope per channel: not a leaky ReLU."""
    p = nn.PReLU(c)
    nn.init.uniform_(p.weight, -0.5, 0.8)
    return p


def _bn(c: int, dims: int = 2) -> nn.Module:
    """BatchNorm with seeded random statistics and affine parameters (not the identity)."""
    bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return bn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         _bn(cout), nn.ReLU())


class _ResBlock(nn.Module):
    """ResNet basic block with a projection shortcut (1x1 conv stride 2 + BN)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(1, 8)
        self.body = nn.Sequential(_cbr(8, 16, stride=2), nn.Conv2d(16, 16, 3, 1, 1, bias=False),
                                  _bn(16))
        self.proj = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), _bn(16))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        h = self.stem(x)
        return self.head(torch.relu(self.body(h) + self.proj(h)))


class _DenseBlock(nn.Module):
    """DenseNet-style: each layer sees the concatenation of all earlier feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(1, 8)
        self.l1, self.l2 = _cbr(8, 4), _cbr(12, 4)
        self.trans = nn.Sequential(nn.Conv2d(16, 8, 1), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 7 * 7, 10))

    def forward(self, x):
        h = self.stem(x)
        h = torch.cat([h, self.l1(h)], 1)
        return self.head(self.trans(torch.cat([h, self.l2(h)], 1)))


class _Inception(nn.Module):
    """Inception-style block: 1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1 branches, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU())
        self.b1 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                                nn.ReLU())
        self.b5 = nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2),
                                nn.ReLU())
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 4, 1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(18, 10))

    def forward(self, x):
        h = self.stem(x)
        return self.head(torch.cat([self.b1(h), self.b3(h), self.b5(h), self.bp(h)], 1))


CLASSIC = {  # the kinds that compiled before issue 25 (the 11 that agreed 100 %)
    "lenet5_maxpool": (lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)), (1, 28, 28)),
    "mlp_relu": (lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(196, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10)), (1, 14, 14)),
    "vgg_bn": (lambda: nn.Sequential(
        _cbr(1, 8), _cbr(8, 8), nn.MaxPool2d(2), _cbr(8, 16), _cbr(16, 16), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10)), (1, 16, 16)),
    "resnet_basic_proj": (_ResBlock, (1, 16, 16)),
    "mobilenet_dwsep": (lambda: nn.Sequential(
        _cbr(1, 8, stride=2), _cbr(8, 8, groups=8), _cbr(8, 16, k=1), _cbr(16, 16, stride=2,
                                                                            groups=16),
        _cbr(16, 32, k=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)),
        (1, 16, 16)),
    "densenet_concat": (_DenseBlock, (1, 14, 14)),
    "inception_block": (_Inception, (1, 16, 16)),
    # AlexNet-style without LRN: torch exports nn.LocalResponseNorm decomposed (Mul, Pad,
    # AveragePool, an If around a Squeeze), not as an ONNX LRN, and the frontend refuses the If.
    "alexnet_style": (lambda: nn.Sequential(
        nn.Conv2d(1, 16, 5, 2, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 32), nn.ReLU(), nn.Dropout(),
        nn.Linear(32, 10)), (1, 28, 28)),
    "sigmoid_mlp": (lambda: _mlp(nn.Sigmoid()), (1, 14, 14)),
    "tanh_mlp": (lambda: _mlp(nn.Tanh()), (1, 14, 14)),
    "allconv_gap": (lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 10, 1), nn.AdaptiveAvgPool2d(1),
        nn.Flatten()), (1, 16, 16)),
    "dropout_identity": (lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(196, 64), nn.ReLU(), nn.Dropout(0.5), nn.Identity(),
        nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10)), (1, 14, 14)),
}

MODELS = CLASSIC | {  # name -> (module factory, per-sample input shape[, compile options])
    "conv1d_temporal": (lambda: nn.Sequential(
        nn.Conv1d(4, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.AvgPool1d(2),
        nn.Conv1d(16, 16, 3, stride=2, padding=1, groups=4), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 4, 10)), (4, 28)),
    "dense_dense_head": (lambda: nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(8, 2, 3, stride=2,
                                                                    padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(98, 4), nn.Linear(4, 10)), (1, 28, 28)),
    "conv_1x1_bottleneck": (lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
        nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)), (1, 14, 14)),
    "prelu_cnn": (lambda: _cnn(nn.PReLU()), (1, 14, 14)),
    "elu_mlp": (lambda: _mlp(nn.ELU()), (1, 14, 14)),
    "selu_mlp": (lambda: _mlp(nn.SELU()), (1, 14, 14)),
    "softplus_mlp": (lambda: _mlp(nn.Softplus()), (1, 14, 14)),
    "gelu_mlp": (lambda: _mlp(nn.GELU()), (1, 14, 14)),
    "gelu_tanh_cnn": (lambda: _cnn(nn.GELU(approximate="tanh")), (1, 14, 14)),
    "mish_cnn": (lambda: _cnn(nn.Mish()), (1, 14, 14)),
    "upsample_cnn": (_Upsample, (1, 14, 14)),
    "deconv_cnn": (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 14 * 14, 10)), (1, 14, 14)),
    "squeezenet_fire": (_Fire, (1, 14, 14)),
    "conv3d_clip": (lambda: nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(4, 8, 3, stride=(1, 2, 2), padding=1), nn.ReLU(), nn.AvgPool3d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2 * 2, 10)), (1, 8, 16, 16)),
    "prelu_channels_cnn": (lambda: nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), _prelu_channels(6), nn.Conv2d(6, 8, 3, stride=2,
                                                                      padding=1),
        _prelu_channels(8), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)), (1, 14, 14)),
    "dense_bottleneck": (lambda: nn.Sequential(  # 256 -> 16 -> 256: too large to merge, relayed
        nn.Flatten(), nn.Linear(196, 256), nn.ReLU(), nn.Linear(256, 16), nn.Linear(16, 256),
        nn.ReLU(), nn.Linear(256, 10)), (1, 14, 14)),
    "bilinear_upsample_cnn": (lambda: nn.Sequential(  # Resize linear: a synapse, then a relay
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 14 * 14, 10)), (1, 14, 14)),
    "layernorm_mlp": (lambda: nn.Sequential(  # opset 13: ReduceMean/Sub/Pow/Sqrt/Div
        nn.Flatten(), nn.Linear(196, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 10)),
        (1, 14, 14), {"approximate_norm": True}),
}
RUNS = (("fs", "cpu"), ("fs", "loihi2"), ("rate", "cpu"), ("rate", "loihi2"))


def export(name: str, seed: int = 0) -> tuple[bytes, tuple[int, ...]]:
    factory, shape = MODELS[name][:2]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = factory().eval()
        buf = io.BytesIO()
        torch.onnx.export(module, torch.rand(1, *shape), buf, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue(), shape


def measure(name: str, samples: int, tmp: Path) -> list[str]:
    model, shape = export(name)
    options = MODELS[name][2] if len(MODELS[name]) > 2 else {}
    path = tmp / f"{name}.onnx"
    path.write_bytes(model)
    x = np.random.default_rng(1).uniform(size=(samples, *shape)).astype(np.float32)
    np.savez(tmp / "x.npz", x=x)
    return [agreement_cell(path, method, target, tmp / "x.npz", tmp / "x.npz",
                           tmp / f"{name}-{method}-{target}.snnc", timed=True, **options)
            for method, target in RUNS]


def agreement_cell(model, method: str, target: str, calib: Path, data: Path, out: Path, *,
                   timed: bool = False, **options) -> str:
    """One table cell: compile ``model`` and simulate ``data``; its top-1 agreement with the ANN
    (with the compile + simulate seconds if ``timed``), or the error line a user would see."""
    t0 = time.perf_counter()
    try:
        art = snnc.compile(model, target=target, method=method, calib=calib, out=out, **options)
        cell = f"{snnc.simulate(art, data)['agreement']:.3f}"
    except SnncError as e:
        return f"refused: {str(e)[:90]}"
    return f"{cell} ({time.perf_counter() - t0:.0f} s)" if timed else cell


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(MODELS))
        return
    names = args.only or list(MODELS)
    print("| model | " + " | ".join(f"{m} {t}" for m, t in RUNS) + " |")
    print("|---|" + "---|" * len(RUNS))
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            print(f"| {name} | " + " | ".join(measure(name, args.samples, Path(d))) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
