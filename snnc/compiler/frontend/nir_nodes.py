"""One converter per NIR node type: NIR fields -> IR ops (``NODE_CONVERTERS``).

Each converter gets the node's record, its input shape (per sample) and the discretization step
``dt``, and returns a list of ``(suffix, op)`` to append in order (the last one keeps the node's
name) plus the gain its input current must be multiplied by (neurons: folded into the synapse
before them by the loader), or raises ``ShapeError``/``ValueError`` naming the problem.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.compiler.frontend.nir_reader import NirNode
from snnc.ir import leaky, ops
from snnc.ir.ops import ShapeError

__all__ = ["NEURON_TYPES", "NODE_CONVERTERS", "reset_of"]

Converted = tuple[list[tuple[str, ops.Op]], np.ndarray | None]


def _arr(node: NirNode, key: str, default=None) -> np.ndarray:
    v = node.params.get(key, default)
    if v is None:
        raise ValueError(f"missing field '{key}'")
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"field '{key}' holds NaN or Inf")
    return a


def _pair(v, name: str) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size != 2:
        raise ValueError(f"{name} {a.tolist()} is not one or two integers")
    return int(a[0]), int(a[1])


def _fits(param: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A neuron parameter as an array broadcasting to the population ``shape``."""
    try:
        np.broadcast_to(param, shape)
    except ValueError:
        raise ShapeError(f"{what} has shape {tuple(param.shape)}, the input has shape "
                         f"{shape}") from None
    if param.ndim > len(shape):
        param = param.reshape(param.shape[param.ndim - len(shape):])
    return param.astype(np.float32)


def reset_of(node: NirNode) -> tuple[str, np.ndarray]:
    """(reset mode, v_reset): a ``v_reset`` field (nir >= 1.0.5) resets to it; metadata
    ``reset``/``reset_mechanism`` ('zero'|'subtract') is honoured; else reset to 0, as the
    snntorch and norse readers and Loihi's LIF do."""
    v_reset = node.params.get("v_reset")
    mode = str(node.metadata.get("reset") or node.metadata.get("reset_mechanism") or "zero")
    mode = {"subtraction": "subtract", "to_zero": "zero"}.get(mode, mode)
    if mode not in leaky.RESETS:
        raise ValueError(f"reset '{mode}' unsupported (zero or subtract)")
    return mode, np.asarray(0.0 if v_reset is None else v_reset, np.float64)


def _neuron(node: NirNode, shape, alpha, beta, gain, bias, spiking: bool) -> Converted:
    fit = {k: _fits(np.asarray(v, np.float64), shape, k)
           for k, v in {"alpha": alpha, "beta": beta, "gain": gain, "bias": bias}.items()}
    if spiking:
        mode, v_reset = reset_of(node)
        op = leaky.LeakyNeurons(fit["alpha"], fit["beta"],
                                _fits(_arr(node, "v_threshold"), shape, "v_threshold"),
                                fit["bias"], _fits(v_reset, shape, "v_reset"), mode)
    else:
        op = leaky.LeakyIntegrator(fit["alpha"], fit["beta"], fit["bias"])
    return [("", op)], fit["gain"]


def convert_if(node: NirNode, shape, dt: float) -> Converted:
    # discrete-time IF as sinabs and rockpool write it: v += r I per step (no dt)
    return _neuron(node, shape, 0.0, 1.0, _arr(node, "r"), 0.0, True)


def convert_lif(node: NirNode, shape, dt: float) -> Converted:
    tau = _arr(node, "tau")
    k = dt / tau
    return _neuron(node, shape, 0.0, 1.0 - k, _arr(node, "r") * k, _arr(node, "v_leak") * k,
                   True)


def _cuba(node: NirNode, shape, dt: float, spiking: bool) -> Converted:
    ks, km = dt / _arr(node, "tau_syn"), dt / _arr(node, "tau_mem")
    gain = _arr(node, "w_in", 1.0) * ks * _arr(node, "r") * km
    return _neuron(node, shape, 1.0 - ks, 1.0 - km, gain, _arr(node, "v_leak") * km, spiking)


def convert_li(node: NirNode, shape, dt: float) -> Converted:
    k = dt / _arr(node, "tau")
    return _neuron(node, shape, 0.0, 1.0 - k, _arr(node, "r") * k, _arr(node, "v_leak") * k,
                   False)


def convert_affine(node: NirNode, shape, dt: float) -> Converted:
    w = _arr(node, "weight")
    b = _arr(node, "bias") if node.type == "Affine" else np.zeros(w.shape[0])
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise ShapeError(f"weight {w.shape} / bias {b.shape} are not (out, in) / (out,)")
    op = ops.Dense(w.astype(np.float32), b.astype(np.float32))
    op.infer(shape)
    return [("", op)], None


def _padding(pad, kernel, dilation) -> tuple[int, int, int, int]:
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0, 0, 0)
        if pad == "same":
            tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return (tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2)
        raise ValueError(f"padding '{pad}' unsupported (same, valid or integers)")
    ph, pw = _pair(pad, "padding")
    return (ph, pw, ph, pw)


def _conv2d(node: NirNode, shape, w: np.ndarray, stride, pad, dil) -> ops.Conv2d:
    b = _arr(node, "bias", np.zeros(w.shape[0]))
    if b.size == 1 and w.shape[0] > 1:
        b = np.full(w.shape[0], float(b.reshape(-1)[0]))
    dil = _pair(dil, "dilation")
    op = ops.Conv2d(w.astype(np.float32), b.reshape(-1).astype(np.float32),
                    _pair(stride, "stride"), _padding(pad, w.shape[2:], dil), dil,
                    int(np.asarray(node.params.get("groups", 1)).reshape(-1)[0]))
    op.infer(shape)
    return op


def convert_conv2d(node: NirNode, shape, dt: float) -> Converted:
    w = _arr(node, "weight")
    if w.ndim != 4:
        raise ShapeError(f"weight {w.shape} is not (out, in/groups, kh, kw)")
    p = node.params
    return [("", _conv2d(node, shape, w, p.get("stride", 1), p.get("padding", 0),
                         p.get("dilation", 1)))], None


def convert_conv1d(node: NirNode, shape, dt: float) -> Converted:
    """A Conv2d over (C, 1, L) between two reshapes."""
    w = _arr(node, "weight")
    if w.ndim != 3 or len(shape) != 2:
        raise ShapeError(f"weight {w.shape} / input {shape} are not (out, in, k) / (C, L)")
    p = node.params

    def one(v, name):
        return (1, _pair(v, name)[0]) if not isinstance(v, str) else v

    pad = p.get("padding", 0)
    pad = pad if isinstance(pad, str) else (0, _pair(pad, "padding")[0])
    conv = _conv2d(node, (shape[0], 1, shape[1]), w[:, :, None, :], one(p.get("stride", 1),
                   "stride"), pad, one(p.get("dilation", 1), "dilation"))
    if isinstance(pad, str) and pad == "same":  # 'same' pads nothing along the unit axis
        conv = ops.Conv2d(conv.weight, conv.bias, conv.stride,
                          (0, conv.padding[1], 0, conv.padding[3]), conv.dilation, conv.groups)
    out = conv.infer((shape[0], 1, shape[1]))
    return [("/as2d", ops.Reshape((shape[0], 1, shape[1]))), ("/conv", conv),
            ("", ops.Reshape((out[0], out[2])))], None


def _pool(node: NirNode, shape, dt: float, average: bool) -> Converted:
    """Sum and average pools as depthwise convolutions with uniform weights (exact; quantize
    turns one that feeds another synapse into a routed sum pool)."""
    if len(shape) != 3:
        raise ShapeError(f"expects a (C, H, W) input, got {shape}")
    k = _pair(node.params.get("kernel_size"), "kernel_size")
    stride = node.params.get("stride")
    stride = k if stride is None else stride
    c = shape[0]
    w = np.full((c, 1, *k), 1.0 / (k[0] * k[1]) if average else 1.0)
    params = {**node.params, "groups": c, "bias": np.zeros(c)}
    conv = _conv2d(NirNode(node.name, node.type, params), shape, w, stride,
                   node.params.get("padding", 0), 1)
    return [("", conv)], None


def convert_flatten(node: NirNode, shape, dt: float) -> Converted:
    n = len(shape)
    start = int(np.asarray(node.params.get("start_dim", 0)))
    end = int(np.asarray(node.params.get("end_dim", -1)))
    start, end = start % n if n else 0, end % n if n else 0
    if start > end:
        raise ShapeError(f"start_dim {start} > end_dim {end} for input {shape}")
    out = (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])
    return [("", ops.Reshape(tuple(int(d) for d in out)))], None


def convert_scale(node: NirNode, shape, dt: float) -> Converted:
    s = _fits(_arr(node, "scale"), shape, "scale")
    return [("/scale", ops.Constant(np.broadcast_to(s, shape).astype(np.float32))),
            ("", ops.Mul())], None


NODE_CONVERTERS = {
    "Affine": convert_affine, "Linear": convert_affine,
    "Conv1d": convert_conv1d, "Conv2d": convert_conv2d,
    "SumPool2d": lambda n, s, dt: _pool(n, s, dt, False),
    "AvgPool2d": lambda n, s, dt: _pool(n, s, dt, True),
    "Flatten": convert_flatten, "Scale": convert_scale,
    "IF": convert_if, "LIF": convert_lif,
    "CubaLIF": lambda n, s, dt: _cuba(n, s, dt, True),
    "LI": convert_li, "CubaLI": lambda n, s, dt: _cuba(n, s, dt, False),
}
NEURON_TYPES = ("IF", "LIF", "CubaLIF", "LI", "CubaLI")
