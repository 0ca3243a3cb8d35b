"""convert_ttfs: ReLU ANN -> single-spike network with hybrid input (Datta et al. 2021).

The first synaptic layer gets the analog input in step 1 and a temporal code afterwards (one
spike per pixel, earlier for brighter pixels: HybridInputNeurons); every hidden ReLU becomes a
SingleSpikeNeurons population (integrate-and-fire, at most one spike per image); max-pools pass
the earliest spike of each window; the last synaptic layer is the readout (membrane potential,
no neurons). Thresholds come from layer-wise calibration of the converted network itself
(Rathi et al.'s procedure, which Datta uses): layer by layer in topological order, with the
layers before it already converted, threshold and spike amplitude are fitted to the layer's
membrane potentials and ANN activations on the calibration data (see calibrate_thresholds).
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.compiler.passes.convert_common import is_linear, reject
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.types import Value

__all__ = ["convert_ttfs", "calibrate_thresholds", "DEFAULT_TIMESTEPS"]

DEFAULT_TIMESTEPS = 5
_CALIB_SAMPLES = 500  # threshold search runs on one batch of at most this many samples


def convert_ttfs(graph: Graph, calib_x: np.ndarray, timesteps: int = DEFAULT_TIMESTEPS) -> Graph:
    """Requires: a prepared graph (prepare_spiking) whose activations are relu (or clip(0, c),
    whose cap a single spike cannot exceed anyway), and calibration inputs ``calib_x``.
    Ensures: each graph input feeds a HybridInputNeurons encoder (x_max = calibrated input
    maximum); every activation is a SingleSpikeNeurons population with calibrated threshold
    and spike amplitude; every max-pool is a FirstSpikeMaxPool2d; the rest are synapses and
    routing. Raises UnsupportedOp naming the first layer the method cannot express."""
    if timesteps < 2:
        raise ValueError(f"ttfs needs timesteps >= 2 (analog step + temporal code), got "
                         f"{timesteps}")
    producers = graph.producers()
    x_max = float(np.max(calib_x)) if calib_x.size else 1.0
    x_max = x_max if np.isfinite(x_max) and x_max > 0 else 1.0
    encoders, rename = [], {}
    for v in graph.inputs:
        enc = Node(neurons.HybridInputNeurons(x_max, timesteps), (v,),
                   Value(f"{v.name}/hybrid_input", v.type))
        encoders.append(enc)
        rename[v.name] = enc.output
    nodes = list(encoders)
    for n in graph.nodes:
        op = n.op
        n = n.replace(inputs=tuple(rename.get(v.name, v) for v in n.inputs))
        if isinstance(op, ops.Activation):
            if not (op.kind == "relu" or (op.kind == "clip" and op.lo == 0.0)):
                reject(n, "ttfs", f"{op.kind} has no single-spike neuron (only relu and "
                                  "clip(0, c)); use --method fs or amos")
            n = n.replace(op=neurons.SingleSpikeNeurons(float("nan"), float("nan"), timesteps))
        elif type(op) is ops.MaxPool2d:
            n = n.replace(op=neurons.FirstSpikeMaxPool2d(op.kernel, op.stride, op.padding,
                                                          op.dilation, op.ceil_mode))
        elif isinstance(op, ops.Pad) and (op.mode != "constant" or op.value != 0.0):
            reject(n, "ttfs", f"{op.mode} padding with value {op.value} is not a synapse")
        elif isinstance(op, ops.Mul) and not is_linear(n, producers):
            reject(n, "ttfs", "products of two spiking populations have no single-spike form")
        elif not is_linear(n, producers):
            reject(n, "ttfs", "not expressible with single-spike neurons and synapses")
        nodes.append(n)
    snn = graph.replace(nodes=tuple(nodes))
    return calibrate_thresholds(snn, graph, calib_x[:_CALIB_SAMPLES])


def calibrate_thresholds(graph: Graph, ann: Graph, x: np.ndarray) -> Graph:
    """Layer-wise threshold search: one simulator pass in topological order; each
    SingleSpikeNeurons population is calibrated on its membrane potentials before it runs,
    i.e. on the spikes of the already converted layers before it (Rathi et al.'s "threshold
    from the converted network"). A neuron firing in step t_s delivers amplitude (T + 1 - t_s)
    to the next membranes, where its ANN value a would deliver T a over the T steps (the bias
    is added every step); so threshold and amplitude are the pair minimizing
    sum (A (T + 1 - t_s) [fired] - T a)^2 over the calibration samples, the threshold taken
    from quantiles of the peak membrane and A by least squares."""
    from snnc.backends.reference.simulator import Signal, _Counters, _Rules
    from snnc.ir.interpret import Interpreter, run_ann

    acts: dict[str, np.ndarray] = {}

    def observe(node, out):
        if isinstance(node.op, ops.Activation):
            acts[node.name] = out.detach().float().cpu().numpy()

    run_ann(ann, x, batch_size=len(x), observe=observe)
    found: dict[str, tuple[float, float]] = {}

    class _Calibrating(_Rules):
        def single_spike(self, op, sig):
            steps = op.timesteps
            current = sig.x.expand(steps, *sig.x.shape[1:]) if sig.x.shape[0] == 1 else sig.x
            v = torch.cumsum(current, 0).float().cpu().numpy().reshape(steps, -1)
            th, amp = _fit_single_spike(v, steps * acts[self.node.name].ravel())
            found[self.node.name] = (th, amp)
            return super().single_spike(neurons.SingleSpikeNeurons(th, amp, steps), sig)

    rules = _Calibrating(_Counters(), torch.float32)
    interp = rules.interp = Interpreter(rules)
    with torch.no_grad():
        xb = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        interp.run(graph, [Signal(xb.unsqueeze(0))])
    nodes = []
    for n in graph.nodes:
        if isinstance(n.op, neurons.SingleSpikeNeurons):
            th, amp = found.get(n.name, (1.0, 1.0))
            n = n.replace(op=neurons.SingleSpikeNeurons(th, amp, n.op.timesteps))
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))


# Candidate thresholds: quantiles of the positive peak membranes from the 30th up. Lower ones
# turn neurons into sign detectors of their bias at step 1 and make the surrogate gradient
# (proportional to 1/threshold) explode in fine-tuning.
_QUANTILES = np.concatenate([np.linspace(0.3, 0.95, 14), [0.97, 0.98, 0.99, 0.995, 0.999]])


def _fit_single_spike(v: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(threshold, amplitude) minimizing sum (A (T + 1 - t_s) [fired] - target)^2, where t_s
    is the first step with v(t) >= threshold; v is (T, n). A silent layer gets (1, 1)."""
    peak = v.max(0)
    pos = peak[peak > 0]
    if pos.size == 0:
        return 1.0, 1.0
    best = (np.inf, 1.0, 1.0)
    total = float((target ** 2).sum())
    for th in np.unique(np.quantile(pos, _QUANTILES)):
        if th <= 0:
            continue
        # weight (T + 1 - t_s) = number of steps t with v(t') >= th for some t' <= t
        g = np.maximum.accumulate(v >= th, axis=0).sum(0).astype(np.float64)
        gg = float((g * g).sum())
        if gg == 0:
            continue
        gt = float((g * target).sum())
        amp, err = gt / gg, total - gt * gt / gg
        if amp > 0 and err < best[0]:
            best = (err, float(th), amp)
    return best[1], best[2]
