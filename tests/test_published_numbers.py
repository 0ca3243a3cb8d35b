"""The README's methods table reproduces: a few of its rows recomputed from scratch, exactly as
the commands above the table say (benchmarks/fidelity.py regenerates all of them). A published
number that stops reproducing fails here. The tolerance covers float-rounding noise across
machines and thread counts (3 of 1,000 images), not a change of behaviour."""

from __future__ import annotations

import re

import pytest
from support.examples import compiled_example
from support.paths import EXAMPLES, ROOT

import snnc

README = ROOT / "README.md"
TOLERANCE = 0.003
COLUMNS = {"lenet": 2, "resnet": 3}  # the table's columns: method, how, LeNet, residual CNN


def published(method: str, model: str) -> float:
    """The first accuracy in the README methods table's cell for ``method`` on ``model``."""
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and re.fullmatch(rf"`{method}`( \(.*\))?", cells[0]):
            return float(re.search(r"([\d.]+) %", cells[COLUMNS[model]]).group(1)) / 100
    raise AssertionError(f"no row for method {method!r} in the README's methods table")


def test_readme_table_is_parsed():
    assert published("fs", "lenet") == pytest.approx(0.984)
    assert published("rate", "resnet") == pytest.approx(0.871)


@pytest.mark.slow
@pytest.mark.parametrize("model,method", [("lenet", "fs"), ("lenet", "rate"), ("lenet", "ttfs"),
                                          ("resnet", "fs"), ("resnet", "ttfs")])
def test_published_accuracy_reproduces(model, method):
    # the README's commands: `snnc compile` with defaults (one compile per session, shared)
    metrics = snnc.simulate(snnc.load(compiled_example(model, "cpu", method)),
                            EXAMPLES / model / "test.npz")
    assert metrics["samples"] == 1000
    assert abs(metrics["accuracy"] - published(method, model)) <= TOLERANCE, (
        metrics["accuracy"], published(method, model))
