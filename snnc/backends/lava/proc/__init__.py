"""snnc's own Lava processes, one package per family as Lava lays out its own (``process.py``:
ports, state and parameters; ``models.py`` beside it: the ``fixed_pt`` PyLoihiProcessModels,
where Lava's compiler looks for them).

Every process works on flat (C-order) vectors so that Lava ports connect without reshapes; the
models reshape internally. All integers are numpy int64 (exact; the reference simulator holds
the same integers in float64).

Samples run one after another in one Lava run: each sample owns a *period* of ``P`` steps.
A process of pipeline delay ``d`` (the number of 1-step synapse buffers between it and the
input) is active in the local steps ``d+1 .. d+T`` of each period and resets its state at local
step 1, so its spike train equals the reference simulator's, shifted by ``d`` steps
(docs/decisions.md, "Lava backend").

Importing this package imports Lava (seconds): the lowering loads it when it builds a network.
"""

from lava.proc.dense.process import Dense  # Lava's stock dense synapses (bit-accurate model)

from snnc.backends.lava.proc.few_spike.process import AmosNeurons, FSNeurons
from snnc.backends.lava.proc.if_neurons.process import IFNeurons, SingleSpikeNeurons
from snnc.backends.lava.proc.io.process import InputCode, ReadoutAcc
from snnc.backends.lava.proc.pooling.process import (
    DecodedMaxPoolGate,
    FirstSpikeGate,
    MaxPoolGate,
    SumPoolGate,
)
from snnc.backends.lava.proc.relays.process import ConcatGate, PadGate, RelayNeurons, SliceGate
from snnc.backends.lava.proc.synapses.process import AlignedSum, IntConv, IntDense, ScaleSynapse

__all__ = ["AlignedSum", "AmosNeurons", "ConcatGate", "DecodedMaxPoolGate", "Dense",
           "FSNeurons", "FirstSpikeGate", "IFNeurons", "InputCode", "IntConv", "IntDense",
           "MaxPoolGate", "PadGate", "ReadoutAcc", "RelayNeurons", "ScaleSynapse", "SingleSpikeNeurons",
           "SliceGate", "SumPoolGate"]
