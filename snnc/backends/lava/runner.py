"""Run a quantized snnc artifact on Lava under ``Loihi2SimCfg(select_tag="fixed_pt")``: build
its process graph (``lowering.build``), run N samples back to back in one Lava run of
``N * period`` steps (``execution.run_network``), read the records, and remove each layer's
constant pipeline delay (``streams``), so every population's train equals the reference
simulator's.
"""

from __future__ import annotations

import time

import numpy as np

from snnc.backends.lava.execution import run_network
from snnc.backends.lava.host import simulation_result
from snnc.backends.lava.integers import signed, unpack
from snnc.backends.lava.lowering import build
from snnc.backends.lava.network import LavaNetwork, LavaResult

__all__ = ["read_records", "run", "simulate_lava"]


def _relay_payloads(net: LavaNetwork, name: str, proc) -> np.ndarray:
    """A relay's signed payloads of its window (T, N, *shape); few-spike graphs: their
    window sums (1, N, *shape), the reference's convention."""
    size = int(np.prod(net.shapes[name]))
    bits, steps = proc.payload_bits, proc.window
    rec = np.stack([signed(unpack(row, bits, steps * size), bits)
                    for row in proc.record.get()])
    rec = np.swapaxes(rec.reshape(net.samples, steps, *net.shapes[name]), 0, 1)
    return rec.sum(0, keepdims=True) if net.window_sum else rec


def _amos_steps(net: LavaNetwork, name: str, proc) -> tuple[np.ndarray, np.ndarray]:
    """An AMOS population's circuit step each neuron fired in (N, k, *shape; 0: never) and
    its payload trains (k, N, *shape)."""
    size, shape = int(np.prod(net.shapes[name])), net.shapes[name]
    k = len(proc.d_table)
    fired = np.stack([unpack(row, proc.step_bits, k * size) for row in proc.record.get()])
    fired = fired.reshape(net.samples, k, *shape)
    steps = np.arange(1, k + 1).reshape(1, k, 1, *([1] * len(shape)))
    train = ((fired[:, None] == steps) * proc.d_table.reshape(
        1, 1, k, *([1] * len(shape)))).sum(2)  # (N, step, *shape)
    return fired, np.swapaxes(train, 0, 1)


def _spike_trains(net: LavaNetwork, name: str, proc) -> np.ndarray:
    """A population's spikes (T, N, *shape) as int8; few-spike: its payloads d(t) z(t)."""
    size, shape = int(np.prod(net.shapes[name])), net.shapes[name]
    rec = np.stack([unpack(row, 1, net.steps * size) for row in proc.record.get()])
    rec = rec.reshape(net.samples, net.steps, *shape)
    if hasattr(proc, "d_table"):  # few-spike: payloads d(t) z(t)
        rec = rec * proc.d_table.reshape(1, -1, *([1] * len(shape)))
    else:
        rec = rec.astype(np.int8)
    return np.swapaxes(rec, 0, 1)


def read_records(net: LavaNetwork):
    """The records of a run that has not been stopped yet (Lava Vars): every population's
    trains, AMOS populations' firing steps, every gate's passed spikes per output (N, size)
    and the readout's accumulators (N, size)."""
    spikes, events, circuits = {}, {}, {}
    for name, proc in net.populations.items():
        if hasattr(proc, "payload_bits"):  # relay: signed payloads of its window
            spikes[name] = _relay_payloads(net, name, proc)
        elif hasattr(proc, "step_bits"):  # AMOS: the circuit step each neuron fired in
            circuits[name], spikes[name] = _amos_steps(net, name, proc)
        else:
            spikes[name] = _spike_trains(net, name, proc)
    for name, g in net.gates.items():
        size = int(np.prod(net.shapes[name]))
        events[name] = np.stack([unpack(row, 16, size) for row in g.events.get()]
                                ).astype(np.float64)
    return spikes, events, circuits, np.asarray(net.readout.acc.get(), np.float64)


def run(artifact_or_graph, x: np.ndarray) -> LavaResult:
    """Run ``x`` (N, ...) through Lava: readouts and every population's spike trains (aligned
    to the reference simulator: the pipeline delay is removed)."""
    net = build(artifact_or_graph, x)
    start = time.perf_counter()
    spikes, events, circuits, acc = run_network(net, net.num_steps, read_records)
    wall = time.perf_counter() - start
    op = net.readout_op
    total = acc if op.reduce == "sum" else acc / net.steps  # integrate: acc holds v(T)
    total = total.reshape(len(total), *net.shapes[net.readout.name])  # (N, size) -> the output's
    outputs = (total * op.scale + np.asarray(op.bias, np.float64)).astype(np.float32)
    return LavaResult(outputs=outputs, spikes=spikes,
                      delays={k: net.delays[k] for k in net.populations}, wall_s=wall,
                      events=events, fired_step=circuits)


def simulate_lava(graph, x: np.ndarray, progress=None):
    """``simulate``'s result type from a Lava run: readouts, spike counts per population and
    synaptic events per synapse layer, counted as the reference simulator counts them
    (``host.simulation_result``), so the CLI metrics are the same."""
    result = simulation_result(graph, x, run(graph, x))
    if progress is not None:
        progress(len(x))
    return result
