"""Add, Sum, Sub, Mul, Div: between tensors or with constants (numpy broadcasting)."""

from __future__ import annotations

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops
from snnc.ir.types import Value


def _binary(ctx, op, a, b):
    rank = max(len(x.shape) + 1 for x in (a, b) if isinstance(x, Value))
    if isinstance(a, Value) and isinstance(b, Value) and len(a.shape) != len(b.shape):
        ctx.fail(f"operands of different rank {[len(a.shape) + 1, len(b.shape) + 1]} would "
                 "broadcast across the batch axis")
    return ctx.add(op, ctx.tensor(a, rank), ctx.tensor(b, rank))


def _legacy_broadcast(ctx, broadcast, axis):
    if axis is not None:
        ctx.fail("legacy 'axis' broadcasting (opset < 7) unsupported")


@converter("Add", since=1)
def convert_add(ctx, a, b, *, broadcast=0, axis=None, consumed_inputs=None):
    _legacy_broadcast(ctx, broadcast, axis)
    return _binary(ctx, ops.Add(), a, b)


@converter("Sub", since=1)
def convert_sub(ctx, a, b, *, broadcast=0, axis=None, consumed_inputs=None):
    _legacy_broadcast(ctx, broadcast, axis)
    return _binary(ctx, ops.Sub(), a, b)


@converter("Mul", since=1)
def convert_mul(ctx, a, b, *, broadcast=0, axis=None, consumed_inputs=None):
    _legacy_broadcast(ctx, broadcast, axis)
    return _binary(ctx, ops.Mul(), a, b)


@converter("Div", since=1)
def convert_div(ctx, a, b, *, broadcast=0, axis=None, consumed_inputs=None):
    _legacy_broadcast(ctx, broadcast, axis)
    return _binary(ctx, ops.Div(), a, b)


@converter("Sum", since=1)
def convert_sum(ctx, *xs, consumed_inputs=None):
    dyn = [x for x in xs if isinstance(x, Value)]
    rank = max(len(x.shape) + 1 for x in dyn)
    if any(len(x.shape) + 1 != rank for x in dyn):
        ctx.fail("operands of different rank would broadcast across the batch axis")
    return ctx.add(ops.Add(), *(ctx.tensor(x, rank) for x in xs))
