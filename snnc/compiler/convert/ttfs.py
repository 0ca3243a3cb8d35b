"""convert_ttfs: ReLU ANN -> single-spike network with hybrid input (Datta et al. 2021).

The first synaptic layer gets the analog input in step 1 and a temporal code afterwards (one
spike per pixel, earlier for brighter pixels: HybridInputNeurons); every hidden ReLU becomes a
SingleSpikeNeurons population (integrate-and-fire, at most one spike per image); max-pools pass
the earliest spike of each window; the last synaptic layer is the readout (membrane potential,
no neurons). Thresholds come from layer-wise calibration of the converted network itself
(Rathi et al.'s procedure, which Datta uses): layer by layer in topological order, with the
layers before it already converted, each population's bias offset is corrected and its step
thresholds and spike amplitude (per channel for conv populations) are fitted to its membrane
potentials and ANN activations on the calibration data (see calibrate_thresholds).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from snnc.compiler.convert.common import is_linear, reject, reject_pool_of_currents
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import run_ann
from snnc.ir.types import Value
from snnc.sim.float_rules import FloatRules
from snnc.sim.run import run_once
from snnc.sim.signals import Counters, Signal

__all__ = ["convert_ttfs", "calibrate_thresholds", "fit_single_spike", "fit_step_thresholds",
           "DEFAULT_TIMESTEPS"]

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
            reject_pool_of_currents(n, producers, "ttfs")
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
    """Layer-wise calibration: one simulator pass in topological order; each SingleSpikeNeurons
    population is calibrated on its membrane potentials before it runs, i.e. on the spikes of
    the already converted layers before it (Rathi et al.'s "threshold from the converted
    network", which Datta uses). Per population, with z the ANN pre-activation and a = relu(z):

    1. bias correction: the mean (per channel) of v(T)/T - z, the offset the coarse codes of
       the layers before leave in the membrane, is subtracted from the bias of the synaptic
       layer that feeds the population (so the membrane's drift is removed for every image);
    2. per channel (conv populations; layer-wide for dense ones), the step thresholds
       theta(1..T) and the amplitude A minimizing sum (A (T + 1 - t_s) [fired] - T a)^2 over
       the calibration samples (fit_step_thresholds): a spike in step t_s delivers
       A (T + 1 - t_s) to the next membranes, where the ANN value a delivers T a over the T
       steps (the bias is added every step)."""
    producers = graph.producers()
    pre_names = {n.inputs[0].name: n.name for n in ann.nodes if isinstance(n.op, ops.Activation)}
    acts: dict[str, np.ndarray] = {}
    pre: dict[str, np.ndarray] = {}

    def observe(node, out):
        if isinstance(node.op, ops.Activation):
            acts[node.name] = out.detach().cpu().numpy()
        if node.name in pre_names:
            pre[pre_names[node.name]] = out.detach().cpu().numpy()

    # float64 throughout: the fit's choices must not depend on the machine's float32 kernels
    run_ann(ann, x, batch_size=len(x), dtype=torch.float64, observe=observe)
    found: dict[str, neurons.SingleSpikeNeurons] = {}
    bias_shift: dict[str, np.ndarray] = {}

    rules = FloatRules(Counters(), torch.float64)

    def single_spike(node, sig):  # fits the population on its membranes, then runs the fit
        op, name = node.op, node.name
        steps = op.timesteps
        current = sig.x.expand(steps, *sig.x.shape[1:]) if sig.x.shape[0] == 1 else sig.x
        v = torch.cumsum(current, 0).cpu().numpy()  # (T, N, *shape), float64
        per_channel = v.ndim == 5  # conv populations (C, H, W): one fit per channel
        axes = (0, 2, 3) if per_channel else (0,)
        bshape = (-1, 1, 1) if per_channel else (-1,)
        fed_by = _bias_source(node, producers)
        delta = (v[-1] / steps - pre[name]).mean(axis=axes) if name in pre else None
        if fed_by is None or delta is None or delta.shape != producers[fed_by].op.bias.shape:
            fed_by = None  # no bias of this population's shape to correct
        if fed_by is not None:  # delta: (C,) or (F,)
            bias_shift[fed_by] = bias_shift.get(fed_by, 0.0) + delta
        # v(t) after the bias correction (t * delta less), for the fit's sample of neurons only
        shift = (np.broadcast_to(delta.reshape(bshape), v.shape[2:]) if fed_by is not None
                 else np.zeros(v.shape[2:]))
        ramp = np.arange(1, steps + 1)[:, None]
        if per_channel:
            fits = []
            for c in range(v.shape[2]):
                vs, ts, _ = _fit_sample(v[:, :, c], acts[name][:, c])
                fits.append(fit_step_thresholds(vs - ramp * shift[c, 0, 0], steps * ts))
            theta = np.stack([f[0] for f in fits], 1).reshape(steps, -1, 1, 1)
            amp = np.array([f[1] for f in fits]).reshape(-1, 1, 1)
        else:
            vs, ts, idx = _fit_sample(v, acts[name])  # idx: (sample, *feature indices)
            theta, amp = fit_step_thresholds(vs - ramp * shift[idx[1:]], steps * ts)
        new = neurons.SingleSpikeNeurons(_as_param(theta), _as_param(amp), steps)
        found[name] = new
        if fed_by is not None:  # the corrected bias, every step
            sig = Signal(current - torch.as_tensor(delta.reshape(bshape), dtype=current.dtype))
        return rules.single_spike(node.replace(op=new), sig)

    rules[neurons.SingleSpikeNeurons] = single_spike
    with torch.no_grad():
        run_once(rules, graph, torch.as_tensor(np.asarray(x), dtype=torch.float64))
    nodes = []
    for n in graph.nodes:
        if isinstance(n.op, neurons.SingleSpikeNeurons):
            n = n.replace(op=found.get(n.name, neurons.SingleSpikeNeurons(1.0, 1.0,
                                                                          n.op.timesteps)))
        elif n.name in bias_shift:
            bias = (n.op.bias - bias_shift[n.name]).astype(n.op.bias.dtype)
            n = n.replace(op=dataclasses.replace(n.op, bias=bias))
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))


def _fit_sample(v: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The (T, n) membranes and (n,) activations of the neurons ``fit_step_thresholds`` fits
    (of ``v`` (T, *shape) and ``act`` (*shape): all, or the evenly strided _FIT_SAMPLES of them
    in C order), gathered without copying the rest, and their indices into ``shape``."""
    shape = v.shape[1:]
    n = int(np.prod(shape))
    keep = (np.linspace(0, n - 1, _FIT_SAMPLES).astype(np.int64) if n > _FIT_SAMPLES
            else np.arange(n))
    idx = np.unravel_index(keep, shape)
    return v[(slice(None), *idx)], act[idx], idx


def _as_param(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _bias_source(node: Node, producers: dict[str, Node]) -> str | None:
    """The Conv2d/Dense whose bias feeds ``node``'s membrane directly or through one Add (the
    residual branch's last conv), if only that path uses it; else None (no bias correction)."""
    p = producers.get(node.inputs[0].name)
    cands = [p]
    if p is not None and isinstance(p.op, ops.Add):
        cands = [producers.get(v.name) for v in p.inputs]
    uses: dict[str, int] = {}
    for n in producers.values():
        for v in n.inputs:
            uses[v.name] = uses.get(v.name, 0) + 1
    for c in cands:
        if c is not None and isinstance(c.op, (ops.Conv2d, ops.Dense)) and uses.get(c.name) == 1:
            return c.name
    return None


# Candidate thresholds: quantiles of the positive peak membranes from the 30th up. Lower ones
# turn neurons into sign detectors of their bias at step 1 and make the surrogate gradient
# (proportional to 1/threshold) explode in fine-tuning.
_QUANTILES = np.concatenate([np.linspace(0.3, 0.95, 14), [0.97, 0.98, 0.99, 0.995, 0.999]])
_STEP_QUANTILES = np.linspace(0.05, 0.995, 28)
_FIT_SAMPLES = 40_000  # membranes per channel used by the step-threshold search
_SWEEPS = 3
_CANDIDATE_BLOCK = 1 << 24  # membranes x candidates compared in one pass (16 MB of booleans)
# A threshold keeps at least this fraction of the membranes' range from every calibration
# membrane: many membranes sit on the same few values (neurons that see only their bias, or
# the same input digits), and a threshold equal to one of them made every such neuron's spike
# depend on the last bit of the simulator's float32 sums. Measured on the residual MNIST CNN,
# one artifact scored 79.1 % with two threads and oneDNN, 60.3 % with one thread and torch's
# reference convolution. Float32 sums here err by ~1e-6 of the range.
_MARGIN = 2.0 ** -16


def _between_values(cands: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each candidate threshold, the middles of the gaps wider than 2 _MARGIN (relative
    to max |values|) between the sorted distinct ``values`` just below and above it (or just
    outside their range): both sides of a value many membranes share are tried, and no
    threshold is near a membrane value."""
    u = np.unique(values)
    if u.size == 0:
        return np.unique(cands)
    tol = 2 * _MARGIN * max(float(np.abs(u).max()), np.finfo(np.float64).tiny)
    wide = np.flatnonzero(np.diff(u) > tol)
    cuts = np.concatenate([[u[0] - tol], (u[wide] + u[wide + 1]) / 2, [u[-1] + tol]])
    i = np.clip(np.searchsorted(cuts, cands), 1, cuts.size - 1)
    return np.unique(np.concatenate([cuts[i - 1], cuts[i]]))


def fit_single_spike(v: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(threshold, amplitude) minimizing sum (A (T + 1 - t_s) [fired] - target)^2, where t_s
    is the first step with v(t) >= threshold; v is (T, n). A silent layer gets (1, 1)."""
    peak = v.max(0)
    pos = peak[peak > 0]
    if pos.size == 0:
        return 1.0, 1.0
    best = (np.inf, 1.0, 1.0)
    total = float((target ** 2).sum())
    cands = _between_values(np.quantile(pos, _QUANTILES), v[v > 0])
    cands = cands[cands > 0]
    # weight (T + 1 - t_s) = number of steps t with v(t') >= th for some t' <= t, i.e. with
    # the running peak >= th: one running peak, then a block of candidates per pass
    peak_so_far = np.maximum.accumulate(v, axis=0)
    block = max(1, _CANDIDATE_BLOCK // max(v.size, 1))
    for lo in range(0, cands.size, block):
        ths = cands[lo:lo + block]
        g = (peak_so_far >= ths[:, None, None]).sum(1).astype(np.float64)  # (candidates, n)
        for th, gg, gt in zip(ths, (g * g).sum(1), (g * target).sum(1)):
            if gg == 0:
                continue
            amp, err = gt / gg, total - gt * gt / gg
            if amp > 0 and err < best[0]:
                best = (err, float(th), float(amp))
    return best[1], best[2]


def _suffix_scores(vf: np.ndarray, base: np.ndarray, free: np.ndarray, target: np.ndarray,
                   g_new: int, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """g @ g and g @ target for every candidate c at once, where g is ``base`` except that the
    free neurons with membrane ``vf >= c`` get ``g_new``: those are a suffix of the free
    neurons sorted by membrane, so suffix sums give each candidate in O(1) (one sort per step
    instead of a pass over all neurons per candidate)."""
    order = np.argsort(vf, kind="stable")
    vs, bs, ts = vf[order], base[free][order], target[free][order]

    def suffix(a: np.ndarray) -> np.ndarray:  # suffix(a)[k]: the sum of the last k of a
        return np.concatenate([[0.0], np.cumsum(a[::-1])])

    k = vs.size - np.searchsorted(vs, cands, side="left")
    gg = float(base @ base) - suffix(bs * bs)[k] + k * float(g_new) ** 2
    gt = float(base @ target) - suffix(bs * ts)[k] + g_new * suffix(ts)[k]
    return gg, gt


def fit_step_thresholds(v: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Step thresholds theta (T,) and amplitude A minimizing sum (A g - target)^2 with
    g = T + 1 - t_s for the first step t_s with v(t_s) >= theta(t_s) (0 if none); v is (T, n).
    Starts from the best constant threshold (fit_single_spike) and runs coordinate descent
    over the steps, each step's candidates being quantiles of the membranes still silent then.
    Deterministic: a fixed, evenly strided subsample of at most _FIT_SAMPLES membranes."""
    steps, n = v.shape
    if n > _FIT_SAMPLES:
        keep = np.linspace(0, n - 1, _FIT_SAMPLES).astype(np.int64)
        v, target = v[:, keep], target[keep]
    th0, amp0 = fit_single_spike(v, target)
    theta = np.full(steps, th0, dtype=np.float64)
    total = float((target ** 2).sum())

    def score(gg: float, gt: float) -> tuple[float, float]:  # (error, amplitude) from g@g, g@t
        if gg == 0 or gt <= 0:
            return total, 0.0
        return total - gt * gt / gg, gt / gg

    crossed = v >= theta[:, None]  # (T, n): v(t) >= theta(t), kept current as theta changes
    g = np.maximum.accumulate(crossed, axis=0).sum(0).astype(np.float64)
    best_err, amp = score(float(g @ g), float(g @ target))
    for _ in range(_SWEEPS):
        for t in range(steps):
            # g = T - t_first of every neuron from its first crossing at another step (0 if
            # none): those that fire before step t keep it, the others get g_new = T - t if
            # they cross at t
            first = np.full(v.shape[1], steps)
            for s in range(steps - 1, -1, -1):
                if s != t:
                    first[crossed[s]] = s
            base = (steps - first).astype(np.float64)
            free = (first >= t) & (v[t] > 0)
            if not free.any():
                continue
            vf = v[t][free]
            cuts = _between_values(np.quantile(vf, _STEP_QUANTILES), vf)
            cands = np.unique(np.concatenate([cuts, [theta[t], np.inf]]))
            for c, gg, gt in zip(cands, *_suffix_scores(vf, base, free, target, steps - t,
                                                         cands)):
                if c <= 0:
                    continue
                err, a = score(gg, gt)
                if a > 0 and err < best_err - 1e-12 * total:
                    best_err, amp, theta[t] = err, a, c
            crossed[t] = v[t] >= theta[t]
    if not np.isfinite(theta).all():  # a step nobody should fire in: an unreachable threshold
        theta = np.where(np.isfinite(theta), theta, np.abs(v).max() * 4 + 1.0)
    return theta, float(amp if amp > 0 else amp0)
