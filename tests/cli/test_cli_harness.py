"""The in-process CLI harness (tests/support/cli.py) reports what a user of the real script would
see: exit codes, a traceback for an escaping exception, output written below Python's streams."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import snnc.cli as cli_module
from support.cli import assert_user_error, snnc


def _fake_app(body):
    def app(args, prog_name, standalone_mode):
        body()
    return app


def test_success_and_user_error():
    proc = snnc("targets", "--json")
    assert proc.returncode == 0 and '"loihi2"' in proc.stdout and proc.stderr == ""
    assert_user_error(snnc("frobnicate"), "No such command 'frobnicate'")


def test_escaping_exception_is_a_traceback_and_exit_1(monkeypatch):
    def boom():
        print("partial output")
        raise RuntimeError("internal failure")

    monkeypatch.setattr(cli_module, "app", _fake_app(boom))
    proc = snnc("compile")
    assert proc.returncode == 1 and proc.stdout == "partial output\n"
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert proc.stderr.rstrip().endswith("RuntimeError: internal failure")
    with pytest.raises(AssertionError):
        assert_user_error(proc)


@pytest.mark.parametrize("code,rc,err", [(None, 0, ""), (3, 3, ""), ("fatal", 1, "fatal\n")])
def test_sys_exit_follows_the_interpreter(monkeypatch, code, rc, err):
    monkeypatch.setattr(cli_module, "app", _fake_app(lambda: sys.exit(code)))
    proc = snnc("inspect")
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, "", err)


def test_output_below_python_is_captured_in_order(monkeypatch):
    """Writes to the file descriptors (C extensions, child processes) reach the result, in order
    with Python's own, and nothing leaks to the test's own streams."""
    def body():
        print("py-out-1")
        os.write(1, b"fd-out\n")
        print("py-out-2")
        os.write(2, b"fd-err\n")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child-err\\n')"],
                       check=True)

    monkeypatch.setattr(cli_module, "app", _fake_app(body))
    proc = snnc("inspect")
    assert proc.returncode == 0
    assert proc.stdout == "py-out-1\nfd-out\npy-out-2\n"
    assert proc.stderr == "fd-err\nchild-err\n"


def test_timeout_raises_like_subprocess(monkeypatch):
    import time

    monkeypatch.setattr(cli_module, "app", _fake_app(lambda: time.sleep(5)))
    with pytest.raises(subprocess.TimeoutExpired):
        snnc("inspect", timeout=0.2)
