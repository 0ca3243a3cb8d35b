"""Delay lines for Lava process models whose inputs arrive at different pipeline depths."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DelayLines"]


class DelayLines:
    """One delay line per input port: ``lines(i, a)`` returns what arrived at port ``i`` exactly
    ``delays[i]`` steps ago (zeros before that) and stores ``a``."""

    def __init__(self, delays: Sequence[int]) -> None:
        self.delays = tuple(int(d) for d in delays)
        self.lines: list[np.ndarray | None] = [None] * len(self.delays)  # oldest first

    def __call__(self, i: int, a: np.ndarray) -> np.ndarray:
        d = self.delays[i]
        if d == 0:
            return a
        if self.lines[i] is None:
            self.lines[i] = np.zeros((d, len(a)), np.int64)
        line = self.lines[i]
        out = line[0].copy()
        line[:-1] = line[1:]
        line[-1] = a
        return out
