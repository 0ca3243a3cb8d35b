"""A method sweep: the grid, --timesteps parsing, the Pareto front, the HTML page (snnc/sweeps.py,
snnc/cli/sweep_cmd.py), and one real sweep of a regression model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import snnc

from snnc.cli.sweep_cmd import parse_timesteps
from snnc.errors import SnncError
from snnc.sweeps import pareto_front, quality, write_sweep_html


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


def test_regression_outputs_rank_by_error_against_the_ann(tmp_path):
    """An autoencoder has no accuracy: the Pareto front, the plots and the table use the relative
    L2 error against the ANN (lower is better)."""
    def reg(method, t, err, energy):
        return {**_row(method, t, None, energy, t), "task": "regression",
                "rel_l2_vs_ann": err, "max_abs_error_vs_ann": 2 * err}

    rows = [reg("fs", 6, 0.07, 1.5), reg("fs", 10, 0.005, 2.8), reg("rate", 32, 0.03, 4.5),
            reg("ttfs", 5, 0.23, 0.7)]
    assert pareto_front(rows, "energy_uj_per_sample") == {0, 1, 3}  # rate: worse and dearer
    assert quality(rows[1]) == -0.005 and quality(_row("fs", 6, 0.9, 1.0, 6)) == 0.9
    page = write_sweep_html(rows, tmp_path / "s.html", title="ae").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "<th>rel_l2_vs_ann</th>" in page and "<th>accuracy</th>" not in page


def test_cli_sweep_of_an_autoencoder_reports_its_error(tmp_path):
    ex = Path(__file__).resolve().parents[2] / "examples" / "autoencoder"
    r = snnc("sweep", str(ex / "autoencoder.onnx"), "--calib", str(ex / "calib.npz"),
             "--data", str(ex / "test.npz"), "--methods", "fs", "--timesteps", "6,10",
             "--limit", "20", "--json", "-q", "-o", str(tmp_path / "s.html"))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["points"]
    assert [p["task"] for p in rows] == ["regression", "regression"]
    assert all(p["accuracy"] is None for p in rows)
    # more steps, a closer code: K = 10 beats K = 6 (measured 0.45 % vs 7.2 % on 50 images)
    assert rows[1]["rel_l2_vs_ann"] < rows[0]["rel_l2_vs_ann"] < 0.2
    assert any(p["pareto"] for p in rows)
