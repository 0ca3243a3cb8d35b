"""What a simulation's outputs are scored on, per task: one entry per task in ``TASK_METRICS``.

* ``classification``: the outputs are class scores; top-1 ``accuracy`` of the SNN and the ANN
  against integer labels ``y`` (N,), and ``agreement`` (same top-1 as the ANN).
* ``regression``: the outputs are values (a regression head, an autoencoder's image, a
  segmentation map's logits); the SNN output against the ANN output over every value of every
  sample: ``rel_l2_vs_ann`` = ||SNN - ANN||_2 / ||ANN||_2 and ``max_abs_error_vs_ann``; with
  float targets ``y`` (N, *output shape): ``mse``, ``mae``, ``r2`` (1 - SS_res / SS_tot, SS_tot
  about the mean of all target values) and ``relative_error`` (||out - y||_2 / ||y||_2) of the
  SNN, and the same of the ANN with an ``ann_`` prefix. ``accuracy``, ``ann_accuracy`` and
  ``agreement`` are null, so code that reads them finds the key.

``auto`` picks classification when the output is one vector per sample and ``y`` is absent or
1-D integer class labels, regression otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snnc.errors import BadData, SnncError

__all__ = [
    "HEADLINE",
    "TASKS",
    "TASK_METRICS",
    "check_task",
    "classification_metrics",
    "data_y_kind",
    "regression_metrics",
    "resolve_task",
    "scored_as",
    "targets_for",
]

TASKS = ("auto", "classification", "regression")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise SnncError(f"unknown task '{task}'; available: {', '.join(TASKS)}")
    return task


def data_y_kind(task: str, output_shape: tuple[int, ...]) -> str:
    """How ``snnc.data.load_dataset`` reads ``y`` for ``task`` (its ``y_kind``)."""
    if check_task(task) == "classification":
        return "labels"
    return "auto" if task == "auto" and len(output_shape) == 1 else "targets"


def resolve_task(task: str, output_shape: tuple[int, ...], y: np.ndarray | None) -> str:
    """The task scored: ``task`` itself, or for ``auto`` classification when the output is a
    vector per sample and ``y`` is absent or integer labels, else regression."""
    if check_task(task) != "auto":
        return task
    labels = y is None or (y.ndim == 1 and np.issubdtype(y.dtype, np.integer))
    return "classification" if len(output_shape) == 1 and labels else "regression"


def targets_for(y: np.ndarray | None, output_shape: tuple[int, ...], source: str):
    """Regression targets ``y`` shaped (N, *output_shape); a scalar output also takes (N,).
    Raises BadData naming ``source`` (the data file) and both shapes otherwise."""
    if y is None:
        return None
    want = tuple(int(d) for d in output_shape)
    if tuple(y.shape[1:]) == want:
        return y
    if y.ndim == 1 and int(np.prod(want)) == 1:
        return y.reshape(len(y), *want)
    raise BadData(f"{source}: y has per-sample shape {tuple(int(d) for d in y.shape[1:])}, the "
                  f"model's output has shape {want} (regression targets match the output)")


def scored_as(task: str, output_shape: tuple[int, ...], y: np.ndarray | None, source: str):
    """(the task ``task`` resolves to, ``y`` as that task scores it: labels as they are,
    regression targets as float32 shaped like the output; ``targets_for``'s error otherwise)."""
    task = resolve_task(task, output_shape, y)
    if task == "regression" and y is not None:
        y = targets_for(y.astype(np.float32, copy=False), output_shape, source)
    return task, y


def classification_metrics(snn: np.ndarray, ann: np.ndarray, y: np.ndarray | None) -> dict:
    snn_top = snn.reshape(len(snn), -1).argmax(1)
    ann_top = ann.reshape(len(ann), -1).argmax(1)
    return {"accuracy": None if y is None else float((snn_top == y).mean()),
            "ann_accuracy": None if y is None else float((ann_top == y).mean()),
            "agreement": float((snn_top == ann_top).mean())}


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _against_targets(out: np.ndarray, y: np.ndarray | None) -> dict:
    if y is None:
        return dict.fromkeys(("mse", "mae", "r2", "relative_error"))
    err = out - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = _ratio(float((err ** 2).sum()), ss_tot)
    return {"mse": float((err ** 2).mean()), "mae": float(np.abs(err).mean()),
            "r2": None if r2 is None else 1.0 - r2,
            "relative_error": _ratio(float(np.linalg.norm(err)), float(np.linalg.norm(y)))}


def regression_metrics(snn: np.ndarray, ann: np.ndarray, y: np.ndarray | None) -> dict:
    s = snn.reshape(len(snn), -1).astype(np.float64)
    a = ann.reshape(len(ann), -1).astype(np.float64)
    t = None if y is None else y.reshape(len(y), -1).astype(np.float64)
    own, base = _against_targets(s, t), _against_targets(a, t)
    return {"task": "regression", "accuracy": None, "ann_accuracy": None, "agreement": None,
            "rel_l2_vs_ann": _ratio(float(np.linalg.norm(s - a)), float(np.linalg.norm(a))),
            "max_abs_error_vs_ann": float(np.abs(s - a).max()) if s.size else 0.0,
            **own, **{f"ann_{k}": v for k, v in base.items()}}


Scorer = Callable[..., dict]  # (snn outputs, ann outputs, y or None) -> metrics

# task -> the metrics of its outputs (keys merged into the simulate --json object)
TASK_METRICS: dict[str, Scorer] = {
    "classification": classification_metrics,
    "regression": regression_metrics,
}

# task -> the keys the CLI table and the HTML report show first
HEADLINE: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "ann_accuracy", "agreement"),
    "regression": ("rel_l2_vs_ann", "max_abs_error_vs_ann", "mse", "ann_mse", "mae", "r2",
                   "ann_r2", "relative_error"),
}
