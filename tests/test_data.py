"""DATA.npz loading: the happy path and one clear ``BadData`` line for each malformed file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from snnc.data import Dataset, load_dataset
from snnc.errors import BadData

SHAPE = (1, 4, 4)


def save(tmp_path, name="d.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def good_x(n=5, dtype=np.float32):
    return np.random.default_rng(0).standard_normal((n, *SHAPE)).astype(dtype)


def bad(path, match, **kw):
    kw.setdefault("num_classes", 10)
    with pytest.raises(BadData, match=match) as e:
        load_dataset(path, SHAPE, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def test_loads_x_and_y(tmp_path):
    x = good_x()
    p = save(tmp_path, x=x, y=np.arange(5, dtype=np.int32))
    d = load_dataset(p, SHAPE, num_classes=10)
    assert isinstance(d, Dataset) and len(d) == 5 and d.path == str(p)
    assert d.x.dtype == np.float32 and d.y.dtype == np.int64
    np.testing.assert_array_equal(d.x, x)
    np.testing.assert_array_equal(d.y, np.arange(5))


def test_no_labels_and_cast(tmp_path):
    d = load_dataset(save(tmp_path, x=good_x(dtype=np.float64)), SHAPE)
    assert d.y is None and d.x.dtype == np.float32
    d = load_dataset(save(tmp_path, "u8.npz", x=np.ones((2, *SHAPE), np.uint8)), SHAPE)
    assert d.x.dtype == np.float32 and d.x.sum() == 32


def test_limit(tmp_path):
    p = save(tmp_path, x=good_x(), y=np.arange(5))
    d = load_dataset(p, SHAPE, limit=2)
    assert len(d) == 2 and d.y.tolist() == [0, 1]
    assert len(load_dataset(p, SHAPE, limit=100)) == 5
    bad(p, r"limit must be a positive integer, got 0", limit=0)


def test_missing_file(tmp_path):
    bad(tmp_path / "nope.npz", r"data file .*nope\.npz: does not exist$")


def test_directory(tmp_path):
    bad(tmp_path, "is not a file")


def test_text_file(tmp_path):
    p = tmp_path / "d.npz"
    p.write_text("x,y\n1,2\n")
    bad(p, r"is not a valid \.npz archive")


def test_truncated_zip(tmp_path):
    p = save(tmp_path, x=good_x())
    p.write_bytes(p.read_bytes()[:200])
    bad(p, r"is not a valid \.npz archive")


def test_npy_instead_of_npz(tmp_path):
    p = tmp_path / "d.npy"
    np.save(p, good_x())
    bad(p, r"is a single \.npy array, not an \.npz archive")


def test_pickle_refused(tmp_path):
    x = np.empty(2, dtype=object)
    x[0], x[1] = np.zeros(SHAPE), np.ones(SHAPE)
    p = save(tmp_path, x=x)
    bad(p, r"key 'x' holds Python objects that need pickle to load; refusing")


def test_missing_x(tmp_path):
    p = save(tmp_path, images=good_x(), labels=np.arange(5))
    bad(p, r"missing key 'x' \(keys present: images, labels\)")


def test_empty_x(tmp_path):
    bad(save(tmp_path, x=np.zeros((0, *SHAPE), np.float32)), r"x is empty \(0 samples\)")
    bad(save(tmp_path, "s.npz", x=np.float32(1)), r"x is empty \(0 samples\)")


def test_wrong_shape(tmp_path):
    p = save(tmp_path, x=np.zeros((3, 4, 4), np.float32))
    bad(p, re.escape("x has per-sample shape (4, 4), the model expects (1, 4, 4)"))


def test_non_numeric_x(tmp_path):
    p = save(tmp_path, x=np.array([["a"] * 16] * 2).reshape(2, *SHAPE))
    bad(p, r"x has non-numeric dtype <U1")


def test_nan_and_inf(tmp_path):
    x = good_x()
    x[3, 0, 1, 1] = np.nan
    x[4, 0, 0, 0] = np.inf
    bad(save(tmp_path, x=x), r"x contains 1 NaN and 1 Inf values \(first in sample 3\)")


def test_float64_overflow_is_inf(tmp_path):
    x = good_x(dtype=np.float64)
    x[1, 0, 0, 0] = 1e300
    bad(save(tmp_path, x=x), r"x contains 0 NaN and 1 Inf values \(first in sample 1\)")


def test_nan_beyond_limit_ignored(tmp_path):
    x = good_x()
    x[4] = np.nan
    assert len(load_dataset(save(tmp_path, x=x), SHAPE, limit=4)) == 4


def test_label_length_mismatch(tmp_path):
    bad(save(tmp_path, x=good_x(), y=np.arange(4)), r"y has 4 labels but x has 5 samples")


def test_non_integer_labels(tmp_path):
    bad(save(tmp_path, x=good_x(), y=np.array([0, 1, 2.5, 3, 4])),
        r"y has dtype float64; labels must be integer class indices")
    bad(save(tmp_path, "b.npz", x=good_x(), y=np.ones(5, bool)), r"y has dtype bool")


def test_one_hot_labels(tmp_path):
    bad(save(tmp_path, x=good_x(), y=np.eye(5, dtype=np.int64)), r"one-hot labels\?")


def test_labels_out_of_range(tmp_path):
    bad(save(tmp_path, x=good_x(), y=np.array([0, 1, 10, 3, 4])),
        re.escape("y[2] = 10 is outside [0, 10) (the model has 10 classes)"))
    bad(save(tmp_path, "n.npz", x=good_x(), y=np.array([0, -1, 2, 3, 4])),
        re.escape("y[1] = -1 is negative"), num_classes=None)


def test_require_labels(tmp_path):
    bad(save(tmp_path, x=good_x()), r"finetune file .*: has no labels: key 'y' is missing",
        require_labels=True, what="finetune")
