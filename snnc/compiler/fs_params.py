"""Few-spike (FS) neuron parameter tables (Stöckl & Maass 2021, ALGORITHMS.md section 2).

An FS neuron approximates a scalar activation ``f`` with ``K`` time steps and at most ``K`` spikes.
It has no leak; its parameters are three length-``K`` sequences: threshold ``T(t)``, reset amount
``h(t)`` and output weight ``d(t)``. This module holds

* :class:`FSTable`, the immutable parameter table, and the reference dynamics :func:`encode`
  (numpy, float64) and :func:`encode_torch` (same semantics, any float dtype and device);
* :func:`relu_table`, the closed-form FS-ReLU (``T = h = d = alpha * 2**-t``), which is exactly a
  K-bit quantizer; the shipped :data:`SWISH` (K=16) and :data:`SIGMOID` (K=12) tables, copied from
  the released ``fs_weights.py``;
* :func:`fit`, the published fitting recipe (``find_coeffs.py``) with a disk cache, and
  :func:`table_for`, which picks the table for an activation kind.

The update order is the one of ``fs_coding.py`` (spike, then reset), not the one of the fitting
scripts: only this order reproduces the shipped tables' accuracy (ALGORITHMS.md 2.2).

Example:
    >>> import numpy as np
    >>> y, spikes = encode(relu_table(25.0), np.array([-1.0, 3.0, 30.0]))
    >>> y.tolist(), spikes.sum(axis=0).tolist()
    ([0.0, 2.978515625, 24.9755859375], [0, 5, 10])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FSTable",
    "relu_table",
    "SWISH",
    "SIGMOID",
    "encode",
    "encode_torch",
    "fit",
    "mse",
    "importance_weights",
    "table_for",
    "cache_dir",
]

# Bump when anything that changes fit()'s result changes, so stale cache entries are not reused.
_FIT_VERSION = 1


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
    K = _check_K(K)
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
    import torch

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


def mse(table: FSTable, fn: Callable, x_range=(-10.0, 10.0), n_points: int = 100_001) -> float:
    """Mean squared error of the FS neuron against ``fn`` on ``linspace(*x_range, n_points)``."""
    x = np.linspace(float(x_range[0]), float(x_range[1]), int(n_points))
    y, _ = encode(table, x)
    return float(np.mean((y - np.asarray(fn(x), dtype=np.float64)) ** 2))


def importance_weights(x, mean: float, std: float, x_range=None) -> np.ndarray:
    """Optional loss weights of ``find_coeffs.py``: piecewise linear 0.5, 1, 10, 11, 10, 1, 0.5.

    The knots are ``[x_min, mean-3std, mean-2std, mean, mean+2std, mean+3std, x_max]``, where
    ``x_range`` defaults to ``(min(x), max(x))``. It concentrates accuracy where the activation's
    inputs actually lie.
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi = (float(x.min()), float(x.max())) if x_range is None else map(float, x_range)
    xp = [lo, mean - 3 * std, mean - 2 * std, mean, mean + 2 * std, mean + 3 * std, hi]
    return np.interp(x, xp, [0.5, 1, 10, 11, 10, 1, 0.5])


def cache_dir() -> Path:
    """Directory of cached :func:`fit` results: ``$SNNC_CACHE_DIR`` or ``~/.cache/snnc/fs_tables``."""
    env = os.environ.get("SNNC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "snnc" / "fs_tables"


def fit(
    fn: Callable,
    K: int,
    x_range=(-10.0, 10.0),
    *,
    restarts: int = 8,
    steps: int = 2000,
    seed: int = 0,
    importance=None,
    cache: bool = True,
    n_points: int = 20_000,
    patience: int = 400,
    lr_range: tuple[float, float] = (0.09, 0.5),
    polish_steps: int = 500,
    polish_top: int = 8,
    polish_lr_range: tuple[float, float] = (0.01, 0.05),
    explore_ls: bool = False,
    polish_ls: bool = False,
    name: str | None = None,
) -> FSTable:
    """Fit an FS table to ``fn`` on ``x_range`` with the published recipe (ALGORITHMS.md 2.4).

    Recipe (``find_coeffs.py``, in the ``fs_coding.py`` update order):

    * data ``x = linspace(*x_range, n_points)``, ``y = fn(x)``. The paper uses 100000 points;
      20000 (default) gives the same fits on smooth targets at a fifth of the cost;
    * forward pass with a hard spike ``z = H(v_s)``, ``v_s = (v - T(t)) / (|v| + 1)``, and the
      pseudo-derivative ``dz/dv_s = max(1 - |v_s|, 0)`` in the backward pass;
    * loss ``mean(imp (y - y_hat)^2) + lambda_v sum_t mean(max(|v_s| - 1, 0))^2`` with
      ``lambda_v ~ U[0.08, 0.12]`` redrawn every step (the spike-count term has weight 0 there);
    * Adam with the learning rate redrawn from ``U[lr_range]`` every step; init
      ``h ~ U[-1, 0]``, ``d ~ U[-0.5, 1]``, ``T ~ U[-1, 1]``;
    * ``restarts`` random restarts keeping the global best.

    Deviations, for a budget of seconds instead of hours (the paper runs 100 restarts of >= 5000
    steps): the restarts run as one batch (independent parameters, per-restart Adam state, lr and
    lambda_v); each restart stops after ``steps`` steps or after ``patience`` steps without a 0.1%
    improvement of its data loss; the learning rate is drawn from ``U[0.005, 0.05]`` rather than
    ``U[0.09, 0.5]``, which in a few thousand steps mostly random-walks around the optimum (on
    tanh, K=12, 8x2000 steps: MSE ~1e-4 here against ~1e-2 with the published range); per
    restart the parameters with the lowest (forward-exact) data loss are kept, and the winner
    is the one with the lowest float64 weighted MSE on the grid. Training runs in float32.

    Args:
        fn: Numpy-vectorised target activation.
        K: Number of time steps.
        x_range: ``(x_min, x_max)`` of the fitting grid.
        restarts: Number of random restarts (run in parallel).
        steps: Maximum Adam steps per restart.
        seed: Seed of every random draw; the result is deterministic for a given seed.
        importance: ``None`` (weight 1), an array of ``n_points`` weights, or a callable
            ``imp(x)`` (e.g. built with :func:`importance_weights`).
        cache: Read/write the result in :func:`cache_dir`, keyed by a hash of ``fn``'s values on
            the grid, the importance weights, ``K``, ``x_range`` and every fitting setting.
        n_points: Grid size.
        patience: Early-stopping patience, in steps.
        lr_range: Bounds of the per-step uniform learning-rate draw.
        name: Name of the returned table (default ``fit:<fn name>:K=<K>``).

    Returns:
        The best table found, with ``h(K) = 0`` (unused).
    """
    K = _check_K(K)
    lo, hi = float(x_range[0]), float(x_range[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"x_range must be finite with x_min < x_max, got {x_range}")
    if restarts < 1 or steps < 1 or n_points < 2 or patience < 1:
        raise ValueError("restarts, steps, patience must be >= 1 and n_points >= 2")
    x = np.linspace(lo, hi, int(n_points))
    y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        raise ValueError("fn must map the grid to finite values of the same shape")
    imp = _importance_array(importance, x)
    if name is None:
        name = f"fit:{getattr(fn, '__name__', 'fn')}:K={K}"

    settings = {
        "version": _FIT_VERSION, "K": K, "x_range": [lo, hi], "restarts": int(restarts),
        "steps": int(steps), "seed": int(seed), "n_points": int(n_points),
        "patience": int(patience), "lr_range": [float(lr_range[0]), float(lr_range[1])],
        "polish_steps": int(polish_steps), "polish_top": int(polish_top),
        "polish_lr_range": [float(polish_lr_range[0]), float(polish_lr_range[1])],
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(y.tobytes())
    digest.update(b"imp" + (b"none" if imp is None else imp.tobytes()))
    path = cache_dir() / f"{digest.hexdigest()[:32]}.json"
    if cache:
        hit = _read_cache(path)
        if hit is not None:
            return FSTable(h=hit.h, d=hit.d, T=hit.T, name=name)

    t0 = time.perf_counter()
    import torch

    gen = torch.Generator().manual_seed(int(seed))

    def uniform(shape, a, b):  # drawn in float64 so the stream does not depend on dtype
        return a + (b - a) * torch.rand(shape, generator=gen, dtype=torch.float64)

    R = int(restarts)
    init = torch.stack([uniform((R, K), -1, 0), uniform((R, K), -0.5, 1), uniform((R, K), -1, 1)])
    found = _train(x, y, imp, init, steps=int(steps), patience=int(patience),
                   lr_range=settings["lr_range"], gen=gen, ls_d=explore_ls)
    w = np.ones_like(x) if imp is None else imp
    errs = _weighted_errors(found, x, y, w)
    if polish_steps > 0:
        top = np.argsort(errs, kind="stable")[: min(int(polish_top), R)]
        polished = _train(x, y, imp, found[:, torch.as_tensor(top)], steps=int(polish_steps),
                          patience=int(patience), lr_range=settings["polish_lr_range"], gen=gen,
                          ls_d=polish_ls)
        found = torch.cat([found, polished], dim=1)
        errs = np.concatenate([errs, _weighted_errors(polished, x, y, w)])
    i = int(np.argmin(errs))  # first wins ties: deterministic
    h = found[0, i].numpy().copy()
    h[-1] = 0.0  # never used; 0 like the shipped tables
    best = FSTable(h=h, d=found[1, i].numpy(), T=found[2, i].numpy(), name=name)
    best_err = float(errs[i])
    if cache:
        record = best.to_dict() | {
            "weighted_mse": best_err, "settings": settings, "seconds": time.perf_counter() - t0,
        }
        _write_cache(path, record)
    return best


# --------------------------------------------------------------------------------------------
# internals


def _check_K(K) -> int:
    if isinstance(K, bool) or int(K) != K or int(K) < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    return int(K)


def _importance_array(importance, x: np.ndarray) -> np.ndarray | None:
    if importance is None:
        return None
    w = importance(x) if callable(importance) else importance
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), x.shape).copy()
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("importance weights must be finite and >= 0")
    return w


def _weighted_errors(params, x, y, w) -> np.ndarray:
    """float64 weighted MSE on the grid of each candidate in ``params`` (3, R, K)."""
    p = params.double().numpy()
    errs = []
    for r in range(p.shape[1]):
        table = FSTable(h=p[0, r], d=p[1, r], T=p[2, r])
        errs.append(float(np.mean(w * (encode(table, x)[0] - y) ** 2)))
    return np.array(errs)


def _train(x, y, imp, init, *, steps: int, patience: int, lr_range, gen, ls_d: bool = False):
    """Train the FS tables ``init`` (3, R, K) in parallel; return each one's best parameters.

    Restarts share no parameters, so summing their losses keeps their gradients independent;
    Adam is written out to give each restart its own learning rate and lambda_v draw.
    """
    import torch
    _, R, K = init.shape
    lr_lo, lr_hi = lr_range

    def uniform(shape, a, b):
        return a + (b - a) * torch.rand(shape, generator=gen, dtype=torch.float64)

    params = init.detach().to(torch.float32).clone().requires_grad_(True)  # (3, R, K): h, d, T
    xt = torch.as_tensor(x, dtype=torch.float32).expand(R, -1)
    yt = torch.as_tensor(y, dtype=torch.float32)
    wt = None if imp is None else torch.as_tensor(imp, dtype=torch.float32)

    m = torch.zeros_like(params)
    s = torch.zeros_like(params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8  # Adam defaults (TF uses eps=1e-8 too)
    best_loss = torch.full((R,), math.inf, dtype=torch.float64)
    best_params = params.detach().clone()
    last_improved = torch.zeros(R, dtype=torch.long)
    active = torch.ones(R, dtype=torch.bool)

    for step in range(1, steps + 1):
        lam = uniform((R,), 0.08, 0.12).to(torch.float32)
        lr = uniform((R,), lr_lo, lr_hi).to(torch.float32)
        # Per-step columns as (R, 1) views, via one unbind (cheaper than K slices).
        h, d, T = (p.t().unsqueeze(-1).unbind(0) for p in params.unbind(0))
        v, out = xt, torch.zeros_like(xt)
        v_scaled, zs = [], []
        for t in range(K):
            v_s = (v - T[t]) / (v.abs() + 1)
            v_scaled.append(v_s)
            z = _SurrogateSpike.apply(v_s)
            zs.append(z)
            if not ls_d:
                out = torch.addcmul(out, d[t], z)
            if t < K - 1:
                v = torch.addcmul(v, h[t], z, value=-1.0)
        d_used = params[1]
        if ls_d:
            Z = torch.stack(zs, dim=1)  # (R, K, N)
            with torch.no_grad():
                Zd = Z.double()
                Zw = Zd if wt is None else Zd * wt.double()
                G = torch.einsum("rkn,rjn->rkj", Zw, Zd) / Zd.shape[-1]
                b = torch.einsum("rkn,n->rk", Zw, yt.double()) / Zd.shape[-1]
                G = G + 1e-9 * torch.eye(K, dtype=G.dtype)
                d_used = torch.linalg.solve(G, b.unsqueeze(-1)).squeeze(-1).float()
            out = torch.einsum("rk,rkn->rn", d_used, Z)
        # sum_t mean(max(|v_s| - 1, 0))^2, batched over t
        v_reg = torch.relu(torch.stack(v_scaled).abs() - 1).mean(dim=2).square().sum(dim=0)
        err2 = (out - yt) ** 2
        data_loss = (err2 if wt is None else wt * err2).mean(dim=1)  # (R,)
        loss = (data_loss + lam * v_reg).sum()
        (grad,) = torch.autograd.grad(loss, params)

        with torch.no_grad():
            # The forward pass is exact (hard spikes), so data_loss is the true error of the
            # parameters before this update: keep the best ones seen.
            dl = data_loss.double()
            better = dl < best_loss
            cur = params.detach().clone()
            cur[1] = d_used
            best_params[:, better] = cur[:, better]
            last_improved[(dl < best_loss * (1 - 1e-3)) & active] = step
            best_loss = torch.where(better, dl, best_loss)
            active &= (step - last_improved) < patience
            if not bool(active.any()):
                break
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            s.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            rate = (lr * active.to(lr.dtype)).view(1, R, 1)  # stopped restarts stay frozen
            params.sub_(rate * (m / (1 - beta1**step)) / ((s / (1 - beta2**step)).sqrt() + eps))
    return best_params.double()


def _surrogate_spike_class():
    import torch

    class SurrogateSpike(torch.autograd.Function):
        """Heaviside forward; pseudo-derivative max(1 - |v_s|, 0) backward (util.py)."""

        @staticmethod
        def forward(ctx, v_s):
            ctx.save_for_backward(v_s)
            return (v_s > 0).to(v_s.dtype)

        @staticmethod
        def backward(ctx, grad_out):
            (v_s,) = ctx.saved_tensors
            return grad_out * torch.clamp(1 - v_s.abs(), min=0)

    return SurrogateSpike


class _LazySpike:
    """Defers the torch import until fit() runs (numpy-only users never import torch)."""

    _cls = None

    def apply(self, v_s):
        if _LazySpike._cls is None:
            _LazySpike._cls = _surrogate_spike_class()
        return _LazySpike._cls.apply(v_s)


_SurrogateSpike = _LazySpike()


def _read_cache(path: Path) -> FSTable | None:
    try:
        with open(path, encoding="utf-8") as f:
            return FSTable.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or corrupt entry: refit and overwrite


def _write_cache(path: Path, record: dict) -> None:
    """Atomic write: a reader sees either no file or a complete one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only cache must not break compilation; the fit is just not reused


def table_for(kind: str, *, alpha: float | None = None, K: int | None = None) -> FSTable:
    """FS table for an activation kind.

    Args:
        kind: ``"relu"``, ``"silu"``/``"swish"`` or ``"sigmoid"`` (case-insensitive).
        alpha: ReLU range (required for ``"relu"``, rejected otherwise: the shipped tables have a
            fixed range).
        K: Time steps. ReLU: default 10. Swish/sigmoid: must be ``None`` or the shipped K
            (16 / 12); other K need :func:`fit`.

    Returns:
        The table.

    Raises:
        ValueError: Unknown kind, missing ``alpha`` for ReLU, or unsupported ``K``/``alpha``.
    """
    key = str(kind).lower()
    if key == "relu":
        if alpha is None:
            raise ValueError("table_for('relu') needs alpha (the activation's range)")
        return relu_table(alpha, 10 if K is None else K)
    shipped = {"silu": SWISH, "swish": SWISH, "sigmoid": SIGMOID}
    if key not in shipped:
        raise ValueError(f"unknown FS activation kind {kind!r}; known: relu, silu, swish, sigmoid")
    table = shipped[key]
    if alpha is not None:
        raise ValueError(f"alpha applies to 'relu' only, not {kind!r}")
    if K is not None and int(K) != table.K:
        raise ValueError(
            f"the shipped {table.name} table has K={table.K}; for K={K} fit one with fit()"
        )
    return table
