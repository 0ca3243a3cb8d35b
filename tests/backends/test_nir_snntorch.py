"""``--nir-reader snntorch``: NIR files that snntorch 1.0.0's ``import_from_nir`` runs unpatched.

The flavour writes IF as LIF (tau = 2**24 * 1e-4, r = tau / 1e-4, v_leak = 0: snntorch's beta =
1 - 2**-24, w_scale = 1) and pools as AvgPool2d (snnc/backends/nir_export/readers.py). snntorch
then resets to zero (snnc subtracts) and starts at v = 0 (snnc at half a threshold): the
LeNet-avg-pool bound below is what that costs on 200 MNIST test images at T = 32 (measured
99.5 %, benchmarks/RESULTS.md "NIR readers"). Residual sums and concatenations cannot be
expressed for snntorch (it passes each edge into a node as a separate argument): one error line.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from support.export_models import (
    READER_TIMESTEPS,
    assert_one_line_error,
    build,
    example_without_max_pool,
    residual_concat_model,
    snnc,
)
from support.nir_readers import try_reader

from snnc.api import export_artifact
from snnc.backends.nir_export import to_nir
from snnc.backends.nir_export.readers import SNNTORCH_DT, SNNTORCH_TAU
from snnc.backends.reference.simulator import simulate

nir = pytest.importorskip("nir")
pytest.importorskip("snntorch")

LENET_AGREES = 0.98  # measured 99.5 % (200 images, T = 32)


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lenet_snntorch")
    art, x, y = example_without_max_pool(tmp, "lenet", 200)
    path = export_artifact(art, "nir", tmp / "lenet.nir", nir_reader="snntorch")
    return art, path, x, y, simulate(art.graph, x, device="cpu").outputs[0]


def test_lenet_runs_in_snntorch_and_agrees_with_reference(lenet):
    _, path, x, y, ref = lenet
    out = try_reader("snntorch", path, x, READER_TIMESTEPS)
    assert out.loads and out.runs, out.error
    assert out.agreement(ref) >= LENET_AGREES, out.agreement(ref)
    assert np.mean(out.outputs.argmax(1) == y) >= np.mean(ref.argmax(1) == y) - 0.02


def test_temporal_network_runs_in_snntorch(tmp_path):
    """examples/temporal with 1-D average pools, in its 2-D form: rows fed as (C, 1, L)."""
    art, x, _ = example_without_max_pool(tmp_path, "temporal", 200)
    path = export_artifact(art, "nir", tmp_path / "temporal.nir", nir_reader="snntorch")
    out = try_reader("snntorch", path, x[:, :, None, :], READER_TIMESTEPS)
    assert out.loads and out.runs, out.error
    ref = simulate(art.graph, x, device="cpu").outputs[0]
    assert out.agreement(ref) >= LENET_AGREES, out.agreement(ref)  # measured 99.5 %


def test_snntorch_flavour_nodes(lenet):
    """LIF / AvgPool2d only; snntorch builds Leaky(beta = 1 - 2**-24, reset to zero) from it."""
    from snntorch.import_nir import import_from_nir

    g = nir.read(str(lenet[1]))
    kinds = {type(n).__name__ for n in g.nodes.values()}
    assert {"LIF", "AvgPool2d", "Flatten"} <= kinds and not kinds & {"IF", "SumPool2d"}, kinds
    assert g.metadata["nir_reader"] == "snntorch"
    for node in (n for n in g.nodes.values() if isinstance(n, nir.LIF)):
        assert np.unique(node.v_threshold).size == 1 and not node.v_leak.any()
        assert np.allclose(node.r * SNNTORCH_DT / node.tau, 1.0)
        assert np.all(node.tau == np.float32(SNNTORCH_TAU))
    with contextlib.redirect_stdout(io.StringIO()):
        module = import_from_nir(g)
    leaky = [m for m in module.modules() if type(m).__name__ == "Leaky"]
    assert len(leaky) == 3
    for m in leaky:
        beta = m.beta.flatten()
        assert beta.dtype.is_floating_point and bool((beta < 1).all())
        assert np.float32(beta[0].item()) == np.float32(1 - 2**-24)
        assert m.reset_mechanism == "zero" and m.init_hidden


def test_threshold_is_one_float32_below_so_gt_means_ge(tmp_path):
    art, _ = build(tmp_path, "mlp")
    lifs = [n for n in to_nir(art.graph, reader="snntorch").nodes.values()
            if isinstance(n, nir.LIF)]
    ifs = [n for n in to_nir(art.graph).nodes.values() if isinstance(n, nir.IF)]
    assert len(lifs) == len(ifs) == 1
    th = ifs[0].v_threshold.flat[0]
    assert lifs[0].v_threshold.flat[0] == np.nextafter(th, np.float32(-np.inf))


def test_generic_flavour_is_the_default_and_unchanged(tmp_path):
    art, _ = build(tmp_path, "cnn")
    a = export_artifact(art, "nir", tmp_path / "a.nir")
    b = export_artifact(art, "nir", tmp_path / "b.nir", nir_reader="generic")
    assert a.read_bytes() == b.read_bytes()
    kinds = {type(n).__name__ for n in nir.read(str(a)).nodes.values()}
    assert "IF" in kinds and "LIF" not in kinds


def test_cli_snntorch_export_runs_in_snntorch(tmp_path):
    art, x = build(tmp_path, "cnn")
    out = tmp_path / "cnn.nir"
    proc = snnc("export", str(art.path), "--format", "nir", "--nir-reader", "snntorch",
                "-o", str(out))
    assert proc.returncode == 0 and "for snntorch" in proc.stderr, proc.stderr
    res = try_reader("snntorch", out, x, 16)
    assert res.loads and res.runs, res.error


def test_residual_and_concat_give_one_error_naming_layers_and_reader(tmp_path):
    art, _ = residual_concat_model(tmp_path)
    out = tmp_path / "rc.nir"
    proc = snnc("export", str(art.path), "--format", "nir", "--nir-reader", "snntorch",
                "-o", str(out))
    assert_one_line_error(proc, "reader snntorch", "(Add): residual sum", "(Concat)",
                          "--nir-reader generic")
    assert not out.exists() and not list(tmp_path.glob("rc.nir*"))


@pytest.mark.parametrize("args, fragment", [
    (["--format", "nir", "--nir-reader", "lava"], "unknown NIR reader 'lava'"),
    (["--format", "netx", "--nir-reader", "snntorch"], "applies to --format nir"),
])
def test_bad_nir_reader_is_one_error_line_and_no_file(tmp_path, args, fragment):
    art, _ = build(tmp_path, "mlp")
    out = tmp_path / "x.out"
    proc = snnc("export", str(art.path), *args, "-o", str(out))
    assert_one_line_error(proc, fragment)
    assert not out.exists()


def test_api_rejects_unknown_reader(tmp_path):
    from snnc.errors import SnncError

    art, _ = build(tmp_path, "mlp")
    with pytest.raises(SnncError, match="available: generic, snntorch"):
        export_artifact(art, "nir", tmp_path / "x.nir", nir_reader="snntorch2")
    assert not (tmp_path / "x.nir").exists()
