"""The shipped examples compiled once per test session with default options (per example,
target and method), for the tests that only read the artifact: the behaviour goldens,
placement checks, published numbers and Lava runs share one compile instead of one each (a
residual ttfs compile takes ~25 s on 2 cores). Callers must not modify what they get."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from support.paths import EXAMPLES

_DIR = Path(tempfile.mkdtemp(prefix="snnc-test-examples-"))
atexit.register(shutil.rmtree, _DIR, True)


@cache
def compiled_example(example: str, target: str = "cpu", method: str = "fs") -> Path:
    """The artifact directory of ``snnc compile examples/<example>/<example>.onnx --target
    <target> --method <method> --calib examples/<example>/calib.npz`` (compiled on first use;
    a refused combination raises its SnncError every time)."""
    from snnc.api import compile_model

    d = EXAMPLES / example
    out = _DIR / f"{example}-{target}-{method}.snnc"
    compile_model(d / f"{example}.onnx", target=target, method=method, calib=d / "calib.npz",
                  out=out)
    return out
