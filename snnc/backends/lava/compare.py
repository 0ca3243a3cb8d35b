"""The bit-exact reference simulator's per-layer spike trains, to compare the Lava backend with
(tests, benchmarks)."""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.reference.fixed_point import DTYPE, _FixedRules, sums_windows
from snnc.backends.reference.simulator import Signal, _Counters
from snnc.ir import neurons
from snnc.ir.interpret import Interpreter

__all__ = ["reference_spikes"]


def reference_spikes(graph, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``simulate_fixed``'s rules on ``x`` (N, ...) on the CPU; return the readout (N, ...)
    and every neuron population's payloads (T, N, *shape) as int8/int64 arrays."""
    rules = _FixedRules(_Counters())
    rules.window_sum = sums_windows(graph)  # as simulate_fixed
    interp = rules.interp = Interpreter(rules)
    trains: dict[str, np.ndarray] = {}

    def observe(node, sig) -> None:
        if isinstance(node.op, neurons.NEURON_OPS):
            trains[node.name] = sig.x.cpu().numpy().astype(np.int64)

    with torch.no_grad():
        xb = torch.as_tensor(np.asarray(x), dtype=DTYPE)
        outs = interp.run(graph, [Signal(xb.unsqueeze(0))], observe=observe)
    return outs[0].x.mean(0).float().numpy(), trains
