"""Running Lava safely (snnc/backends/lava/execution.py): clean stops on errors and Ctrl-C, no Lava
process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from support.lava import LENET

from snnc.backends.lava import build, run
from snnc.backends.lava.execution import run_network
from snnc.errors import BackendError

pytestmark = pytest.mark.lava


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc), without multiprocessing's resource
    tracker (one per interpreter, started by the first shared-memory use; it lives as long as
    the interpreter by design)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"resource_tracker" not in cmd:
            out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def test_failing_run_leaves_no_processes(rate_artifact, images):
    """A process model that raises inside the run (the input source stepped past its data):
    BackendError naming the cause, promptly (Lava itself would deadlock), and every Lava actor
    process is gone."""
    before = set(_children(os.getpid()))
    net = build(rate_artifact, images[:2])
    start = time.perf_counter()
    with pytest.raises(BackendError, match="stepped past its 2 samples"):
        run_network(net, net.num_steps + 5)
    assert time.perf_counter() - start < 60
    actors = net.source.runtime._messaging_infrastructure.actors
    assert len(actors) >= 5  # it did start Lava processes
    assert not any(_alive(a.pid) for a in actors)
    assert set(_children(os.getpid())) <= before
    # and a normal run afterwards still works and stops cleanly
    res = run(rate_artifact, images[:1])
    assert res.spikes and set(_children(os.getpid())) <= before


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_leaves_no_processes(rate_artifact, images, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a long Lava
    run: the run stops, the program exits, and no Lava process is left behind."""
    script = tmp_path / "long_run.py"
    script.write_text(textwrap.dedent(f"""
        import threading, time
        import numpy as np
        from snnc.api import load
        from snnc.backends.lava import run
        from snnc.data import load_dataset

        def announce():  # "running" once Lava's run thread steps: Ctrl-C lands mid-run
            while not any(t.name == "snnc-lava-run" for t in threading.enumerate()):
                time.sleep(0.1)
            time.sleep(1.0)
            print("running", flush=True)

        art = load({str(rate_artifact.path)!r})
        x = load_dataset({str(LENET / "test.npz")!r}, art.graph.inputs[0].shape, limit=20).x
        threading.Thread(target=announce, daemon=True).start()
        run(art, np.concatenate([x] * 50))  # 1000 samples: about a minute
        print("finished")
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # A runner started in the background (`make test &`) ignores
                            # SIGINT, and children inherit that; a terminal's program does not.
                            preexec_fn=_default_sigint,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        # Signal only once the run is stepping, so the interrupt lands mid-run.
        guard = threading.Timer(180, os.killpg, (proc.pid, signal.SIGKILL))  # never hang CI
        guard.start()
        line = proc.stdout.readline()
        guard.cancel()
        assert line.strip() == "running", proc.communicate()
        deadline = time.time() + 60
        kids: list[int] = []
        while time.time() < deadline and len(kids) < 6:  # Lava actors started
            time.sleep(0.2)
            kids = _children(proc.pid)
            assert proc.poll() is None, proc.communicate()
        assert len(kids) >= 6, "Lava never started"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "finished" not in out
    assert "KeyboardInterrupt" in err
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)]
