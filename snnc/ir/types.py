"""Value types of the IR. Shapes are per sample: the batch dimension is implicit and never stored."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TensorType", "Value", "Shape"]

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor type: per-sample ``shape`` (batch excluded) and element ``dtype``."""

    shape: Shape
    dtype: str = "float32"

    def __str__(self) -> str:
        short = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32"}.get(
            self.dtype, self.dtype
        )
        return f"{short}[{','.join(map(str, self.shape))}]"

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class Value:
    """A named SSA value. Graph inputs and node outputs are Values."""

    name: str
    type: TensorType

    @property
    def shape(self) -> Shape:
        return self.type.shape

    def __str__(self) -> str:
        return f"%{self.name}"
