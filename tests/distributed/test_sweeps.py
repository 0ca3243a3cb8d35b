"""The parts of a method sweep that need no compile: the grid, --timesteps parsing, the Pareto
front, the HTML page (snnc/sweeps.py, snnc/cli/sweep_cmd.py)."""

from __future__ import annotations

import pytest

from snnc.cli.sweep_cmd import parse_timesteps
from snnc.errors import SnncError
from snnc.sweeps import pareto_front, write_sweep_html


def test_timesteps_for_all_methods_or_per_method():
    assert parse_timesteps(None) is None
    assert parse_timesteps(["4,8,16"]) == [4, 8, 16]
    assert parse_timesteps(["rate=16,32", "fs=6"]) == {"rate": [16, 32], "fs": [6]}
    with pytest.raises(SnncError, match="not both"):
        parse_timesteps(["4,8", "rate=16"])
    with pytest.raises(SnncError, match="--timesteps 'x'"):
        parse_timesteps(["x"])


def _row(method, t, acc, energy, latency, **kw):
    return {"method": method, "timesteps": t, "accuracy": acc, "ann_accuracy": 0.99,
            "energy_uj_per_sample": energy, "latency_steps": latency, "error": None, **kw}


def test_pareto_front_keeps_only_undominated_points():
    rows = [_row("rate", 16, 0.90, 1.0, 16), _row("fs", 6, 0.95, 0.8, 18),  # fs beats rate
            _row("ttfs", 3, 0.93, 0.5, 3), _row("amos", 6, 0.95, 0.8, 18),  # a tie stays
            _row("ttfs", 8, 0.92, 0.6, 8), {**_row("x", 1, None, None, 1), "error": "e"}]
    assert pareto_front(rows, "energy_uj_per_sample") == {1, 2, 3}
    assert pareto_front(rows, "latency_steps") == {1, 2, 3}


def test_html_has_table_plots_and_error_rows(tmp_path):
    rows = [_row("fs", 6, 0.95, 0.8, 18, pareto=True),
            {"method": "ttfs", "timesteps": 3, "error": "ttfs cannot <convert> Mul"}]
    page = write_sweep_html(rows, tmp_path / "s.html", title="t").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "error: ttfs cannot &lt;convert&gt; Mul" in page and "&#9733;" in page
