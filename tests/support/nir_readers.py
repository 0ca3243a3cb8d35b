"""Load a NIR file in the installed, unpatched NIR readers and run it as a user would.

Each runner takes the file, images ``x`` (N, *input_shape) and the number of steps T, feeds
``x`` as the input current at every step (what the file's metadata ``input`` says) and returns
the mean over T of the output node's values (N, n_out): the readout snnc's reference simulator
computes. Used by tests/backends/test_nir_readers.py and benchmarks/nir_readers.py.

Readers: ``sinabs.from_nir`` (sinabs 3.1.3), ``snntorch.import_nir.import_from_nir`` (snntorch
1.0.0), ``norse.torch.from_nir`` (norse 1.1.0) and ``nirtorch.nir_to_torch`` (nirtorch 2.0.2,
which maps nodes through a user-given ``node_map``: ``NIRTORCH_NODE_MAP`` below, the one
docs/nir.md shows, implements NIR's IF with the node metadata snnc writes). snntorch runs only
files exported with ``--nir-reader snntorch`` (tests/backends/test_nir_snntorch.py).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

READERS = ("sinabs", "snntorch", "norse", "nirtorch")
# nirtorch with an IF that reads only the node's fields: the agreement NIR's fields alone give
FIELDS_ONLY = "nirtorch-fields-only"
# nirtorch's deprecated ``load`` (the depth-first GraphExecutor sinabs and norse use) with the
# exact node map: checks the order it runs the file's nodes in
GRAPH_EXECUTOR = "nirtorch-load"


class SummedInputs(torch.nn.Module):
    """``module`` applied to the sum of its inputs (nir_to_torch passes every edge into a node
    as one positional argument; NIR sums them)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *xs):
        return self.module(sum(xs))


class IFSubtract(torch.nn.Module):
    """NIR ``IF`` with snnc's node metadata: v += r I; spike if v >= v_threshold (``>`` if the
    metadata says so); v -= v_threshold on a spike; v(0) = metadata ``v_init`` (0 if absent)."""

    def __init__(self, node) -> None:
        super().__init__()
        meta = node.metadata or {}
        self.register_buffer("r", torch.as_tensor(np.asarray(node.r), dtype=torch.float32))
        self.register_buffer("th", torch.as_tensor(np.asarray(node.v_threshold),
                                                   dtype=torch.float32))
        self.v_init = float(meta.get("v_init", 0.0))
        self.ge = str(meta.get("threshold_compare", ">")) == ">="
        self.subtract = str(meta.get("reset", "subtract")) == "subtract"

    def forward(self, *xs, state=None):
        v = torch.full_like(xs[0], self.v_init) if state is None else state
        v = v + self.r * sum(xs)
        s = (v >= self.th if self.ge else v > self.th).to(v.dtype)
        v = v - s * self.th if self.subtract else v * (1 - s)
        return s, v


def _conv2d(node) -> torch.nn.Module:
    w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    conv = torch.nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
                           stride=tuple(node.stride), padding=tuple(node.padding),
                           dilation=tuple(node.dilation), groups=int(node.groups))
    conv.weight.data, conv.bias.data = w, torch.as_tensor(np.asarray(node.bias),
                                                           dtype=torch.float32)
    return SummedInputs(conv)


def _affine(node) -> torch.nn.Module:
    w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    lin.weight.data, lin.bias.data = w, torch.as_tensor(np.asarray(node.bias),
                                                         dtype=torch.float32)
    return SummedInputs(lin)


class IFFieldsOnly(IFSubtract):
    """NIR ``IF`` from its fields alone, as nir 1.0.4 defines it (reset by subtraction, spike
    if v > v_threshold, v(0) = 0): what a reader that ignores node metadata computes."""

    def __init__(self, node) -> None:
        super().__init__(node)
        self.v_init, self.ge, self.subtract = 0.0, False, True


class IFState(torch.nn.Module):
    """``IFSubtract`` with the ``forward(x, state)`` signature nirtorch's GraphExecutor needs
    (it sums a node's inputs itself and passes the state positionally)."""

    def __init__(self, node) -> None:
        super().__init__()
        self.neuron = IFSubtract(node)

    def forward(self, x, state=None):
        s, v = self.neuron(x, state=state)
        return s, v


def graph_executor_map(node):
    """The ``model_map`` for nirtorch's deprecated ``load``: the exact map, one input each."""
    import nir

    if isinstance(node, nir.IF):
        return IFState(node)
    make = nirtorch_node_map().get(type(node))
    return make(node) if make else None


def nirtorch_node_map(metadata: bool = True) -> dict:
    """The ``node_map`` for ``nirtorch.nir_to_torch`` (docs/nir.md "nirtorch"); with
    ``metadata=False`` its IF ignores the node metadata (v_init, ``>=``)."""
    import nir

    return {
        nir.Affine: _affine,
        nir.Conv2d: _conv2d,
        nir.IF: IFSubtract if metadata else IFFieldsOnly,
        nir.SumPool2d: lambda n: SummedInputs(torch.nn.LPPool2d(
            1, tuple(int(k) for k in n.kernel_size), tuple(int(s) for s in n.stride))),
        nir.Flatten: lambda n: SummedInputs(torch.nn.Flatten(int(n.start_dim),
                                                             int(n.end_dim))),
    }


def load(reader: str, path: Path | str, batch: int, timesteps: int):
    """The torch module ``reader`` builds from the NIR file ``path``."""
    import nir

    graph = nir.read(str(path))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if reader == "sinabs":
            import sinabs

            return sinabs.from_nir(graph, batch_size=batch, num_timesteps=timesteps)
        if reader == "snntorch":
            from snntorch.import_nir import import_from_nir

            return import_from_nir(graph)
        if reader == "norse":
            import norse.torch

            return norse.torch.from_nir(graph)
        if reader in ("nirtorch", "nirtorch-fields-only"):
            import nirtorch

            return nirtorch.nir_to_torch(graph, nirtorch_node_map(reader == "nirtorch"))
        if reader == GRAPH_EXECUTOR:
            import nirtorch

            return nirtorch.load(graph, graph_executor_map)
    raise ValueError(f"unknown reader {reader}; known: {READERS}")


def run(reader: str, module, x: np.ndarray, timesteps: int) -> np.ndarray:
    """Mean over ``timesteps`` of the output of ``module`` (built by ``load``) on ``x``."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if reader == "sinabs":  # Squeeze layers: time folded into the batch, batch-major
            xs = xt.unsqueeze(1).expand(-1, timesteps, *xt.shape[1:]).flatten(0, 1)
            out, _ = module(xs)
            return out.reshape(len(x), timesteps, *out.shape[1:]).mean(1).numpy()
        total, state = 0.0, None
        for _ in range(timesteps):
            out, state = module(xt) if state is None else module(xt, state)
            total = total + out
        return (total / timesteps).numpy()


class WrongOutput(Exception):
    """A reader ran the file but returned something other than the output node's values."""


@dataclass
class ReaderOutcome:
    """What happened when a user loaded and ran a file in one reader."""

    reader: str
    loads: bool
    runs: bool
    error: str | None
    outputs: np.ndarray | None

    def agreement(self, reference: np.ndarray) -> float | None:
        """Top-1 agreement with ``reference`` outputs (None when it did not run)."""
        if self.outputs is None:
            return None
        return float(np.mean(self.outputs.argmax(1) == reference.argmax(1)))


def try_reader(reader: str, path: Path | str, x: np.ndarray, timesteps: int,
               batch: int = 100) -> ReaderOutcome:
    """Load ``path`` in ``reader`` and run it on ``x`` in batches, catching what fails."""
    try:
        load(reader, path, min(batch, len(x)), timesteps)
    except Exception as e:  # noqa: BLE001 - the outcome is what we report
        return ReaderOutcome(reader, False, False, f"{type(e).__name__}: {e}", None)
    import nir

    n_out = int(np.prod(nir.read(str(path)).nodes["output"].output_type["output"]))
    outs = []
    try:
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            out = run(reader, load(reader, path, len(xb), timesteps), xb, timesteps)
            if out.shape != (len(xb), n_out):
                raise WrongOutput(f"the module returned shape {tuple(out.shape)}, not the "
                                  f"output node's {(len(xb), n_out)}")
            outs.append(out)
    except Exception as e:  # noqa: BLE001
        return ReaderOutcome(reader, True, False, f"{type(e).__name__}: {e}", None)
    return ReaderOutcome(reader, True, True, None, np.concatenate(outs))
