"""Batched torch reference simulator for converted (spiking) graphs, float mode.

Every value is a ``Signal``: a tensor of shape (T or 1, N, ...) (time first; 1 = constant in
time) plus, for spike-carrying values, the spike ``events`` per element summed over time.
Linear ops run once on all time steps folded into the batch (exact for feed-forward graphs);
only neuron updates loop over time. Spike and synaptic-event counts are accumulated per layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from snnc.compiler.fs_params import FSTable, encode_torch
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES, Interpreter, _pad2d

__all__ = ["Signal", "SimulationResult", "simulate", "default_device"]

_ROUTING = (ops.Reshape, ops.Transpose, ops.Concat, ops.Pad, ops.Identity, ops.Slice)
_SYNAPTIC = (ops.Conv2d, ops.Dense, ops.AvgPool2d, ops.GlobalAvgPool)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Signal:
    x: torch.Tensor  # (T or 1, N, ...)
    events: torch.Tensor | None = None  # (N, ...) spikes that arrive here, summed over time


@dataclass
class _Counters:
    spikes: dict[str, float] = field(default_factory=dict)
    synops: dict[str, float] = field(default_factory=dict)
    fanout: dict[str, torch.Tensor] = field(default_factory=dict)
    max_spikes: dict[str, float] = field(default_factory=dict)  # most spikes of one neuron

    def record_max(self, key: str, counts: torch.Tensor) -> None:
        if counts.numel():
            self.max_spikes[key] = max(self.max_spikes.get(key, 0.0), float(counts.max()))

    def add(self, table: dict, key: str, value: torch.Tensor | float) -> None:
        table[key] = table.get(key, 0.0) + float(value)


@dataclass(frozen=True)
class SimulationResult:
    outputs: list[np.ndarray]  # readout per graph output: (N, ...) mean over time
    spikes: dict[str, float]  # total spikes per population over all samples
    neurons: dict[str, int]  # neurons per population (per sample)
    synops: dict[str, float]  # synaptic events per consuming layer over all samples
    samples: int
    wall_s: float
    max_spikes: dict[str, float] = field(default_factory=dict)  # per population: most spikes
    # any single neuron emitted for one sample (from per-neuron records; AMOS and TTFS only)

    @property
    def spikes_per_neuron(self) -> float:
        total = sum(self.neurons.values()) * self.samples
        return sum(self.spikes.values()) / total if total else 0.0

    @property
    def synops_per_sample(self) -> float:
        return sum(self.synops.values()) / max(self.samples, 1)


def _fold(sig: Signal, steps: int) -> torch.Tensor:
    x = sig.x
    if x.shape[0] != steps:
        x = x.expand(steps, *x.shape[1:])
    return x.reshape(steps * x.shape[1], *x.shape[2:])


def _linear(node: Node, sigs: list[Signal]) -> torch.Tensor:
    """Apply the ANN rule of a linear op once over time folded into the batch."""
    steps = max(s.x.shape[0] for s in sigs)
    batch = max(s.x.shape[1] for s in sigs)
    folded = []
    for s in sigs:
        x = s.x
        if x.shape[1] != batch:  # constants (batch 1) broadcast; keep them unexpanded if alone
            x = x.expand(x.shape[0], batch, *x.shape[2:]) if len(sigs) > 1 else x
        folded.append(_fold(Signal(x), steps))
    out = ANN_RULES[type(node.op)](node.op, *folded)
    return out.reshape(steps, -1, *out.shape[1:])


def _fanout(node: Node, like: torch.Tensor) -> torch.Tensor:
    """Synapses leaving each input element of a synaptic op (from the gradient of the summed
    output of the op with 0/1 weights): exact for any padding, stride, dilation and groups."""
    op = node.op
    if isinstance(op, ops.GlobalAvgPool):
        return torch.ones(like.shape[1:], dtype=like.dtype, device=like.device)
    x = torch.zeros((1, *like.shape[1:]), dtype=like.dtype, device=like.device,
                    requires_grad=True)
    with torch.enable_grad():
        if isinstance(op, ops.AvgPool2d):
            y = F.avg_pool2d(_pad2d(x, op, 0.0), op.kernel, op.stride)
            y = y * (op.kernel[0] * op.kernel[1])
        else:
            ind = replace(op, weight=(op.weight != 0).astype(np.float32),
                          bias=np.zeros_like(op.bias))
            y = ANN_RULES[type(op)](ind, x)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


def _gather_windows(op, values: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Max-pool ``key`` and return ``values`` at the selected positions (same layout)."""
    if any(op.padding) or op.ceil_mode:
        key, values = _pad2d(key, op, -torch.inf), _pad2d(values, op, 0.0)
    k, v = key, values
    _, idx = F.max_pool2d(k, op.kernel, op.stride, 0, op.dilation, return_indices=True)
    return v.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)


class _Rules(dict):
    """Rule table of the spiking simulator, bound to the run's counters."""

    def __init__(self, counters: _Counters, dtype: torch.dtype) -> None:
        super().__init__()
        self.c, self.dtype = counters, dtype
        for cls in ANN_RULES:
            self[cls] = self.linear
        self[neurons.IFNeurons] = self.if_neurons
        self[neurons.FewSpikeNeurons] = self.few_spike
        self[neurons.SpikingMaxPool2d] = self.spiking_max_pool
        self[ops.MaxPool2d] = self.max_pool
        self[neurons.AmosNeurons] = self.amos
        self[neurons.SingleSpikeNeurons] = self.single_spike
        self[neurons.HybridInputNeurons] = self.hybrid_input
        self[neurons.FirstSpikeMaxPool2d] = self.first_spike_max_pool
        self[neurons.PartialSumRelay] = self.relay
        self.interp: Interpreter | None = None

    @property
    def node(self) -> Node:
        return self.interp.node

    # ---- linear ops: synapses and routing
    def linear(self, op, *sigs: Signal) -> Signal:
        node = self.node
        if isinstance(op, ops.Constant):
            return Signal(ANN_RULES[ops.Constant](op).to(self.dtype).unsqueeze(0))
        out = _linear(node, list(sigs))
        events = [s.events for s in sigs]
        if isinstance(op, _ROUTING) and any(e is not None for e in events):
            filled = [e if e is not None else torch.zeros_like(s.x[0]) for e, s in zip(events, sigs)]
            return Signal(out, ANN_RULES[type(op)](self._event_op(op), *filled))
        for e, s in zip(events, sigs):
            if e is None:
                continue
            if isinstance(op, _SYNAPTIC):
                if node.name not in self.c.fanout:
                    self.c.fanout[node.name] = _fanout(node, e)
                self.c.add(self.c.synops, node.name, (e * self.c.fanout[node.name]).sum())
            else:  # Add, Sub, BatchNorm, scaling: one synapse per element
                self.c.add(self.c.synops, node.name, e.sum())
        return Signal(out)

    @staticmethod
    def _event_op(op):
        return ops.Pad(op.pads, "constant", 0.0) if isinstance(op, ops.Pad) else op

    def max_pool(self, op, sig: Signal) -> Signal:
        out = self.linear(op, sig)
        if sig.events is None:
            return out
        key = sig.x.mean(0)  # FS: pooled on decoded values; count the winners' spikes
        return Signal(out.x, _gather_windows(op, sig.events, key))

    # ---- neurons
    def if_neurons(self, op: neurons.IFNeurons, sig: Signal) -> Signal:
        current = sig.x
        steps = op.timesteps
        v = torch.full_like(current[0], op.v_init * op.threshold)
        out = torch.empty((steps, *current.shape[1:]), dtype=torch.bool, device=current.device)
        for t in range(steps):
            v += current[t if current.shape[0] > 1 else 0]
            torch.ge(v, op.threshold, out=out[t])
            v.sub_(out[t].to(v.dtype), alpha=op.threshold)
        out = out.to(current.dtype)
        events = out.sum(0)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(out * op.amplitude, events)

    def few_spike(self, op: neurons.FewSpikeNeurons, sig: Signal) -> Signal:
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        y, events = encode_torch(FSTable(op.h, op.d, op.T, op.activation), x, counts=True)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(y.unsqueeze(0), events)

    def amos(self, op: neurons.AmosNeurons, sig: Signal) -> Signal:
        """The k one-shot neurons of every gate, stepped through the circuit's k steps. Delays
        make all inputs of neuron i arrive in step i: the gate input x (delay i-1) and the
        inhibition -h_j of every earlier neuron's spike (delay i-j-1). ``counts[i]`` is the
        record of neuron i's spikes; downstream sees sum_i d_i counts[i]."""
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        k = op.K
        h, d, T = (torch.as_tensor(np.array(a), dtype=x.dtype, device=x.device)
                   for a in (op.h, op.d, op.T))
        u = torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
        fired = torch.zeros((k, *x.shape), dtype=torch.bool, device=x.device)
        counts = torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
        # what reaches neuron t in step t: x - h_0 z_0 - ... - h_{t-1} z_{t-1}, summed in this
        # order (the FS neuron's order, so both agree bit for bit)
        arriving = x
        view = (-1,) + (1,) * x.dim()
        for t in range(k):  # step t+1: neuron t receives x and the delayed inhibition
            u[t] += arriving
            armed = slice(0, t + 1)  # neuron i cannot fire before its input arrives (step i)
            z = (u[armed] > T[armed].reshape(view)) & ~fired[armed]
            fired[armed] |= z
            counts[armed] += z.to(x.dtype)
            # spikes of this step reach neuron i > t after the delay that aligns them to step i
            arriving = arriving - h[t] * z[t].to(x.dtype)
        y = torch.zeros_like(x)
        for i in range(k):  # outgoing synapses W d_i, accumulated in circuit order
            y = y + d[i] * counts[i]
        events = counts.sum(0)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        self.c.record_max(self.node.name, counts)
        return Signal(y.unsqueeze(0), events)

    def relay(self, op: neurons.PartialSumRelay, sig: Signal) -> Signal:
        """Partial-sum relays pass their synaptic input on as payloads; every non-zero
        payload of a step is one graded spike."""
        events = (sig.x != 0).to(sig.x.dtype).sum(0)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        return Signal(sig.x, events)

    def single_spike(self, op: neurons.SingleSpikeNeurons, sig: Signal) -> Signal:
        current = sig.x
        v = torch.zeros_like(current[0])
        fired = torch.zeros(current.shape[1:], dtype=torch.bool, device=current.device)
        out = torch.zeros((op.timesteps, *current.shape[1:]), dtype=current.dtype,
                          device=current.device)
        events = torch.zeros_like(v)  # the record of every neuron's spikes
        theta = torch.as_tensor(np.array(op.step_thresholds()), dtype=v.dtype, device=v.device)
        for t in range(op.timesteps):
            v += current[t if current.shape[0] > 1 else 0]
            s = (v >= theta[t]) & ~fired
            events += s.to(v.dtype)
            fired |= s
            out[t] = fired.to(v.dtype)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        self.c.record_max(self.node.name, events)
        amp = torch.as_tensor(np.array(op.amplitude), dtype=v.dtype, device=v.device)
        return Signal(out * amp, events)

    def hybrid_input(self, op: neurons.HybridInputNeurons, sig: Signal) -> Signal:
        x = sig.x.mean(0) if sig.x.shape[0] > 1 else sig.x[0]
        out, events = hybrid_input(op, x)
        self.c.add(self.c.spikes, self.node.name, events.sum())
        self.c.record_max(self.node.name, events)
        return Signal(out, events)

    def first_spike_max_pool(self, op: neurons.FirstSpikeMaxPool2d, sig: Signal) -> Signal:
        if sig.events is None:
            raise RuntimeError("first-spike max-pool needs spiking input")
        out = first_spike_max_pool(op, sig.x)
        return Signal(out, (out[-1] != 0).to(out.dtype))

    def spiking_max_pool(self, op: neurons.SpikingMaxPool2d, sig: Signal) -> Signal:
        if sig.events is None:
            raise RuntimeError("spiking max-pool needs spiking input")
        steps, batch = sig.x.shape[:2]
        x = sig.x.reshape(steps * batch, *sig.x.shape[2:])
        counts = torch.cumsum(sig.x != 0, 0, dtype=sig.x.dtype)
        counts = counts.reshape(steps * batch, *sig.x.shape[2:])
        out = _gather_windows(op, x, counts)
        out = out.reshape(steps, batch, *out.shape[1:])
        return Signal(out, (out != 0).to(out.dtype).sum(0))


def hybrid_input(op, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HybridInputNeurons on x (N, ...): its output a(t) (T, N, ...) and spike counts (N, ...)."""
    spikes = hybrid_spike_train(x, op.x_max, op.timesteps)  # steps 2..T
    return torch.cat([x.unsqueeze(0), torch.cumsum(spikes, 0) * op.x_max], 0), spikes.sum(0)


def first_spike_max_pool(op, x: torch.Tensor) -> torch.Tensor:
    """FirstSpikeMaxPool2d on single-spike outputs a(t) = amplitude fired(t), (T, N, C, H, W):
    the max-pool of every step, whose window fires in the step of its earliest input spike."""
    steps, batch = x.shape[:2]
    out = ANN_RULES[ops.MaxPool2d](op, x.reshape(steps * batch, *x.shape[2:]))
    return out.reshape(steps, batch, *out.shape[1:])


def hybrid_spike_train(x: torch.Tensor, x_max: float, timesteps: int) -> torch.Tensor:
    """Spikes (timesteps-1, ...) of HybridInputNeurons for steps 2..T: one per pixel x > 0, at
    step 2 + floor((1 - min(x, x_max)/x_max)(T-1)) capped at T (brighter = earlier)."""
    steps = timesteps - 1
    if steps < 1:
        return x.new_zeros((0, *x.shape))
    rel = 1.0 - torch.clamp(x, max=x_max) / x_max
    slot = torch.clamp(torch.floor(rel * steps), max=steps - 1)  # 0-based step index - 2
    t = torch.arange(steps, dtype=x.dtype, device=x.device).reshape((-1,) + (1,) * x.dim())
    return ((slot.unsqueeze(0) == t) & (x > 0).unsqueeze(0)).to(x.dtype)


def simulate(graph: Graph, x: np.ndarray, *, batch_size: int | None = None,
             device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run the converted graph on ``x`` (N, ...) and return readouts and spike statistics.
    Quantized graphs (from ``quantize``) run bit-exactly in integers (``fixed_point``)."""
    from snnc.ir.quantized import is_quantized

    if is_quantized(graph):
        from snnc.backends.reference.fixed_point import simulate_fixed

        return simulate_fixed(graph, x, batch_size=batch_size, device=device, progress=progress)
    device = torch.device(device) if device is not None else default_device()
    counters = _Counters()
    rules = _Rules(counters, dtype)
    interp = rules.interp = Interpreter(rules)
    steps = max([n.op.timesteps for n in graph.nodes
                 if isinstance(n.op, (neurons.IFNeurons, neurons.SingleSpikeNeurons))]
                + [neurons.neurons_per_gate(n.op) for n in graph.nodes], default=1)
    widest = max([n.output.type.size for n in graph.nodes] + [1])
    if batch_size is None:  # from available memory: see backends/reference/memory.py
        from snnc.backends.reference.memory import auto_batch_size

        batch_size = auto_batch_size(steps, widest, torch.finfo(dtype).bits // 8, device)
    return run_batches(graph, interp, counters, x, batch_size, device, dtype, progress)


def run_batches(graph: Graph, interp: Interpreter, counters: _Counters, x: np.ndarray,
                batch_size: int, device: torch.device, dtype: torch.dtype,
                progress: Callable[[int], None] | None) -> SimulationResult:
    """Run ``interp`` (whose rules count into ``counters``) on ``x`` batch by batch; the
    readout of each output is its mean over the time axis. Shared by the float and the
    bit-exact simulator."""
    outputs: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[lo:lo + batch_size]), dtype=dtype, device=device)
            outs = interp.run(graph, [Signal(xb.unsqueeze(0))])
            for i, o in enumerate(outs):
                outputs[i].append(o.x.mean(0).float().cpu().numpy())
            if progress is not None:
                progress(len(xb))
    wall = time.perf_counter() - start
    neuron_counts = {n.name: n.output.type.size * neurons.neurons_per_gate(n.op)
                     for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)}
    return SimulationResult([np.concatenate(o) for o in outputs], dict(counters.spikes),
                            neuron_counts, dict(counters.synops), len(x), wall,
                            dict(counters.max_spikes))

