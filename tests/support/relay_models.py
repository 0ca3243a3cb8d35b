"""Models with two weighted layers and no activation between them that ``fold_linear`` leaves
apart (issue 25), for the relay tests (tests/compiler/passes/test_relay.py, the Lava test):
random but seeded weights, exported from torch (opset 13, input ``x``, output ``y``)."""

from __future__ import annotations

import io

import numpy as np
import onnx
import torch
from torch import nn

__all__ = ["MODELS", "SharedIntermediate", "build", "random_data"]


def _bottleneck() -> nn.Module:
    # Dense 128 -> 8 -> 128: merged, 16 times the synapses of the two layers (fold_linear: 4)
    return nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 8), nn.Linear(8, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def _conv_conv() -> nn.Module:
    # a 3x3 conv read by a 3x3 conv: no exact merge of the kinds fold_linear builds
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                         nn.Conv2d(6, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def _conv_pool() -> nn.Module:
    # an average pool of a conv's output, too large to merge into a Dense
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                         nn.AvgPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 10))


def _bilinear() -> nn.Module:
    # population -> bilinear Resize (a synapse) -> conv -> population
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Upsample(scale_factor=2, mode="bilinear"),
                         nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def _bilinear_signed() -> nn.Module:
    # conv -> bilinear Resize (align_corners) of its signed output -> relu
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1),
                         nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def _conv_chain3() -> nn.Module:
    # three weighted layers in a row: conv -> bilinear Resize -> conv, no activation between
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1),
                         nn.Upsample(scale_factor=2, mode="bilinear"),
                         nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


class SharedIntermediate(nn.Module):
    """A weighted layer (6 -> 4) read by two weighted layers (4 -> 3 each), summed: neither
    merged (fold_linear) nor relayed."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 4), nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        h = self.a(x)
        return self.b(h) + self.c(h)


def _linear_1d() -> nn.Module:
    # temporal: Conv1d -> ReLU -> linear Resize x2 (a synapse) -> Conv1d
    return nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(),
                         nn.Upsample(scale_factor=2, mode="linear"),
                         nn.Conv1d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8, 10))


MODELS = {"bottleneck": (_bottleneck, (32,)), "conv_conv": (_conv_conv, (1, 12, 12)),
          "conv_pool": (_conv_pool, (1, 16, 16)), "bilinear": (_bilinear, (1, 12, 12)),
          "bilinear_signed": (_bilinear_signed, (1, 12, 12)), "linear_1d": (_linear_1d, (2, 8)),
          "conv_chain3": (_conv_chain3, (1, 12, 12))}


def build(name: str, seed: int = 0) -> onnx.ModelProto:
    make, shape = MODELS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = make()
        for p in m.parameters():
            nn.init.uniform_(p, -0.5, 0.5)
        buf = io.BytesIO()
        torch.onnx.export(m.eval(), torch.rand(1, *shape), buf, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buf.getvalue())


def random_data(name: str, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, *MODELS[name][1])).astype(np.float32)
