"""Build a Lava process graph from a quantized snnc artifact and run it under
``Loihi2SimCfg(select_tag="fixed_pt")``.

Supported: feed-forward graphs (fan-out allowed) of ``QConv2d`` (snnc ``IntConv``), ``QDense``
(Lava's stock ``Dense``, bit-accurate model; snnc ``IntDense`` behind folded payloads), ``QScale``
1:1 synapses (``ScaleSynapse``), two-input ``Add``/``Sub`` of synaptic input (``AlignedSum``),
``SumPool2d``/``GlobalSumPool`` (``SumPoolGate``), ``Reshape`` (flat C-order ports: nothing to
do), channel ``Slice`` (``SliceGate``), max-pool gates, ``PartialSumRelay`` populations
(``RelayNeurons``: ``split_fanin``'s partial sums, graded payloads) and either ``QIFNeurons``
(rate), ``QFewSpikeNeurons`` / ``QAmosNeurons`` (fs / amos; graded payloads on loihi2, binary
spikes with d(t) = 2^k(t) folded into per-step weight exponents on loihi1) or
``QSingleSpikeNeurons`` with first-spike max-pools (ttfs), fed by the input code or the hybrid
input's events (``InputCode`` source) and read by a ``QReadout`` on the last synapse
(``ReadoutAcc``). Anything else raises one ``BackendError`` naming the layer and the op.

Pipeline delay: every synapse delivers its input one step later; a few-spike population, AMOS
circuit or few-spike gate starts its K output steps when its input window is complete; relays,
slices, IF and single-spike populations and their gates pass their input window through in the
same step; an ``AlignedSum`` delays the earlier of its two streams to the later one (a skip
connection's synaptic delay). Each value is a stream starting at a constant local step of each
sample's period (``build``), so every population's train equals the reference simulator's
shifted by a constant; the runner removes it. N samples run back to back in one Lava run of
``N * period`` steps.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir import quantized as q

__all__ = ["LavaNetwork", "LavaResult", "build", "run", "simulate_lava", "input_codes"]


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


def input_codes(op: q.InputQuantizer | q.QHybridInput, x: np.ndarray) -> np.ndarray:
    """The host-side input encoder, exactly as the bit-exact reference computes it: the 8-bit
    codes (N, ...) of ``InputQuantizer``, or the event payloads (N, T, ...) of
    ``QHybridInput``."""
    import torch

    from snnc.backends.reference.fixed_point import hybrid_events

    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if type(op) is q.QHybridInput:
        return np.moveaxis(hybrid_events(op, xt)[0].numpy().astype(np.int64), 0, 1)
    lo, hi = ((-(2.0 ** (op.bits - 1) - 1), 2.0 ** (op.bits - 1) - 1) if op.signed
              else (0.0, 2.0**op.bits - 1))
    return torch.round(xt / op.scale).clamp(lo, hi).numpy().astype(np.int64)


_FS_LIKE = (q.QFewSpikeNeurons, q.QAmosNeurons)  # integer (h, d, T) tables: FS and AMOS
_STEPPED = (q.QIFNeurons, q.QSingleSpikeNeurons)  # binary populations stepping with their input
_INPUTS = (q.InputQuantizer, q.QHybridInput)


def _unsupported(node, why: str = "") -> BackendError:
    extra = f" ({why})" if why else ""
    return BackendError(f"lava backend: layer %{node.name} uses {type(node.op).__name__}, "
                        f"which the lava backend does not support yet{extra}; supported: rate, "
                        "fs, amos and ttfs networks of conv/dense/1:1 synapses, neurons, "
                        "partial-sum relays, max-, first-spike- and sum-pools, flatten, channel "
                        "slices and two-input adds. Use --backend cpu")


def check_supported(graph) -> None:
    """Raise BackendError naming the first layer the Lava backend cannot run."""
    if not q.is_quantized(graph):
        raise BackendError("lava backend needs a quantized artifact (compile for a fixed-point "
                           "target such as loihi2)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BackendError("lava backend: only graphs with one input and one output")
    ok = (*_INPUTS, q.QConv2d, q.QDense, q.QScale, *_STEPPED, *_FS_LIKE,
          neurons.SpikingMaxPool2d, neurons.FirstSpikeMaxPool2d, ops.MaxPool2d, ops.Reshape,
          ops.Slice, q.SumPool2d, q.GlobalSumPool, neurons.PartialSumRelay, ops.Add, ops.Sub,
          q.QReadout)
    kinds = set()
    for n in graph.nodes:
        if type(n.op) not in ok:
            raise _unsupported(n)
        if type(n.op) in (ops.Add, ops.Sub):
            if len(n.inputs) != 2:
                raise _unsupported(n, f"{len(n.inputs)} inputs (two are supported)")
        elif len(n.inputs) != 1:
            raise _unsupported(n, "more than one input")
        if isinstance(n.op, ops.MaxPool2d) and (any(n.op.padding) or n.op.ceil_mode):
            raise _unsupported(n, "padded or ceil-mode max-pool")
        if type(n.op) in _FS_LIKE and not n.op.graded and _fold_offsets(n.op.d) is None:
            raise _unsupported(n, "payloads folded into weights (binary-spike target) that "
                                  "are not powers of two")
        if type(n.op) in (*_STEPPED, *_FS_LIKE):
            kinds.add("fs" if type(n.op) in _FS_LIKE else type(n.op))
            if len(kinds) > 1:
                raise _unsupported(n, "IF, single-spike and few-spike/AMOS populations in one "
                                      "network")
    last = graph.nodes[-1]
    if not isinstance(last.op, q.QReadout) or last.name != graph.outputs[0].name:
        raise BackendError("lava backend: the output must be a QReadout")


def _fold_offsets(d) -> np.ndarray | None:
    """k(t) = log2 d(t) of a binary-spike (Loihi 1) few-spike/AMOS table: its payloads are
    folded into the consumers' weight exponents. None unless every d(t) is a power of two."""
    d = np.asarray(d, np.int64)
    if (d <= 0).any() or (d & (d - 1)).any():
        return None
    return np.array([int(v).bit_length() - 1 for v in d], np.int64)


def _int_bias(node) -> np.ndarray:
    op = node.op
    mant = np.asarray(op.bias_mant, np.int64).reshape(-1)
    if op.bias_exp >= 0:
        return mant << op.bias_exp
    if np.any(mant % (1 << -op.bias_exp)):
        raise _unsupported(node, "non-integer bias")
    return mant >> -op.bias_exp


def build(artifact_or_graph, x: np.ndarray) -> LavaNetwork:
    """The Lava process graph of an artifact (or quantized graph) for the inputs ``x`` (N, ...):
    an ``InputCode`` source with the quantized input codes, one process per synapse / neuron
    population / gate, and a ``ReadoutAcc`` output monitor. Not yet run.

    Timing: every value is a stream of ``L`` steps starting at local step ``s`` of each
    sample's period: the input code (s=1; L=T for rate, 1 for few-spike: the code is sent
    once; T event steps of the ttfs hybrid input), +1 step per synapse (its buffer), IF and
    single-spike populations, relays, rate and first-spike gates, slices and sum-pools pass it
    through, few-spike populations, AMOS circuits and few-spike max-pool
    gates emit K steps from the step in which the last input arrives, a two-input add starts
    with its later input (the earlier is delayed). The period ends with the readout's window."""
    from lava.proc.dense.process import Dense

    from snnc.backends.lava import processes as lp

    graph = getattr(artifact_or_graph, "graph", artifact_or_graph)
    check_supported(graph)
    fs = any(type(n.op) in _FS_LIKE for n in graph.nodes)
    steps = max(n.op.K if fs else n.op.timesteps for n in graph.nodes
                if type(n.op) in (*_STEPPED, *_FS_LIKE))
    samples = len(x)
    if samples < 1:
        raise BackendError("lava backend: no samples to run")
    nodes = graph.nodes
    inq = nodes[0]
    if type(inq.op) not in _INPUTS or inq.inputs[0].name != graph.inputs[0].name:
        raise BackendError("lava backend: the graph must start with the input quantizer")
    hybrid = type(inq.op) is q.QHybridInput  # ttfs: T steps of signed events
    win: dict[str, tuple[int, int]] = {inq.name: (1, inq.op.timesteps if hybrid
                                                  else 1 if fs else steps)}
    # payload bits of graded streams (the hybrid events are signed: a sign bit more)
    graded: dict[str, int] = {inq.name: inq.op.bits + int(hybrid)}
    fold: dict[str, np.ndarray] = {}  # binary few-spike streams: d(t) folded into weights
    for n in nodes[1:]:
        s0, length = win[n.inputs[0].name]
        op = n.op
        if type(op) in (ops.Add, ops.Sub):  # the earlier stream is delayed to the later one
            (sa, la), (sb, lb) = (win[v.name] for v in n.inputs)
            if la != lb:
                raise _unsupported(n, "inputs with different window lengths")
            win[n.name] = (max(sa, sb), la)
        elif type(op) in (q.QConv2d, q.QDense, q.QScale):
            win[n.name] = (s0 + 1, length)
        elif type(op) in _FS_LIKE:
            win[n.name] = (s0 + length - 1, op.K)
            if op.graded:
                graded[n.name] = op.payload_bits
            else:
                fold[n.name] = np.asarray(op.d, np.int64)
        elif type(op) is ops.MaxPool2d:
            win[n.name] = (s0 + length - 1, length)
        elif type(op) in _STEPPED and length != op.timesteps:
            raise _unsupported(n, "populations with different time steps")
        else:
            win[n.name] = (s0, length)
        if type(op) is neurons.PartialSumRelay:  # a fresh graded stream: its own payloads
            graded[n.name] = op.payload_bits
        routing = (ops.MaxPool2d, ops.Reshape, ops.Slice)
        if (type(op) in (*routing, q.SumPool2d, q.GlobalSumPool)
                and n.inputs[0].name in fold):  # routing/pooling keep the per-step factor
            fold[n.name] = fold[n.inputs[0].name]
        if type(op) in routing and n.inputs[0].name in graded:
            graded[n.name] = graded[n.inputs[0].name]
        elif type(op) in (q.SumPool2d, q.GlobalSumPool):  # sums: graded even of binary spikes
            fan_in = (np.prod(op.kernel) if type(op) is q.SumPool2d
                      else np.prod(n.inputs[0].type.shape[1:]))
            graded[n.name] = min(24, graded.get(n.inputs[0].name, 1)
                                 + int(fan_in - 1).bit_length())
    s_r, l_r = win[nodes[-1].name]
    period = s_r + l_r - 1
    codes = input_codes(inq.op, x).reshape(samples, inq.op.timesteps if hybrid else 1, -1)
    source = lp.InputCode(codes=codes, period=period, steps=win[inq.name][1], name="input")
    ports = {inq.name: source.s_out}  # value name -> OutPort
    shapes = {v.name: tuple(v.type.shape) for n in nodes for v in (n.output, *n.inputs)}
    pops: dict[str, object] = {}
    gates: dict[str, object] = {}
    readout = readout_op = None
    for n in nodes[1:]:
        op, src = n.op, n.inputs[0].name
        inp = ports[src]
        start, length = win[src]  # the input stream
        # a binary few-spike input: (first local step, per-step exponent offsets k(t))
        folded = (start, _fold_offsets(fold[src])) if src in fold else None
        if type(op) is ops.Reshape:
            ports[n.name] = inp  # flat C-order ports: a reshape is free
            continue
        if type(op) in (ops.Add, ops.Sub):
            (sa, _), (sb, _) = (win[v.name] for v in n.inputs)
            proc = lp.AlignedSum(size=int(np.prod(shapes[n.name])),
                                 delays=(max(sa, sb) - sa, max(sa, sb) - sb),
                                 sign=1 if type(op) is ops.Add else -1, name=n.name)
            ports[n.inputs[0].name].connect(proc.a_in0)
            ports[n.inputs[1].name].connect(proc.a_in1)
            ports[n.name] = proc.a_out
            continue
        if type(op) is q.QScale:
            proc = lp.ScaleSynapse(size=int(np.prod(shapes[n.name])), weight=int(op.weight),
                                   weight_exp=int(op.weight_exp), fold=folded, period=period,
                                   name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.a_out
        elif type(op) in (q.SumPool2d, q.GlobalSumPool):
            pool = type(op) is q.SumPool2d
            proc = lp.SumPoolGate(in_shape=shapes[src], out_shape=shapes[n.name],
                                  kernel=tuple(op.kernel) if pool else None,
                                  stride=tuple(op.stride) if pool else None, name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.s_out
        elif type(op) is ops.Slice:
            proc = lp.SliceGate(in_shape=shapes[src], start=int(op.start), stop=int(op.stop),
                                name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.s_out
        elif type(op) is q.QConv2d:
            proc = lp.IntConv(weight=np.asarray(op.weight, np.int64), weight_exp=op.weight_exp,
                              stride=tuple(op.stride), padding=tuple(op.padding),
                              dilation=tuple(op.dilation), groups=op.groups,
                              in_shape=shapes[src], out_shape=shapes[n.name], fold=folded,
                              period=period, name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.a_out
        elif type(op) is q.QDense and folded is not None:
            proc = lp.IntDense(weight=np.asarray(op.weight, np.int64),
                               weight_exp=int(op.weight_exp), fold=folded, period=period,
                               name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.a_out
        elif type(op) is q.QDense:
            w = np.asarray(op.weight, np.int64)
            mixed = int(w.min() < 0 < w.max())
            # Lava truncates (8 - num_weight_bits + mixed) LSBs of the mantissas; snnc's
            # mantissas are exact 8-bit (sign included) integers: truncate nothing
            proc = Dense(weights=w.astype(np.int32), weight_exp=int(op.weight_exp),
                         num_weight_bits=8 + mixed, num_message_bits=graded.get(src, 0),
                         name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.a_out
        elif type(op) in (q.QIFNeurons, q.QSingleSpikeNeurons):
            shape = shapes[n.name]

            def flat(th):  # thresholds broadcast to the population as in the reference, flat
                return np.broadcast_to(np.asarray(th, np.int64), shape).reshape(-1)

            common = dict(size=int(np.prod(shape)), bias=_int_bias(n), act_shift=op.act_shift,
                          compare=op.compare, uv_bits=op.uv_bits, u_overflow=op.u_overflow,
                          v_overflow=op.v_overflow, period=period, start=start,
                          steps=op.timesteps, samples=samples, name=n.name)
            if type(op) is q.QIFNeurons:  # one threshold, or one per channel
                vth = flat(op.vth)
                proc = lp.IFNeurons(vth=vth, v_init=np.round(op.v_init * vth).astype(np.int64),
                                    reset=op.reset, **common)
            else:  # vth[t]: one threshold map per step
                proc = lp.SingleSpikeNeurons(vth=np.stack([flat(th) for th in op.vth]),
                                             **common)
            inp.connect(proc.a_in)
            ports[n.name] = proc.s_out
            pops[n.name] = proc
        elif type(op) in _FS_LIKE:
            cls = lp.AmosNeurons if type(op) is q.QAmosNeurons else lp.FSNeurons
            proc = cls(size=int(np.prod(shapes[n.name])), h=np.asarray(op.h),
                                d=np.asarray(op.d), T=np.asarray(op.T), bias=_int_bias(n),
                                act_shift=op.act_shift, uv_bits=op.uv_bits,
                                u_overflow=op.u_overflow, v_overflow=op.v_overflow,
                                period=period, start=start, window=length, samples=samples,
                                graded=bool(op.graded), name=n.name)
            inp.connect(proc.a_in)
            ports[n.name] = proc.s_out
            pops[n.name] = proc
        elif type(op) is neurons.PartialSumRelay:
            proc = lp.RelayNeurons(size=int(np.prod(shapes[n.name])),
                                   payload_bits=int(op.payload_bits), period=period, start=start,
                                   steps=length, samples=samples, name=n.name)
            inp.connect(proc.a_in)
            ports[n.name] = proc.s_out
            pops[n.name] = proc
        elif type(op) in (neurons.SpikingMaxPool2d, neurons.FirstSpikeMaxPool2d):
            cls = lp.MaxPoolGate if type(op) is neurons.SpikingMaxPool2d else lp.FirstSpikeGate
            proc = cls(in_shape=shapes[src], out_shape=shapes[n.name], kernel=tuple(op.kernel),
                       stride=tuple(op.stride), padding=tuple(op.padding),
                       dilation=tuple(op.dilation), period=period, samples=samples, name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.s_out
            gates[n.name] = proc
        elif type(op) is ops.MaxPool2d:
            proc = lp.DecodedMaxPoolGate(in_shape=shapes[src], out_shape=shapes[n.name],
                                         kernel=tuple(op.kernel), stride=tuple(op.stride),
                                         dilation=tuple(op.dilation), period=period,
                                         start=start, window=length, samples=samples,
                                         step_values=fold.get(src), name=n.name)
            inp.connect(proc.s_in)
            ports[n.name] = proc.s_out
            gates[n.name] = proc
        elif type(op) is q.QReadout:
            readout = lp.ReadoutAcc(size=int(np.prod(shapes[n.name])), period=period,
                                    start=start, steps=length, samples=samples,
                                    integrate=op.reduce == "integrate", name=n.name)
            inp.connect(readout.a_in)
            readout_op = op
        else:  # pragma: no cover - check_supported rejects these
            raise _unsupported(n)
    delays = {k: win[k][0] - 1 for k in win}
    return LavaNetwork(source=source, populations=pops, readout=readout,
                       readout_op=readout_op, delays=delays, period=period, steps=steps,
                       samples=samples, shapes=shapes, gates=gates, window_sum=fs)


def _run(net: LavaNetwork, num_steps: int, collect=None, poll_s: float = 0.05):
    """Run the network for ``num_steps`` steps, return ``collect(net)`` (reads Vars), and always
    stop it: no Lava process outlives this call, also on errors and KeyboardInterrupt.

    Lava 0.10 deadlocks when a process model raises inside a step (its runtime service waits
    for the replies of models blocked on the failed model's ports), so the run goes in a
    background thread while this one watches Lava's actor processes: when one dies with an
    exception, or on KeyboardInterrupt, every actor is terminated (our own children, by
    handle) and the shared-memory manager shut down; the error becomes a BackendError."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    failure: list[BaseException] = []

    def target() -> None:
        try:
            with warnings.catch_warnings():
                # Lava imports every module beside a process's file when it looks for models
                warnings.filterwarnings("ignore", message="Cannot import module")
                net.source.run(condition=RunSteps(num_steps=num_steps),
                               run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        except BaseException as e:  # noqa: BLE001 - reported by the watching thread
            failure.append(e)

    thread = threading.Thread(target=target, name="snnc-lava-run", daemon=True)
    clean = False
    try:
        thread.start()
        while thread.is_alive():
            thread.join(poll_s)
            dead = _failed_actor(net)
            if dead is not None:
                raise BackendError(f"lava run failed: {dead}")
        if failure:
            e = failure[0]
            raise BackendError(f"lava run failed: {type(e).__name__}: {e}") from e
        out = collect(net) if collect is not None else None
        clean = True
        return out
    finally:
        if clean:
            net.source.stop()
        else:
            _kill(net, thread)


def _actors(net: LavaNetwork) -> list:
    runtime = getattr(net.source, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infra, "actors", None) or [])


def _failed_actor(net: LavaNetwork) -> str | None:
    """The last line of the traceback of a Lava actor that died with an exception, if any."""
    for actor in _actors(net):
        try:
            exc = actor.exception
        except (OSError, ValueError):  # pipe already closed: joined
            continue
        if exc:
            err, tb = exc
            return f"{type(err).__name__}: {err}"
    return None


def _kill(net: LavaNetwork, thread: threading.Thread | None = None,
          wait_s: float = 30.0) -> None:
    """Hard stop: terminate every Lava actor process (children of this process), shut down the
    shared-memory manager (also a child) and the watchdog manager. A failure can come while
    Lava's run thread still forks actors (a model failing at start-up), so this keeps
    terminating until every expected actor (one per process model and runtime service) has
    been seen, the run thread ended, or ``wait_s`` passed."""
    import multiprocessing as mp

    deadline = time.monotonic() + wait_s
    runtime = getattr(net.source, "runtime", None)
    while runtime is None and thread is not None and thread.is_alive():
        if time.monotonic() > deadline:  # interrupted while Lava compiled: it may still fork
            break
        time.sleep(0.05)
        runtime = getattr(net.source, "runtime", None)
    if runtime is None:
        return
    exe = getattr(runtime, "_executable", None)
    expected = (len(getattr(exe, "proc_builders", None) or {})
                + len(getattr(exe, "runtime_service_builders", None) or {}))
    done: set[int] = set()
    while True:
        actors = _actors(net)
        for actor in actors:
            if id(actor) in done:
                continue
            done.add(id(actor))
            try:
                if actor.is_alive():
                    actor.terminate()
                mp.Process.join(actor, 5)
                if actor.is_alive():
                    actor.kill()
                    mp.Process.join(actor, 5)
            except (ValueError, AssertionError):  # already closed / not started
                pass
        if len(done) >= expected or thread is None or not thread.is_alive():
            if len(_actors(net)) == len(done):
                break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    smm = getattr(infra, "smm", None)
    if smm is not None:
        smm.shutdown()
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        try:
            watchdog.stop()
        except Exception:  # noqa: BLE001 - best effort on an already broken runtime
            pass
    runtime._is_started = False  # its __del__ must not wait for dead actors
    runtime._is_running = False


def run(artifact_or_graph, x: np.ndarray) -> LavaResult:
    """Run ``x`` (N, ...) through Lava: readouts and every population's spike trains (aligned
    to the reference simulator: the pipeline delay is removed)."""
    net = build(artifact_or_graph, x)

    def collect(net: LavaNetwork):
        from snnc.backends.lava.processes import signed, unpack

        spikes, events, circuits = {}, {}, {}
        for name, proc in net.populations.items():
            size = int(np.prod(net.shapes[name]))
            if hasattr(proc, "payload_bits"):  # relay: signed payloads of its window
                bits, steps_ = proc.payload_bits, proc.window
                rec = np.stack([signed(unpack(row, bits, steps_ * size), bits)
                                for row in proc.record.get()])
                rec = np.swapaxes(rec.reshape(net.samples, steps_, *net.shapes[name]), 0, 1)
                spikes[name] = rec.sum(0, keepdims=True) if net.window_sum else rec
                continue
            if hasattr(proc, "step_bits"):  # AMOS: the circuit step each neuron fired in
                k = len(proc.d_table)
                fired = np.stack([unpack(row, proc.step_bits, k * size)
                                  for row in proc.record.get()])
                fired = fired.reshape(net.samples, k, *net.shapes[name])
                circuits[name] = fired
                steps_ = np.arange(1, k + 1).reshape(1, k, 1, *([1] * len(net.shapes[name])))
                train = ((fired[:, None] == steps_) * proc.d_table.reshape(
                    1, 1, k, *([1] * len(net.shapes[name])))).sum(2)  # (N, step, *shape)
                spikes[name] = np.swapaxes(train, 0, 1)
                continue
            rec = np.stack([unpack(row, 1, net.steps * size) for row in proc.record.get()])
            rec = rec.reshape(net.samples, net.steps, *net.shapes[name])
            if hasattr(proc, "d_table"):  # few-spike: payloads d(t) z(t)
                rec = rec * proc.d_table.reshape(1, -1, *([1] * len(net.shapes[name])))
            else:
                rec = rec.astype(np.int8)
            spikes[name] = np.swapaxes(rec, 0, 1)
        for name, g in net.gates.items():
            size = int(np.prod(net.shapes[name]))
            events[name] = np.stack([unpack(row, 16, size) for row in g.events.get()]
                                    ).astype(np.float64)
        return spikes, events, circuits, np.asarray(net.readout.acc.get(), np.float64)

    start = time.perf_counter()
    spikes, events, circuits, acc = _run(net, net.num_steps, collect)
    wall = time.perf_counter() - start
    op = net.readout_op
    total = acc if op.reduce == "sum" else acc / net.steps  # integrate: acc holds v(T)
    outputs = (total * op.scale + np.asarray(op.bias, np.float64)).astype(np.float32)
    return LavaResult(outputs=outputs, spikes=spikes,
                      delays={k: net.delays[k] for k in net.populations}, wall_s=wall,
                      events=events, fired_step=circuits)


def simulate_lava(graph, x: np.ndarray, progress=None):
    """``simulate``'s result type from a Lava run: readouts, spike counts per population and
    synaptic events per synapse layer (counted as the reference simulator counts them: input
    spikes times fan-out; the input code is not a spike, the hybrid input's spikes are host-side
    events of the first synapses), so the CLI metrics are the same."""
    import torch

    from snnc.backends.reference.fixed_point import _float_twin, hybrid_events
    from snnc.backends.reference.simulator import SimulationResult, _fanout
    from snnc.ir.graph import Node

    res = run(graph, x)
    n = len(x)
    events = {k: (v != 0).sum(0, dtype=np.float64).reshape(n, -1)
              for k, v in res.spikes.items()}
    events.update({k: (v > 0).sum(1, dtype=np.float64).reshape(n, -1)  # AMOS: every neuron
                   for k, v in res.fired_step.items()})
    events.update(res.events)
    inq = graph.nodes[0]
    if type(inq.op) is q.QHybridInput:
        spikes = hybrid_events(inq.op, torch.as_tensor(np.asarray(x), dtype=torch.float64))[1]
        events[inq.name] = spikes.numpy().reshape(n, -1)
    producer = {}
    for node in graph.nodes:
        src = node.inputs[0].name if node.inputs else None
        producer[node.name] = (producer.get(src, src) if type(node.op) is ops.Reshape
                               else node.name)
        if type(node.op) is ops.Slice and producer.get(src, src) in events:
            # a channel group: its synapses see the events of its channels only
            e = events[producer.get(src, src)].reshape(n, *node.inputs[0].type.shape)
            events[node.name] = e[:, node.op.start:node.op.stop].reshape(n, -1)
    synops = {}
    for node in graph.nodes:
        if type(node.op) not in (q.QConv2d, q.QDense, q.QScale, q.SumPool2d, q.GlobalSumPool):
            continue
        src = producer.get(node.inputs[0].name, node.inputs[0].name)
        if src not in events:
            continue  # the input code (not spikes) or pooled sums (counted at the pool)
        e = torch.as_tensor(events[src]).reshape(n, *node.inputs[0].type.shape)
        if type(node.op) is q.QScale:  # one synapse per element
            synops[node.name] = float(e.sum())
            continue
        base = (ops.GlobalAvgPool() if type(node.op) is q.GlobalSumPool
                else ops.AvgPool2d(node.op.kernel, node.op.stride)
                if type(node.op) is q.SumPool2d else _float_twin(node.op))
        twin = Node(base, node.inputs, node.output)  # as fixed_point counts
        synops[node.name] = float((e * _fanout(twin, e)).sum())
    spikes = {k: float(events[k].sum()) for k in res.spikes}
    most = {k: float((v > 0).max()) if v.size else 0.0 for k, v in res.fired_step.items()}
    most.update({node.name: float(events[node.name].max()) for node in graph.nodes
                 if type(node.op) is q.QSingleSpikeNeurons and events[node.name].size})
    counts = {node.name: node.output.type.size * neurons.neurons_per_gate(node.op)
              for node in graph.nodes if isinstance(node.op, neurons.NEURON_OPS)}
    if progress is not None:
        progress(n)
    return SimulationResult([res.outputs], spikes, counts, synops, n, res.wall_s, most)
