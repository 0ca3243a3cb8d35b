"""calibrate_rate: post-training layer-wise bias calibration of a rate-coded network (Li et
al. 2021, "A free lunch from ANN: towards efficient, accurate spiking neural networks
calibration", light calibration / bias correction).

At low T the rate code's rounding and clipping errors of the layers before a population shift
the mean of its input current, and the shifts add up along a deep (residual) network. This pass
removes them one population at a time, in topological order, on calibration data: each IF
population's mean output rate per channel is matched to the ANN's mean activation by a constant
shift of the bias that feeds it, measured on the spikes of the already calibrated layers before
it. Only biases change: the converted graph keeps its ops, so it quantizes (biases are
re-quantized) and runs on every target as the plain rate network does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from snnc.errors import SnncError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import run_ann
from snnc.sim.float_rules import FloatRules
from snnc.sim.run import run_once
from snnc.sim.signals import Counters, Signal

__all__ = [
    "CALIBRATION_SAMPLES",
    "RATE_CALIBRATIONS",
    "best_threshold",
    "calibrate_rate",
    "check_rate_calibration",
    "rate_bias_source",
]

RATE_CALIBRATIONS = ("none", "bias", "threshold+bias")
CALIBRATION_SAMPLES = 256  # calibration images used (the first ones): memory ~ N T C H W
ITERATIONS = 3  # fixed-point steps per population (the rate is piecewise constant in the shift)


def check_rate_calibration(mode: str, method: str) -> None:
    """Raise SnncError for an unknown ``--rate-calibration`` or one given with another method."""
    if mode not in RATE_CALIBRATIONS:
        raise SnncError(f"unknown --rate-calibration '{mode}'; available: "
                        f"{', '.join(RATE_CALIBRATIONS)}")
    if mode != "none" and method != "rate":
        raise SnncError(f"--rate-calibration {mode} needs --method rate (got {method})")


def calibrate_rate(snn: Graph, ann: Graph, x: np.ndarray, mode: str = "bias",
                   samples: int = CALIBRATION_SAMPLES) -> Graph:
    """Requires: ``snn`` is ``convert_rate(ann, ...)`` (IFNeurons named as the ANN's
    activations they replace) and ``x`` calibration inputs of ``ann``.
    Ensures: the same graph (same nodes, ops and shapes) where, for every IFNeurons population
    fed by a Conv2d/Dense bias (directly or through one residual Add, with no other consumer),
    that bias is shifted per channel by delta so that on the first ``samples`` inputs of ``x``
    the population's mean output (spike rate times amplitude, averaged over samples and
    positions) equals the ANN activation's mean, with the populations before it already
    calibrated (delta from ITERATIONS fixed-point steps delta += mean(a_ANN - r_SNN(delta))).
    "threshold+bias" first sets each population's threshold = amplitude to best_threshold of
    its ANN activations (the MSE-optimal clip of the T-step code). ``mode`` "none" returns
    ``snn`` unchanged. Ops, names and shapes are those of ``snn``."""
    if mode not in RATE_CALIBRATIONS:
        raise ValueError(f"rate calibration must be one of {', '.join(RATE_CALIBRATIONS)}, "
                         f"got {mode!r}")
    if mode == "none" or len(x) == 0:
        return snn
    x = np.asarray(x[:samples], dtype=np.float32)
    targets, values = _activation_stats(ann, x, {n.name for n in snn.nodes
                                                 if isinstance(n.op, neurons.IFNeurons)})
    producers = snn.producers()
    uses = _use_counts(snn)
    shifts: dict[str, np.ndarray] = {}
    scales: dict[str, float] = {}
    rules = FloatRules(Counters(), torch.float32)

    def if_neurons(node: Node, sig: Signal) -> Signal:
        if mode == "threshold+bias" and node.name in values:
            lam = best_threshold(values[node.name], node.op.timesteps, node.op.v_init)
            if lam is not None:
                scales[node.name] = lam
                node = node.replace(op=dataclasses.replace(node.op, threshold=lam, amplitude=lam))
        fed_by = rate_bias_source(node, producers, uses)
        target = targets.get(node.name)
        if fed_by is None or target is None or target.shape != producers[fed_by].op.bias.shape:
            return rules.if_neurons(node, sig)
        current = sig.x
        steps = node.op.timesteps
        current = current.expand(steps, *current.shape[1:]) if current.shape[0] == 1 else current
        delta = _match_mean(node.op, current, target)
        shifts[fed_by] = delta.numpy()
        shape = (-1,) + (1,) * (current.dim() - 3)
        return rules.if_neurons(node, Signal(current + delta.reshape(shape)))

    rules[neurons.IFNeurons] = if_neurons
    with torch.no_grad():
        run_once(rules, snn, torch.as_tensor(x))
    nodes = []
    for n in snn.nodes:
        if n.name in shifts:
            bias = (n.op.bias.astype(np.float64) + shifts[n.name]).astype(n.op.bias.dtype)
            n = n.replace(op=dataclasses.replace(n.op, bias=bias))
        elif n.name in scales:
            n = n.replace(op=dataclasses.replace(n.op, threshold=scales[n.name],
                                                 amplitude=scales[n.name]))
        nodes.append(n)
    return snn.replace(nodes=tuple(nodes))


def _activation_stats(ann: Graph, x: np.ndarray, names: set[str]
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per channel (axis 1) mean of each named activation's ANN output over samples and
    positions, and a strided subsample of its values (at most _KEEP per layer)."""
    sums: dict[str, torch.Tensor] = {}
    kept: dict[str, list[np.ndarray]] = {}

    def observe(node, out):
        if node.name in names:
            a = out.detach().float().cpu().numpy().ravel()
            step = max(1, a.size * len(x) // (_KEEP * len(out)))
            kept.setdefault(node.name, []).append(a[::step])
            axes = [0] + list(range(2, out.dim()))
            s = out.detach().double().sum(dim=axes)
            sums[node.name] = sums[node.name] + s if node.name in sums else s

    run_ann(ann, x, batch_size=64, observe=observe)
    means = {}
    for name, s in sums.items():
        shape = ann.node(name).output.type.shape
        per = len(x) * int(np.prod(shape[1:])) if len(shape) > 1 else len(x)
        means[name] = (s / per).numpy()
    return means, {k: np.concatenate(v) for k, v in kept.items()}


_KEEP = 1_000_000
_THRESHOLD_QUANTILES = (90.0, 95.0, 97.0, 98.0, 99.0, 99.3, 99.5, 99.7, 99.8, 99.9, 99.95, 99.99,
                        100.0)


def best_threshold(a: np.ndarray, timesteps: int, v_init: float) -> float | None:
    """The scale lambda, among quantiles of the positive values of ``a``, that minimizes the
    mean squared error of the T-step rate code of ``a``: lambda/T min(T, floor(a T/lambda +
    v_init)) (clipping at lambda plus rounding); None when ``a`` has no positive value."""
    pos = a[a > 0]
    if pos.size == 0:
        return None
    a = a.astype(np.float64)
    best, best_err = None, np.inf
    for lam in np.unique(np.percentile(pos, _THRESHOLD_QUANTILES)):
        if lam <= 0:
            continue
        q = np.clip(np.floor(a * timesteps / lam + v_init), 0, timesteps) * (lam / timesteps)
        err = float(np.mean((q - a) ** 2))
        if err < best_err:
            best, best_err = float(lam), err
    return best


def _rates(op: neurons.IFNeurons, current: torch.Tensor) -> torch.Tensor:
    """Mean output over time (spike count / T times amplitude) of ``op`` for the input
    ``current`` (T, N, C, ...): the IFNeurons update of snnc.ir.neurons."""
    v = torch.full_like(current[0], op.v_init * op.threshold)
    count = torch.zeros_like(v)
    for t in range(current.shape[0]):
        v += current[t]
        s = (v >= op.threshold).to(v.dtype)
        v -= s * op.threshold
        count += s
    return count * (op.amplitude / current.shape[0])


def _match_mean(op: neurons.IFNeurons, current: torch.Tensor, target: np.ndarray) -> torch.Tensor:
    """The per-channel shift of ``current`` (T, N, C, ...) that makes the channel means of the
    population's output equal ``target`` (C,): ITERATIONS fixed-point steps."""
    axes = [0] + list(range(2, current.dim() - 1))
    shape = (-1,) + (1,) * (current.dim() - 3)
    goal = torch.as_tensor(target, dtype=torch.float64)
    delta = torch.zeros_like(goal)
    for _ in range(ITERATIONS):
        shifted = current + delta.to(current.dtype).reshape(shape)
        got = _rates(op, shifted).double().mean(dim=axes)
        delta = delta + (goal - got)
    return delta.to(current.dtype)


def _use_counts(graph: Graph) -> dict[str, int]:
    uses: dict[str, int] = {}
    for n in graph.nodes:
        for v in n.inputs:
            uses[v.name] = uses.get(v.name, 0) + 1
    for v in graph.outputs:
        uses[v.name] = uses.get(v.name, 0) + 1
    return uses


def rate_bias_source(node: Node, producers: dict[str, Node], uses: dict[str, int]) -> str | None:
    """The Conv2d/Dense whose bias feeds ``node``'s membrane directly or through one Add (the
    residual branch's last conv), if nothing else uses it; else None (not calibrated)."""
    p = producers.get(node.inputs[0].name)
    cands = [p]
    if p is not None and isinstance(p.op, ops.Add) and uses.get(p.name) == 1:
        cands = [producers.get(v.name) for v in p.inputs]
    for c in cands:
        if (c is not None and isinstance(c.op, (ops.Conv2d, ops.Dense))
                and getattr(c.op, "bias", None) is not None and uses.get(c.name) == 1):
            return c.name
    return None
