"""The quantize pass's read-only view of the float graph, handed explicitly to the scale choice
(scales.py) and the lowering (lowering.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.compiler.quantize.destinations import Dest
from snnc.compiler.quantize.payloads import FsPayload, PayloadMap
from snnc.ir.graph import Graph
from snnc.targets.target import NeuronSpec, TargetSpec, WeightFormat

__all__ = ["QuantizeContext"]


@dataclass(frozen=True)
class QuantizeContext:
    """Everything known before scales are chosen; nothing in it changes afterwards."""

    graph: Graph
    spec: TargetSpec
    s_in: float  # ANN units per input code
    input_signed: bool
    input_bits: int  # width of the input codes (InputQuantizer.bits)
    fs: dict[str, FsPayload]  # integer d(t) of every FS-table population
    payloads: PayloadMap
    dest_of: dict[str, str]  # destination of every current value
    dests: dict[str, Dest]
    biases: dict[str, np.ndarray]  # float bias reaching every current value
    reduce: str  # the readout's window: sum (fs, amos), integrate (ttfs) or mean (rate)

    @property
    def nrn(self) -> NeuronSpec:
        return self.spec.neuron

    @property
    def wf(self) -> WeightFormat:
        return self.spec.weights

    @property
    def act(self) -> int:
        """Weights are ``mantissa * 2^(act + exp)``: the target's weight scale shift."""
        return self.spec.weights.scale_shift

    @property
    def graded(self) -> bool:
        """The target sends graded spikes (Loihi 2), not binary ones (Loihi 1)."""
        return bool(self.spec.neuron.graded_spike_bits)
