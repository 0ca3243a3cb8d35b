"""Few-spike (FS) coding (Stöckl & Maass 2021, docs/methods.md): the parameter table of an FS
neuron and its reference dynamics, shared by the compiler (which fits tables) and the simulators
(which run them).

An FS neuron approximates a scalar activation ``f`` with ``K`` time steps and at most ``K`` spikes.
It has no leak; its parameters are three length-``K`` sequences: threshold ``T(t)``, reset amount
``h(t)`` and output weight ``d(t)``. This module holds :class:`FSTable`; :func:`encode` (numpy,
float64) and :func:`encode_torch` (same semantics, any float dtype and device); the closed-form
FS-ReLU :func:`relu_table` (``T = h = d = alpha * 2**-t``, exactly a K-bit quantizer); the shipped
:data:`SWISH` (K=16) and :data:`SIGMOID` (K=12) tables, copied from the released
``fs_weights.py``. The fitter for other activations is ``snnc.compiler.fs_params``.

The update order is the one of ``fs_coding.py`` (spike, then reset), not the one of the fitting
scripts: only this order reproduces the shipped tables' accuracy (ALGORITHMS.md 2.2).

Example:
    >>> import numpy as np
    >>> y, spikes = encode(relu_table(25.0), np.array([-1.0, 3.0, 30.0]))
    >>> y.tolist(), spikes.sum(axis=0).tolist()
    ([0.0, 2.978515625, 24.9755859375], [0, 5, 10])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["FSTable", "relu_table", "SWISH", "SIGMOID", "encode", "encode_torch", "check_K"]


@dataclass(frozen=True, eq=False)
class FSTable:
    """Parameters of one FS neuron: ``h``, ``d``, ``T`` for steps t = 1..K (stored 0-based).

    Discrete-time dynamics (``fs_coding.py`` order; ``x`` is the neuron's input, loaded once):

        v(1) = x;  y = 0
        for t = 1..K:
            z(t)   = [v(t) > T(t)]          # strict comparison
            y     += d(t) * z(t)            # value seen downstream
            v(t+1) = v(t) - h(t) * z(t)     # reset by subtraction

    The output is ``y = sum_t d(t) z(t)``; ``h(K)`` is never used. Arrays are float64, 1-D, of
    equal length ``K`` and read-only. Equality compares the numbers and the name.

    Attributes:
        h: Reset amounts h(1..K).
        d: Output weights d(1..K).
        T: Thresholds T(1..K).
        name: Human-readable label (e.g. ``"swish"``, ``"relu(alpha=25,K=10)"``).
    """

    h: np.ndarray
    d: np.ndarray
    T: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        arrays = {}
        for key in ("h", "d", "T"):
            a = np.array(getattr(self, key), dtype=np.float64)  # copy: callers keep theirs
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"FSTable.{key} must be a non-empty 1-D array, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"FSTable.{key} must be finite")
            a.setflags(write=False)
            arrays[key] = a
        if not arrays["h"].size == arrays["d"].size == arrays["T"].size:
            raise ValueError(
                "FSTable h, d, T must have equal length, got "
                f"{arrays['h'].size}, {arrays['d'].size}, {arrays['T'].size}"
            )
        for key, a in arrays.items():
            object.__setattr__(self, key, a)

    @property
    def K(self) -> int:
        """Number of time steps (and maximum number of spikes)."""
        return int(self.h.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FSTable):
            return NotImplemented
        return (
            self.name == other.name
            and np.array_equal(self.h, other.h)
            and np.array_equal(self.d, other.d)
            and np.array_equal(self.T, other.T)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.h.tobytes(), self.d.tobytes(), self.T.tobytes()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; floats round-trip exactly through ``json`` (shortest repr)."""
        return {
            "name": self.name,
            "K": self.K,
            "h": self.h.tolist(),
            "d": self.d.tolist(),
            "T": self.T.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FSTable:
        """Inverse of :meth:`to_dict`."""
        table = cls(h=data["h"], d=data["d"], T=data["T"], name=str(data.get("name", "custom")))
        if "K" in data and int(data["K"]) != table.K:
            raise ValueError(f"FSTable dict says K={data['K']} but has {table.K} entries")
        return table


def relu_table(alpha: float, K: int = 10) -> FSTable:
    """FS-ReLU with range ``alpha``: ``T(t) = h(t) = d(t) = alpha * 2**-t``.

    With the strict threshold this is the K-bit quantizer
    ``y = alpha 2^-K n`` with ``n = max{m in [0, 2^K - 1] : m alpha 2^-K < x}`` (or 0), i.e.
    ``floor(2^K x / alpha)`` clipped to ``[0, 2^K - 1]`` except at exact bin edges, which round
    down one step. The spikes are the binary digits of ``n``, most significant first. In float64
    every subtraction on the way is exact (Sterbenz), so this holds bit for bit.

    Args:
        alpha: Upper end of the represented range (the saturation value is ``alpha (1 - 2^-K)``).
        K: Number of time steps / bits.

    Returns:
        The table, named ``relu(alpha=...,K=...)``.
    """
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"relu_table needs a finite alpha > 0, got {alpha}")
    K = check_K(K)
    # Multiplying by a power of two is exact, so the thresholds are exactly alpha*2^-t.
    v = alpha * np.exp2(-np.arange(1, K + 1, dtype=np.float64))
    return FSTable(h=v, d=v, T=v, name=f"relu(alpha={alpha:g},K={K})")


# Shipped tables, copied from ALGORITHMS.md 2.3 (= FS-neurons/fs_weights.py). Fit losses in the
# file: Swish 0.01215, sigmoid 1.16e-4. h(K) = 0 because the last reset is never used.
SWISH = FSTable(
    h=[0.7844085, 1.7550646, 1.4212719, 1.9244663, 1.4400164, 1.9249276, 1.6100428, 1.29061,
       0.83985287, 3.0827985, 0.43503317, 0.5155389, 0.3269445, 7.618048, -14.419675, 0],
    d=[0.40088242, 1.8856316, 1.4915457, 1.947229, 1.4717816, 1.9147849, 1.6389303, 1.2934641,
       0.8703124, 0.68460804, 0.44262582, 0.32832766, 0.13907616, -0.26217145, 0.23736191,
       -0.14830568],
    T=[0.05946945, 1.6541206, 1.3066754, 1.3267198, 1.1000695, 1.2308974, 1.1188028, 0.9472501,
       0.5447531, 1.0236325, 0.11921431, -0.12855051, -0.44731247, -2.1383545, 1., -4.109145],
    name="swish",
)

SIGMOID = FSTable(
    h=[1.6558512, 1.0989026, 10.7739, 1.3579437, 1.0146959, 0.8972655, 2.1207616, 1.6949341,
       3.6397197, -2.1483946, 5.1177883, 0],
    d=[0.37689912, 0.21977554, 0.40271342, 0.17005783, 0.09584032, 0.06293014, 0.04360681,
       -0.0443096, 0.01999909, 0.07107325, 0.01502249, 0.01021793],
    T=[-0.00824843, -0.9319625, 1.0080122, -1.2074932, -1.7885877, -2.7065408, -3.2715735,
       0.07132628, -3.719372, -0.543918, -3.7693157, -5.5447803],
    name="sigmoid",
)


def encode(table: FSTable, x) -> tuple[np.ndarray, np.ndarray]:
    """Run the FS neuron on every element of ``x`` (numpy reference, float64).

    Args:
        table: The FS parameters.
        x: Neuron inputs, any shape; converted to float64.

    Returns:
        ``(y, spikes)``: ``y`` float64 with the shape of ``x``; ``spikes`` bool of shape
        ``(K, *x.shape)``, ``spikes[t-1]`` being z(t).
    """
    v = np.array(x, dtype=np.float64)  # copy: v is updated in place
    y = np.zeros_like(v)
    spikes = np.empty((table.K,) + v.shape, dtype=bool)
    for t in range(table.K):
        z = v > table.T[t]
        spikes[t] = z
        # Same IEEE operations as encode_torch (multiply by 0/1, then add/subtract) so both agree
        # bit for bit; h*0 = +-0 leaves v unchanged.
        zf = z.astype(np.float64)
        y += table.d[t] * zf
        v -= table.h[t] * zf
    return y, spikes


def encode_torch(table: FSTable, x, *, counts: bool = False):
    """Torch version of :func:`encode` for simulators: same dynamics, same order.

    Args:
        table: The FS parameters.
        x: A torch tensor of any shape, on any device. Floating tensors keep their dtype
            (float64 reproduces :func:`encode` exactly); others are cast to the default dtype.
        counts: Return each neuron's spike count (shape of ``x``) instead of the (K, ...) spike
            train: simulators that only count spikes save K-fold memory and a stack.

    Returns:
        ``(y, spikes)``: ``y`` with the shape, dtype and device of ``x``; ``spikes`` of shape
        ``(K, *x.shape)`` (or ``x.shape`` with ``counts``), same dtype (0.0 / 1.0) and device.
        Gradients are not defined through the threshold (use a surrogate for training, as
        :func:`fit` does).
    """
    if not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype())
    h, d, T = (table.h.tolist(), table.d.tolist(), table.T.tolist())
    v = x.clone()
    y = torch.zeros_like(x)
    z = torch.empty_like(x)
    fired = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    total = torch.zeros_like(x) if counts else None
    spikes = []
    for t in range(table.K):
        # In place, but the same IEEE operations as encode(): y + d*z and v - h*z with z in {0, 1}
        # are exact products, so the results agree bit for bit.
        z.copy_(torch.gt(v, T[t], out=fired))
        y.add_(z, alpha=d[t])
        v.sub_(z, alpha=h[t])
        if counts:
            total.add_(z)
        else:
            spikes.append(z.clone())
    return y, (total if counts else torch.stack(spikes, dim=0))


def check_K(K) -> int:
    if isinstance(K, bool) or int(K) != K or int(K) < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    return int(K)
