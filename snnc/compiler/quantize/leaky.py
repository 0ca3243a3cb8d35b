"""quantize_leaky: an imported spiking network (``snnc.ir.leaky`` ops) -> Loihi integers.

Requires: a graph from ``load_nir`` (SpikeTrainInput, Dense/Conv2d synapses, uniform depthwise
convolutions (pools) feeding another synapse, Reshape, LeakyNeurons, LeakyIntegrator outputs,
Adds of synapses feeding one population: several edges into one node).
Ensures: every synapse is a QDense/QConv2d (8-bit mantissas + shared exponent), every pool a
SumPool2d, every population a QLeakyNeurons with Lava LIF parameters (12-bit ``du``/``dv``, 17-bit
``vth_mant``, 13-bit ``bias_mant`` with ``bias_exp``), every LI output a host-side QLeakyReadout;
value names are unchanged. Per population (docs/nir-import.md):

* decays: ``du = 4095 - round(4096 alpha)`` (Lava adds 1), ``dv = round(4096 (1 - beta))``;
* the state unit s (float value of one unit of synaptic input a; v holds units of s/64): the
  largest weight exponent e with ``vth_mant = round(threshold / s) <= 2^16`` and the largest
  one-sided row sum of the mantissas times the largest input payload, over (1 - alpha), below
  2^15 (Lava's 16-bit a_in; u, which sums 1 / (1 - alpha) steps of input, cannot wrap);
  ``s = max|W unit_in| / (127 2^e)`` and ``W_mant = round(W unit_in / (s 2^e))``;
* several synapses into one population share its unit s (the coarsest of their own choices,
  doubled while their summed one-sided input could wrap a_in), each with its own exponent;
* biases (the synapses', for LIF, and v_leak's): ``round(b 64 / s)`` as mantissa << exponent.
"""

from __future__ import annotations

import numpy as np

from snnc.compiler.quantize.formats import NotQuantizable
from snnc.ir import leaky, ops
from snnc.ir import quantized as q
from snnc.ir.graph import Graph, Node
from snnc.targets import TargetSpec

__all__ = ["decays", "is_imported_snn", "quantize_leaky"]

_VTH_MAX = 2**16  # v saturates at 2^17 units: leave v room to exceed the threshold
_A_MAX = 2**15  # largest |a| of one step: Lava LIF's 16-bit a_in (u = a << 6 fits 24 bits)


def is_imported_snn(graph: Graph) -> bool:
    return any(isinstance(n.op, (leaky.SpikeTrainInput, leaky.LeakyNeurons)) for n in graph.nodes)


def _uniform(a, what: str, name: str) -> float:
    a = np.asarray(a, np.float64)
    if a.size and not np.all(a == a.reshape(-1)[0]):
        raise NotQuantizable(f"layer '{name}': {what} differs between neurons; Lava's LIF holds "
                             "one per population")
    return float(a.reshape(-1)[0]) if a.size else 0.0


def decays(alpha: float, beta: float) -> tuple[int, int]:
    """Lava's (du, dv) for the per-step decay factors alpha (current) and beta (voltage)."""
    du = int(np.clip(4095 - round(4096 * alpha), 0, 4095))
    dv = int(np.clip(round(4096 * (1 - beta)), 0, 4095))
    return du, dv


def _bias(value: np.ndarray, spec: TargetSpec, name: str) -> tuple[np.ndarray, int]:
    """Integer ``bias_mant << bias_exp`` nearest to ``value`` (state units)."""
    mmax = 2 ** (spec.neuron.bias_mant_bits - 1) - 1
    top = float(np.abs(value).max()) if value.size else 0.0
    exp = 0
    while top / 2**exp > mmax and exp < spec.neuron.bias_exp_max:
        exp += 1
    if top / 2**exp > mmax + 0.5:
        raise NotQuantizable(f"layer '{name}': bias {top:.3g} state units exceeds the "
                             f"{spec.neuron.bias_mant_bits}-bit mantissa << {exp}")
    return np.round(value / 2**exp).astype(np.int64), exp


def _synapse(op: ops.Op, unit_in: float, pmax: float, theta: float, alpha: float,
             spec: TargetSpec, name: str) -> tuple[ops.Op, float, dict]:
    """The integer synapse and its state unit s for a population of threshold ``theta`` and
    current decay ``alpha`` (the current sums up to 1 / (1 - alpha) steps of input)."""
    w = np.asarray(op.weight, np.float64) * unit_in
    wmax = 2 ** (spec.weights.mantissa_bits - 1) - 1
    m = float(np.abs(w).max()) or 1.0
    rows = w.reshape(w.shape[0], -1)  # the largest one-sided sum one step can deliver
    row = max(np.clip(rows, 0, None).sum(1).max(), -np.clip(rows, None, 0).sum(1).min())
    row = row / m * wmax * pmax / max(1.0 - alpha, 1.0 / 4096)
    e_lo, e_hi = spec.weights.exp_min, spec.weights.exp_max
    e = e_hi
    while e > e_lo and (theta * wmax * 2**e / m > _VTH_MAX or row * 2**e > _A_MAX):
        e -= 1
    s = m / (wmax * 2**e)
    qop, _, rec = _at_unit(op, w, s, e, spec, name)
    return qop, s, rec


def _at_unit(op: ops.Op, w: np.ndarray, s: float, e: int, spec: TargetSpec,
             name: str) -> tuple[ops.Op, np.ndarray, dict]:
    """The integer synapse of weights ``w`` (in input payload units) at state unit ``s`` and
    weight exponent ``e``, its mantissas and its report entry."""
    wmax = 2 ** (spec.weights.mantissa_bits - 1) - 1
    mant = np.clip(np.round(w / (s * 2**e)), -wmax, wmax).astype(np.int64)
    cls = q.QDense if isinstance(op, ops.Dense) else q.QConv2d
    extra = {} if cls is q.QDense else {"stride": op.stride, "padding": op.padding,
                                        "dilation": op.dilation, "groups": op.groups}
    qop = cls(mant, np.zeros(mant.shape[0], np.int64), **extra, weight_exp=e,
              weight_bits=spec.weights.mantissa_bits)
    err = float(np.abs(mant * s * 2**e - w).max() / (float(np.abs(w).max()) or 1.0))
    return qop, mant, {"layer": name, "weight_exp": e, "state_scale": s, "max_rel_error": err}


def _synapses(syns: list[tuple[Node, float, float]], theta: float, alpha: float,
              spec: TargetSpec) -> tuple[list[Node], float, list[dict]]:
    """Integer synapses sharing one state unit ``s`` (several edges into one population: their
    integer currents add in the neuron's a_in): each one's own choice (``_synapse``), then the
    coarsest unit of them for all, each with the finest exponent that fits its mantissas, and
    the unit doubled while the summed one-sided input of one step could wrap a_in."""
    if len(syns) == 1:
        (syn, u_in, p_in), = syns
        qsyn, s, rec = _synapse(syn.op, u_in, p_in, theta, alpha, spec, syn.name)
        return [syn.replace(op=qsyn)], s, [rec]
    s = max(_synapse(syn.op, u, p, theta, alpha, spec, syn.name)[1] for syn, u, p in syns)
    wmax = 2 ** (spec.weights.mantissa_bits - 1) - 1
    while True:
        out, recs, reach = [], [], 0.0
        for syn, u_in, p_in in syns:
            w = np.asarray(syn.op.weight, np.float64) * u_in
            m = float(np.abs(w).max()) or 1.0
            e = int(np.clip(np.ceil(np.log2(m / (wmax * s))), spec.weights.exp_min,
                            spec.weights.exp_max))
            qop, mant, rec = _at_unit(syn.op, w, s, e, spec, syn.name)
            rows = (mant * 2.0**e).reshape(mant.shape[0], -1)
            reach += max(np.clip(rows, 0, None).sum(1).max(),
                         -np.clip(rows, None, 0).sum(1).min()) * p_in
            out.append(syn.replace(op=qop))
            recs.append(rec)
        if reach / max(1.0 - alpha, 1.0 / 4096) <= _A_MAX:
            return out, s, recs
        s *= 2.0


def _population(op: leaky.LeakyNeurons, syn_bias: np.ndarray, s: float, spec: TargetSpec,
                name: str) -> tuple[leaky.QLeakyNeurons, dict]:
    alpha, beta = _uniform(op.alpha, "alpha", name), _uniform(op.beta, "beta", name)
    theta = _uniform(op.threshold, "threshold", name)
    if op.reset == "zero" and np.any(np.asarray(op.v_reset) != 0):
        raise NotQuantizable(f"layer '{name}': reset to v_reset != 0 (Loihi resets v to 0)")
    if np.any(syn_bias != 0) and alpha != 0:
        raise NotQuantizable(f"layer '{name}': a synaptic bias into a decaying current "
                             "(CubaLIF) has no Loihi equivalent (a neuron bias adds to v)")
    vth = round(theta / s)
    if not 0 < vth < 2**spec.neuron.vth_mant_bits:
        raise NotQuantizable(f"layer '{name}': threshold {theta:.3g} is {vth} state units, "
                             f"outside 1..{2**spec.neuron.vth_mant_bits - 1}")
    du, dv = decays(alpha, beta)
    total = np.broadcast_to(np.asarray(op.bias, np.float64), syn_bias.shape) + syn_bias
    bmant, bexp = _bias(total * 64.0 / s, spec, name)
    qop = leaky.QLeakyNeurons(op.alpha, op.beta, op.threshold, op.bias, op.v_reset, op.reset,
                              du=du, dv=dv, vth_mant=vth, bias_mant=bmant, bias_exp=bexp,
                              state_scale=s)
    eff_a, eff_b = (4096 - du - 1) / 4096, (4096 - dv) / 4096
    return qop, {"du": du, "dv": dv, "vth_mant": vth, "bias_exp": bexp,
                 "alpha": alpha, "alpha_loihi": eff_a, "beta": beta, "beta_loihi": eff_b}


def quantize_leaky(graph: Graph, spec: TargetSpec, *, input_scale: float = 1.0,
                   input_signed: bool = False, input_max: float | None = None
                   ) -> tuple[Graph, dict]:
    """The integer graph of an imported SNN and its report (see the module docstring).
    ``input_max``: the largest input payload (calibration data; default the code's maximum)."""
    consumers = graph.consumers()
    unit: dict[str, float] = {}  # float value of one payload unit of each value
    pmax: dict[str, float] = {}  # largest payload of a value
    nodes: list[Node] = []
    # value feeding a population -> its synapses (float node, unit, pmax) and, for several
    # edges into one node, the Add that sums them
    pending: dict[str, tuple[list[tuple[Node, float, float]], Node | None]] = {}
    layers = []
    for n in graph.nodes:
        op, src = n.op, (n.inputs[0].name if n.inputs else None)
        if isinstance(op, leaky.SpikeTrainInput):
            bits = 8
            qop = leaky.QSpikeTrainInput(op.timesteps, float(input_scale), bits, input_signed)
            nodes.append(n.replace(op=qop))
            unit[n.name] = float(input_scale)
            pmax[n.name] = float(input_max if input_max is not None
                                 else 2 ** (bits - 1) - 1 if input_signed else 2**bits - 1)
        elif isinstance(op, ops.Reshape):
            nodes.append(n)
            unit[n.name], pmax[n.name] = unit[src], pmax[src]
        elif isinstance(op, (ops.Dense, ops.Conv2d)):
            cons = consumers.get(n.name, [])
            if len(cons) == 1 and _feeds_population(cons[0], consumers):
                key = cons[0].name if isinstance(cons[0].op, ops.Add) else n.name
                pending.setdefault(key, ([], None))[0].append((n, unit[src], pmax[src]))
                continue
            nodes.append(n.replace(op=_sum_pool(n, op)))
            w0 = float(np.asarray(op.weight).reshape(-1)[0])
            k = int(np.prod(op.weight.shape[2:]))
            unit[n.name], pmax[n.name] = unit[src] * w0, pmax[src] * k
        elif isinstance(op, ops.Add) and n.name in pending:
            if len(pending[n.name][0]) != len(n.inputs):
                raise NotQuantizable(f"layer '{n.name}': edges into one population are "
                                     "quantizable from Dense/Conv synapses only")
            pending[n.name] = (pending[n.name][0], n)
        elif isinstance(op, (leaky.LeakyNeurons, leaky.LeakyIntegrator)):
            if src not in pending:
                raise NotQuantizable(f"layer '{n.name}': neurons fed by something other than "
                                     "Dense/Conv synapses are not quantizable")
            syns, add = pending.pop(src)
            theta = (_uniform(op.threshold, "threshold", n.name)
                     if isinstance(op, leaky.LeakyNeurons) else 1.0)
            alpha = float(np.max(op.alpha))
            qsyns, s, recs = _synapses(syns, theta, alpha, spec)
            nodes += qsyns + ([add] if add is not None else [])
            rec = recs[0] if len(recs) == 1 else {**recs[0], "synapses": recs}
            syn_bias = sum(np.broadcast_to(_per_neuron(syn.op), n.output.shape)
                           .astype(np.float64) for syn, _, _ in syns)
            if isinstance(op, leaky.LeakyNeurons):
                qop, prec = _population(op, syn_bias, s, spec, n.name)
                rec.update(prec)
            else:
                qop = leaky.QLeakyReadout(op.alpha, op.beta, op.bias,
                                          syn_bias.astype(np.float32), float(s))
            nodes.append(n.replace(op=qop))
            layers.append({**rec, "population": n.name})
            unit[n.name], pmax[n.name] = 1.0, 1.0
        else:
            raise NotQuantizable(f"layer '{n.name}' ({type(op).__name__}): not quantizable in "
                                 "an imported spiking network (supported: Dense, Conv, pools "
                                 "before a synapse, Flatten, IF/LIF/CubaLIF, LI outputs)")
    report = {"kind": "imported-snn", "target": spec.name, "input_scale": float(input_scale),
              "layers": layers}
    return graph.replace(nodes=tuple(nodes)), report


def _feeds_population(node: Node, consumers) -> bool:
    """Whether ``node`` is a population, or an Add (several edges into one node) read only by
    one."""
    kinds = (leaky.LeakyNeurons, leaky.LeakyIntegrator)
    if isinstance(node.op, ops.Add):
        cons = consumers.get(node.name, [])
        return len(cons) == 1 and isinstance(cons[0].op, kinds)
    return isinstance(node.op, kinds)


def _per_neuron(op: ops.Op) -> np.ndarray:
    """A synapse's bias broadcast like the population (per output channel for convolutions)."""
    b = np.asarray(op.bias, np.float64)
    return b.reshape(-1, 1, 1) if isinstance(op, ops.Conv2d) else b


def _sum_pool(n: Node, op: ops.Op) -> q.SumPool2d:
    """A pool (uniform depthwise convolution, no bias, no padding) as a routed sum pool."""
    w = np.asarray(op.weight)
    ok = (isinstance(op, ops.Conv2d) and op.groups == w.shape[0] and w.shape[1] == 1
          and np.all(w == w.reshape(-1)[0]) and not np.any(op.bias)
          and op.padding == (0, 0, 0, 0) and op.dilation == (1, 1))
    if not ok:
        raise NotQuantizable(f"layer '{n.name}': a synapse feeding another synapse is "
                             "quantizable only as an unpadded sum/average pool")
    return q.SumPool2d(tuple(int(k) for k in w.shape[2:]), tuple(op.stride))

