"""compile_nir(): an imported spiking network (NIR) -> IR, quantized and placed for a target.

No calibration or conversion: the network already spikes. Passes: frontend (load_nir), then on
Loihi-class targets quantize_leaky, split_fanin and place, each verified."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snnc.compiler.frontend.nir_loader import load_nir
from snnc.compiler.pass_runner import PassRunner
from snnc.compiler.pipeline import CompileResult
from snnc.compiler.placement import place, split_fanin
from snnc.compiler.quantize.leaky import quantize_leaky
from snnc.targets import load_target

__all__ = ["compile_nir", "input_format", "nir_pass_plan"]


def nir_pass_plan(target: str) -> list[str]:
    names = ["frontend"]
    if target != "cpu":
        if load_target(target).fixed_point:
            names.append("quantize")
        names += ["split_fanin", "place"]
    return names


def input_format(calib_x: np.ndarray | None) -> tuple[float, bool]:
    """(scale, signed) of the integer input code: spike trains (non-negative integers, or no
    calibration data) pass unchanged (scale 1); currents get 8-bit codes of their range."""
    if calib_x is None or not np.size(calib_x):
        return 1.0, False
    x = np.asarray(calib_x, np.float64)
    signed = bool(x.min() < 0)
    if not signed and np.all(x == np.round(x)) and x.max() <= 255:
        return 1.0, False
    top = float(np.abs(x).max()) or 1.0
    return top / (127 if signed else 255), signed


def compile_nir(source, target: str, *, dt: float | None = None, timesteps: int | None = None,
                calib_x: np.ndarray | None = None,
                on_pass: Callable[[str, float], None] | None = None) -> CompileResult:
    """Import and compile a NIR graph (path, bytes or ``nir.NIRGraph``) for ``target``."""
    run = PassRunner(on_pass)
    seconds = run.seconds

    graph = run("frontend", lambda s: load_nir(s, dt=dt, timesteps=timesteps), source)
    quantized, report, placement = None, None, None
    if target != "cpu":
        spec = load_target(target)
        if spec.fixed_point:
            scale, signed = input_format(calib_x)
            top = None if calib_x is None else max(float(np.abs(calib_x).max()) / scale, 1.0)
            quantized, report = run("quantize", lambda g: quantize_leaky(
                g, spec, input_scale=scale, input_signed=signed, input_max=top), graph)
            quantized = run("split_fanin", split_fanin, quantized, spec)
        else:
            graph = run("split_fanin", split_fanin, graph, spec)
        placement = run("place", place, quantized if quantized is not None else graph, spec)
    return CompileResult(graph, graph, seconds, {}, placement, quantized, report)
