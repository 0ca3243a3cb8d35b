"""Lava backend (snnc/backends/lava): real Lava processes under Loihi2SimCfg("fixed_pt") against
the bit-exact reference simulator, spike for spike; clean stops on errors and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from snnc.api import compile_model, simulate_artifact
from snnc.backends.lava import build, run
from snnc.backends.lava.compare import reference_spikes
from snnc.backends.lava.processes import pack, unpack
from snnc.backends.lava.runner import _run
from snnc.data import load_dataset
from snnc.errors import BackendError
from snnc.ir import quantized as q

pytestmark = pytest.mark.lava

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet"
STEPS = 16
IMAGES = 20


@pytest.fixture(scope="module")
def rate_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("lava") / "lenet-rate.snnc"
    return compile_model(LENET / "lenet.onnx", target="loihi2", method="rate",
                         timesteps=STEPS, calib=LENET / "calib.npz", out=out)


@pytest.fixture(scope="module")
def images(rate_artifact):
    return load_dataset(LENET / "test.npz", rate_artifact.graph.inputs[0].shape,
                        limit=IMAGES).x


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


def test_pack_roundtrip():
    rng = np.random.default_rng(0)
    for bits in (1, 16):
        v = rng.integers(0, 2**bits, 1001)
        assert np.array_equal(unpack(pack(v, bits), bits, len(v)), v)
        assert np.all(pack(v, bits) < 2**48)  # exact through Var.get's float64


def test_rate_lenet_spike_for_spike(rate_artifact, images):
    """Every population's spike trains and the readout equal the bit-exact reference on 20
    images (after removing each layer's constant pipeline delay, which the runner reports)."""
    res = run(rate_artifact, images)
    ref_out, ref = reference_spikes(rate_artifact.graph, images)
    pops = [n.name for n in rate_artifact.graph.nodes if isinstance(n.op, q.QIFNeurons)]
    assert sorted(res.spikes) == sorted(pops) and len(pops) == 3
    for name in pops:
        assert res.spikes[name].shape == ref[name].shape == (STEPS, IMAGES,
                                                             *res.spikes[name].shape[2:])
        assert ref[name].sum() > 0  # something to compare
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    assert [res.delays[p] for p in pops] == [1, 2, 3]  # one step per synapse
    np.testing.assert_array_equal(res.outputs, ref_out)


def test_cli_metrics_equal_cpu(rate_artifact):
    """`snnc simulate --backend lava` prints the cpu backend's metrics (all but wall time)."""
    def sim(backend):
        r = subprocess.run([sys.executable, "-m", "snnc.cli", "simulate", str(rate_artifact.path),
                            "--data", str(LENET / "test.npz"), "--limit", "4", "--backend",
                            backend, "--json", "-q"], capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    lava, cpu = sim("lava"), sim("cpu")
    assert sorted(lava) == sorted(cpu)
    lava.pop("wall_s"), cpu.pop("wall_s")
    assert lava == cpu
    assert lava["samples"] == 4 and lava["synops_per_sample"] > 0


def test_fs_lenet_spike_for_spike(tmp_path, images):
    """Few-spike LeNet on loihi2 (graded payloads d(t)): every population's payload trains and
    the readout equal the bit-exact reference on 20 images."""
    art = compile_model(LENET / "lenet.onnx", target="loihi2", method="fs",
                        calib=LENET / "calib.npz", out=tmp_path / "fs.snnc")
    res = run(art, images)
    ref_out, ref = reference_spikes(art.graph, images)
    pops = [n.name for n in art.graph.nodes if isinstance(n.op, q.QFewSpikeNeurons)]
    assert sorted(res.spikes) == sorted(pops) and len(pops) == 3
    for name in pops:
        assert res.spikes[name].shape == ref[name].shape
        assert (ref[name] > 1).any()  # graded payloads, not just 0/1
        np.testing.assert_array_equal(res.spikes[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(res.outputs, ref_out)
    # each layer starts when the previous one's K-step window is complete (constant delays)
    d = [res.delays[p] for p in pops]
    assert d[0] < d[1] < d[2]


def test_unsupported_artifact_names_layer(tmp_path):
    # loihi1 folds few-spike payloads into per-step weights: not a Lava graded-spike network
    art = compile_model(LENET / "lenet.onnx", target="loihi1", method="fs",
                        calib=LENET / "calib.npz", out=tmp_path / "fs.snnc")
    with pytest.raises(BackendError, match=r"layer %\S+ uses QFewSpikeNeurons"):
        simulate_artifact(art, LENET / "test.npz", backend="lava", limit=2)
    r = subprocess.run([sys.executable, "-m", "snnc.cli", "simulate", str(art.path), "--data",
                        str(LENET / "test.npz"), "--limit", "2", "--backend", "lava", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert r.stderr.startswith("error: lava backend: layer %") and "QFewSpikeNeurons" in r.stderr


def test_float_graph_rejected(tmp_path):
    art = compile_model(LENET / "lenet.onnx", target="cpu", method="rate", timesteps=4,
                        calib=LENET / "calib.npz", out=tmp_path / "cpu.snnc")
    with pytest.raises(BackendError, match="quantized"):
        simulate_artifact(art, LENET / "test.npz", backend="lava", limit=1)


def test_failing_run_leaves_no_processes(rate_artifact, images):
    """A process model that raises inside the run (the input source stepped past its data):
    BackendError naming the cause, promptly (Lava itself would deadlock), and every Lava actor
    process is gone."""
    before = set(_children(os.getpid()))
    net = build(rate_artifact, images[:2])
    start = time.perf_counter()
    with pytest.raises(BackendError, match="stepped past its 2 samples"):
        _run(net, net.num_steps + 5)
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
