"""Graded few-spike populations: few-spike neurons (``FSNeurons``) and AMOS circuits
(``AmosNeurons``), both driven by integer (h, d, T) tables.

Processes only (ports, state, parameters); their ``fixed_pt`` models are in ``models.py``
beside this file, where Lava looks for them."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from snnc.backends.lava.integers import words

__all__ = ["AmosNeurons", "FSNeurons"]


class FSNeurons(AbstractProcess):
    """snnc integer few-spike neurons (``QFewSpikeNeurons``): accumulate the
    synaptic input of local steps ``start .. start+window-1``; in the window's last step load
    ``v = sat(wrap(sum a << act_shift) + bias)`` and then, for t = 1..K (local steps
    ``start+window-1 ..``), send ``d(t) z(t)`` (graded; ``graded=False``: the binary ``z(t)``,
    d(t) being in the consumers' weights) with ``z(t) = v > T(t)``, ``v = sat(v - h(t) z(t))``.
    ``record``: the z bits of every sample, packed (row k: sample k's (K, size))."""

    def __init__(self, *, size: int, h, d, T, bias: np.ndarray, act_shift: int, uv_bits: int,
                 u_overflow: str, v_overflow: str, period: int, start: int, window: int,
                 samples: int, graded: bool = True, **kw) -> None:
        super().__init__(h=h, d=d, T=T, bias=bias, act_shift=act_shift, uv_bits=uv_bits,
                         u_overflow=u_overflow, v_overflow=v_overflow, period=period,
                         start=start, window=window, graded=graded, **kw)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.record = Var(shape=(samples, words(len(h) * size, 1)), init=0)
        self.d_table = np.asarray(d, np.int64)  # host side: payloads from the recorded z


class AmosNeurons(AbstractProcess):
    """snnc integer AMOS circuits (``QAmosNeurons``, docs/amos.md): ``k`` one-shot neurons per
    gate, ``k * size`` membranes. The gate input is accumulated over local steps ``start ..
    start+window-1`` and formed in the window's last step as the FS neuron's v(1),
    ``x = sat(wrap(sum a << act_shift) + bias)``; that step is circuit step 1. Neuron i
    (1..k) gets x through a synapse of delay i-1 and ``-h_j`` from every neuron j < i through a
    synapse of delay i-j-1 (spikes take one step plus the delay), so all of its input arrives in
    circuit step i. Per circuit step every membrane integrates what arrives,
    ``u = sat(u + in)``, and fires if ``u > T_i``, if enabled (step >= i) and not fired before
    (one spike per image). A spike of neuron i carries d_i to the consumers' synapses; ``s_out``
    holds, per gate, the sum of its neurons' payloads in the step (what synapses W d_i sum).
    ``record``: the circuit step in which each neuron fired (0: never), packed per sample."""

    def __init__(self, *, size: int, h, d, T, bias: np.ndarray, act_shift: int, uv_bits: int,
                 u_overflow: str, v_overflow: str, period: int, start: int, window: int,
                 samples: int, graded: bool = True, **kw) -> None:
        super().__init__(h=h, d=d, T=T, bias=bias, act_shift=act_shift, uv_bits=uv_bits,
                         u_overflow=u_overflow, v_overflow=v_overflow, period=period,
                         start=start, window=window, graded=graded, **kw)
        k = len(h)
        self.a_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))
        self.step_bits = int(k).bit_length()
        self.record = Var(shape=(samples, words(k * size, self.step_bits)), init=0)
        self.d_table = np.asarray(d, np.int64)  # host side: payloads from the recorded spikes
