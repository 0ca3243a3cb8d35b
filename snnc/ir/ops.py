"""ANN-level ops of the IR: frozen dataclasses holding their parameters (numpy arrays).

Conventions, shared by every op:

* Shapes and axes are per sample (batch excluded). A 2-D feature map is ``(C, H, W)``.
* ``padding`` of 2-D ops is ``(top, left, bottom, right)``.
* ``infer(*input_shapes)`` is the op's shape rule; ``verify`` checks every node against it.
* Arrays are never mutated: passes build new ops with ``dataclasses.replace``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from snnc.ir.types import Shape

__all__ = [
    "Op",
    "Role",
    "ops_with_role",
    "refusal",
    "Constant",
    "Conv2d",
    "Dense",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Concat",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool",
    "Reshape",
    "Transpose",
    "Pad",
    "BatchNorm",
    "Activation",
    "Softmax",
    "LRN",
    "Identity",
    "Slice",
    "ACTIVATIONS",
    "ALL_OPS",
    "op_name",
    "spatial_out",
]

ACTIVATIONS = (
    "relu", "leaky_relu", "clip", "sigmoid", "hard_sigmoid", "hardswish", "tanh", "silu",
    "elu", "selu", "softplus", "erf", "gelu", "gelu_tanh", "mish",
)


class ShapeError(ValueError):
    """Raised by ``infer`` when input shapes do not fit the op."""


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ShapeError(msg)


def _window_out(size: int, k: int, s: int, begin: int, end: int, dil: int, ceil: bool) -> int:
    span = size + begin + end - dil * (k - 1) - 1
    _need(span >= 0, f"window {k} (dilation {dil}) larger than padded input {size + begin + end}")
    out = (-(-span // s) if ceil else span // s) + 1
    # As in ONNX Runtime and torch: in ceil mode the last window must start inside the input.
    if ceil and (out - 1) * s >= size + begin:
        out -= 1
    return out


def spatial_out(shape: Shape, kernel, stride, padding, dilation, ceil=False) -> tuple[int, int]:
    _need(len(shape) == 3, f"expects a (C, H, W) input, got {shape}")
    return tuple(
        _window_out(shape[1 + i], kernel[i], stride[i], padding[i], padding[i + 2], dilation[i],
                    ceil)
        for i in range(2)
    )


def _broadcast(*shapes: Shape) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as e:
        raise ShapeError(f"shapes {list(shapes)} do not broadcast") from e


class Role(enum.Enum):
    """What an op is in a spiking network, declared once per op class (``Op.role``); passes and
    backends branch on it instead of keeping their own tuples of op classes."""

    CONSTANT = "constant"  # a value without inputs
    SYNAPTIC = "synaptic"  # weighted fan-in: convolutions, dense layers, sum/average pools
    ELEMENTWISE = "elementwise"  # one synapse per element: Add, Sub, Mul, Div, BatchNorm, scales
    ROUTING = "routing"  # moves values without arithmetic: reshape, transpose, concat, pad, slice
    NONLINEAR = "nonlinear"  # ANN activations that conversion replaces by neurons
    POOLING_GATE = "pooling_gate"  # max-pools: pass the winning input of each window
    POPULATION = "population"  # neurons with state that emit spikes
    RELAY = "relay"  # stateless neurons forwarding graded payloads (partial sums)
    ENCODER = "encoder"  # host-side input coding
    READOUT = "readout"  # host-side decoding of the output layer


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all ops. ``arity`` is the number of inputs (None: variadic); ``role`` says what
    the op is in a spiking network (``Role``)."""

    arity: ClassVar[int | None] = 1
    role: ClassVar[Role]

    def infer(self, *shapes: Shape) -> Shape:  # pragma: no cover - every op overrides
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def attributes(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}


def op_name(op: Op | type[Op]) -> str:
    """Snake-case printed name of an op: ``MaxPool2d`` -> ``max_pool2d``."""
    cls = op if isinstance(op, type) else type(op)
    out = []
    for i, ch in enumerate(cls.__name__):
        if ch.isupper() and i and not cls.__name__[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@dataclass(frozen=True, eq=False)
class Constant(Op):
    """A per-sample constant tensor, broadcast over the batch."""

    role: ClassVar[Role] = Role.CONSTANT

    value: np.ndarray
    arity: ClassVar[int | None] = 0

    def infer(self) -> Shape:
        return tuple(self.value.shape)


@dataclass(frozen=True, eq=False)
class Conv2d(Op):
    """y[o] = b[o] + sum_{c in group(o)} W[o, c] (*) pad(x)[c], strided and dilated.

    ``weight``: (O, C/groups, kh, kw); ``bias``: (O,).
    """

    role: ClassVar[Role] = Role.SYNAPTIC

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def infer(self, x: Shape) -> Shape:
        _need(len(x) == 3, f"expects a (C, H, W) input, got {x}")
        _need(x[0] == self.weight.shape[1] * self.groups,
              f"input has {x[0]} channels, weight expects {self.weight.shape[1] * self.groups}")
        return (self.weight.shape[0], *spatial_out(
            x, self.weight.shape[2:], self.stride, self.padding, self.dilation))


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """y = W x + b over the last axis. ``weight``: (out, in); ``bias``: (out,)."""

    role: ClassVar[Role] = Role.SYNAPTIC

    weight: np.ndarray
    bias: np.ndarray

    def infer(self, x: Shape) -> Shape:
        _need(len(x) >= 1 and x[-1] == self.weight.shape[1],
              f"input {x} does not end in {self.weight.shape[1]} features")
        return (*x[:-1], self.weight.shape[0])


@dataclass(frozen=True, eq=False)
class Add(Op):
    """Elementwise sum of all inputs with numpy broadcasting."""

    role: ClassVar[Role] = Role.ELEMENTWISE

    arity: ClassVar[int | None] = None

    def infer(self, *xs: Shape) -> Shape:
        _need(len(xs) >= 1, "needs at least one input")
        return _broadcast(*xs)


@dataclass(frozen=True, eq=False)
class Sub(Op):
    """a - b with broadcasting."""

    role: ClassVar[Role] = Role.ELEMENTWISE

    arity: ClassVar[int | None] = 2

    def infer(self, a: Shape, b: Shape) -> Shape:
        return _broadcast(a, b)


@dataclass(frozen=True, eq=False)
class Mul(Op):
    """a * b with broadcasting."""

    role: ClassVar[Role] = Role.ELEMENTWISE

    arity: ClassVar[int | None] = 2

    def infer(self, a: Shape, b: Shape) -> Shape:
        return _broadcast(a, b)


@dataclass(frozen=True, eq=False)
class Div(Op):
    """a / b with broadcasting."""

    role: ClassVar[Role] = Role.ELEMENTWISE

    arity: ClassVar[int | None] = 2

    def infer(self, a: Shape, b: Shape) -> Shape:
        return _broadcast(a, b)


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenation along a per-sample ``axis``."""

    role: ClassVar[Role] = Role.ROUTING

    axis: int = 0
    arity: ClassVar[int | None] = None

    def infer(self, *xs: Shape) -> Shape:
        _need(len(xs) >= 1, "needs at least one input")
        _need(all(len(x) == len(xs[0]) for x in xs), f"inputs of different rank {list(xs)}")
        _need(0 <= self.axis < len(xs[0]), f"axis {self.axis} out of range for {xs[0]}")
        rest = {x[: self.axis] + x[self.axis + 1:] for x in xs}
        _need(len(rest) == 1, f"inputs {list(xs)} differ outside axis {self.axis}")
        out = list(xs[0])
        out[self.axis] = sum(x[self.axis] for x in xs)
        return tuple(out)


@dataclass(frozen=True, eq=False)
class MaxPool2d(Op):
    """Max over windows; padding never wins (it is -inf)."""

    role: ClassVar[Role] = Role.POOLING_GATE

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def infer(self, x: Shape) -> Shape:
        return (x[0], *spatial_out(x, self.kernel, self.stride, self.padding, self.dilation,
                                    self.ceil_mode))


@dataclass(frozen=True, eq=False)
class AvgPool2d(Op):
    """Mean over windows. With ``count_include_pad`` every window divides by the full kernel size
    (padding and ceil_mode cells included, as onnxruntime does); without it, by the number of
    input cells in the window."""

    role: ClassVar[Role] = Role.SYNAPTIC

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = False

    def infer(self, x: Shape) -> Shape:
        return (x[0], *spatial_out(x, self.kernel, self.stride, self.padding, (1, 1),
                                    self.ceil_mode))


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Op):
    """Mean over all spatial positions: (C, *spatial) -> (C, 1, ...)."""

    role: ClassVar[Role] = Role.SYNAPTIC

    def infer(self, x: Shape) -> Shape:
        _need(len(x) >= 2, f"expects a (C, spatial...) input, got {x}")
        return (x[0],) + (1,) * (len(x) - 1)


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Row-major reshape to a fixed per-sample ``shape`` (Flatten, Squeeze... lower to it)."""

    role: ClassVar[Role] = Role.ROUTING

    shape: tuple[int, ...]

    def infer(self, x: Shape) -> Shape:
        _need(math.prod(x) == math.prod(self.shape),
              f"cannot reshape {x} ({math.prod(x)} elements) to {self.shape}")
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """Permutation of the per-sample axes: out.shape[i] = x.shape[perm[i]]."""

    role: ClassVar[Role] = Role.ROUTING

    perm: tuple[int, ...]

    def infer(self, x: Shape) -> Shape:
        _need(sorted(self.perm) == list(range(len(x))), f"perm {self.perm} invalid for {x}")
        return tuple(x[p] for p in self.perm)


@dataclass(frozen=True, eq=False)
class Pad(Op):
    """Pads each per-sample axis: ``pads`` = (begin_0, ..., begin_n, end_0, ..., end_n).
    ``mode`` is constant (with ``value``), reflect or edge. Negative pads crop."""

    role: ClassVar[Role] = Role.ROUTING

    pads: tuple[int, ...]
    mode: str = "constant"
    value: float = 0.0

    def infer(self, x: Shape) -> Shape:
        n = len(x)
        _need(len(self.pads) == 2 * n, f"pads {self.pads} do not match rank {n}")
        out = tuple(x[i] + self.pads[i] + self.pads[i + n] for i in range(n))
        _need(all(d > 0 for d in out), f"padding {self.pads} leaves an empty tensor")
        return out


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    """Inference batch norm over axis 0: y = scale (x - mean) / sqrt(var + eps) + bias."""

    role: ClassVar[Role] = Role.ELEMENTWISE

    scale: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5

    def infer(self, x: Shape) -> Shape:
        _need(len(x) >= 1 and x[0] == self.scale.shape[0],
              f"input {x} does not have {self.scale.shape[0]} channels")
        return x


@dataclass(frozen=True, eq=False)
class Activation(Op):
    """Elementwise nonlinearity ``kind`` (one of ACTIVATIONS):

    relu: max(x, 0); leaky_relu: x if x >= 0 else alpha x; clip: min(max(x, lo), hi);
    sigmoid: 1 / (1 + e^-x); hard_sigmoid: max(0, min(1, alpha x + beta)); hardswish:
    x max(0, min(1, x/6 + 1/2)); tanh; silu: x sigmoid(x); elu: x if x > 0 else
    alpha (e^x - 1); selu: beta (x if x > 0 else alpha (e^x - 1)); softplus: ln(1 + e^x); erf;
    gelu: x (1 + erf(x / sqrt 2)) / 2; gelu_tanh: x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2;
    mish: x tanh(softplus(x)).
    """

    role: ClassVar[Role] = Role.NONLINEAR

    kind: str
    alpha: float = 0.0
    beta: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.kind!r}; known: {', '.join(ACTIVATIONS)}")

    def infer(self, x: Shape) -> Shape:
        return x


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """Softmax (or log-softmax with ``log``) along per-sample ``axis``."""

    role: ClassVar[Role] = Role.NONLINEAR

    axis: int = -1
    log: bool = False

    def infer(self, x: Shape) -> Shape:
        _need(-len(x) <= self.axis < len(x), f"axis {self.axis} out of range for {x}")
        return x


@dataclass(frozen=True, eq=False)
class LRN(Op):
    """Local response norm across channels (ONNX semantics):
    y = x / (bias + alpha/size * sum_{c' in window(c)} x[c']^2) ^ beta,
    window(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)]."""

    role: ClassVar[Role] = Role.NONLINEAR

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0

    def infer(self, x: Shape) -> Shape:
        _need(len(x) >= 1, "needs a channel axis")
        return x


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """``y = x[start:stop]`` along the first (channel / feature) axis: routing only, no
    synapses (``split_fanin`` cuts a wide fan-in into channel groups with it)."""

    role: ClassVar[Role] = Role.ROUTING

    start: int
    stop: int

    def infer(self, x: Shape) -> Shape:
        _need(len(x) >= 1, "needs a channel axis")
        _need(0 <= self.start < self.stop <= x[0],
              f"slice [{self.start}, {self.stop}) outside {x[0]} channels")
        return (self.stop - self.start, *x[1:])


@dataclass(frozen=True, eq=False)
class Identity(Op):
    """y = x (Dropout at inference lowers to it; canonicalize removes it)."""

    role: ClassVar[Role] = Role.ROUTING

    def infer(self, x: Shape) -> Shape:
        return x


ALL_OPS: tuple[type[Op], ...] = (
    Constant, Conv2d, Dense, Add, Sub, Mul, Div, Concat, MaxPool2d, AvgPool2d, GlobalAvgPool,
    Reshape, Transpose, Pad, BatchNorm, Activation, Softmax, LRN, Identity, Slice,
)


def ops_with_role(role: Role, classes) -> tuple[type[Op], ...]:
    """The op classes among ``classes`` whose role is ``role``."""
    return tuple(c for c in classes if c.role is role)


def refusal(op: Op | type[Op], refused) -> str | None:
    """Why a concern refuses ``op`` (an op or op class): the reason its ``refused`` table gives
    for the class (or the nearest base class), else for its role; None when neither is listed."""
    cls = op if isinstance(op, type) else type(op)
    for base in cls.__mro__:
        if base in refused:
            return refused[base]
    return refused.get(cls.role)
