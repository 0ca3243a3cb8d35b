"""convert_rate: ReLU ANN -> rate-coded IF network (Rueckauer et al. 2017)."""

from __future__ import annotations

import math

from snnc.compiler.passes.calibrate import ActivationStats
from snnc.compiler.convert.common import is_linear, reject, reject_pool_of_currents
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph

__all__ = ["convert_rate", "DEFAULT_TIMESTEPS"]

DEFAULT_TIMESTEPS = 64
# Initial membrane potential, in thresholds. Half a threshold centres the rate code's rounding
# error (floor(z T / lambda + 1/2) instead of floor): the expected-error-optimal shift of Bu et
# al. 2022 (QCFS, ALGORITHMS.md 5). On the shipped residual CNN at T=64 it lifts rate accuracy
# from 31 % to 89 % (p=99.99); see docs/decisions.md.
V_INIT = 0.5


def convert_rate(graph: Graph, stats: dict[str, ActivationStats],
                 timesteps: int = DEFAULT_TIMESTEPS) -> Graph:
    """Requires: a prepared graph (prepare_spiking) and calibration stats of its activations.
    Ensures: every relu / clip(0, c) is an IFNeurons population with threshold = amplitude =
    lambda_l (the calibrated percentile, capped at c) and v(0) = lambda_l / 2, every max-pool
    is a SpikingMaxPool2d;
    the rest are linear ops (synapses, routing). Analog input, bias every step, reset by
    subtraction. Raises UnsupportedOp naming the first layer rate coding cannot express."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    producers = graph.producers()
    nodes = []
    for n in graph.nodes:
        op = n.op
        if isinstance(op, ops.Activation):
            if op.kind == "relu" or (op.kind == "clip" and op.lo == 0.0):
                lam = stats[n.name].percentile if n.name in stats else 0.0
                lam = min(lam, op.hi) if op.kind == "clip" else lam
                if not math.isfinite(lam) or lam <= 0:
                    lam = 1.0  # a layer silent on the calibration data: any scale is exact
                n = n.replace(op=neurons.IFNeurons(float(lam), float(lam), timesteps, V_INIT))
            else:
                reject(n, "rate", f"{op.kind} cannot be rate coded (only relu and clip(0, c)); "
                                  "use --method fs")
        elif type(op) is ops.MaxPool2d:
            reject_pool_of_currents(n, producers, "rate")
            n = n.replace(op=neurons.SpikingMaxPool2d(op.kernel, op.stride, op.padding,
                                                       op.dilation, op.ceil_mode))
        elif isinstance(op, ops.Pad) and (op.mode != "constant" or op.value != 0.0):
            reject(n, "rate", f"{op.mode} padding with value {op.value} is not a synapse")
        elif not is_linear(n, producers):
            reject(n, "rate", "not expressible with IF neurons and synapses")
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))
