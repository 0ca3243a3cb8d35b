"""Compiled artifacts: a directory holding the compiled IR graph, its arrays and the source model.

Layout of ``X.snnc/``::

    manifest.json   schema/snnc versions, hashes, caller keys (target, method, options, layers,
                    metrics...) and the graph's JSON structure under "graph"
    tensors.npz     every array of the graph (no pickle), deterministic bytes
    source.onnx     the original ONNX model (ANN accuracy is measured from it later)
    ...             extra files given by the caller (placement.json, report.html)

Writing is atomic (temp sibling directory, then an atomic exchange or rename) and deterministic
(same inputs, same bytes). Loading checks the schema version and every hash -- each file, each
tensor, and the manifest itself (``manifest_sha256``, over its canonical JSON without that key, so
hand edits of the graph section or the metrics are caught too) -- and raises ``ArtifactError``
with a one-line message naming the path and the problem.

A process killed mid-write leaves at most a hidden ``.NAME.tmp-PID-*`` directory next to the
artifact, never a partial ``NAME``; the next write of the same artifact removes such leftovers
of dead processes. For tests of exactly that, the environment variable ``SNNC_TEST_WRITE_DELAY``
(seconds, default 0) makes the writer sleep after each file it writes into the temp directory.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.errors import ArtifactError
from snnc.evaluate import export_artifact, simulate_artifact
from snnc.files import temp_sibling
from snnc.version import __version__
from snnc.ir.graph import Graph
from snnc.ir.serialize import graph_from_json, graph_to_json, npz_bytes

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST",
    "TENSORS",
    "SOURCE",
    "RESERVED_KEYS",
    "Artifact",
    "write_artifact",
    "load_artifact",
    "verify_artifact",
]

# 2: adds manifest_sha256 (integrity of the manifest itself, graph section included).
SCHEMA_VERSION = 2

MANIFEST = "manifest.json"
TENSORS = "tensors.npz"
SOURCE = "source.onnx"

# Manifest keys owned by this module: callers may not set them, or integrity could be forged.
RESERVED_KEYS = frozenset({
    "schema_version", "snnc_version", "source_sha256", "tensors_sha256", "tensor_sha256",
    "files_sha256", "manifest_sha256", "graph",
})
_TEST_DELAY_ENV = "SNNC_TEST_WRITE_DELAY"


@dataclass(frozen=True)
class Artifact:
    """A loaded (or in-memory) compiled artifact.

    Attributes:
        path: The artifact directory, or None for an artifact that was never written.
        graph: The compiled IR graph.
        manifest: The whole manifest (caller keys plus the integrity keys and "graph").
        source_model: The original ONNX model bytes.
    """

    path: Path | None
    graph: Graph
    manifest: dict
    source_model: bytes

    # Convenience methods mirroring the CLI; the work lives in snnc.evaluate.
    def simulate(self, data, *, backend: str = "cpu", limit: int | None = None,
                 float_mode: bool = False, batch_size: int | None = None, **kwargs):
        """Simulate on data (DATA.npz path or in-memory samples); returns ``snnc.evaluate.Metrics``
        (accuracy, spikes_per_neuron, latency_steps, ... as keys and attributes).
        See :func:`snnc.evaluate.simulate_artifact`."""
        return simulate_artifact(self, data, backend=backend, limit=limit,
                                 float_mode=float_mode, batch_size=batch_size, **kwargs)

    def export(self, fmt: str, out: str | Path, *, nir_reader: str = "generic") -> Path:
        """Export a rate artifact to ``fmt`` "nir" or "netx" at ``out``; returns the path.
        See :func:`snnc.evaluate.export_artifact`."""
        return export_artifact(self, fmt, out, nir_reader=nir_reader)

    def summary(self) -> dict:
        """The compile summary: target, method, layers, populations, neurons, latency and
        throughput steps, and for placed (Loihi-class) artifacts cores, chips and synapses."""
        m = self.manifest
        keys = ("target", "method", "source_model", "neurons", "latency_steps",
                "throughput_steps", "cores", "chips", "cores_lower_bound", "synapses")
        return {"path": None if self.path is None else str(self.path),
                **{k: m[k] for k in keys if k in m},
                "layers": len(m.get("layers", ())), "populations": len(m.get("populations", ()))}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_default(o: object) -> object:
    # Caller manifests often carry numpy scalars (metrics, counts) and small arrays.
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"manifest value of type {type(o).__name__} is not JSON serializable")


def _manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own digest; independent of whitespace
    and key order, so it is checked on the parsed document, not on the file's bytes."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=_json_default)
    return _sha256(text.encode("ascii"))


def _npz_entries(data: bytes) -> dict[str, bytes]:
    """Raw .npy bytes of each entry of an .npz archive, keyed by array name."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename.removesuffix(".npy"): zf.read(info) for info in zf.infolist()}


def _check_extra_name(name: str) -> None:
    if (not name or name in (MANIFEST, SOURCE, TENSORS) or "/" in name or "\\" in name
            or name in (".", "..") or name.startswith(".")):
        raise ValueError(f"invalid artifact extra file name {name!r}")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes renames/creations durable; not supported everywhere (e.g. Windows), hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing directories (Linux renameat2 RENAME_EXCHANGE). Returns False
    where the call is unavailable (other OS, old kernel, filesystem without support)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Remove temp/aside directories of ``out`` left by writers that were killed mid-write."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)-[0-9a-f]+$")
    with contextlib.suppress(OSError):
        for entry in out.parent.iterdir():
            m = pattern.match(entry.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def _test_delay() -> float:
    try:
        return max(0.0, float(os.environ.get(_TEST_DELAY_ENV, "0") or 0))
    except ValueError:
        return 0.0


def _umask() -> int:
    # os.umask can only be read by setting it; restore at once.
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _build_files(graph: Graph, manifest: dict, source_model: bytes,
                 extra_files: dict[str, bytes]) -> dict[str, bytes]:
    """All files of the artifact (name -> bytes), manifest last since it hashes the others."""
    clash = sorted(RESERVED_KEYS & set(manifest))
    if clash:
        raise ValueError(f"manifest keys {clash} are reserved for artifact integrity")
    for name in extra_files:
        _check_extra_name(name)
    doc, arrays = graph_to_json(graph)
    tensors = npz_bytes(arrays)
    # Hash each entry as stored (the .npy serialization: dtype + shape + data), so that load can
    # check exactly what it reads.
    entries = _npz_entries(tensors)
    source = bytes(source_model)
    full = dict(manifest)
    full.update({
        "schema_version": SCHEMA_VERSION,
        "snnc_version": __version__,
        "source_sha256": _sha256(source),
        "tensors_sha256": _sha256(tensors),
        "tensor_sha256": {k: _sha256(v) for k, v in sorted(entries.items())},
        "files_sha256": {k: _sha256(bytes(v)) for k, v in sorted(extra_files.items())},
        "graph": doc,
    })
    # Round-trip through JSON first so the digest covers exactly what a reader will parse
    # (numpy scalars become numbers, tuples lists).
    full = json.loads(json.dumps(full, default=_json_default))
    full["manifest_sha256"] = _manifest_digest(full)
    text = json.dumps(full, sort_keys=True, indent=1, default=_json_default) + "\n"
    files = {TENSORS: tensors, SOURCE: source}
    files.update({k: bytes(v) for k, v in extra_files.items()})
    files[MANIFEST] = text.encode("utf-8")
    return files


def write_artifact(out: str | Path, graph: Graph, manifest: dict, source_model: bytes,
                   extra_files: dict[str, bytes] | None = None) -> Path:
    """Write an artifact directory atomically and deterministically.

    Everything is written into a temporary sibling directory and fsynced, then renamed to
    ``out``. A previous artifact at ``out`` is replaced; anything else there is left untouched.

    Args:
        out: Directory to create (conventionally ``NAME.snnc``).
        graph: The compiled IR graph; its arrays go to tensors.npz, its structure to the
            manifest under "graph".
        manifest: Caller keys (target, method, options, layer table, metrics...). Must be JSON
            serializable (numpy scalars/arrays are converted) and must not use reserved keys.
        source_model: The original ONNX model bytes, stored as source.onnx.
        extra_files: More files to store, by plain file name (e.g. "placement.json").

    Returns:
        The artifact directory path.

    Raises:
        ArtifactError: ``out`` exists and is not an artifact directory (a file, or a non-empty
            directory without manifest.json).
        ValueError: A reserved manifest key or an invalid extra file name was given.
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ArtifactError(f"{out}: exists and is not an artifact directory; refusing to "
                            "overwrite it")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise ArtifactError(f"{out}: non-empty directory without {MANIFEST} is not an "
                            "artifact; refusing to overwrite it")
    # Build all bytes before touching the disk: serialization errors leave nothing behind.
    files = _build_files(graph, manifest, source_model, dict(extra_files or {}))
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = temp_sibling(out)
    os.mkdir(tmp, 0o777 & ~_umask())
    aside: Path | None = None
    delay = _test_delay()
    try:
        for name in sorted(files):
            _write_synced(tmp / name, files[name])
            if delay:
                time.sleep(delay)
        _fsync_dir(tmp)
        if out.exists() and _exchange(tmp, out):
            aside = tmp  # now holds the previous artifact; `out` was never missing
        else:
            if out.exists():
                aside = temp_sibling(out, "old")
                os.rename(out, aside)
            try:
                os.rename(tmp, out)
            except BaseException:
                if aside is not None:
                    os.rename(aside, out)
                    aside = None
                raise
        _fsync_dir(out.parent)
    except BaseException:
        if aside != tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _read_manifest(path: Path) -> dict:
    if not path.exists():
        raise ArtifactError(f"{path}: artifact does not exist")
    if not path.is_dir():
        raise ArtifactError(f"{path}: not an artifact directory (expected a directory with "
                            f"{MANIFEST})")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{path}: not an artifact ({MANIFEST} is missing)")
    try:
        manifest = json.loads(mpath.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ArtifactError(f"{path}: {MANIFEST} is not valid JSON ({_one_line(e)})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: {MANIFEST} is not a JSON object")
    if "schema_version" not in manifest:
        raise ArtifactError(f"{path}: {MANIFEST} has no schema_version")
    version = manifest["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtifactError(f"{path}: unknown artifact schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise ArtifactError(f"{path}: artifact schema version {version} is newer than this snnc "
                            f"supports ({SCHEMA_VERSION}); upgrade snnc")
    if version < SCHEMA_VERSION:
        raise ArtifactError(f"{path}: artifact schema version {version} is older than this snnc "
                            f"supports ({SCHEMA_VERSION}); recompile the model")
    if not isinstance(manifest.get("manifest_sha256"), str):
        raise ArtifactError(f"{path}: {MANIFEST} has no manifest_sha256")
    if _manifest_digest(manifest) != manifest["manifest_sha256"]:
        raise ArtifactError(f"{path}: {MANIFEST} was modified (sha256 mismatch)")
    for key, kind in (("source_sha256", str), ("tensors_sha256", str), ("tensor_sha256", dict),
                      ("graph", dict)):
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{path}: {MANIFEST} is missing {key!r} or it has the wrong type")
    if not isinstance(manifest.get("files_sha256", {}), dict):
        raise ArtifactError(f"{path}: {MANIFEST} has a malformed 'files_sha256'")
    return manifest


def _read_hashed(path: Path, name: str, expected: object) -> bytes:
    fpath = path / name
    if not fpath.is_file():
        raise ArtifactError(f"{path}: {name} is missing")
    data = fpath.read_bytes()
    if _sha256(data) != expected:
        raise ArtifactError(f"{path}: {name} was modified (sha256 mismatch)")
    return data


def _check(path: Path) -> tuple[dict, dict[str, np.ndarray], bytes]:
    """All checks of an artifact; returns (manifest, arrays, source bytes)."""
    manifest = _read_manifest(path)
    tensors = _read_hashed(path, TENSORS, manifest["tensors_sha256"])
    try:
        entries = _npz_entries(tensors)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ArtifactError(f"{path}: {TENSORS} is not a valid npz archive ({e})") from None
    expected = manifest["tensor_sha256"]
    for key in sorted(set(expected) | set(entries)):
        if key not in entries:
            raise ArtifactError(f"{path}: tensor {key!r} is missing from {TENSORS}")
        if key not in expected:
            raise ArtifactError(f"{path}: tensor {key!r} in {TENSORS} is not in the manifest")
        if _sha256(entries[key]) != expected[key]:
            raise ArtifactError(f"{path}: tensor {key!r} was modified (sha256 mismatch)")
    arrays = {}
    for key, raw in entries.items():
        try:
            arrays[key] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ArtifactError(f"{path}: tensor {key!r} cannot be read ({e})") from None
    source = _read_hashed(path, SOURCE, manifest["source_sha256"])
    for name, digest in sorted(manifest.get("files_sha256", {}).items()):
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise ArtifactError(f"{path}: {MANIFEST} lists an invalid file name {name!r}")
        _read_hashed(path, name, digest)
    return manifest, arrays, source


def verify_artifact(path: str | Path) -> None:
    """Check an artifact's schema version and hashes without building its graph.

    Args:
        path: The artifact directory.

    Raises:
        ArtifactError: One line naming the path and the first problem found.
    """
    _check(Path(path))


def load_artifact(path: str | Path) -> Artifact:
    """Load and verify an artifact directory.

    Args:
        path: The artifact directory.

    Returns:
        The artifact with its graph rebuilt from the manifest's "graph" and tensors.npz.

    Raises:
        ArtifactError: One line naming the path and the problem (missing files, bad JSON,
            unsupported schema version, hash mismatches, malformed graph).
    """
    # Spiking op classes register themselves for deserialization on import; a fresh process
    # (e.g. `snnc simulate`) may not have imported them yet.
    import snnc.ir.neurons  # noqa: F401
    import snnc.ir.quantized  # noqa: F401  (fixed-point ops of Loihi-target artifacts)

    path = Path(path)
    manifest, arrays, source = _check(path)
    try:
        graph = graph_from_json(manifest["graph"], arrays)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ArtifactError(f"{path}: malformed serialized graph ({e!r})") from None
    return Artifact(path=path, graph=graph, manifest=manifest, source_model=source)
