"""lava-dl netx (HDF5) export of sequential rate-coded networks, and a numpy model of its semantics.

Requires: the float graph of a ``rate`` artifact that is a chain
``(Conv2d|Dense) IF [Reshape] (Conv2d|Dense) IF ... (Conv2d|Dense)`` (the last synapse is the
readout; it may also end in an IF population). Ensures: an HDF5 file that
``lava.lib.dl.netx.hdf5.Network(net_config=path, input_message_bits=INPUT_MESSAGE_BITS)``
loads: an ``input`` layer with the input shape, then one ``conv``/``dense`` layer per synapse
with a CUBA neuron. A 1-D network (Conv1d) is written in its 2-D form (planar.py): input and
layers ``(C, 1, L)``, 1 x k kernels.

Semantics of the exported file (what Lava runs; ``simulate_netx`` reproduces it bit for bit):

- netx builds Lava's ``LIF`` (fixed_pt): ``u(t) = a_in(t)`` (iDecay 4096: no current memory),
  ``v(t) = v(t-1) + u(t) + 64 bias``, spike if ``v > 64 vThMant`` (strict), then **v = 0**:
  reset to zero, not snnc's reset by subtraction; v(0) = 0 (snnc's v_init is dropped).
- Every synapse delays by one step (Lava's Dense/Conv send last step's accumulation), while
  biases act from step 1: layer i first sees input spikes at step i+1.
- Synapses deliver ``64 w s`` (Lava's Dense/Conv, fixed_pt: weights carry 6 fractional bits;
  s = 1 for a spike, the graded value for the input). Weights are 8-bit integers (conv
  |w| <= 127; dense up to 254, stored so that netx's ``optimize_weight_bits`` keeps them as they
  are). The membrane of an IF layer holds K = 64 vThMant / lambda times its ANN current, so
  w = round(vThMant W unit / lambda) with ``unit`` what one input integer stands for (lambda of
  the layer before, 2^-input_exp for the input) and bias mantissa round(vThMant b / lambda);
  vThMant is the largest that fits the weights, the 13-bit bias and 17 bits.
- The readout layer never fires (vThMant = 2^17-1): read its ``v``; ``v / readout_scale``
  (the ``snnc`` group of the file) is its ANN current summed over the steps it received input.
- Input: graded spikes g = round(x 2^input_exp) every step into the first synapse
  (``snnc/input_exp`` in the file; the finest that keeps the first layer's weights in range).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.backends.planar import as_planar
from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph

__all__ = [
    "INPUT_EXP",
    "INPUT_MESSAGE_BITS",
    "NETX_LAYERS",
    "REFUSED",
    "netx_layers",
    "simulate_netx",
    "write_netx",
]

INPUT_EXP = 6  # default analog input x -> graded spike round(x 2^6); the file's snnc/input_exp
INPUT_MESSAGE_BITS = 16  # pass to netx.hdf5.Network(input_message_bits=...)
_W_MAX = 127
_DENSE_W_MAX = 254  # netx keeps dense weights unscaled only when they fill 8 bits (below)
_VTH_MAX = (1 << 17) - 1
_INPUT_EXP_MAX = 12
_SYNAPSE_GAIN = 64  # Lava's Dense/Conv deliver 64 w s (6 fractional weight bits, as on Loihi)
_BIAS_MAX = 4095
_V_LIMIT = (1 << 23) - 1


# What a netx file holds: conv/dense synapses, each followed by IF (CUBA) neurons, and a flatten
# to a vector before a dense layer (see _blocks).
NETX_LAYERS = (ops.Conv2d, ops.Dense, neurons.IFNeurons, ops.Reshape)
_UNEXPRESSED = "netx cannot express this op (only conv/dense + CUBA, flatten)"
REFUSED: dict[type[ops.Op] | ops.Role, str] = {
    neurons.SpikingMaxPool2d: "spiking max-pool gate (netx has no pooling layers)",
    ops.Role.POPULATION: "only rate IF neurons map to netx CUBA neurons",
    ops.Role.RELAY: "only rate IF neurons map to netx CUBA neurons",
    **{role: _UNEXPRESSED for role in (ops.Role.CONSTANT, ops.Role.SYNAPTIC,
                                       ops.Role.ELEMENTWISE, ops.Role.ROUTING,
                                       ops.Role.NONLINEAR, ops.Role.POOLING_GATE,
                                       ops.Role.ENCODER, ops.Role.READOUT)},
}


def _netx_weight_shift(weight: np.ndarray) -> int:
    """The left shift netx's ``optimize_weight_bits`` applies to dense weights before Lava's Dense
    uses them (lava-dl 0.6, graded input: the matching weight exponent is not applied back, so
    only a shift of 0 keeps the stored integers as the effective weights)."""
    hi, lo = float(weight.max()), float(weight.min())
    if hi <= 0 and lo == 0:
        return 0
    if lo < 0 <= hi and hi > 0:
        scale, signed = min(127 / hi, -128 / lo), 1
    elif lo >= 0:
        scale, signed = 255 / hi, 0
    else:
        scale, signed = -256 / lo, 0
    return int(np.floor(np.log2(scale))) + signed


def _blocks(graph: Graph, method: str):
    """[(synapse node, IF node or None, flatten_before)] or BackendError listing every problem."""
    if method != "rate":
        raise BackendError(f"netx export supports method 'rate' (IF neurons as CUBA), not "
                           f"'{method}'")
    bad, blocks = [], []
    consumers = graph.consumers()
    for n in graph.nodes:
        if len(n.inputs) != 1 or len(consumers.get(n.name, [])) > 1:
            bad.append(f"'{n.name}' ({type(n.op).__name__}): not sequential")
    flatten, syn = False, None
    for n in graph.nodes:
        op, what = n.op, f"'{n.name}' ({type(n.op).__name__})"
        if isinstance(op, (ops.Conv2d, ops.Dense)):
            if syn is not None:
                blocks.append((syn, None, flatten))
                flatten = False
                if syn is not graph.nodes[-1]:
                    bad.append(f"'{syn.name}': synapse not followed by IF neurons")
            syn = n
            if isinstance(op, ops.Conv2d) and op.padding[:2] != op.padding[2:]:
                bad.append(f"{what}: asymmetric padding {op.padding}")
            if isinstance(op, ops.Dense) and len(n.inputs[0].shape) != 1:
                bad.append(f"{what}: dense on a non-vector input")
        elif isinstance(op, neurons.IFNeurons):
            if syn is None:
                bad.append(f"{what}: IF neurons without a synapse before them")
            else:
                blocks.append((syn, n, flatten))
                syn, flatten = None, False
        elif isinstance(op, ops.Reshape) and len(op.shape) == 1 and syn is None:
            flatten = True
        else:
            bad.append(f"{what}: {ops.refusal(op, REFUSED) or _UNEXPRESSED}")
    if syn is not None:
        blocks.append((syn, None, flatten))
    if not blocks:
        bad.append("no conv/dense layer")
    if bad:
        raise BackendError(f"netx cannot express {len(bad)} layer(s): " + "; ".join(bad))
    return blocks


def netx_layers(graph: Graph, method: str = "rate") -> list[dict]:
    """The integer layers of the netx file (see module docstring for the scaling).

    A layer's integer synaptic input is ``gain w s`` (gain 64 for the graded input, 1 for
    binary spikes); ``s`` stands for ``unit`` ANN units (2^-input_exp for the input, the
    amplitude lambda of the population before). The layer's membrane holds K times its ANN
    current: K = 64 vth / lambda for IF layers, so w = K W unit / gain, bias = K b / 64."""
    layers, unit, input_exp = [], 1.0, INPUT_EXP
    for syn, pop, flatten in _blocks(as_planar(graph), method):
        first, conv = not layers, isinstance(syn.op, ops.Conv2d)
        gain, w_max = _SYNAPSE_GAIN, (_W_MAX if conv else _DENSE_W_MAX)
        W, b = syn.op.weight.astype(np.float64), syn.op.bias.astype(np.float64)
        w_peak = float(np.abs(W).max()) or 1.0
        if pop is None:  # readout: never fires; its weights fill the 8 bits
            if first:
                unit = 2.0 ** -input_exp
            vth, K = _VTH_MAX, w_max * gain / (w_peak * unit)
        else:
            lam = float(pop.op.threshold)
            b_peak = float(np.abs(b).max(initial=0)) / lam
            vth = int(min(_VTH_MAX, np.floor(_BIAS_MAX / b_peak) if b_peak > 0 else _VTH_MAX))
            if first:  # the finest input resolution 2^-q that keeps |w| <= w_max
                need = vth * w_peak / (lam * w_max)
                input_exp = int(min(_INPUT_EXP_MAX, max(0, np.ceil(np.log2(need)))))
                unit = 2.0 ** -input_exp
            vth = int(min(vth, np.floor(w_max * lam * gain / (64 * w_peak * unit))))
            while not conv and vth > 1 and _netx_weight_shift(
                    np.round(64 * vth / lam * W * unit / gain)):
                vth -= 1
            if vth < 1:
                raise BackendError(
                    f"netx: layer '{syn.name}' needs weights up to "
                    f"{64 * w_peak * unit / (lam * gain):.1f} with its threshold at 64 weight "
                    f"units; netx's 8-bit weights hold at most {w_max}")
            K = 64 * vth / lam
        weight = np.round(K * W * unit / gain).astype(np.int64)
        bias = np.round(K * b / 64).astype(np.int64)
        if not conv and _netx_weight_shift(weight):
            raise BackendError(f"netx: layer '{syn.name}' weights cannot be stored without "
                               "netx rescaling them (weight exponent != 0)")
        if np.abs(bias).max(initial=0) > _BIAS_MAX:
            raise BackendError(f"netx: layer '{syn.name}' bias needs {np.abs(bias).max()}; "
                               f"netx's bias mantissa holds at most {_BIAS_MAX}")
        layers.append({"name": syn.name, "conv": conv, "op": syn.op, "weight": weight,
                       "bias": bias, "vth": vth, "scale": K, "shape": tuple(syn.output.shape),
                       "flatten": flatten, "spiking": pop is not None, "gain": gain,
                       "input_exp": input_exp})
        if pop is not None:
            unit = float(pop.op.amplitude)
    return layers


def write_netx(graph: Graph, path: Path | str, *, method: str = "rate") -> list[dict]:
    """Write the netx HDF5 file for ``graph``; returns its integer layers."""
    import h5py

    graph = as_planar(graph)  # (netx_layers then finds nothing to rewrite)
    layers = netx_layers(graph, method)

    def text(g, key, value):
        g.create_dataset(key, (1,), "S10", [value.encode("ascii")])

    with h5py.File(path, "w") as f:
        text(f.create_group("layer/0"), "type", "input")
        f["layer/0"].create_dataset("shape", data=np.array(graph.inputs[0].shape))
        i = 1
        for lay in layers:
            if lay["flatten"]:
                text(f.create_group(f"layer/{i}"), "type", "flatten")
                i += 1
            g = f.create_group(f"layer/{i}")
            i += 1
            op = lay["op"]
            g.create_dataset("shape", data=np.array(lay["shape"]))
            g.create_dataset("weight", data=lay["weight"].astype(np.float32))
            g.create_dataset("bias", data=lay["bias"].astype(np.float32))
            if lay["conv"]:
                text(g, "type", "conv")
                g.create_dataset("stride", data=np.array(op.stride))
                g.create_dataset("padding", data=np.array(op.padding[:2]))
                g.create_dataset("dilation", data=np.array(op.dilation))
                g.create_dataset("groups", data=int(op.groups))
            else:
                text(g, "type", "dense")
            for key, value in (("type", "CUBA"), ("iDecay", 4096), ("vDecay", 0),
                               ("vThMant", lay["vth"]), ("refDelay", 1),
                               ("gradedSpike", False)):
                if key == "type":
                    g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
                else:
                    g.create_dataset(f"neuron/{key}", data=value)
        meta = f.create_group("snnc")
        meta.create_dataset("input_exp", data=layers[0]["input_exp"])
        meta.create_dataset("input_message_bits", data=INPUT_MESSAGE_BITS)
        meta.create_dataset("readout_scale", data=float(layers[-1]["scale"]))
        meta.create_dataset("reset", data="zero")
    return layers


def _synapse(lay: dict, s: np.ndarray) -> np.ndarray:
    """Integer synaptic accumulation of one layer for spikes/graded values s (N, ...)."""
    import torch
    import torch.nn.functional as F

    if not lay["conv"]:
        return s.reshape(len(s), -1) @ lay["weight"].T
    op = lay["op"]
    y = F.conv2d(torch.from_numpy(s.astype(np.float64)),
                 torch.from_numpy(lay["weight"].astype(np.float64)), None, op.stride,
                 op.padding[:2], op.dilation, op.groups)
    return np.rint(y.numpy()).astype(np.int64)


def simulate_netx(graph: Graph, x: np.ndarray, steps: int, method: str = "rate"):
    """The exported file's semantics in numpy integers (see module docstring), on x (N, ...).
    Returns (spikes per layer: list of (steps, N, ...) bool, readout v of the last layer after
    ``steps``: (N, ...) int)."""
    graph = as_planar(graph)
    layers = netx_layers(graph, method)
    n = len(x)
    x = np.asarray(x, np.float64).reshape(n, *graph.inputs[0].shape)
    g = np.rint(x * 2.0 ** layers[0]["input_exp"]).astype(np.int64)
    buf = [np.zeros((n, *lay["shape"]), np.int64) for lay in layers]
    v = [np.zeros((n, *lay["shape"]), np.int64) for lay in layers]
    spikes = [np.zeros((steps, n, *lay["shape"]), bool) for lay in layers]
    for t in range(steps):
        inp = g
        for i, lay in enumerate(layers):
            a_in = buf[i]  # sent this step: accumulated from last step's input
            buf[i] = lay["gain"] * _synapse(lay, inp).reshape(n, *lay["shape"])
            bias = lay["bias"].reshape((-1,) + (1,) * (len(lay["shape"]) - 1))
            v[i] = np.clip(v[i] + a_in + 64 * bias, -_V_LIMIT, _V_LIMIT)
            s = v[i] > 64 * lay["vth"]
            v[i][s] = 0
            spikes[i][t] = s
            inp = s.astype(np.int64)
    return spikes, v[-1]
