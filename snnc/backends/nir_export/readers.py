"""NIR flavours for particular readers: ``generic`` (IF, SumPool2d; the default) and
``snntorch`` (LIF, AvgPool2d), the nodes ``snntorch.import_nir.import_from_nir`` 1.0.0 runs.

snntorch 1.0.0 maps ``IF`` to a leaky ``snn.Leaky(beta=0.9)`` returning a (spike, membrane)
tuple and has no ``SumPool2d``; its ``LIF`` mapping is ``snn.Leaky(beta=1 - dt/tau,
threshold=v_threshold, reset_mechanism="zero", init_hidden=True)`` with ``dt = 1e-4`` fixed and
asks ``v_leak = 0``, ``r dt / tau = 1`` (its ``w_scale``) and one threshold per population. The
snntorch flavour writes each IF population as such a LIF:

- ``tau = 2**24 * dt`` (1677.7216): in float32 ``beta = 1 - 2**-24 = 0.99999994``, the value
  closest to 1 that is not 1 (a leak of 2e-6 of the membrane over 32 steps);
- ``r = tau / dt = 2**24``: ``w_scale = 1``, the input current reaches the membrane unscaled;
- ``v_threshold`` = the IF's, one float32 lower: snntorch spikes on ``v > threshold``, which
  on float32 values is snnc's ``v >= threshold``.

What it cannot state: snntorch resets to zero (snnc subtracts the threshold) and starts at
v(0) = 0 (snnc at ``v_init`` thresholds); docs/nir.md "snntorch" gives the agreement that costs.
snntorch builds its module with ``nirtorch.nir_to_torch``, which passes each edge into a node
as one more positional argument to its torch module (``Conv2d``, ``Linear``, ``snn.Leaky``),
so no node can sum several edges: residual sums and channel concatenations are refused.
"""

from __future__ import annotations

import numpy as np

from snnc.errors import BackendError, SnncError
from snnc.ir import ops

__all__ = ["NIR_READERS", "SNNTORCH_DT", "SNNTORCH_METADATA", "SNNTORCH_TAU", "check_nir_reader",
           "reader_note", "reader_refusals", "single_input_problems", "snntorch_lif"]

NIR_READERS = ("generic", "snntorch")
SNNTORCH_DT = 1e-4  # snntorch.import_nir's fixed time step
SNNTORCH_TAU = float(np.float32(2**24 * SNNTORCH_DT))
SNNTORCH_METADATA = {
    "nir_reader": "snntorch",
    "neurons": "IF written as LIF for snntorch 1.0.0 (dt 1e-4): tau = 2**24 dt (beta = "
               "1 - 2**-24), r = tau / dt, v_leak = 0, v_threshold one float32 below the IF's; "
               "snntorch resets to zero and starts at v = 0",
    "pooling": "AvgPool2d (the reader divides by the window)",
}
_SUMS = ("snntorch 1.0.0's import_from_nir passes each edge into a node as a separate "
         "argument, so no node can sum several inputs (use --nir-reader generic)")


def check_nir_reader(reader: str, fmt: str = "nir") -> None:
    """Raise SnncError unless ``reader`` is a known NIR flavour usable with format ``fmt``."""
    if reader not in NIR_READERS:
        raise SnncError(f"unknown NIR reader '{reader}'; available: {', '.join(NIR_READERS)}")
    if reader != "generic" and fmt != "nir":
        raise SnncError(f"--nir-reader {reader} applies to --format nir, not '{fmt}'")


def reader_refusals(reader: str) -> dict[type[ops.Op], str]:
    """Ops that ``reader``'s flavour cannot express, with why (checked before anything is
    written, with the layer names)."""
    if reader != "snntorch":
        return {}
    return {ops.Add: "residual sum (edges into one node)",
            ops.Concat: "channel concatenation (its parts are summed by edges into one node)"}


def reader_note(reader: str) -> str:
    """Why ``reader``'s flavour refuses what ``reader_refusals`` lists ("" for generic)."""
    return f" ({_SUMS})" if reader == "snntorch" else ""


def single_input_problems(edges: list[tuple[str, str]], reader: str) -> list[str]:
    """NIR nodes with several incoming edges, which ``reader`` cannot run."""
    count: dict[str, list[str]] = {}
    for src, dst in edges:
        count.setdefault(dst, []).append(src)
    return [f"NIR node '{dst}' sums {len(srcs)} edges ({', '.join(srcs)}) and NIR reader "
            f"{reader} cannot run it: {_SUMS}" for dst, srcs in count.items() if len(srcs) > 1]


def snntorch_lif(nir, name: str, shape: tuple[int, ...], threshold: float, metadata: dict):
    """The ``nir.LIF`` that snntorch 1.0.0 runs as an IF of threshold ``threshold`` (module
    docstring); ``threshold`` must be one value for the whole population."""
    values = np.unique(np.asarray(threshold, np.float32))
    if values.size != 1:
        raise BackendError(f"'{name}': NIR reader snntorch needs one threshold per population, "
                           f"this layer has {values.size}")
    below = np.nextafter(values[0], np.float32(-np.inf), dtype=np.float32)
    return nir.LIF(tau=np.full(shape, SNNTORCH_TAU, np.float32),
                   r=np.full(shape, SNNTORCH_TAU / SNNTORCH_DT, np.float32),
                   v_leak=np.zeros(shape, np.float32),
                   v_threshold=np.full(shape, below, np.float32), metadata=metadata)
