"""Normalizations by per-sample statistics (LayerNorm, InstanceNorm, GroupNorm) and the square
root of their decomposed exports.

Unlike an inference BatchNorm, these divide every sample by its own standard deviation: no
synapse or neuron computes that. Compilation either folds them where the statistics are
constant (a group of one element: the output is the bias), or, opt-in, replaces them by a fixed
affine map calibrated on data (``compiler/passes/approximate_norm.py``); conversion never sees
them. Their ANN rules (``ir.interpret``) make the ANN reference agree with onnxruntime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir.ops import Op, Role, ShapeError
from snnc.ir.serialize import register_op_class
from snnc.ir.types import Shape

__all__ = ["NORM_KINDS", "NORM_OPS", "Normalize", "Sqrt", "layer_norm_layout"]

NORM_KINDS = ("layer_norm", "instance_norm", "group_norm")


@register_op_class
@dataclass(frozen=True, eq=False)
class Normalize(Op):
    """``y = (x - mean) / sqrt(var + eps) * scale + bias`` with statistics per sample and group.

    Axis 0 (C channels) is split into ``groups`` groups of C/groups consecutive channels; the
    mean and the (biased) variance of a group run over its channels and the per-sample ``axes``
    (a subset of 1..rank-1), separately for every index of the other axes:

    * LayerNorm over per-sample axes k..: k = 0: ``groups`` 1, ``axes`` (1, ..); k > 0:
      ``groups`` C, ``axes`` (k, ..);
    * InstanceNorm: ``groups`` C, ``axes`` all spatial; GroupNorm(G): ``groups`` G, the same axes.

    ``scale`` and ``bias`` broadcast to the input's shape; ``kind`` (one of NORM_KINDS) names the
    source layer in messages."""

    role: ClassVar[Role] = Role.NONLINEAR

    scale: np.ndarray
    bias: np.ndarray
    groups: int
    axes: tuple[int, ...]
    eps: float = 1e-5
    kind: str = "layer_norm"

    def __post_init__(self) -> None:
        if self.kind not in NORM_KINDS:
            raise ValueError(f"unknown normalization {self.kind!r}; known: {NORM_KINDS}")

    def infer(self, x: Shape) -> Shape:
        if len(x) < 1 or self.groups < 1 or x[0] % self.groups:
            raise ShapeError(f"{self.groups} groups do not divide the {x[:1]} channels of {x}")
        if any(not 1 <= a < len(x) for a in self.axes) or len(set(self.axes)) != len(self.axes):
            raise ShapeError(f"axes {self.axes} invalid for {x} (1..{len(x) - 1}, no repeats)")
        for name, a in (("scale", self.scale), ("bias", self.bias)):
            try:
                if np.broadcast_shapes(a.shape, tuple(x)) != tuple(x):
                    raise ValueError
            except ValueError:
                raise ShapeError(f"{name} of shape {a.shape} does not broadcast to {x}") from None
        return x

    def group_size(self, x: Shape) -> int:
        """Elements that share one mean and variance."""
        return x[0] // self.groups * math.prod(x[a] for a in self.axes)


@register_op_class
@dataclass(frozen=True, eq=False)
class Sqrt(Op):
    """y = sqrt(x), elementwise: the standard deviation of a LayerNorm exported as ReduceMean,
    Sub, Pow, ReduceMean, Add, Sqrt, Div (torch, opset < 17); canonicalize fuses that subgraph
    into one ``Normalize`` (``compiler/passes/fuse_norms.py``)."""

    role: ClassVar[Role] = Role.NONLINEAR

    def infer(self, x: Shape) -> Shape:
        return x


NORM_OPS: tuple[type[Op], ...] = (Normalize, Sqrt)


def layer_norm_layout(shape: Shape, axis: int) -> tuple[int, tuple[int, ...]]:
    """``(groups, axes)`` of a LayerNorm over per-sample axes ``axis``.. of ``shape``."""
    rest = tuple(range(max(axis, 1), len(shape)))
    return (1, rest) if axis == 0 else (shape[0], rest)
