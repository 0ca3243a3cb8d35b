"""Payload units: the ANN value one integer payload stands for. A float, or downstream of
per-channel single-spike amplitudes an array of the value's shape (a unit map)."""

from __future__ import annotations

import numpy as np
import torch

from snnc.compiler.quantize.formats import NotQuantizable
from snnc.ir import ops
from snnc.ir.graph import Node
from snnc.ir.interpret import ANN_RULES, max_pool2d
from snnc.ir.ops import Role

__all__ = ["Unit", "ann_weights", "channel_units", "routed_unit", "uniform", "weight_unit"]

Unit = float | np.ndarray


def uniform(u):
    """A unit map whose elements are all equal, as that float; anything else unchanged."""
    a = np.asarray(u, np.float64)
    return float(a.flat[0]) if a.size and (a == a.flat[0]).all() else a


def routed_unit(n: Node, units: list) -> np.ndarray:
    """The per-element payload unit of ``n``'s output when an input's unit is an array
    (single-spike populations: per-channel amplitudes): the op applied to the inputs' unit
    maps (max-pools and routing move units; average pools keep the window's unit, the 1/k
    going into the unit as for scalars). Zero padding pads unit 0 (its payloads are 0)."""
    maps = [torch.as_tensor(np.broadcast_to(np.asarray(u, np.float64), v.shape).copy()
                            ).unsqueeze(0) for u, v in zip(units, n.inputs)]
    # every max-pool (spiking ones too) moves its window's largest unit like the ANN max-pool
    rule = max_pool2d if n.op.role is Role.POOLING_GATE else ANN_RULES[type(n.op)]
    with torch.no_grad():
        return rule(n.op, *maps)[0].numpy()


def channel_units(u: np.ndarray, where: str) -> np.ndarray:
    """Per-channel units of a (C, H, W) unit map, which must be constant over each channel's
    positions (zero-padded positions aside)."""
    flat = np.asarray(u, np.float64).reshape(u.shape[0], -1)
    per_ch = flat.max(1)
    if not ((flat == per_ch[:, None]) | (flat == 0)).all():
        raise NotQuantizable(f"{where}: payload units vary inside a channel (not yet "
                             "quantizable)")
    return per_ch


def weight_unit(node: Node, u) -> np.ndarray | float:
    """The payload unit each weight of synaptic ``node`` multiplies, broadcasting like its
    weight: the scalar unit, or from a unit map (Dense: per input feature; Conv2d: per input
    channel of each weight's group)."""
    if not isinstance(u, np.ndarray):
        return float(u)
    op = node.op
    if isinstance(op, ops.Dense):
        return np.asarray(u, np.float64).reshape(1, -1)
    per_ch = channel_units(u, f"layer '{node.name}'")
    out_ch, in_per_group = op.weight.shape[:2]
    group = np.arange(out_ch)[:, None] // (out_ch // op.groups)
    return per_ch[group * in_per_group + np.arange(in_per_group)[None, :]][:, :, None, None]


def ann_weights(s: Node, unit: dict[str, Unit]) -> np.ndarray:
    """Synaptic layer ``s``'s weights times the payload units they multiply (ANN units)."""
    return np.asarray(s.op.weight, np.float64) * weight_unit(s, unit[s.inputs[0].name])
