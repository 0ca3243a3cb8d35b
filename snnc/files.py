"""Files written whole or not at all: a temp name beside the target, renamed over it."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from snnc.errors import SnncError

__all__ = ["temp_sibling", "atomic_file"]


def temp_sibling(out: Path, kind: str = "tmp") -> Path:
    """A hidden, unique name beside ``out`` (``.NAME.KIND-PID-HEX``): the writer's pid lets a
    later write tell leftovers of dead writers apart."""
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(6)}"


@contextlib.contextmanager
def atomic_file(out: Path):
    """Yield a temp path beside ``out`` to write one file into; it replaces ``out`` atomically
    when the block completes and is removed otherwise, so ``out`` is never partial. An OSError
    becomes one SnncError line naming ``out``."""
    tmp = temp_sibling(out)
    try:
        yield tmp
        os.replace(tmp, out)
    except OSError as e:
        raise SnncError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
