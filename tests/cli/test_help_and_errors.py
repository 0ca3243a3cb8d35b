"""The CLI as a new user meets it: every command's --help is complete, and every user error path
of every command prints one ``error:`` line, exits 2, prints no traceback and writes nothing.

The error walk runs the CLI's own entry point in-process (tests/support/cli.py: what the
``snnc`` script runs, with stdout/stderr captured down to the file descriptors), so it stays
fast; ``test_real_script_help_and_one_error`` runs the installed script as a real process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import typer
from onnx import helper

from snnc.cli import app
from support.cli import assert_user_error, run_cli, snapshot, snnc_process

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet"
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)


def _cli(argv: list[str], cwd: Path):
    o = run_cli([str(a) for a in argv], 120, cwd, fds=True)
    assert o.crash is None, o.crash
    return o


def test_top_level_help_lists_every_command(tmp_path):
    o = _cli(["--help"], tmp_path)
    assert o.rc == 0, o.stderr
    for name in COMMANDS:
        cmd = GROUP.commands[name]
        short = cmd.get_short_help_str(limit=200)
        assert short and len(short) > 10, f"command {name} has no description"
        assert name in o.stdout
    assert "Example:" in o.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_documents_every_parameter(name, tmp_path):
    cmd = GROUP.commands[name]
    assert (cmd.help or "").strip(), f"{name}: no docstring"
    o = _cli([name, "--help"], tmp_path)
    assert o.rc == 0, o.stderr
    assert "Traceback" not in o.stderr
    for param in cmd.params:
        assert (getattr(param, "help", None) or "").strip(), f"{name}: {param.name} has no help"
        for opt in param.opts:
            if opt.startswith("-"):
                assert opt in o.stdout, f"{name} --help does not show {opt}"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Input files for the error walk: artifacts (fs, rate), broken data, models, targets."""
    import snnc as api

    t = tmp_path_factory.mktemp("walk")
    api.compile(LENET / "lenet.onnx", calib=LENET / "calib.npz", out=t / "fs.snnc")
    api.compile(LENET / "lenet.onnx", calib=LENET / "calib.npz", method="rate", timesteps=4,
                out=t / "rate.snnc")
    np.savez(t / "bad_shape.npz", x=np.zeros((3, 28, 28), np.float32))
    np.savez(t / "bad_keys.npz", images=np.zeros((3, 1, 28, 28), np.float32))
    np.savez(t / "no_labels.npz", x=np.zeros((3, 1, 28, 28), np.float32))
    np.savez(t / "bad_labels.npz", x=np.zeros((3, 1, 28, 28), np.float32), y=np.array([0, 1, 12]))
    (t / "garbage.onnx").write_text("this is not a model\n")
    (t / "empty.snnc").mkdir()
    node = helper.make_node("Sin", ["x"], ["y"], name="sin0")
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), t / "sin.onnx")
    (t / "bad.toml").write_text("base = \n")
    (t / "onecore.toml").write_text(
        'base = "loihi2"\n[chip]\ncores_per_chip = 1\nphysical_cores_per_chip = 1\n'
        "chips_per_system = 1\nmesh_cols = 1\nmesh_rows = 1\ncores_per_tile = 1\n")
    return t


_C = "compile {L}/lenet.onnx --calib {L}/calib.npz -o {T}/out.snnc"
_S = "simulate {T}/fs.snnc --data {L}/test.npz"
# (case id, command line with {L} = examples/lenet and {T} = the fixture folder, fragments of
# the expected error line)
ERRORS = [
    ("compile-missing-model", "compile {T}/nope.onnx --calib {L}/calib.npz -o {T}/out.snnc",
     ["does not exist"]),
    ("compile-not-onnx", "compile {T}/garbage.onnx --calib {L}/calib.npz -o {T}/out.snnc",
     ["not an ONNX model"]),
    ("compile-unsupported-op", "compile {T}/sin.onnx --calib {L}/calib.npz -o {T}/out.snnc",
     ["sin0", "Sin", "Supported:"]),
    ("compile-unknown-method", _C + " --method magic", ["unknown method 'magic'"]),
    ("compile-unknown-target", _C + " --target loihi9", ["unknown target 'loihi9'"]),
    ("compile-no-calib", "compile {L}/lenet.onnx -o {T}/out.snnc", ["--calib"]),
    ("compile-calib-missing", "compile {L}/lenet.onnx --calib {T}/nope.npz -o {T}/out.snnc",
     ["does not exist"]),
    ("compile-calib-shape", "compile {L}/lenet.onnx --calib {T}/bad_shape.npz -o {T}/out.snnc",
     ["per-sample shape (28, 28)", "(1, 28, 28)"]),
    ("compile-calib-keys", "compile {L}/lenet.onnx --calib {T}/bad_keys.npz -o {T}/out.snnc",
     ["missing key 'x'", "images"]),
    ("compile-epochs-without-finetune", _C + " --epochs 3", ["--epochs needs --finetune"]),
    ("compile-finetune-amos", _C + " --method amos --finetune {L}/train.npz",
     ["not available for amos"]),
    ("compile-finetune-no-labels", _C + " --finetune {T}/no_labels.npz", ["no labels"]),
    ("compile-timesteps-0", _C + " --timesteps 0", ["--timesteps must be >= 1"]),
    ("compile-percentile", _C + " --percentile 200", ["--percentile"]),
    ("compile-target-file-missing", _C + " --target-file {T}/nope.toml", ["not found"]),
    ("compile-target-file-invalid", _C + " --target-file {T}/bad.toml", ["invalid TOML"]),
    ("compile-too-large-for-target", _C + " --target-file {T}/onecore.toml",
     ["cores but target 'onecore' has 1", "limiting resource"]),
    ("compile-quiet-and-verbose", _C + " -q -v", ["--quiet and --verbose"]),
    ("compile-unknown-option", _C + " --bogus", ["No such option: --bogus"]),
    ("compile-missing-argument", "compile", ["Missing argument 'MODEL'"]),
    ("compile-out-is-a-folder", "compile {L}/lenet.onnx --calib {L}/calib.npz -o {L}",
     ["not an artifact; refusing to overwrite it"]),
    ("simulate-missing-artifact", "simulate {T}/nope.snnc --data {L}/test.npz",
     ["artifact does not exist"]),
    ("simulate-not-an-artifact", "simulate {T}/empty.snnc --data {L}/test.npz",
     ["manifest.json is missing"]),
    ("simulate-onnx-as-artifact", "simulate {L}/lenet.onnx --data {L}/test.npz",
     ["not an artifact directory"]),
    ("simulate-no-data", "simulate {T}/fs.snnc", ["Missing option '--data'"]),
    ("simulate-data-missing", "simulate {T}/fs.snnc --data {T}/nope.npz", ["does not exist"]),
    ("simulate-data-shape", "simulate {T}/fs.snnc --data {T}/bad_shape.npz",
     ["per-sample shape (28, 28)"]),
    ("simulate-data-keys", "simulate {T}/fs.snnc --data {T}/bad_keys.npz", ["missing key 'x'"]),
    ("simulate-labels-out-of-range", "simulate {T}/fs.snnc --data {T}/bad_labels.npz", ["12"]),
    ("simulate-unknown-backend", _S + " --backend gpu", ["unknown backend 'gpu'"]),
    ("simulate-lava-float", _S + " --backend lava --float", ["--float"]),
    ("simulate-lava-unquantized", _S + " --backend lava --limit 2", ["quantized artifact"]),
    ("simulate-limit-0", _S + " --limit 0", ["limit must be a positive integer"]),
    ("simulate-batch-size-0", _S + " --batch-size 0", ["--batch-size must be >= 1"]),
    ("simulate-quiet-and-verbose", _S + " -q -v", ["--quiet and --verbose"]),
    ("export-unknown-format", "export {T}/rate.snnc --format onnx -o {T}/x.nir",
     ["unknown export format 'onnx'"]),
    ("export-not-rate", "export {T}/fs.snnc --format nir -o {T}/x.nir", ["--method rate"]),
    ("export-inexpressible-layers", "export {T}/rate.snnc --format netx -o {T}/x.net",
     ["max-pool"]),
    ("export-missing-folder", "export {T}/rate.snnc --format nir -o {T}/nodir/x.nir",
     ["does not exist"]),
    ("export-missing-artifact", "export {T}/nope.snnc --format nir -o {T}/x.nir",
     ["artifact does not exist"]),
    ("export-no-format", "export {T}/rate.snnc -o {T}/x.nir", ["Missing option '--format'"]),
    ("inspect-missing", "inspect {T}/nope.onnx", ["does not exist"]),
    ("inspect-not-onnx", "inspect {T}/garbage.onnx", ["not an ONNX model"]),
    ("inspect-not-an-artifact", "inspect {T}/empty.snnc", ["manifest.json is missing"]),
    ("inspect-unsupported-op", "inspect {T}/sin.onnx", ["sin0", "Sin"]),
    ("targets-unknown-option", "targets --bogus", ["No such option: --bogus"]),
    ("sweep-unknown-method", "sweep {L}/lenet.onnx --calib {L}/calib.npz --data {L}/test.npz "
     "--methods magic -o {T}/s.html", ["unknown method 'magic'"]),
    ("sweep-bad-timesteps", "sweep {L}/lenet.onnx --calib {L}/calib.npz --data {L}/test.npz "
     "--timesteps a,b -o {T}/s.html", ["--timesteps 'a,b'"]),
    ("unknown-command", "frobnicate", ["No such command 'frobnicate'"]),
]


@pytest.mark.parametrize("line,fragments", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_user_error_is_one_line_exit_2_and_writes_nothing(env, line, fragments):
    argv = line.format(L=LENET, T=env).split()
    before = {**snapshot(env), **snapshot(LENET)}
    o = _cli(argv, env)
    assert o.rc == 2, (o.rc, o.stdout, o.stderr)
    assert "Traceback" not in o.stderr + o.stdout
    lines = o.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), o.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    after = {**snapshot(env), **snapshot(LENET)}
    assert after == before, sorted(set(after) ^ set(before)) or "files modified"


def test_error_walk_covers_every_command():
    walked = {c[1].split()[0] for c in ERRORS}
    assert set(COMMANDS) - {"report"} <= walked  # `report` is walked in its own tests


def test_real_script_help_and_one_error(tmp_path):
    """Smoke test of the console entry point as a real process: --help, and a user error."""
    proc = snnc_process("--help")
    assert proc.returncode == 0 and "compile" in proc.stdout, proc.stderr
    assert_user_error(snnc_process("compile", str(LENET / "lenet.onnx"), "--calib",
                                   str(LENET / "calib.npz"), "-o", str(tmp_path / "o.snnc"),
                                   "-q", "-v"),
                      "--quiet and --verbose")
    assert list(tmp_path.iterdir()) == []


def test_compile_default_prints_summary_quiet_prints_nothing(tmp_path):
    out = tmp_path / "l.snnc"
    base = ["compile", LENET / "lenet.onnx", "--calib", LENET / "calib.npz", "-o", out]
    o = _cli(base, tmp_path)
    assert o.rc == 0, o.stderr
    for row in ("layers", "neurons", "cores / chips", "latency", "throughput",
                "spikes (estimate)", "per neuron"):
        assert row in o.stdout, row
    o = _cli([*base, "--quiet"], tmp_path)
    assert o.rc == 0 and o.stdout == "" and o.stderr == "", (o.stdout, o.stderr)
    o = _cli([*base, "--verbose", "--target", "loihi2"], tmp_path)
    assert o.rc == 0, o.stderr
    for part in ("passes", "calibrate", "quantize", "place", "population", "placement on",
                 "on 1 chip(s)"):
        assert part in o.stdout, part


def test_simulate_and_export_verbosity(env, tmp_path):
    o = _cli(["simulate", env / "fs.snnc", "--data", LENET / "test.npz", "--limit", "20", "-v"],
             tmp_path)
    assert o.rc == 0, o.stderr
    assert "accuracy" in o.stdout and "spikes per population" in o.stdout
    out = tmp_path / "mlp.nir"
    # LeNet's spiking max-pool has no NIR node: export an MLP (tests/backends/export_models.py)
    from support.export_models import build

    art, _ = build(tmp_path, "mlp")
    o = _cli(["export", art.path, "--format", "nir", "-o", out, "-q"], tmp_path)
    assert o.rc == 0 and o.stderr == "" and out.is_file(), o.stderr
    o = _cli(["export", art.path, "--format", "nir", "-o", out, "-v"], tmp_path)
    assert o.rc == 0 and "bytes" in o.stderr and "wrote" in o.stderr, o.stderr
