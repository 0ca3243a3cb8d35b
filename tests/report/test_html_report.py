"""`snnc report`: a self-contained HTML file whose figures are real images, rendered by headless
Chromium (Debian's `chromium`, installed by `make setup-browser`; missing is a failure)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snnc.report.html import FIGURES
from support.cli import snnc, snnc_process

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"
IDS = [key for key, _, _ in FIGURES]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


def cli(*args: str) -> tuple[int, str]:
    """The CLI entry point in-process (faster than a subprocess): (exit code, stderr)."""
    proc = snnc(*args)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """LeNet fs compiled for loihi2 (with placement) and for cpu (without), and their reports
    (the loihi2 one through a real `snnc` process: a smoke test of the entry point)."""
    from snnc.api import compile_model
    from snnc.cli import main

    root = tmp_path_factory.mktemp("report")
    out = {}
    for target in ("loihi2", "cpu"):
        art = root / f"lenet-{target}.snnc"
        compile_model(LENET / "lenet.onnx", target=target, method="fs",
                      calib=LENET / "calib.npz", out=art)
        args = ("report", str(art), "--data", str(LENET / "test.npz"), "--limit", "40")
        if target == "loihi2":
            proc = snnc_process(*args)
            assert proc.returncode == 0, proc.stderr
            assert "wrote" in proc.stderr
        else:
            assert main(list(args)) == 0
        out[target] = root / f"lenet-{target}.html"  # default: beside the artifact
        assert out[target].is_file()
        assert not (art / "report.html").exists()
    return out


def images(page: str) -> dict[str, bytes]:
    found = dict(re.findall(r'<img id="img-([a-z]+)"[^>]* src="data:image/png;base64,([^"]+)"',
                            page))
    assert sorted(found) == sorted(IDS), sorted(found)
    return {k: base64.b64decode(v, validate=True) for k, v in found.items()}


def assert_not_blank(png: bytes, what: str, min_size: int = 200) -> None:
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG", what
    assert min(im.size) >= min_size, (what, im.size)
    rgb = np.asarray(im.convert("RGB"))
    ink = (rgb < 240).any(-1).mean()  # fraction of pixels that are not (near) white
    colors = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert ink > 0.02 and colors > 8, (what, ink, colors)


@pytest.mark.parametrize("target", ["loihi2", "cpu"])
def test_self_contained(reports, target):
    page = reports[target].read_text()
    for bad in ("http://", "https://", "<script", "<link", "url(", "<iframe", "@import"):
        assert bad not in page, bad
    srcs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(srcs) == len(IDS) and all(s.startswith("data:image/png;base64,") for s in srcs)
    for key in IDS:
        assert f'id="fig-{key}"' in page
    assert '<table id="summary">' in page and "accuracy (ANN, onnxruntime)" in page


@pytest.mark.parametrize("target", ["loihi2", "cpu"])
def test_figures_are_nonblank_pngs(reports, target):
    for key, png in images(reports[target].read_text()).items():
        assert_not_blank(png, f"{target}/{key}")


def test_placement_in_summary(reports):
    import json

    pl = json.loads((reports["loihi2"].with_suffix(".snnc") / "manifest.json").read_text())
    pl = pl["placement"]
    assert f"{pl['cores']:,} on {pl['chips']} chip(s)" in reports["loihi2"].read_text()
    assert "no placement: target cpu" in reports["cpu"].read_text()


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
    if path is None:
        pytest.fail("headless Chromium is required to check the HTML report and was not found: "
                    "run `make setup-browser` (apt-get install chromium)")
    return path


def run_chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="snnc-chromium-") as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


# Test-only probe: after the page has loaded, write every image's decode state into the DOM,
# which --dump-dom then prints (the report itself has no scripts).
PROBE = """<script>
window.addEventListener('load', function () {
  var out = [];
  document.querySelectorAll('img').forEach(function (im) {
    out.push(im.id + ':' + im.complete + ':' + im.naturalWidth + 'x' + im.naturalHeight);
  });
  var pre = document.createElement('pre');
  pre.id = 'img-check';
  pre.textContent = out.join(' ');
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.parametrize("target", ["loihi2", "cpu"])
def test_renders_in_headless_chromium(reports, target, tmp_path):
    page = reports[target].read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    proc = run_chromium("--dump-dom", probe.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="img-check">([^<]*)</pre>', proc.stdout)
    assert m, proc.stdout[-2000:]
    state = dict(item.split(":", 1) for item in m.group(1).split())
    assert sorted(state) == sorted(f"img-{k}" for k in IDS), state
    for key, s in state.items():
        complete, size = s.split(":")
        w, h = map(int, size.split("x"))
        assert complete == "true" and w > 100 and h > 100, (key, s)

    if target == "cpu":
        return
    shot = tmp_path / "shot.png"  # the report as a user sees it: non-blank
    proc = run_chromium(f"--screenshot={shot}", "--window-size=1200,4000",
                        reports[target].as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert_not_blank(shot.read_bytes(), f"{target} screenshot")


def test_bad_data_is_one_line_and_writes_nothing(reports, tmp_path):
    art = reports["cpu"].with_suffix(".snnc")
    out = tmp_path / "r.html"
    proc = snnc("report", str(art), "--data", str(LENET / "lenet.onnx"), "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((3, 5), np.float32))
    for data in (str(tmp_path / "missing.npz"), str(wrong)):
        code, err = cli("report", str(art), "--data", data, "-o", str(out))
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert list(tmp_path.glob("*.html*")) == [] and list(tmp_path.glob(".r.html*")) == []


def test_refuses_to_write_inside_the_artifact(reports):
    art = reports["loihi2"].with_suffix(".snnc")
    code, err = cli("report", str(art), "--data", str(LENET / "test.npz"), "-o",
                    str(art / "report.html"))
    assert code == 2 and "inside the artifact" in err, err
    assert not (art / "report.html").exists()


@pytest.mark.parametrize("target", ["loihi2", "cpu"])
def test_raster_record_matches_simulator_counts(reports, target):
    """The raster's per-step record (float or bit-exact) counts the spikes the simulator does."""
    from snnc.api import load
    from snnc.backends.reference.record import record_spikes
    from snnc.backends.reference.simulator import simulate

    art = load(reports[target].with_suffix(".snnc"))
    x = np.load(LENET / "test.npz")["x"][:3]
    rec = record_spikes(art.graph, x)
    counts = simulate(art.graph, x).spikes
    assert rec.missing == [] and sorted(rec.trains) == sorted(counts)
    for name, train in rec.trains.items():
        assert train.dtype == bool and train.shape[1] == 3
        assert int(train.sum()) == round(counts[name]), name
