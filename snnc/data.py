"""Data files given to ``--calib``, ``--data`` and ``--finetune``: ``.npz`` archives with ``x``
(N, *input_shape), already preprocessed as the ONNX model expects, and optionally ``y`` (N,)
integer class labels. Loading never unpickles and reports every problem as one ``BadData`` line
naming the file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from snnc.errors import BadData

__all__ = ["Dataset", "check_targets", "is_label_array", "load_dataset"]

_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Dataset:
    """Samples and optional labels loaded from a DATA.npz file.

    Attributes:
        x: Inputs, float32, shape (N, *input_shape).
        y: Integer class labels (int64, shape (N,)), or None when the file has none.
        path: The file the data came from (for messages).
    """

    x: np.ndarray
    y: np.ndarray | None
    path: str

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _shape(s: tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in s))


def _read_key(npz, key: str, fail) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            fail(f"key {key!r} holds Python objects that need pickle to load; refusing "
                 "(save plain numeric arrays)")
        fail(f"key {key!r} cannot be read ({e})")
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        fail(f"key {key!r} cannot be read ({type(e).__name__}: {e})")
    raise AssertionError("unreachable")


def _check_labels(y: np.ndarray, n: int, num_classes: int | None, fail) -> np.ndarray:
    if y.ndim != 1:
        hint = " (one-hot labels? store class indices, e.g. y.argmax(1))" if y.ndim == 2 else ""
        fail(f"y has shape {_shape(y.shape)}, expected ({n},) class indices{hint}")
    if y.shape[0] != n:
        fail(f"y has {y.shape[0]} labels but x has {n} samples")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        fail(f"y has dtype {y.dtype}; labels must be integer class indices")
    if n and y.min() < 0:
        i = int(np.argmax(y < 0))
        fail(f"y[{i}] = {y[i]} is negative; labels must be class indices >= 0")
    if num_classes is not None and n and y.max() >= num_classes:
        i = int(np.argmax(y >= num_classes))
        fail(f"y[{i}] = {y[i]} is outside [0, {num_classes}) (the model has {num_classes} "
             "classes)")
    return y.astype(np.int64, copy=False)


def is_label_array(y: np.ndarray) -> bool:
    """True for what reads as class labels: a 1-D integer (not bool) array."""
    return y.ndim == 1 and y.dtype != np.bool_ and np.issubdtype(y.dtype, np.integer)


def check_targets(y: np.ndarray, n: int, fail) -> np.ndarray:
    """Regression targets ``y``: numbers, one row per sample, finite; returned as float32."""
    if y.ndim == 0 or y.shape[0] != n:
        fail(f"y has shape {_shape(y.shape)}: regression targets need one row per sample "
             f"({n} rows, like x)")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number) \
            or np.issubdtype(y.dtype, np.complexfloating):
        fail(f"y has non-numeric dtype {y.dtype}; regression targets must be numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        y = y.astype(np.float32, copy=False)
    if not np.isfinite(y).all():
        fail(f"y contains {int((~np.isfinite(y)).sum())} NaN or Inf values")
    return y


def _read_npz(path: Path, fail: Callable[[str], NoReturn]):
    """The keys, ``x`` and ``y`` (or None) of an .npz archive; ``fail`` names what is wrong with
    the file (missing, unreadable, not an archive, no ``x``)."""
    if not path.exists():
        fail("does not exist")
    if not path.is_file():
        fail("is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as e:
        fail(f"cannot be read ({e.strerror or e})")
    if head == _NPY_MAGIC:
        fail("is a single .npy array, not an .npz archive (save with np.savez(path, x=x, y=y))")
    # np.load on a non-zip file with allow_pickle=False reports a misleading pickle error, so
    # check the container first; truncated archives lack the zip end record and fail here too.
    if not zipfile.is_zipfile(path):
        fail("is not a valid .npz archive (not a zip file, or truncated)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        fail(f"is not a valid .npz archive ({e})")
    with npz:
        keys = sorted(npz.files)
        if "x" not in keys:
            fail(f"missing key 'x' (keys present: {', '.join(keys) or 'none'})")
        x = _read_key(npz, "x", fail)
        y = _read_key(npz, "y", fail) if "y" in keys else None
    return keys, x, y


def load_dataset(path: str | Path, input_shape: tuple[int, ...], *,
                 num_classes: int | None = None, limit: int | None = None,
                 require_labels: bool = False, what: str = "data",
                 reader: Callable | None = None, y_kind: str = "labels") -> Dataset:
    """Load and validate a DATA.npz file.

    Args:
        path: The .npz file.
        input_shape: The model's per-sample input shape (batch excluded).
        num_classes: When given, labels must lie in [0, num_classes).
        limit: Keep only the first ``limit`` samples (must be >= 1).
        require_labels: Fail when the file has no ``y``.
        what: What the file is for, used in messages ("data", "calib", "finetune").
        reader: ``reader(path, fail) -> (keys, x, y)`` instead of reading the whole archive
            (``snnc.data_shards`` reads row ranges, memory-mapped); the checks are the same.
        y_kind: "labels" (``y`` is integer class indices), "targets" (``y`` is regression
            targets: any finite numbers, one row per sample, read as float32) or "auto"
            (labels when ``y`` is a 1-D integer array, else targets).

    Returns:
        The dataset with ``x`` as float32 and ``y`` as int64 labels, float32 targets or None.

    Raises:
        BadData: One line naming the file and the problem.
    """
    path = Path(path)

    def fail(msg: str) -> NoReturn:
        raise BadData(f"{what} file {path}: {msg}")

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        fail(f"limit must be a positive integer, got {limit!r}")
    keys, x, y = (reader or _read_npz)(path, fail)

    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number) \
            or np.issubdtype(x.dtype, np.complexfloating):
        fail(f"x has non-numeric dtype {x.dtype}; expected float32 inputs")
    if x.ndim == 0 or x.shape[0] == 0:
        fail("x is empty (0 samples)")
    expected = tuple(int(d) for d in input_shape)
    if tuple(x.shape[1:]) != expected:
        fail(f"x has per-sample shape {_shape(x.shape[1:])}, the model expects "
             f"{_shape(expected)}")
    if require_labels and y is None:
        fail(f"has no labels: key 'y' is missing (keys present: {', '.join(keys)})")
    n = int(x.shape[0])
    if y is not None and y_kind != "labels":
        y_kind = "labels" if y_kind == "auto" and is_label_array(y) else "targets"
        if y_kind == "targets":
            y = check_targets(y, n, fail)
    if y is not None and y.ndim == 1 and y.shape[0] != n:
        fail(f"y has {y.shape[0]} labels but x has {n} samples")
    if limit is not None and limit < n:
        x = x[:limit]
        y = y[:limit] if y is not None and (y.ndim == 1 or y_kind == "targets") else y
        n = int(limit)
    # Cast before the finite check: float64 values beyond float32's range become Inf.
    with np.errstate(over="ignore", invalid="ignore"):
        x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad.reshape(n, -1).any(axis=1)))
        fail(f"x contains {int(np.isnan(x).sum())} NaN and {int(np.isinf(x).sum())} Inf values "
             f"(first in sample {i})")
    if y is not None and y_kind == "labels":
        y = _check_labels(y, n, num_classes, fail)
    return Dataset(x=x, y=y, path=str(path))
