"""Running a built Lava network safely: the run goes in a background thread watched from the
calling one, so that a failing process model or a KeyboardInterrupt stops every Lava actor
process instead of deadlocking (Lava 0.10)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
import warnings

from snnc.backends.lava.network import LavaNetwork
from snnc.errors import BackendError

__all__ = ["run_network"]


def run_network(net: LavaNetwork, num_steps: int, collect=None, poll_s: float = 0.05):
    """Run the network for ``num_steps`` steps, return ``collect(net)`` (reads Vars), and always
    stop it: no Lava process outlives this call, also on errors and KeyboardInterrupt.

    Lava 0.10 deadlocks when a process model raises inside a step (its runtime service waits
    for the replies of models blocked on the failed model's ports), so the run goes in a
    background thread while this one watches Lava's actor processes: when one dies with an
    exception, or on KeyboardInterrupt, every actor is terminated (our own children, by
    handle) and the shared-memory manager shut down; the error becomes a BackendError."""
    # Lava takes seconds to import: loaded when a network runs, not with the backend
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    failure: list[BaseException] = []

    def target() -> None:
        try:
            with warnings.catch_warnings():
                # Lava imports every module beside a process's file when it looks for models
                warnings.filterwarnings("ignore", message="Cannot import module")
                net.source.run(condition=RunSteps(num_steps=num_steps),
                               run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        except BaseException as e:  # noqa: BLE001 - reported by the watching thread
            failure.append(e)

    thread = threading.Thread(target=target, name="snnc-lava-run", daemon=True)
    clean = False
    try:
        thread.start()
        while thread.is_alive():
            thread.join(poll_s)
            dead = _failed_actor(net)
            if dead is not None:
                raise BackendError(f"lava run failed: {dead}")
        if failure:
            e = failure[0]
            raise BackendError(f"lava run failed: {type(e).__name__}: {e}") from e
        out = collect(net) if collect is not None else None
        clean = True
        return out
    finally:
        if clean:
            net.source.stop()
        else:
            _kill(net, thread)


def _actors(net: LavaNetwork) -> list:
    runtime = getattr(net.source, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infra, "actors", None) or [])


def _failed_actor(net: LavaNetwork) -> str | None:
    """The last line of the traceback of a Lava actor that died with an exception, if any."""
    for actor in _actors(net):
        try:
            exc = actor.exception
        except (OSError, ValueError):  # pipe already closed: joined
            continue
        if exc:
            err = exc[0]  # (exception, traceback text)
            return f"{type(err).__name__}: {err}"
    return None


def _kill(net: LavaNetwork, thread: threading.Thread | None = None,
          wait_s: float = 30.0) -> None:
    """Hard stop: terminate every Lava actor process (children of this process), shut down the
    shared-memory manager (also a child) and the watchdog manager. A failure can come while
    Lava's run thread still forks actors (a model failing at start-up), so this keeps
    terminating until every expected actor (one per process model and runtime service) has
    been seen, the run thread ended, or ``wait_s`` passed."""
    deadline = time.monotonic() + wait_s
    runtime = getattr(net.source, "runtime", None)
    while runtime is None and thread is not None and thread.is_alive():
        if time.monotonic() > deadline:  # interrupted while Lava compiled: it may still fork
            break
        time.sleep(0.05)
        runtime = getattr(net.source, "runtime", None)
    if runtime is None:
        return
    exe = getattr(runtime, "_executable", None)
    expected = (len(getattr(exe, "proc_builders", None) or {})
                + len(getattr(exe, "runtime_service_builders", None) or {}))
    done: set[int] = set()
    while True:
        actors = _actors(net)
        for actor in actors:
            if id(actor) in done:
                continue
            done.add(id(actor))
            try:
                if actor.is_alive():
                    actor.terminate()
                mp.Process.join(actor, 5)
                if actor.is_alive():
                    actor.kill()
                    mp.Process.join(actor, 5)
            except (ValueError, AssertionError):  # already closed / not started
                pass
        settled = len(done) >= expected or thread is None or not thread.is_alive()
        if settled and len(_actors(net)) == len(done):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    smm = getattr(infra, "smm", None)
    if smm is not None:
        smm.shutdown()
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        with contextlib.suppress(Exception):  # best effort on an already broken runtime
            watchdog.stop()
    runtime._is_started = False  # its __del__ must not wait for dead actors
    runtime._is_running = False

