"""Behaviour unchanged by refactoring: every shipped example compiled with every method for cpu,
loihi1 and loihi2 gives the same tensors (sha256) and the same ``simulate --json`` metrics on 200
images as the code before the architecture refactor (tests/support/behaviour.py)."""

from __future__ import annotations

import json
import os

import pytest
from support.behaviour import GOLDEN, METHODS, MODELS, TARGETS, fingerprint

CASES = [(m, meth, t) for m in MODELS for meth in METHODS for t in TARGETS]
RECORD = os.environ.get("SNNC_RECORD_GOLDEN") == "1"


@pytest.fixture(scope="module")
def golden():
    if RECORD:
        recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        yield recorded
        GOLDEN.write_text(json.dumps(recorded, sort_keys=True, indent=1) + "\n")
    else:
        yield json.loads(GOLDEN.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model,method,target", CASES, ids=["-".join(c) for c in CASES])
def test_behaviour_matches_golden(golden, model, method, target):
    key = f"{model}/{method}/{target}"
    got = fingerprint(model, method, target)
    if RECORD:
        golden[key] = got
        return
    want = golden[key]
    if "error" in want or "error" in got:
        assert got.get("error") == want.get("error")
        return
    assert got["tensors"] == want["tensors"]
    assert got["metrics"] == want["metrics"]
