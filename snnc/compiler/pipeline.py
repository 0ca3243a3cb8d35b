"""compile(): ONNX -> converted SNN graph, pass by pass, with timing and verification."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.compiler.frontend import load_onnx
from snnc.compiler.passes.calibrate import DEFAULT_PERCENTILE, calibrate
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.convert_common import neuron_depth
from snnc.compiler.passes.convert_fs import DEFAULT_K, convert_fs
from snnc.compiler.passes.convert_rate import DEFAULT_TIMESTEPS, convert_rate
from snnc.compiler.passes.fold_bn import fold_batchnorm
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.errors import PassError, SnncError
from snnc.ir import neurons
from snnc.ir.graph import Graph
from snnc.ir.verify import verify

__all__ = ["CompileOptions", "CompileResult", "compile_graph", "METHODS", "timing_of"]

METHODS = ("rate", "fs")


@dataclass(frozen=True)
class CompileOptions:
    method: str = "fs"
    target: str = "cpu"
    timesteps: int | None = None  # rate: T (default 64); fs: K of ReLU gates (default 10)
    percentile: float | None = None  # rate: 99.99; fs: 100 (alpha from the max, as ml_genn)

    @property
    def effective_percentile(self) -> float:
        if self.percentile is not None:
            return self.percentile
        return DEFAULT_PERCENTILE if self.method == "rate" else 100.0

    def to_dict(self) -> dict:
        return {"method": self.method, "target": self.target, "timesteps": self.timesteps,
                "percentile": self.percentile}


@dataclass(frozen=True)
class CompileResult:
    graph: Graph
    ann: Graph
    pass_seconds: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, dict] = field(default_factory=dict)


def timing_of(graph: Graph, method: str) -> dict[str, int]:
    """latency_steps (input to decision) and throughput_steps (steps between pipelined images)."""
    pops = [n.op for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)]
    if method == "rate":
        steps = max((p.timesteps for p in pops), default=1)
        return {"latency_steps": steps, "throughput_steps": steps}
    window = max((p.K for p in pops), default=1)  # all FS layers of a pipeline share the window
    return {"latency_steps": window * neuron_depth(graph), "throughput_steps": window}


def compile_graph(source, calib_x: np.ndarray, options: CompileOptions,
                  on_pass: Callable[[str, float], None] | None = None,
                  check: bool = True) -> CompileResult:
    """Run the pass pipeline on an ONNX model (path, bytes or ModelProto)."""
    if options.method not in METHODS:
        raise SnncError(f"unknown method {options.method!r}; available: {', '.join(METHODS)}")
    seconds: dict[str, float] = {}
    done: list[str] = []

    def run(name: str, fn, *args):
        t0 = time.perf_counter()
        try:
            out = fn(*args)
        except SnncError:
            raise
        except Exception as e:
            raise PassError(f"{name} failed after [{', '.join(done)}]: {e}") from e
        if check and isinstance(out, Graph):
            verify(out)
        seconds[name] = time.perf_counter() - t0
        done.append(name)
        if on_pass is not None:
            on_pass(name, seconds[name])
        return out

    graph = run("frontend", load_onnx, source)
    graph = run("canonicalize", canonicalize, graph)
    graph = run("fold_batchnorm", fold_batchnorm, graph)
    ann = run("prepare_spiking", prepare_spiking, graph)
    stats = run("calibrate", calibrate, ann, calib_x, options.effective_percentile)
    if options.method == "rate":
        snn = run("convert_rate", convert_rate, ann, stats, options.timesteps or DEFAULT_TIMESTEPS)
    else:
        snn = run("convert_fs", convert_fs, ann, stats, options.timesteps or DEFAULT_K)
    calib = {k: {"percentile": v.percentile, "max": v.max, "min": v.min} for k, v in stats.items()}
    return CompileResult(snn, ann, seconds, calib)
