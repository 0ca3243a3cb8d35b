"""What the Lava backend builds and returns: the process graph of one artifact
(``LavaNetwork``), the result of running it (``LavaResult``), and the one error it raises for a
layer it cannot run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import BackendError
from snnc.ir import quantized as q

__all__ = ["LavaNetwork", "LavaResult", "unsupported"]


@dataclass
class LavaNetwork:
    """The process graph of one artifact for ``samples`` inputs."""

    source: object  # InputCode process (run/stop go through it)
    populations: dict[str, object]  # node name -> neuron/relay process (spike records)
    readout: object  # ReadoutAcc process
    readout_op: q.QReadout
    delays: dict[str, int]  # value name -> steps its stream starts after the period's start
    period: int
    steps: int
    samples: int
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    gates: dict[str, object] = field(default_factory=dict)  # node name -> max-pool gate
    window_sum: bool = False  # few-spike graph: relays report window sums, as the reference

    @property
    def num_steps(self) -> int:
        return self.period * self.samples


@dataclass
class LavaResult:
    outputs: np.ndarray  # (N, ...) readout values (float, host-side QReadout)
    # population -> (T or K, N, *shape) spikes or payloads; relays of few-spike graphs:
    # (1, N, *shape) window sums of their payloads (the reference's convention)
    spikes: dict[str, np.ndarray]
    delays: dict[str, int]
    wall_s: float
    events: dict[str, np.ndarray] = field(default_factory=dict)  # gate -> (N, size) spikes out
    # AMOS population -> (N, k, *shape): the circuit step in which each neuron fired (0: never)
    fired_step: dict[str, np.ndarray] = field(default_factory=dict)


def unsupported(node, why: str = "") -> BackendError:
    """The error for a layer the Lava backend cannot run: names the layer and its op."""
    extra = f" ({why})" if why else ""
    return BackendError(f"lava backend: layer %{node.name} uses {type(node.op).__name__}, "
                        f"which the lava backend does not support yet{extra}; supported: rate, "
                        "fs, amos and ttfs networks of conv/dense/1:1 synapses, neurons, "
                        "partial-sum relays, max-, first-spike- and sum-pools, flatten, channel "
                        "slices and two-input adds. Use --backend cpu")
