"""Registry of ONNX op converters: one named function per (domain, op type, since-version).

A converter reads like the ONNX schema: ``fn(ctx, *inputs, **attributes)``. Each input is an IR
``Value`` (depends on the model input), a numpy array (constant) or ``None`` (omitted optional
input); attributes arrive as keyword arguments, so ONNX defaults are the function's defaults.
It returns the IR value (or constant array) of the node's first output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["converter", "lookup", "supported_ops", "Converter", "BATCH"]

# Stand-in for the symbolic batch size inside folded shape arithmetic (Shape -> Gather -> Concat
# -> Reshape), shared by the loader and the shape converters. Large and odd so that it cannot be
# confused with a real dimension.
BATCH = 2**31 - 3

Converter = Callable[..., object]


@dataclass(frozen=True)
class _Entry:
    since: int
    fn: Converter


_REGISTRY: dict[tuple[str, str], list[_Entry]] = {}


def converter(op_type: str, since: int = 1, domain: str = "") -> Callable[[Converter], Converter]:
    """Register ``fn`` for ``op_type`` in models whose opset for ``domain`` is >= ``since``."""

    def register(fn: Converter) -> Converter:
        entries = _REGISTRY.setdefault((domain, op_type), [])
        if any(e.since == since for e in entries):
            raise ValueError(f"converter for {op_type} since opset {since} registered twice")
        entries.append(_Entry(since, fn))
        entries.sort(key=lambda e: e.since)
        return fn

    return register


def lookup(op_type: str, opset: int, domain: str = "") -> Converter | None:
    """The converter for the newest ``since`` <= ``opset``, or None."""
    best = None
    for e in _REGISTRY.get(("" if domain == "ai.onnx" else domain, op_type), []):
        if e.since <= opset:
            best = e.fn
    return best


def supported_ops() -> list[str]:
    return sorted(op for (dom, op) in _REGISTRY if dom == "")
