"""Shared by the Lava backend tests (tests/backends/lava/): the example paths and sizes."""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGES", "LENET", "ROOT", "STEPS"]

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet"
STEPS = 16
IMAGES = 20
