"""Data larger than memory: ``--data`` as one .npz read in row ranges, or a directory of .npz
shards read as one data set (files in name order, rows concatenated).

The driver of a sharded run reads only the archives' headers (``open_source``: rows per file,
labels or not); each worker reads its own rows (``read_rows``). A member stored uncompressed
(``np.savez``, not ``np.savez_compressed``) is memory-mapped, so a worker touches only its
rows' bytes; a compressed member is decompressed whole, one file at a time (give large sets as
many compressed shards or one uncompressed archive). Rows go through ``load_dataset``'s checks
(dtype, shape, finite values, labels), so a shard fails with the message a whole file would.
"""

from __future__ import annotations

import functools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from snnc.data import Dataset, load_dataset
from snnc.errors import BadData

__all__ = ["DataFile", "DataSource", "is_data_directory", "open_source", "read_rows"]

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


@dataclass(frozen=True)
class DataFile:
    """One .npz archive of a data source: its path, rows of ``x`` and whether it has ``y``."""

    path: str
    rows: int
    labelled: bool


@dataclass(frozen=True)
class DataSource:
    """A data set as files: one .npz, or the .npz files of a directory in name order;
    ``rows`` is the number of samples used (after ``limit``)."""

    path: str
    files: tuple[DataFile, ...]
    rows: int

    @property
    def labelled(self) -> bool:
        return self.files[0].labelled


def is_data_directory(data) -> bool:
    """Whether ``data`` names a directory (of .npz shards)."""
    return isinstance(data, (str, Path)) and Path(data).is_dir()


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and header length of the .npy stream ``f``."""
    version = np.lib.format.read_magic(f)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(f)
    return tuple(shape), fortran, dtype, f.tell()


def _file_header(path: Path, what: str) -> DataFile:
    def fail(msg: str) -> NoReturn:
        raise BadData(f"{what} file {path}: {msg}")

    if not path.is_file():
        fail("does not exist" if not path.exists() else "is not a file")
    if not zipfile.is_zipfile(path):
        fail("is not a valid .npz archive (not a zip file, or truncated)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "x.npy" not in names:
                keys = sorted(n[:-4] for n in names if n.endswith(".npy"))
                fail(f"missing key 'x' (keys present: {', '.join(keys) or 'none'})")
            with zf.open("x.npy") as f:
                xshape = _npy_header(f)[0]
            yshape = None
            if "y.npy" in names:
                with zf.open("y.npy") as f:
                    yshape = _npy_header(f)[0]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        fail(f"cannot be read ({e})")
    if not xshape or xshape[0] == 0:
        fail("x is empty (0 samples)")
    if yshape is not None and len(yshape) == 1 and yshape[0] != xshape[0]:
        fail(f"y has {yshape[0]} labels but x has {xshape[0]} samples")
    return DataFile(str(path), int(xshape[0]), yshape is not None)


def open_source(data: str | Path, *, limit: int | None = None,
                what: str = "data") -> DataSource:
    """The files of ``data`` (an .npz or a directory of them) from their headers only.

    Raises:
        BadData: a missing or unreadable file, no ``x``, a directory without .npz files, or
            shards of which some have labels and others not.
    """
    path = Path(data)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise BadData(f"{what} file {path}: limit must be a positive integer, got {limit!r}")
    if path.is_dir():
        files = tuple(_file_header(p, what) for p in sorted(path.glob("*.npz")))
        if not files:
            raise BadData(f"{what} directory {path}: holds no .npz files")
        mixed = [f for f in files if f.labelled != files[0].labelled]
        if mixed:
            with_y, without = (files[0], mixed[0]) if files[0].labelled else (mixed[0], files[0])
            raise BadData(f"{what} directory {path}: {Path(without.path).name} has no labels "
                          f"'y' but {Path(with_y.path).name} has; label every shard or none")
    else:
        files = (_file_header(path, what),)
    rows = sum(f.rows for f in files)
    return DataSource(str(path), files, rows if limit is None else min(rows, limit))


def _member_rows(path: str, zf: zipfile.ZipFile, key: str, rows: tuple[int, int]) -> np.ndarray:
    """Rows ``[a, b)`` of member ``key`` (first axis): memory-mapped when stored uncompressed in
    C order, else decompressed and sliced (a copy, so the whole array is freed)."""
    info = zf.getinfo(f"{key}.npy")
    with zf.open(info) as f:
        shape, fortran, dtype, header = _npy_header(f)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    a, b = rows
    if not shape:
        return np.load(path, allow_pickle=False)[key]
    if info.compress_type == zipfile.ZIP_STORED and not fortran:
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(_LOCAL_HEADER)
        if local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header of member {key}.npy")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + _LOCAL_HEADER + name_len + extra_len + header
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        return np.memmap(path, dtype=dtype, mode="r", offset=start + a * row_bytes,
                         shape=(b - a, *shape[1:]))
    with np.load(path, allow_pickle=False) as z:
        whole = z[key]
    return whole[a:b].copy() if (a, b) != (0, shape[0]) else whole


def _read_range(path: Path, fail, *, rows: tuple[int, int]):
    """A ``load_dataset`` reader: keys, and rows ``[a, b)`` of ``x`` and ``y``."""
    try:
        with zipfile.ZipFile(path) as zf:
            keys = sorted(n[:-4] for n in zf.namelist() if n.endswith(".npy"))
            x = _member_rows(str(path), zf, "x", rows)
            y = _member_rows(str(path), zf, "y", rows) if "y" in keys else None
    except ValueError as e:
        if "pickle" in str(e).lower():
            fail("holds Python objects that need pickle to load; refusing (save plain numeric "
                 "arrays)")
        fail(f"cannot be read ({e})")
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        fail(f"cannot be read ({type(e).__name__}: {e})")
    return keys, x, y


def read_rows(source: DataSource, lo: int, hi: int, input_shape: tuple[int, ...], *,
              num_classes: int | None = None, what: str = "data",
              y_kind: str = "labels") -> Dataset:
    """Samples ``[lo, hi)`` of ``source`` (rows counted over its files in order), checked as
    ``load_dataset`` checks a file (``y_kind`` as there: labels, regression targets or auto);
    errors name the file the rows come from."""
    pieces: list[Dataset] = []
    start = 0
    for f in source.files:
        a, b = max(lo, start), min(hi, start + f.rows)
        if a < b:
            reader = functools.partial(_read_range, rows=(a - start, b - start))
            pieces.append(load_dataset(f.path, input_shape, num_classes=num_classes, what=what,
                                       reader=reader, y_kind=y_kind))
        start += f.rows
    if not pieces:
        raise BadData(f"{what} {source.path}: rows {lo}..{hi} are outside its {source.rows}")
    if len(pieces) == 1:
        return Dataset(pieces[0].x, pieces[0].y, source.path)
    y = None if pieces[0].y is None else np.concatenate([p.y for p in pieces])
    return Dataset(np.concatenate([p.x for p in pieces]), y, source.path)
