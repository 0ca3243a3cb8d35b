"""Layout ops: Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Pad, Identity, Dropout.

Per-sample semantics: an op may rearrange the axes after the batch axis, never the batch itself.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.registry import BATCH, converter
from snnc.ir import ops
from snnc.ir.types import Value


def _batch_token(ctx, d: int, rest_has_wildcard: bool) -> bool:
    return d in (0, BATCH) or (d == -1 and not rest_has_wildcard) or d == ctx.static_batch


def _reshape(ctx, x: Value, target) -> Value:
    target = [int(t) for t in target]
    if not target or not _batch_token(ctx, target[0], -1 in target[1:]):
        ctx.fail(f"reshape to {target} would mix the batch axis with other axes")
    full = (None, *x.shape)
    per = []
    for i, t in enumerate(target[1:], start=1):
        if t == 0:
            if i >= len(full):
                ctx.fail(f"reshape target {target} copies axis {i}, beyond the input rank")
            t = full[i]
        per.append(t)
    if per.count(-1) > 1:
        ctx.fail(f"reshape target {target} has more than one -1")
    if -1 in per:
        known = math.prod(t for t in per if t != -1)
        if known == 0 or math.prod(x.shape) % known:
            ctx.fail(f"cannot reshape {list(x.shape)} to {target}")
        per[per.index(-1)] = math.prod(x.shape) // known
    if math.prod(per) != math.prod(x.shape):
        ctx.fail(f"cannot reshape per-sample shape {list(x.shape)} to {per}")
    if tuple(per) == x.shape:
        return ctx.add(ops.Identity(), x)
    return ctx.add(ops.Reshape(tuple(per)), x)


@converter("Reshape", since=1)
def convert_reshape_attr(ctx, x, *, shape, consumed_inputs=None):
    return _reshape(ctx, x, shape)


@converter("Reshape", since=5)
def convert_reshape(ctx, x, shape, *, allowzero=0):
    shape = ctx.constant(shape, "the target shape")
    if allowzero and 0 in shape.tolist():
        ctx.fail("allowzero=1 with a zero in the target shape unsupported")
    return _reshape(ctx, x, shape.tolist())


@converter("Flatten", since=1)
def convert_flatten(ctx, x, *, axis=1):
    rank = len(x.shape) + 1
    a = axis + rank if axis < 0 else axis
    if a == 0 or math.prod(x.shape[: a - 1]) != 1:
        ctx.fail(f"flatten at axis {axis} would merge the batch axis with others")
    return _reshape(ctx, x, [0, -1])


def _squeeze(ctx, x, axes):
    rank = len(x.shape) + 1
    if axes is None:
        axes = [i for i, d in enumerate(x.shape, start=1) if d == 1]
    per = {ctx.axis(int(a), rank) for a in axes}
    if any(x.shape[a] != 1 for a in per):
        ctx.fail(f"cannot squeeze axes {list(axes)} of shape {list(x.shape)}")
    return _reshape(ctx, x, [0] + [d for i, d in enumerate(x.shape) if i not in per])


def _unsqueeze(ctx, x, axes):
    out_rank = len(x.shape) + 1 + len(axes)
    per = sorted(ctx.axis(int(a), out_rank) for a in axes)
    shape = list(x.shape)
    for a in per:
        shape.insert(a, 1)
    return _reshape(ctx, x, [0] + shape)


@converter("Squeeze", since=1)
def convert_squeeze_attr(ctx, x, *, axes=None):
    return _squeeze(ctx, x, axes)


@converter("Squeeze", since=13)
def convert_squeeze(ctx, x, axes=None):
    return _squeeze(ctx, x, None if axes is None else ctx.constant(axes, "axes").tolist())


@converter("Unsqueeze", since=1)
def convert_unsqueeze_attr(ctx, x, *, axes):
    return _unsqueeze(ctx, x, axes)


@converter("Unsqueeze", since=13)
def convert_unsqueeze(ctx, x, axes):
    return _unsqueeze(ctx, x, ctx.constant(axes, "axes").tolist())


@converter("Transpose", since=1)
def convert_transpose(ctx, x, *, perm=None):
    rank = len(x.shape) + 1
    perm = list(perm) if perm is not None else list(reversed(range(rank)))
    if perm[0] != 0:
        ctx.fail(f"perm {perm} moves the batch axis")
    if sorted(perm) != list(range(rank)):
        ctx.fail(f"perm {perm} is not a permutation of {rank} axes")
    return ctx.add(ops.Transpose(tuple(p - 1 for p in perm[1:])), x)


@converter("Concat", since=1)
def convert_concat(ctx, *xs, axis=1):
    dyn = [x for x in xs if isinstance(x, Value)]
    rank = len(dyn[0].shape) + 1
    return ctx.add(ops.Concat(ctx.axis(axis, rank)), *(ctx.tensor(x, rank) for x in xs))


def _pad(ctx, x, pads, mode, value):
    rank = len(x.shape) + 1
    pads = [int(p) for p in pads]
    if len(pads) != 2 * rank:
        ctx.fail(f"pads {pads} do not match rank {rank}")
    if pads[0] or pads[rank]:
        ctx.fail("padding the batch axis unsupported")
    if mode not in ("constant", "reflect", "edge"):
        ctx.fail(f"mode={mode!r} unsupported (constant, reflect, edge)")
    per = tuple(pads[1:rank] + pads[rank + 1:])
    return ctx.add(ops.Pad(per, mode, float(value)), x)


@converter("Pad", since=1)
def convert_pad_attr(ctx, x, *, pads=None, paddings=None, mode="constant", value=0.0):
    return _pad(ctx, x, pads if pads is not None else paddings, mode, value)


@converter("Pad", since=11)
def convert_pad(ctx, x, pads, constant_value=None, axes=None, *, mode="constant"):
    pads = ctx.constant(pads, "pads").tolist()
    rank = len(x.shape) + 1
    if axes is not None:
        axes = [a + rank if a < 0 else a for a in ctx.constant(axes, "axes").tolist()]
        full = [0] * (2 * rank)
        for i, a in enumerate(axes):
            full[a], full[a + rank] = pads[i], pads[i + len(axes)]
        pads = full
    value = 0.0 if constant_value is None else float(np.asarray(
        ctx.constant(constant_value, "constant_value")).reshape(-1)[0])
    return _pad(ctx, x, pads, mode, value)


@converter("Identity", since=1)
def convert_identity(ctx, x):
    return ctx.add(ops.Identity(), x)


@converter("Dropout", since=1)
def convert_dropout(ctx, x, ratio=None, training_mode=None, *, seed=None, is_test=None,
                    consumed_inputs=None):
    if isinstance(training_mode, np.ndarray) and bool(training_mode):
        ctx.fail("training_mode=True unsupported (export the model in eval mode)")
    return ctx.add(ops.Identity(), x)
