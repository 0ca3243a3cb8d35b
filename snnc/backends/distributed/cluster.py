"""Connecting to Ray: the optional import, a bounded reachability check of ``--ray-address``,
and a local cluster started (and stopped) when no cluster is given."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence

from snnc.errors import BackendError, SnncError

__all__ = ["CONNECT_TIMEOUT_S", "MAX_RETRIES", "RAY_EXTRA", "check_reachable", "connect_ray",
           "import_ray", "run_tasks"]

RAY_EXTRA = "pip install 'snnc[ray]'"
MAX_RETRIES = 3  # a task whose worker process dies is run again, up to this many times
CONNECT_TIMEOUT_S = 5.0  # a TCP connect to the head node before ray.init (which may wait long)
_GCS_WAIT = "RAY_gcs_server_port_wait_time_s"  # seconds ray.init retries the GCS


def import_ray():
    """The ``ray`` module, or one clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise BackendError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise SnncError(f"--ray-address '{address}': expected host:port or ray://host:port "
                        "(the head node's GCS port, 6379 by default; 10001 for ray://)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within ``timeout`` seconds when nothing listens at ``address`` ("auto" is
    resolved by Ray itself)."""
    if address == "auto":
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise BackendError(f"cannot reach the Ray cluster at {address} ({why}); start one "
                           "with `ray start --head` or drop --ray-address for a local "
                           "cluster") from None


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null: Ray's C++ client logs each failed connection attempt
    there, while the user gets one ``error:`` line."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _join(ray, address: str, options: dict) -> None:
    """``ray.init`` on an existing cluster, giving up after about CONNECT_TIMEOUT_S seconds
    (Ray's own wait for the GCS is ~20 s) with one BackendError."""
    wait = os.environ.get(_GCS_WAIT)
    os.environ[_GCS_WAIT] = wait or str(int(CONNECT_TIMEOUT_S))
    try:
        with _stderr_silenced():
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BackendError(f"cannot connect to the Ray cluster at {address}: "
                           f"{' '.join(str(e).split())[:200]}") from None
    finally:
        if wait is None:
            os.environ.pop(_GCS_WAIT, None)


@contextlib.contextmanager
def connect_ray(address: str | None = None, workers: int | None = None) -> Iterator:
    """Yield ``ray``, connected: the running session if this process already has one, the
    cluster at ``address``, or a fresh local cluster of ``workers`` CPUs (all CPUs by default)
    that is shut down afterwards."""
    if workers is not None and workers < 1:
        raise SnncError(f"--workers must be >= 1, got {workers}")
    ray = import_ray()
    if address:
        check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        _join(ray, address, quiet)
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def _get(ray, ref, what: str):
    """``ray.get`` with snnc's errors unwrapped: a task's SnncError is raised as itself (one
    ``error:`` line), anything else as a BackendError naming ``what`` failed."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, SnncError):
            raise type(cause)(str(cause)) from None
        raise BackendError(f"{what} failed on the Ray cluster: {type(cause).__name__}: "
                           f"{cause}") from None
    except ray.exceptions.RayError as e:  # a worker died more than MAX_RETRIES times
        text = " ".join(str(e).split())[:200]
        raise BackendError(f"{what} failed on the Ray cluster after {MAX_RETRIES} retries: "
                           f"{text}") from None


def run_tasks(ray, fn: Callable, calls: Sequence[dict], *, limit: int | None = None,
              done: Callable[[int, object], None] | None = None, what: str = "a task") -> list:
    """``fn(**call)`` for every call as Ray tasks (one CPU each, retried when their worker
    dies), at most ``limit`` in flight (default: the cluster's CPUs); ``done(i, result)`` as
    each finishes. Returns the results in the order of ``calls``."""
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(fn)
    limit = limit or max(1, int(ray.cluster_resources().get("CPU", 1)))
    results: list = [None] * len(calls)
    pending: dict = {}
    todo = list(enumerate(calls))
    while todo or pending:
        while todo and len(pending) < limit:
            i, call = todo.pop(0)
            pending[task.remote(**call)] = i
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            i = pending.pop(ref)
            results[i] = _get(ray, ref, what)
            if done is not None:
                done(i, results[i])
    return results
