"""Running a pipeline's passes one by one: timing, verification and error reporting."""

from __future__ import annotations

import time
from collections.abc import Callable

from snnc.errors import PassError, SnncError
from snnc.ir.graph import Graph
from snnc.ir.verify import verify

__all__ = ["PassRunner"]


class PassRunner:
    """``run(name, fn, *args)`` calls one pass and returns its result. It records the pass's
    seconds in ``seconds``, verifies a returned graph (or the graph first in a returned tuple)
    when ``check``, reports ``on_pass(name, seconds)``, and turns an internal failure into a
    ``PassError`` naming the pass and the passes done before it (user errors pass through)."""

    def __init__(self, on_pass: Callable[[str, float], None] | None = None,
                 check: bool = True) -> None:
        self.on_pass = on_pass
        self.check = check
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn, *args):
        t0 = time.perf_counter()
        try:
            out = fn(*args)
        except SnncError:
            raise
        except Exception as e:
            raise PassError(f"{name} failed after [{', '.join(self.seconds)}]: {e}") from e
        graph = out[0] if isinstance(out, tuple) else out
        if self.check and isinstance(graph, Graph):
            verify(graph)
        self.seconds[name] = time.perf_counter() - t0
        if self.on_pass is not None:
            self.on_pass(name, self.seconds[name])
        return out
