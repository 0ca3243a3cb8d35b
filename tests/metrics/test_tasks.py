"""The task table of ``simulate`` (snnc/metrics/tasks.py): which task ``auto`` picks, the
regression metrics on hand-computed arrays, target shapes, and ``y`` read as targets."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.data import load_dataset
from snnc.errors import BadData, SnncError
from snnc.metrics.tasks import (
    TASK_METRICS,
    classification_metrics,
    data_y_kind,
    regression_metrics,
    resolve_task,
    scored_as,
    targets_for,
)

LABELS = np.array([1, 0, 2])


@pytest.mark.parametrize("shape,y,want", [
    ((10,), None, "classification"),
    ((10,), LABELS, "classification"),
    ((10,), np.zeros((3, 10), np.float32), "regression"),
    ((1,), np.zeros(3, np.float32), "regression"),
    ((1, 28, 28), None, "regression"),
    ((1, 28, 28), LABELS, "regression"),
])
def test_auto_picks_classification_only_for_vectors_with_integer_labels(shape, y, want):
    assert resolve_task("auto", shape, y) == want
    assert resolve_task("regression", (10,), LABELS) == "regression"  # explicit wins


def test_data_y_kind_and_unknown_task():
    assert data_y_kind("auto", (10,)) == "auto" and data_y_kind("auto", (1, 4, 4)) == "targets"
    assert data_y_kind("classification", (1, 4, 4)) == "labels"
    with pytest.raises(SnncError, match="unknown task 'segmentation'; available: auto, "
                                        "classification, regression"):
        data_y_kind("segmentation", (10,))


def test_regression_metrics_by_hand():
    ann = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)  # ||ann|| = 5
    snn = np.array([[3.0, 4.0], [0.0, 1.5]], np.float32)  # ||snn - ann|| = 1.5
    y = np.array([[2.0, 4.0], [0.0, 2.0]], np.float32)  # mean 2; SS_tot = 0 + 4 + 4 + 0 = 8
    m = regression_metrics(snn, ann, y)
    assert m["task"] == "regression" and m["accuracy"] is m["agreement"] is None
    assert m["rel_l2_vs_ann"] == pytest.approx(0.3) and m["max_abs_error_vs_ann"] == 1.5
    # snn - y = (1, 0, 0, -0.5): mse 1.25/4, mae 1.5/4, R^2 = 1 - 1.25/8, rel ||(1,.5)||/||y||
    assert m["mse"] == pytest.approx(0.3125) and m["mae"] == pytest.approx(0.375)
    assert m["r2"] == pytest.approx(1 - 1.25 / 8)
    assert m["relative_error"] == pytest.approx(np.sqrt(1.25) / np.sqrt(24))
    # ann - y = (1, 0, 0, -2)
    assert m["ann_mse"] == pytest.approx(1.25) and m["ann_r2"] == pytest.approx(1 - 5 / 8)
    none = regression_metrics(snn, ann, None)
    assert none["mse"] is none["ann_r2"] is None and none["rel_l2_vs_ann"] == pytest.approx(0.3)


def test_classification_metrics_are_the_top1_ones():
    snn = np.eye(3)[[1, 0, 0]]
    ann = np.eye(3)[[1, 0, 2]]
    assert classification_metrics(snn, ann, LABELS) == {
        "accuracy": 2 / 3, "ann_accuracy": 1.0, "agreement": 2 / 3}
    assert set(TASK_METRICS) == {"classification", "regression"}


def test_targets_must_match_the_output_shape():
    assert targets_for(np.zeros(4, np.float32), (1,), "f").shape == (4, 1)
    with pytest.raises(BadData, match=r"f: y has per-sample shape \(28, 28\), the model's "
                                      r"output has shape \(1, 28, 28\)"):
        targets_for(np.zeros((4, 28, 28), np.float32), (1, 28, 28), "f")
    task, y = scored_as("auto", (2,), np.ones((3, 2), np.float64), "f")
    assert task == "regression" and y.dtype == np.float32


def test_load_dataset_reads_float_targets(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((5, 3), np.float32), y=np.arange(10.0).reshape(5, 2))
    ds = load_dataset(path, (3,), limit=2, y_kind="targets")
    assert ds.y.dtype == np.float32 and ds.y.tolist() == [[0, 1], [2, 3]]
    with pytest.raises(BadData, match=r"expected \(5,\) class indices"):
        load_dataset(path, (3,), y_kind="labels")
    np.savez(path, x=np.zeros((5, 3), np.float32), y=np.zeros((4, 2)))
    with pytest.raises(BadData, match=r"y has shape \(4, 2\): regression targets need one row "
                                      r"per sample \(5 rows, like x\)"):
        load_dataset(path, (3,), y_kind="auto")
    np.savez(path, x=np.zeros((2, 3), np.float32), y=np.array([1.0, np.nan]))
    with pytest.raises(BadData, match="y contains 1 NaN or Inf values"):
        load_dataset(path, (3,), y_kind="targets")
