"""The CLI as a user runs it, in-process: ``snnc.cli.main`` (what the ``snnc`` script runs) with
stdout, stderr and the exit code captured as a user sees them, without paying a Python + torch
start-up per command. A few smoke tests still run the real console script (``snnc_process``).

- ``snnc(*args)``: in-process; returns a ``subprocess.CompletedProcess`` (returncode, stdout,
  stderr as text) like ``subprocess.run(["snnc", ...], capture_output=True, text=True)``. The
  standard file descriptors 1 and 2 are redirected too, so output of C extensions and of child
  processes is captured, in order with Python's. An exception escaping ``main`` is what the
  script would show: its traceback on stderr and exit code 1 (``SystemExit`` its own code).
- ``snnc_process(*args)``: the installed ``snnc`` console script as a real process.
- ``run_cli(argv, seconds, cwd)``: the fuzz suite's runner: Python-level capture only, and an
  exception escaping ``main`` is reported as ``Outcome.crash`` (a traceback, or "timeout").
- ``assert_user_error(result, *fragments)``: exit 2, one ``error: ...`` line naming each
  fragment, no traceback; returns the line.
- ``snapshot`` / ``problems``: which files a command wrote or modified, and what is wrong with
  an outcome (crash, exit code, stderr format, stray files).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from snnc.cli import main

__all__ = ["SNNC_SCRIPT", "CaseTimeout", "Outcome", "assert_user_error", "problems", "run_cli",
           "snapshot", "snnc", "snnc_process"]

# The console script pip installed beside this interpreter; `python -m snnc.cli` where the
# package was not installed with its scripts (e.g. a bare PYTHONPATH checkout).
_script = shutil.which("snnc", path=os.path.dirname(sys.executable))
SNNC_SCRIPT: list[str] = [_script] if _script else [sys.executable, "-m", "snnc.cli"]


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
    exc: BaseException | None = None  # the exception behind ``crash``


def _on_alarm(signum, frame):
    raise CaseTimeout()


def _show_on_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _python_streams():
    """sys.stdout / sys.stderr into StringIO buffers (Python-level writes only)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield lambda: (out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _fd_streams():
    """File descriptors 1 and 2 into temporary files, with sys.stdout / sys.stderr writing
    through to them unbuffered: Python's output, C extensions' and child processes' land in
    one stream each, in the order they were written, as in a real process's pipes."""
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    tmps = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    texts = {}
    try:
        for fd, tmp in tmps.items():
            os.dup2(tmp.fileno(), fd)
            texts[fd] = io.TextIOWrapper(open(os.dup(fd), "wb", buffering=0), encoding="utf-8",
                                         errors="backslashreplace", write_through=True)
        result = {}

        def read():
            if not result:
                for fd in (1, 2):
                    texts[fd].flush()
                    tmps[fd].seek(0)
                    result[fd] = tmps[fd].read().decode("utf-8", errors="replace")
            return result[1], result[2]

        with contextlib.redirect_stdout(texts[1]), contextlib.redirect_stderr(texts[2]):
            yield read
        read()
    finally:
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            if fd in texts:
                texts[fd].close()
            tmps[fd].close()


def run_cli(argv: list[str], seconds: float, cwd: Path | None = None, *,
            fds: bool = False) -> Outcome:
    """``main(argv)`` with stdout/stderr captured, in ``cwd`` (default: the current folder),
    bounded by ``seconds`` (SIGALRM in the main thread). Python warnings are shown on the
    captured stderr as the real CLI would. ``fds``: capture file descriptors 1 and 2 as well
    (C-level and child-process output), not only Python's sys.stdout / sys.stderr."""
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    old_cwd = os.getcwd()
    start = time.perf_counter()
    rc, crash, exc = None, None, None
    streams = _fd_streams() if fds else _python_streams()
    with streams as read:
        try:
            if cwd is not None:
                os.chdir(cwd)
            signal.setitimer(signal.ITIMER_REAL, seconds)
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.showwarning = _show_on_stderr  # as the CLI would, not pytest's recorder
                rc = main([str(a) for a in argv])
        except CaseTimeout as e:
            crash, exc = f"timeout: case exceeded {seconds} s", e
        except BaseException as e:  # noqa: BLE001  (a crash is what we are looking for)
            crash, exc = traceback.format_exc(), e
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            os.chdir(old_cwd)
        out, err = read()
    return Outcome(rc, out, err, crash, time.perf_counter() - start, exc)


def snnc(*args, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``snnc ARGS`` in-process, as ``subprocess.run([...], capture_output=True, text=True)``
    of the real script would return it. Raises ``subprocess.TimeoutExpired`` past ``timeout``."""
    argv = [str(a) for a in args]
    o = run_cli(argv, timeout, cwd, fds=True)
    rc, err = o.rc, o.stderr
    if isinstance(o.exc, CaseTimeout):
        raise subprocess.TimeoutExpired(["snnc", *argv], timeout, o.stdout, o.stderr)
    if isinstance(o.exc, SystemExit):  # sys.exit() escaping main: the interpreter's rules
        code = o.exc.code
        if code is None or isinstance(code, int):
            rc = code or 0
        else:
            rc, err = 1, err + f"{code}\n"
    elif o.exc is not None:  # what Python prints for an uncaught exception, and exit code 1
        rc, err = 1, err + o.crash
    return subprocess.CompletedProcess(["snnc", *argv], rc, o.stdout, err)


def snnc_process(*args, cwd: Path | None = None, timeout: float = 300,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed ``snnc`` console script as a real process (smoke tests of the entry
    point: a few, since each start costs seconds of Python + torch imports)."""
    return subprocess.run([*SNNC_SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error as the CLI reports it: exit code 2, no traceback, exactly one stderr line
    ``error: ...`` that contains every fragment. Returns that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


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
