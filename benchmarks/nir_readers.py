"""snnc's NIR export in the installed, unpatched NIR readers: loads, runs, top-1 agreement.

For three rate-coded networks -- LeNet with its max-pools replaced by average pools
(examples/lenet, weights unchanged, T = 32), the residual CNN of examples/resnet with its
max-pool replaced by an average pool and fine-tuned two epochs from resnet.onnx's weights
(T = 64, --percentile 99.5), the network of examples/export.py (digits CNN, T = 32) and the
temporal Conv1d net of examples/temporal with average pools (written in its 2-D form, rows fed
as (C, 1, L); T = 32) -- export the artifact with ``snnc export --format nir``, then load the file in sinabs, snntorch, norse and nirtorch as a user would
(tests/support/nir_readers.py), feed each test image as the input current for T steps, and
compare each reader's top-1 (mean output over T) with snnc's reference simulation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nir_readers.py [--limit 300] [--only temporal]

Prints a markdown table; a reader that fails prints the first line of its error. The last row
of each network, ``nirtorch-fields-only``, runs nirtorch with an IF that ignores the node
metadata (v(0) = 0 instead of half a threshold, ``>`` instead of ``>=``): the agreement that
what NIR's fields cannot state costs. The row ``snntorch (--nir-reader snntorch)`` exports the
snntorch flavour (LIF, AvgPool2d; docs/nir.md "snntorch") and runs it in snntorch 1.0.0; a
network it cannot express prints the export error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nir
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.export_models import (
    example_without_max_pool,
    export_example_model,
    residual_cnn_without_max_pool,
)
from support.nir_readers import (
    FIELDS_ONLY,
    GRAPH_EXECUTOR,
    READERS,
    ReaderOutcome,
    try_reader,
)

from snnc.api import export_artifact
from snnc.backends.planar import as_planar
from snnc.backends.reference.simulator import simulate
from snnc.errors import BackendError

SNNTORCH_FLAVOUR = "snntorch (--nir-reader snntorch)"

MODELS = {
    "LeNet, avg-pool (rate)": lambda tmp, n: example_without_max_pool(tmp, "lenet", n),
    "residual CNN, avg-pool (rate, T=64)": residual_cnn_without_max_pool,
    "export example (rate)": export_example_model,
    "temporal Conv1d, avg-pool (rate)": lambda tmp, n: example_without_max_pool(tmp, "temporal",
                                                                                n),
}


def _short(error: str | None, width: int = 110) -> str:
    line = (error or "").splitlines()[0] if error else ""
    return (line[:width] + "...") if len(line) > width else line


def _snntorch_flavour(art, sub: Path, x, steps: int) -> ReaderOutcome:
    """The snntorch flavour of ``art`` run in snntorch (the export error if it has none)."""
    try:
        path = export_artifact(art, "nir", sub / "snntorch.nir", nir_reader="snntorch")
    except BackendError as e:
        return ReaderOutcome(SNNTORCH_FLAVOUR, False, False, f"export: {e}", None)
    out = try_reader("snntorch", path, x, steps)
    out.reader = SNNTORCH_FLAVOUR
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=300, help="test images per network")
    p.add_argument("--only", default="", help="networks whose label contains this text")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    print("| network | snnc acc. | reader | loads unpatched | runs | top-1 agreement | "
          "error | s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, build in MODELS.items():
            if args.only.lower() not in label.lower():
                continue
            sub = Path(tmp) / str(len(rows))
            sub.mkdir()
            art, x, y = build(sub, args.limit)
            path = export_artifact(art, "nir", sub / "model.nir")
            ref = simulate(art.graph, x, device="cpu").outputs[0]
            x = x.reshape(len(x), *as_planar(art.graph).inputs[0].shape)  # 1-D: (C, 1, L)
            steps = int(nir.read(str(path)).metadata["timesteps"])
            acc = float(np.mean(ref.argmax(1) == y))
            for reader in (*READERS, SNNTORCH_FLAVOUR, FIELDS_ONLY, GRAPH_EXECUTOR):
                t0 = time.perf_counter()
                out = (_snntorch_flavour(art, sub, x, steps) if reader == SNNTORCH_FLAVOUR
                       else try_reader(reader, path, x, steps))
                agree = out.agreement(ref)
                row = {"network": label, "reader": reader, "loads": out.loads,
                       "runs": out.runs, "agreement": agree, "error": out.error,
                       "snnc_accuracy": acc, "images": len(x)}
                rows.append(row)
                print(f"| {label} | {acc:.1%} | {reader} | {'yes' if out.loads else 'no'} | "
                      f"{'yes' if out.runs else 'no'} | "
                      f"{'-' if agree is None else f'{agree:.1%}'} | {_short(out.error)} | "
                      f"{time.perf_counter() - t0:.1f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
