"""Imported spiking networks (NIR; ``snnc.ir.leaky``) on Lava: Lava's stock ``LIF`` process
(``PyLifModelBitAcc``, the fixed_pt model) for every ``QLeakyNeurons`` population, snnc's
integer synapses (``IntDense``/``IntConv``: Lava's stock Dense/Conv drop a weight bit or ignore
``weight_exp``, docs/decisions.md) and ring buffers for the input and the records. Runs under
``Loihi2SimCfg(select_tag="fixed_pt")``, one Lava run per sample (the LIF state cannot be reset
between samples from outside).

Sum pools (``q.SumPool2d``, a pool between spikes and the next synapse) run as snnc's
``SumPoolGate``, which sums payloads within the step. Every synapse delivers one step later, so a population k synapses deep emits the reference's
step t in Lava step t + k; each run lasts T + depth steps and the records are shifted back.
Several edges into one population (an ``Add``) connect to its ``a_in``, which sums them, when
they come through the same number of synapse layers (else the shorter path would need a delay:
refused).
"""

from __future__ import annotations

import time

import numpy as np

from snnc.errors import BackendError
from snnc.ir import leaky, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph
from snnc.sim.signals import SimulationResult

__all__ = ["check_leaky_supported", "is_leaky_graph", "run_leaky", "simulate_leaky_lava",
           "synapse_depths"]

_SUPPORTED = (leaky.QSpikeTrainInput, q.QDense, q.QConv2d, ops.Reshape, leaky.QLeakyNeurons,
              leaky.QLeakyReadout, q.SumPool2d, ops.Add)


def is_leaky_graph(graph: Graph) -> bool:
    return any(isinstance(n.op, leaky.QSpikeTrainInput) for n in graph.nodes)


def synapse_depths(graph: Graph) -> dict[str, list[int]]:
    """Per value, the synapse layers between the input and it, per incoming edge (one entry but
    for an Add: several edges into one population). Each synapse delivers one step later."""
    depth: dict[str, list[int]] = {}
    for n in graph.nodes:
        ins = [max(depth.get(v.name, [0])) for v in n.inputs] or [0]
        extra = int(isinstance(n.op, (q.QDense, q.QConv2d)))
        depth[n.name] = ins if isinstance(n.op, ops.Add) else [ins[0] + extra]
    return depth


def check_leaky_supported(graph: Graph) -> None:
    """One BackendError naming every layer the stock-LIF lowering cannot run."""
    bad = [f"'{n.name}' ({type(n.op).__name__})" for n in graph.nodes
           if type(n.op) not in _SUPPORTED]
    bad += [f"'{n.name}' (reset by subtraction: Lava's LIF resets to 0)" for n in graph.nodes
            if isinstance(n.op, leaky.QLeakyNeurons) and n.op.reset != "zero"]
    depths = synapse_depths(graph)
    bad += [f"'{n.name}' (edges into one population after {sorted(set(depths[n.name]))} "
            "synapse layers: Lava delivers each a step later per layer; the shorter path "
            "would need a delay)" for n in graph.nodes
            if isinstance(n.op, ops.Add) and len(set(depths[n.name])) > 1]
    if bad:
        raise BackendError("lava backend (imported SNN): cannot lower " + ", ".join(bad) +
                           " (supported: spike-train input, dense/conv synapses, sum pools, "
                           "flatten, LIF/CubaLIF with reset to zero, LI outputs)")


def _build(graph: Graph, codes: np.ndarray):
    """The processes for one sample's input codes (T, *shape): (monitors, depth per node)."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    from snnc.backends.lava.proc.pooling.process import SumPoolGate
    from snnc.backends.lava.proc.synapses.process import IntConv, IntDense

    depth = {k: max(v) for k, v in synapse_depths(graph).items()}  # one step per synapse
    steps = codes.shape[0] + max(depth.values())
    ports, monitors, biases = {}, {}, {}
    for n in graph.nodes:
        op, size = n.op, int(np.prod(n.output.shape))
        src = ports.get(n.inputs[0].name) if n.inputs else None
        if isinstance(op, leaky.QSpikeTrainInput):
            data = np.zeros((size, steps), np.int32)
            data[:, :codes.shape[0]] = codes.reshape(codes.shape[0], -1).T
            ports[n.name] = Source(data=data).s_out
        elif isinstance(op, ops.Reshape):
            ports[n.name] = src
        elif isinstance(op, ops.Add):  # edges into one population: its a_in sums them
            ports[n.name] = [ports[v.name] for v in n.inputs]
        elif isinstance(op, q.SumPool2d):  # payload sums routed within the step: no delay
            proc = SumPoolGate(in_shape=n.inputs[0].shape, out_shape=n.output.shape,
                               kernel=tuple(op.kernel), stride=tuple(op.stride))
            src.connect(proc.s_in)
            ports[n.name] = proc.s_out
        elif isinstance(op, (q.QDense, q.QConv2d)):
            if isinstance(op, q.QDense):
                proc = IntDense(weight=op.weight, weight_exp=op.weight_exp, fold=None, period=1)
            else:
                proc = IntConv(weight=op.weight, weight_exp=op.weight_exp, stride=op.stride,
                               padding=op.padding, dilation=op.dilation, groups=op.groups,
                               in_shape=n.inputs[0].shape, out_shape=n.output.shape)
            src.connect(proc.s_in)
            ports[n.name] = proc.a_out
        elif isinstance(op, leaky.QLeakyNeurons):
            bias = np.broadcast_to(np.asarray(op.bias_mant), n.output.shape).reshape(-1)
            lif = LIF(shape=(size,), du=int(op.du), dv=int(op.dv), vth=int(op.vth_mant),
                      bias_mant=np.zeros(size, np.int32), bias_exp=int(op.bias_exp))
            biases[n.name] = (lif, bias.astype(np.int32))
            for port in src if isinstance(src, list) else [src]:
                port.connect(lif.a_in)
            ports[n.name] = lif.s_out
            monitors[n.name] = Sink(shape=(size,), buffer=steps)
            lif.s_out.connect(monitors[n.name].a_in)
        else:  # QLeakyReadout: record the output synapse's integer input a(t)
            monitors[n.name] = Sink(shape=(size,), buffer=steps)
            for port in src if isinstance(src, list) else [src]:
                port.connect(monitors[n.name].a_in)
    return monitors, depth, steps, biases


def _run(monitors, depth, steps, biases) -> None:
    """Run ``steps`` steps; a population k synapses deep gets its bias after step k, when its
    first input arrives (before, the reference's v is 0: the host switches biases on in step, as
    it would on the chip)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    proc, done = next(iter(monitors.values())), 0
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    for k in sorted({depth[name] for name in biases} | {steps}):
        if k > done:
            proc.run(condition=RunSteps(num_steps=k - done), run_cfg=cfg)
            done = k
        for name, (lif, bias) in biases.items():
            if depth[name] == k and np.any(bias):
                lif.bias_mant.set(bias)


def run_leaky(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``x`` (N, T, *shape) sample by sample; per population its spikes and per LI output
    its synaptic input, as (T, N, *shape) integer arrays aligned to the reference's steps."""
    import torch


    check_leaky_supported(graph)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Lava forks its actors: torch's thread pool must not be used
    try:  # in a forked child (IntConv runs torch), or the child deadlocks in OpenMP
        return _run_samples(graph, x)
    finally:
        torch.set_num_threads(threads)


def _run_samples(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    from snnc.sim.leaky_rules import fixed_rules
    from snnc.sim.signals import Counters, Signal

    first = graph.nodes[0]
    encode = fixed_rules(Counters())[leaky.QSpikeTrainInput]
    records: dict[str, list[np.ndarray]] = {}
    for sample in x:
        codes = encode(first, Signal(torch.as_tensor(sample[None, None], dtype=torch.float64)))
        codes = codes.x[:, 0].numpy().astype(np.int64)
        monitors, depth, steps, biases = _build(graph, codes)
        proc = next(iter(monitors.values()))
        try:
            _run(monitors, depth, steps, biases)
            for name, mon in monitors.items():
                data = np.asarray(mon.data.get(), np.int64)  # (size, steps)
                t0 = depth[name]
                rec = data[:, t0:t0 + codes.shape[0]].T
                records.setdefault(name, []).append(rec.reshape(-1, *graph.node(name).output.shape))
        finally:
            proc.stop()
    return {k: np.stack(v, 1) for k, v in records.items()}


def simulate_leaky_lava(graph: Graph, x: np.ndarray, progress=None) -> SimulationResult:
    """``simulate``'s result type: readouts (mean over steps of the output spikes, or of the LI
    membrane integrated on the host) and spikes per population; synaptic events counted from
    the spikes as the reference does."""
    import torch

    from snnc.sim.leaky_rules import fixed_rules
    from snnc.sim.signals import Counters, Signal

    start = time.perf_counter()
    rec = run_leaky(graph, x)
    if progress is not None:
        progress(len(x))
    out = graph.outputs[0].name
    node = graph.node(out)
    if isinstance(node.op, leaky.QLeakyReadout):
        readout = fixed_rules(Counters())[leaky.QLeakyReadout]
        y = readout(node, Signal(torch.as_tensor(rec[out], dtype=torch.float64))).x.mean(0)
        y = y.numpy()
    else:
        y = rec[out].mean(0)
    pops = [n for n in graph.nodes if isinstance(n.op, leaky.QLeakyNeurons)]
    return SimulationResult(
        outputs=[y.astype(np.float32)],
        spikes={n.name: float(rec[n.name].sum()) for n in pops},
        neurons={n.name: n.output.type.size for n in pops}, synops={}, samples=len(x),
        wall_s=time.perf_counter() - start)
