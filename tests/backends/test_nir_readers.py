"""snnc's NIR files in the installed, unpatched readers (sinabs 3.1.3, snntorch 1.0.0, norse
1.1.0, nirtorch 2.0.2 with nir 1.0.4), run on real test images against snnc's reference.

Each file is loaded and run as a user would (tests/support/nir_readers.py: the image as the
input current for T steps (32; 64 for the residual CNN), readout = mean output). Bounds on top-1 agreement with snnc's
reference simulation (200 images; measured values in benchmarks/RESULTS.md "NIR readers"):

- nirtorch (``nir_to_torch`` with the node map of docs/nir.md, which honours the IF node
  metadata): >= 99 % -- the same computation in float32.
- sinabs (IAF: reset by subtraction, but several spikes per step, no v(0) and a membrane floor
  at -threshold): >= 97 %.
- norse (IAF resets to zero, spikes on ``>``, v(0) = 0): >= 95 %.

The export example's model is trained first (about a minute on 2 shared cores), the residual
CNN (examples/resnet with an average pool) fine-tuned two epochs: their tests are marked slow.

What a reader cannot do is asserted as it happens (docs/nir.md "What each reader does"):
snntorch 1.0.0 has no SumPool2d mapping (load fails) and maps IF to a leaky ``snn.Leaky`` whose
(spike, membrane) tuple reaches the next layer (run fails); sinabs and norse run graphs through
nirtorch's deprecated ``GraphExecutor``, whose depth-first order visits a residual join before
one of its branches and returns another node's output.
"""

from __future__ import annotations

import pytest
from support.export_models import (
    build,
    example_without_max_pool,
    export_example_model,
    residual_cnn_without_max_pool,
)
from support.nir_readers import try_reader

from snnc.api import export_artifact
from snnc.backends.reference.simulator import simulate

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

STEPS = 32
AGREES = {"nirtorch": 0.99, "sinabs": 0.97, "norse": 0.95}


def _exported(tmp_path_factory, name, build):
    tmp = tmp_path_factory.mktemp(name)
    art, x, _ = build(tmp)
    path = export_artifact(art, "nir", tmp / f"{name}.nir")
    return path, x, simulate(art.graph, x, device="cpu").outputs[0]


def _steps(path) -> int:
    return int(nir.read(str(path)).metadata["timesteps"])


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    return _exported(tmp_path_factory, "lenet",
                     lambda tmp: example_without_max_pool(tmp, "lenet", 200))


@pytest.fixture(scope="module")
def export_example(tmp_path_factory):
    return _exported(tmp_path_factory, "digits", lambda tmp: export_example_model(tmp, 200))


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    return _exported(tmp_path_factory, "resnet",
                     lambda tmp: residual_cnn_without_max_pool(tmp, 200))


@pytest.mark.parametrize("reader", sorted(AGREES))
@pytest.mark.parametrize("model", ["lenet", pytest.param("export_example", marks=pytest.mark.slow)])
def test_sequential_networks_agree_with_reference(model, reader, request):
    path, x, ref = request.getfixturevalue(model)
    out = try_reader(reader, path, x, STEPS)
    assert out.loads and out.runs, out.error
    assert out.agreement(ref) >= AGREES[reader], out.agreement(ref)


def test_nir_fields_alone_cost_little_on_lenet(lenet):
    """An IF reading only the NIR fields (v(0) = 0, ``>``) still agrees on >= 97 %."""
    path, x, ref = lenet
    out = try_reader("nirtorch-fields-only", path, x, STEPS)
    assert out.runs and out.agreement(ref) >= 0.97, (out.error, out.agreement(ref))


def test_snntorch_has_no_sum_pool(lenet):
    out = try_reader("snntorch", lenet[0], lenet[1][:4], STEPS)
    assert not out.loads and "SumPool2d" in out.error, out.error


def test_snntorch_loads_but_cannot_run_its_if(tmp_path):
    """snntorch maps IF to snn.Leaky(init_hidden=False): its (spk, mem) tuple reaches Conv2d."""
    art, x = build(tmp_path, "cnn")
    out = try_reader("snntorch", export_artifact(art, "nir", tmp_path / "cnn.nir"), x[:4], STEPS)
    assert out.loads and not out.runs
    assert out.error.startswith("TypeError") and "tuple" in out.error, out.error


@pytest.mark.slow
def test_residual_network_in_nirtorch_agrees(resnet):
    path, x, ref = resnet
    out = try_reader("nirtorch", path, x, _steps(path))
    assert out.runs and out.agreement(ref) >= AGREES["nirtorch"], (out.error,
                                                                    out.agreement(ref))


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["sinabs", "norse"])
def test_graph_executor_readers_mis_order_a_residual_join(resnet, reader):
    """Both load the residual file but return a hidden layer's (16, 28, 28) map, not the
    (10,) output: nirtorch.load executes nodes in depth-first order."""
    path, x, _ = resnet
    out = try_reader(reader, path, x[:8], _steps(path), batch=8)
    assert out.loads and not out.runs
    assert out.error.startswith("WrongOutput") and "(8, 16, 28, 28)" in out.error, out.error
