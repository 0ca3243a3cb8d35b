"""Fuzz suite: mutated real ONNX models (the shipped examples and the onnx package's light zoo)
and mutated artifacts through the CLI entry point.

Every case must end in success (exit 0) or exactly one ``error: ...`` line with exit 2: no
traceback, no other exit code, no hang (each case is bounded by SIGALRM; a C-level hang is caught
by faulthandler's watchdog, which fails the run instead of stalling CI), and no file written
outside the output path. Cases are seeded (``SNNC_FUZZ_SEED``, default 0; ``SNNC_FUZZ_CASES``,
default 520) so that a failure is reproducible by its case number. The 520-case run and the
real-process agreement check are in the slow tier (``make test-slow``, CI); the rest of this file
is in ``make test``.

Light zoo models AlexNet and VGG-19 are left out of the mass run: their constant-folded weights
(60-140 M parameters) take seconds and GBs per case; they are fuzzed with a few cases each in
``test_fuzz_big_zoo_models``.
"""

from __future__ import annotations

import faulthandler
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutators import mutate
from support.cli import problems, run_cli, snapshot, snnc_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/*.onnx"))
LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
BIG = ("light_bvlc_alexnet", "light_vgg19")
ZOO = sorted(p for p in LIGHT.glob("*.onnx") if p.stem not in BIG)

SEED = int(os.environ.get("SNNC_FUZZ_SEED", "0"))
CASES = int(os.environ.get("SNNC_FUZZ_CASES", "520"))
CASE_SECONDS = 60.0  # per-case bound; typical cases take 0.05-0.5 s (generous for loaded CI)
MEMORY_LIMIT = 8 << 30  # address-space cap during the run: a blow-up becomes a MemoryError


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    x = rng.random((24, 1, 28, 28), dtype=np.float32)
    np.savez(root / "calib.npz", x=x)
    np.savez(root / "test.npz", x=x[:8], y=np.arange(8) % 10)
    lenet = ROOT / "examples" / "lenet"
    from snnc.api import compile_model

    compile_model(lenet / "lenet.onnx", calib=root / "calib.npz", out=root / "good.snnc")
    return root


def _with_bounds(fn):
    """Run ``fn`` with a memory cap and a faulthandler watchdog (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        return fn()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        faulthandler.cancel_dump_traceback_later()


def _model_case(i: int, rng: random.Random, root: Path, models: dict) -> tuple[str, list, Path]:
    source = rng.choice(sorted(models))
    case = root / f"case-{i:04d}"
    case.mkdir()
    data, desc = mutate(models[source], rng, case)
    path = case / "model.onnx"
    path.write_bytes(data)
    out = case / "out.snnc"
    if source.startswith("examples/") and rng.random() < 0.5:
        argv = ["compile", str(path), "--calib", str(root / "calib.npz"), "-o", str(out), "-q"]
    else:
        argv = ["inspect", str(path), "--json"]
    return f"{source} {desc}", argv, out


def _artifact_case(i: int, rng: random.Random, root: Path) -> tuple[str, list, Path]:
    case = root / f"case-{i:04d}"
    case.mkdir()
    art = case / "a.snnc"
    shutil.copytree(root / "good.snnc", art)
    victim = art / rng.choice(("manifest.json", "tensors.npz", "source.onnx"))
    data = bytearray(victim.read_bytes())
    kind = rng.choice(("flip", "truncate", "delete", "digit"))
    if kind == "flip":
        j = rng.randrange(len(data))
        data[j] ^= 1 << rng.randrange(8)
        victim.write_bytes(bytes(data))
    elif kind == "truncate":
        victim.write_bytes(bytes(data[:rng.randrange(len(data))]))
    elif kind == "delete":
        victim.unlink()
    else:  # change one digit somewhere (a threshold, a shape, a hash)
        digits = [j for j, c in enumerate(data) if 48 <= c <= 57]
        j = rng.choice(digits) if digits else 0
        data[j] = ord(str((int(chr(data[j])) + 1) % 10)) if digits else data[j] ^ 1
        victim.write_bytes(bytes(data))
    argv = (["simulate", str(art), "--data", str(root / "test.npz"), "--json", "-q"]
            if rng.random() < 0.5 else ["inspect", str(art), "--json"])
    return f"artifact {victim.name} {kind}", argv, art


def _run_cases(root: Path, models: dict, n: int, seed: int, artifact_share: float):
    cwd = root / "cwd"
    cwd.mkdir(exist_ok=True)
    stats, failures, slowest = Counter(), [], (0.0, "")
    for i in range(n):
        rng = random.Random(f"{seed}-{i}")
        before = snapshot(root)
        if rng.random() < artifact_share:
            desc, argv, out = _artifact_case(i, rng, root)
            allowed = None
        else:
            desc, argv, out = _model_case(i, rng, root, models)
            allowed = out
        before = {**before, **{k: v for k, v in snapshot(root).items() if k not in before}}
        # Watchdog for hangs inside C code, where SIGALRM's Python handler cannot run: dump the
        # stacks and exit, so CI fails instead of stalling.
        faulthandler.dump_traceback_later(3 * CASE_SECONDS, exit=True, file=sys.__stderr__)
        o = run_cli(argv, CASE_SECONDS, cwd)
        bad = problems(o, before, snapshot(root), allowed)
        if desc.startswith("artifact") and o.rc == 0:
            bad.append("tampered artifact accepted")
        last = desc.split("; ")[-1].split(" ", 1)[-1]  # the mutation applied last
        if last.startswith("nonfinite_weights") and re.search(r"(nan|inf)$", last) and o.rc == 0:
            bad.append("NaN/Inf weights accepted (results would silently be NaN)")
        if o.rc == 0 and argv[0] == "compile" and not bad:
            # A model that compiles must also simulate cleanly (or fail as a user error).
            compiled = snapshot(root)
            o2 = run_cli(["simulate", str(out), "--data", str(root / "test.npz"), "--json",
                          "-q"], CASE_SECONDS, cwd)
            bad += problems(o2, compiled, snapshot(root), None)
            stats["warnings"] += o2.stderr.count("Warning:")
            stats["simulated"] += 1
        faulthandler.cancel_dump_traceback_later()
        stats["ok" if o.rc == 0 else "error"] += 1
        stats["warnings"] += o.stderr.count("Warning:")
        stats[argv[0]] += 1
        if o.seconds > slowest[0]:
            slowest = (o.seconds, f"case {i}: {desc}")
        if bad:
            failures.append(f"case {i} ({desc}; snnc {' '.join(argv[:1])}):\n" + "\n".join(bad))
        shutil.rmtree(root / f"case-{i:04d}", ignore_errors=True)
        for p in root.glob("outside-*"):
            p.unlink()
    return stats, failures, slowest


@pytest.mark.slow  # 520 cases: about 50 s on one core (the slow tier: make test-slow)
def test_fuzz_models_and_artifacts(fuzz_root, capsys):
    models = {f"examples/{p.stem}": onnx.load(p) for p in EXAMPLES}
    models.update({f"zoo/{p.stem}": onnx.load(p) for p in ZOO})
    start = time.perf_counter()
    stats, failures, slowest = _with_bounds(
        lambda: _run_cases(fuzz_root, models, CASES, SEED, artifact_share=0.1))
    wall = time.perf_counter() - start
    total = stats["ok"] + stats["error"]
    with capsys.disabled():
        commands = {k: stats[k] for k in ("inspect", "compile", "simulate")}
        print(f"\nfuzz: {total} cases (seed {SEED}) in {wall:.1f} s: {stats['ok']} ok, "
              f"{stats['error']} error: exit 2, {len(failures)} failures (tracebacks, hangs, "
              f"bad output, stray files); commands {commands}, {stats['simulated']} compiled "
              f"models simulated, {stats['warnings']} Python warnings; slowest "
              f"{slowest[0]:.2f} s ({slowest[1]})")
    assert not failures, f"{len(failures)} failing cases:\n\n" + "\n\n".join(failures[:20])
    assert total == CASES
    assert total >= 500 or "SNNC_FUZZ_CASES" in os.environ  # CI runs the default 520
    # A fuzzer whose every case fails at parsing tests nothing deeper: require both outcomes.
    assert stats["ok"] >= 0.05 * total and stats["error"] >= 0.3 * total, stats


@pytest.mark.parametrize("name", BIG)
def test_fuzz_big_zoo_models(fuzz_root, name):
    models = {f"zoo/{name}": onnx.load(LIGHT / f"{name}.onnx")}
    stats, failures, _ = _with_bounds(
        lambda: _run_cases(fuzz_root, models, 3, SEED + 1, artifact_share=0.0))
    assert not failures, "\n\n".join(failures)


# ----------------------------------------------------------- a few real CLI subprocess runs
def _snnc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return snnc_process(*args, timeout=120, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow  # ten real processes: 17 s of CPU, 34-60 s on the shared 2-core machine
def test_fuzz_cases_through_real_cli(fuzz_root, tmp_path):
    """Ten seeded cases as real processes: the in-process harness must agree with the script."""
    models = {f"examples/{p.stem}": onnx.load(p) for p in EXAMPLES}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    seen = Counter()
    for i in range(10):
        rng = random.Random(f"cli-{SEED}-{i}")
        desc, argv, out = _model_case(i, rng, tmp_path, models)
        proc = _snnc(*argv, cwd=cwd)
        inproc = run_cli(argv, CASE_SECONDS, cwd)
        assert proc.returncode in (0, 2), (desc, proc.stderr)
        assert "Traceback" not in proc.stderr, (desc, proc.stderr)
        assert proc.returncode == inproc.rc, (desc, proc.stderr, inproc.stderr)
        if proc.returncode == 2:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (desc, proc.stderr)
            assert proc.stderr == inproc.stderr, (desc, proc.stderr, inproc.stderr)
        seen[proc.returncode] += 1
        shutil.rmtree(out, ignore_errors=True)
    assert list(cwd.iterdir()) == []
    assert seen[2] >= 1, seen


# ------------------------------------------------------------- hypothesis: byte-level edits
_LENET_BYTES = (ROOT / "examples" / "lenet" / "lenet.onnx").read_bytes()


@settings(max_examples=120, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(_LENET_BYTES) - 1), st.binary(max_size=8)),
                      min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, len(_LENET_BYTES))))
def test_hypothesis_byte_edits(tmp_path_factory, edits, cut):
    """Splices of random bytes into LeNet (and a cut): exit 0 or one error line, never more."""
    data = bytearray(_LENET_BYTES)
    for pos, chunk in edits:
        data[pos:pos + len(chunk)] = chunk
    case = tmp_path_factory.mktemp("hyp")
    (case / "m.onnx").write_bytes(bytes(data[:cut] if cut is not None else data))
    cwd = case / "cwd"
    cwd.mkdir()
    before = snapshot(case)
    o = run_cli(["inspect", str(case / "m.onnx"), "--json"], CASE_SECONDS, cwd)
    assert problems(o, before, snapshot(case), None) == []
