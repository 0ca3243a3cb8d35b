"""Run the CLI's own entry point (``snnc.cli.main``) in-process on one fuzz case and classify the
outcome. ``main`` is what the ``snnc`` script runs: it maps ``SnncError`` to one ``error:`` line
and exit code 2, so anything else escaping it (or printed as a traceback) is a crash.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from snnc.cli import main

__all__ = ["CaseTimeout", "Outcome", "run_cli", "snapshot", "problems"]


class CaseTimeout(BaseException):
    """Raised by SIGALRM when a case exceeds its time bound. A BaseException, so no
    ``except Exception`` inside snnc can swallow it."""


@dataclass
class Outcome:
    rc: int | None
    stdout: str
    stderr: str
    crash: str | None  # traceback text of an exception that escaped main(), or "timeout"
    seconds: float


def _on_alarm(signum, frame):
    raise CaseTimeout()


def _show_on_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(argv: list[str], seconds: float, cwd: Path) -> Outcome:
    """``main(argv)`` with stdout/stderr captured, in ``cwd``, bounded by ``seconds`` (SIGALRM in
    the main thread). Python warnings are shown on the captured stderr as the real CLI would."""
    import time

    out, err = io.StringIO(), io.StringIO()
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    old_cwd = os.getcwd()
    start = time.perf_counter()
    rc, crash = None, None
    try:
        os.chdir(cwd)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.showwarning = _show_on_stderr  # as the CLI would, not to pytest's recorder
            rc = main(argv)
    except CaseTimeout:
        crash = f"timeout: case exceeded {seconds} s"
    except BaseException:  # noqa: BLE001  (a crash is what we are looking for)
        crash = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        os.chdir(old_cwd)
    return Outcome(rc, out.getvalue(), err.getvalue(), crash, time.perf_counter() - start)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with (size, mtime_ns) for files, (-1, 0) for directories."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.join(dirpath, d)] = (-1, 0)
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            snap[p] = (st.st_size, st.st_mtime_ns)
    return snap


def problems(o: Outcome, before: dict, after: dict, allowed_new: Path | None) -> list[str]:
    """What is wrong with one outcome: crash, exit code, stderr format, stray files."""
    bad = []
    if o.crash is not None:  # the innermost frames and the exception are what matter
        lines = o.crash.strip().splitlines()
        return ["\n".join(lines[:1] + ["  ..."] + lines[-7:])] if len(lines) > 9 else [o.crash]
    if o.rc not in (0, 2):
        bad.append(f"exit code {o.rc}")
    if "Traceback" in o.stderr or "Traceback" in o.stdout:
        bad.append("traceback printed")
    if o.rc == 2:
        lines = o.stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("error: "):
            bad.append(f"stderr is not one 'error:' line: {o.stderr!r}")
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p]
                     and before[p][0] != -1)
    new = sorted(set(after) - set(before))
    if allowed_new is not None and o.rc == 0:
        new = [p for p in new if not (p == str(allowed_new)
                                      or p.startswith(str(allowed_new) + os.sep))]
    if changed:
        bad.append(f"files modified: {changed[:5]}")
    if new:
        bad.append(f"files written outside the output path: {new[:5]}")
    return bad
