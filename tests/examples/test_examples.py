"""Every script in examples/ runs as a user would run it (a subprocess, from a fresh folder, with
small data) and prints a sensible final ``RESULT {json}`` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, cwd: Path, timeout: int = 300) -> dict | list:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), proc.stdout[-2000:]
    return json.loads(last[len("RESULT "):])


def test_quickstart(tmp_path):
    r = run_example("quickstart.py", "--limit", "100", cwd=tmp_path)
    assert r["samples"] == 100 and r["accuracy"] >= 0.95 and r["agreement"] >= 0.95
    assert (r["latency_steps"], r["throughput_steps"]) == (30, 10)
    assert (tmp_path / r["artifact"] / "manifest.json").is_file()


def test_from_pytorch(tmp_path):
    r = run_example("from_pytorch.py", "--epochs", "15", "--limit", "200", cwd=tmp_path)
    assert r["torch_accuracy"] >= 0.9 and r["samples"] == 200
    assert r["accuracy"] >= r["torch_accuracy"] - 0.03 and r["agreement"] >= 0.95
    assert (tmp_path / r["artifact"] / "manifest.json").is_file()


def test_compare_methods(tmp_path):
    rows = run_example("compare_methods.py", "--limit", "50", cwd=tmp_path)
    assert [r["method"] for r in rows] == ["rate", "fs", "amos", "ttfs"]
    by = {r["method"]: r for r in rows}
    assert all(r["samples"] == 50 and r["accuracy"] >= 0.9 for r in rows)
    assert by["amos"]["accuracy"] == by["fs"]["accuracy"]  # amos computes fs exactly
    assert by["amos"]["throughput_steps"] == 1 and by["ttfs"]["latency_steps"] == 5
    assert by["amos"]["spikes_per_neuron"] < by["fs"]["spikes_per_neuron"] \
        < by["rate"]["spikes_per_neuron"]


def test_export(tmp_path):
    r = run_example("export.py", "--epochs", "15", "--limit", "50", "--lava-samples", "1",
                    cwd=tmp_path)
    assert r["accuracy"] >= 0.85
    assert {"Affine", "Conv2d", "IF"} <= set(r["nir_node_types"])
    assert (tmp_path / r["nir_file"]).is_file() and (tmp_path / r["netx_file"]).is_file()
    assert r["netx_layers"] == 3 and r["netx_agreement"] >= 0.9
    assert r["lava_equal"] is True


def test_readme_quickstart_points_at_files_that_exist():
    import re

    root = EXAMPLES.parent
    readme = (root / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart"):readme.index("## Status")]
    linked = re.findall(r"\]\((docs/[^)]+)\)", quickstart)
    assert {"docs/methods.md", "docs/targets.md", "docs/artifact.md",
            "docs/troubleshooting.md"} <= {link.partition("#")[0] for link in linked}
    for link in linked:
        path, _, anchor = link.partition("#")
        assert (root / path).is_file(), path
        if anchor:  # GitHub's heading slugs: lower case, punctuation dropped, spaces to '-'
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                     for h in re.findall(r"^#+ (.+)$", (root / path).read_text(), re.M)}
            assert anchor in slugs, link
    for name in re.findall(r"`(\w+\.py)`", quickstart):
        assert (EXAMPLES / name).is_file(), name
