"""finetune: surrogate-gradient training of a converted SNN (Datta et al. 2021's STDB stage).

:class:`SpikingModule` is a torch module built from a converted graph: the same discrete-time
dynamics as the reference simulator (sim/float_rules.py), written with autograd
in mind -- synaptic weights and biases are parameters, and every threshold comparison gets a
surrogate gradient. :func:`finetune` trains it on labelled data and writes the weights back
into the graph; the simulator then measures the result.

Surrogate, for u = v / threshold - 1: by default the triangular window
``dS/du = max(0, 1 - |u|)``; ``surrogate="stdb"`` gives Datta's / Rathi's STDB
``dS/du = alpha * exp(-beta * dt)`` with dt the steps since the neuron's last spike (since the
image start if it has not fired), alpha = 0.3, beta = 0.01. STDB's pseudo-derivative does not
depend on the membrane, so every silent neuron passes gradient as if it sat at its threshold
(the backward pass of a linear network): on the residual CNN it stalled at 20 % training
accuracy after one epoch where the triangle reached 75 % after two (docs/decisions.md). Loss: cross entropy of the output
membrane U(T) (the readout) plus ``TIME_WEIGHT`` x cross entropy of minus the output neurons'
soft first-passage times (the class whose membrane crosses first should be the label), Datta's
"membrane potential and spike time" loss in the form ALGORITHMS.md §3.2 suggests. Adam
(LEARNING_RATE, cosine-annealed) on batches of images randomly shifted by up to SHIFT pixels
(Rathi et al.'s random-crop augmentation; the train accuracy per epoch is on those batches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from snnc.errors import SnncError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node
from snnc.ir.interpret import ANN_RULES
from snnc.sim.kernels import first_spike_max_pool, gather_windows, hybrid_input

__all__ = ["SpikingModule", "finetune", "ALPHA", "BETA", "TIME_WEIGHT", "LEARNING_RATE",
           "BATCH_SIZE", "SHIFT", "SURROGATES", "random_translation"]

ALPHA, BETA = 0.3, 0.01  # STDB surrogate (Datta et al. 2021, Rathi et al. 2020)
TIME_WEIGHT = 0.1  # weight of the spike-time term of the loss
LEARNING_RATE = 2e-3  # Adam, cosine-annealed to 0 over the run (docs/decisions.md)
BATCH_SIZE = 16  # 250 Adam steps per epoch on 4,000 images (docs/decisions.md)
SHIFT = 2  # random translation of training images, pixels (0: none)

class _TriangleSpike(torch.autograd.Function):
    """Heaviside of u = v/threshold - 1 with the pseudo-derivative max(0, 1 - |u|)."""

    @staticmethod
    def forward(ctx, u, dt):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - u.abs(), min=0.0), None


class _STDBSpike(torch.autograd.Function):
    """Heaviside of u = v/threshold - 1 with the STDB pseudo-derivative alpha exp(-beta dt)."""

    @staticmethod
    def forward(ctx, u, dt):
        if isinstance(dt, torch.Tensor):
            ctx.save_for_backward(dt)
        ctx.dt = dt
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(ctx.dt, torch.Tensor):
            (dt,) = ctx.saved_tensors
            return grad * ALPHA * torch.exp(-BETA * dt), None
        return grad * (ALPHA * float(np.exp(-BETA * ctx.dt))), None


SURROGATES = {"triangle": _TriangleSpike, "stdb": _STDBSpike}


def _spike(v: torch.Tensor, threshold, dt, fn=_TriangleSpike) -> torch.Tensor:
    return fn.apply(v / threshold - 1.0, dt)


class SpikingModule(torch.nn.Module):
    """The converted graph as a differentiable torch module; ``forward(x)`` returns the output
    currents (T or 1, N, ...) of the first graph output, whose mean over time is the readout."""

    def __init__(self, graph: Graph, surrogate: str = "triangle",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.dtype = dtype
        if surrogate not in SURROGATES:
            raise SnncError(f"unknown surrogate {surrogate!r}; available: "
                            f"{', '.join(SURROGATES)}")
        self.spike_fn = SURROGATES[surrogate]
        self.graph = graph
        self.weights = torch.nn.ParameterDict()
        self.biases = torch.nn.ParameterDict()
        self._key: dict[str, str] = {}
        for i, n in enumerate(graph.nodes):
            if isinstance(n.op, (ops.Conv2d, ops.Dense)):
                key = f"p{i}"
                self._key[n.name] = key
                # copies: training must never write into the (immutable) graph's arrays
                self.weights[key] = torch.nn.Parameter(torch.tensor(n.op.weight, dtype=dtype))
                self.biases[key] = torch.nn.Parameter(torch.tensor(n.op.bias, dtype=dtype))
            elif type(n.op) not in RULES:
                raise SnncError(f"fine-tuning: layer '{n.name}' ({ops.op_name(n.op)}) has no "
                                "differentiable rule")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.graph.inputs[0].name: x.to(self.dtype).unsqueeze(0)}
        for n in self.graph.nodes:
            env[n.name] = self._run(n, [env[v.name] for v in n.inputs])
        return env[self.graph.outputs[0].name]

    def to_graph(self) -> Graph:
        """The graph with the trained weights and biases."""
        nodes = []
        for n in self.graph.nodes:
            key = self._key.get(n.name)
            if key is not None:
                w = self.weights[key].detach().cpu().numpy().astype(n.op.weight.dtype)
                b = self.biases[key].detach().cpu().numpy().astype(n.op.bias.dtype)
                n = n.replace(op=dataclasses.replace(n.op, weight=w, bias=b))
            nodes.append(n)
        return self.graph.replace(nodes=tuple(nodes))

    # ---- tensors are (T or 1, N, ...); RULES holds one differentiable rule per op
    def _run(self, n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
        return RULES[type(n.op)](self, n, xs)

    def _time_folded(self, n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
        """Synapses (with the trainable weights) and routing: once over time folded into the
        batch."""
        op = n.op
        steps = max(x.shape[0] for x in xs)
        batch = max(x.shape[1] for x in xs)
        folded = [x.expand(steps, batch if len(xs) > 1 else x.shape[1], *x.shape[2:])
                  .reshape(-1, *x.shape[2:]) for x in xs]
        key = self._key.get(n.name)
        if isinstance(op, ops.Conv2d):
            out = _conv2d(op, folded[0], self.weights[key], self.biases[key])
        elif isinstance(op, ops.Dense):
            out = F.linear(folded[0], self.weights[key], self.biases[key])
        else:
            out = ANN_RULES[type(op)](op, *folded)
        return out.reshape(steps, -1, *out.shape[1:])

    def _rate_max_pool(self, n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        counts = torch.cumsum((x != 0).to(x.dtype), 0).flatten(0, 1)
        out = gather_windows(n.op, x.flatten(0, 1), counts)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])

    def _single_spike(self, op: neurons.SingleSpikeNeurons, current: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(current[0])
        fired = torch.zeros_like(v)
        theta = torch.as_tensor(np.array(op.step_thresholds()), dtype=v.dtype, device=v.device)
        steps = _steps(current, op.timesteps)
        out = []
        for t in range(op.timesteps):
            v = v + steps[t]
            # dt: steps since the image start (a neuron that fired is masked from then on)
            s = _spike(v, theta[t], t + 1, self.spike_fn) * (1.0 - fired.detach())
            fired = fired + s
            out.append(fired)  # a(t) = amplitude * fired(t): non-decaying synaptic current
        amp = torch.as_tensor(np.array(op.amplitude), dtype=v.dtype, device=v.device)
        return torch.stack(out) * amp

    def _if(self, op: neurons.IFNeurons, current: torch.Tensor) -> torch.Tensor:
        v = torch.full_like(current[0], op.v_init * op.threshold)
        last = torch.zeros_like(v)  # step of the last spike (0: none yet)
        steps = _steps(current, op.timesteps)
        out = []
        for t in range(op.timesteps):
            v = v + steps[t]
            s = _spike(v, op.threshold, (t + 1) - last, self.spike_fn)
            v = v - op.threshold * s
            last = torch.where(s.detach() > 0, torch.full_like(last, float(t + 1)), last)
            out.append(s)
        return torch.stack(out) * op.amplitude

    def _few_spike(self, op: neurons.FewSpikeNeurons, x: torch.Tensor) -> torch.Tensor:
        v, y = x[0], torch.zeros_like(x[0])
        for t in range(op.K):
            # the table's scale: u = (v - T(t)) / |h(t)| (1 for FS-ReLU's halving steps)
            scale = abs(float(op.h[t])) or 1.0
            z = self.spike_fn.apply((v - float(op.T[t])) / scale, 0)
            y = y + float(op.d[t]) * z
            v = v - float(op.h[t]) * z
        return y.unsqueeze(0)


def _steps(current: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """The input of each step: one unbind, whose backward is one stack (indexing step t of
    the (T, N, ...) tensor T times would make T full-size zero tensors in the backward pass:
    a fifth of a ttfs fine-tuning epoch's time)."""
    if current.shape[0] == 1:
        return [current[0]] * timesteps
    return list(current.unbind(0))


# op class -> differentiable rule (module, node, inputs): the simulator's dynamics with
# surrogate gradients for the neurons, the ANN rules (trainable weights) for the rest
RULES: dict[type[ops.Op], Callable[[SpikingModule, Node, list], torch.Tensor]] = {
    ops.Constant: lambda m, n, xs: ANN_RULES[ops.Constant](n.op).to(m.dtype).unsqueeze(0),
    neurons.SingleSpikeNeurons: lambda m, n, xs: m._single_spike(n.op, xs[0]),
    neurons.HybridInputNeurons: lambda m, n, xs: hybrid_input(n.op, xs[0][0])[0],
    neurons.FirstSpikeMaxPool2d: lambda m, n, xs: first_spike_max_pool(n.op, xs[0]),
    neurons.IFNeurons: lambda m, n, xs: m._if(n.op, xs[0]),
    neurons.FewSpikeNeurons: lambda m, n, xs: m._few_spike(n.op, xs[0].mean(0, keepdim=True)),
    neurons.SpikingMaxPool2d: SpikingModule._rate_max_pool,
    **{cls: SpikingModule._time_folded for cls in (
        ops.Conv2d, ops.Dense, ops.AvgPool2d, ops.GlobalAvgPool, ops.BatchNorm, ops.Add, ops.Sub,
        ops.Mul, ops.Div, ops.Concat, ops.Reshape, ops.Transpose, ops.Pad, ops.Identity,
        ops.MaxPool2d)},
}


def _conv2d(op: ops.Conv2d, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    t, l, bt, r = op.padding
    if (t, l) == (bt, r):
        pad = (t, l)
    else:
        x, pad = F.pad(x, (l, r, t, bt)), (0, 0)
    return F.conv2d(x, w, b, op.stride, pad, op.dilation, op.groups)


def _loss(out: torch.Tensor, y: torch.Tensor, theta: float) -> torch.Tensor:
    """CE of the readout (mean output current = U(T)/T) + TIME_WEIGHT CE(-soft first-passage
    time), with the time t_c = 1 + sum_t sigmoid((theta - U_c(t)) / (0.1 theta))."""
    logits = out.mean(0).flatten(1)
    loss = F.cross_entropy(logits, y)
    if TIME_WEIGHT and out.shape[0] > 1:
        membrane = torch.cumsum(out, 0).flatten(2) / out.shape[0]
        t_first = 1 + torch.sigmoid((theta - membrane) / (0.1 * theta)).sum(0)
        loss = loss + TIME_WEIGHT * F.cross_entropy(-t_first, y)
    return loss


def _channels_last(graph: Graph) -> bool:
    """Whether the graph input (or its input encoder's output) is transposed first: an NHWC
    model, whose images are not (N, C, H, W)."""
    seen = {graph.inputs[0].name}
    for n in graph.nodes:
        if any(v.name in seen for v in n.inputs):
            if isinstance(n.op, ops.Transpose):
                return True
            if isinstance(n.op, neurons.HybridInputNeurons):
                seen.add(n.name)
    return False


def random_translation(x: torch.Tensor, shift: int, rng: np.random.Generator) -> torch.Tensor:
    """Every image of x (N, C, H, W) moved by a random (dy, dx) in [-shift, shift]^2, zero
    fill: a random crop of the image padded by ``shift`` (Rathi et al.'s augmentation)."""
    h, w = x.shape[2:]
    padded = F.pad(x, (shift,) * 4)
    d = rng.integers(0, 2 * shift + 1, size=(len(x), 2))
    return torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(d)])


def _snap_to_float32(tensors) -> None:
    """Round float64 tensors in place to the nearest float32: the last bits, where the
    reduction order of a machine's kernels shows, are dropped at every step."""
    with torch.no_grad():
        for t in tensors:
            t.copy_(t.to(torch.float32))


def finetune(graph: Graph, x: np.ndarray, y: np.ndarray, *, epochs: int = 10, seed: int = 0,
             batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
             surrogate: str = "triangle", shift: int | None = None, deterministic: bool = False,
             on_epoch: Callable[[int, int, float | None, float | None], None] | None = None,
             ) -> Graph:
    """Requires: a converted graph (rate, fs or ttfs) and labelled data ``x`` (N, ...), ``y``.
    Ensures: the same graph with trained synaptic weights and biases (thresholds, amplitudes
    and tables unchanged); ``epochs == 0`` returns ``graph`` itself. Deterministic for a seed
    (fixed shuffling, initialization-free: training starts from the converted weights).
    ``on_epoch(epoch, epochs, mean_loss, train_accuracy)`` is called after every epoch, and
    once with epoch 0 (loss and accuracy None) before the first. Channel-first images
    (N, C, H, W) are translated by up to ``shift`` pixels (default SHIFT; 0 turns it off) in
    every batch, Rathi et al.'s random-crop augmentation of the STDB stage.
    ``deterministic``: float64 arithmetic, weights and gradients rounded to float32 after every
    step, so the thread count and the machine's kernels (their reduction order) drop out: the
    same seed gives the same network anywhere (about 3x the float32 time on the residual CNN).
    Without it the last bits depend on them, and so, through spike decisions at threshold, can
    the result."""
    if epochs < 0:
        raise SnncError(f"epochs must be >= 0, got {epochs}")
    if epochs == 0:
        return graph
    if y is None:
        raise SnncError("fine-tuning needs labels: the data file has no 'y'")
    if any(isinstance(n.op, neurons.AmosNeurons) for n in graph.nodes):
        raise SnncError("fine-tuning is not available for amos (fine-tune with --method fs)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dtype = torch.float64 if deterministic else torch.float32
    model = SpikingModule(graph, surrogate, dtype)
    steps_per_epoch = -(-len(x) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    xt = torch.as_tensor(np.asarray(x), dtype=dtype)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    shift = SHIFT if shift is None else shift
    if xt.dim() != 4 or _channels_last(graph):
        shift = 0
    shift_rng = np.random.default_rng([seed, 1])
    with torch.no_grad():  # output threshold of the spike-time loss: from the converted net
        theta = float(model(xt[:256]).sum(0).flatten(1).amax(1).clamp(min=1e-6).median()) / 2
        theta /= max(1, model(xt[:1]).shape[0])
    if on_epoch is not None:
        on_epoch(0, epochs, None, None)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total, correct = 0.0, 0
        model.train()
        for lo in range(0, len(x), batch_size):
            idx = torch.as_tensor(order[lo:lo + batch_size])
            out = model(random_translation(xt[idx], shift, shift_rng) if shift else xt[idx])
            loss = _loss(out, yt[idx], theta)
            opt.zero_grad()
            loss.backward()
            if deterministic:
                _snap_to_float32(p.grad for p in model.parameters())
            opt.step()
            if deterministic:
                _snap_to_float32(model.parameters())
            sched.step()
            total += float(loss) * len(idx)
            correct += int((out.mean(0).flatten(1).argmax(1) == yt[idx]).sum())
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, total / len(x), correct / len(x))
    return model.to_graph()
