"""Lava backend: snnc's quantized graphs as Lava processes, run under
``Loihi2SimCfg(select_tag="fixed_pt")`` (DESIGN.md "Lava backend", docs/decisions.md).

``lowering.LOWERING`` maps each op class to the function creating its Lava process(es);
``lowering.REFUSED`` names the op classes this backend does not run, with the reason.
Importing this package does not import Lava: building a network does."""

from snnc.backends.lava.lowering import LOWERING, REFUSED, build, check_supported
from snnc.backends.lava.network import LavaNetwork, LavaResult
from snnc.backends.lava.runner import run

__all__ = ["LOWERING", "REFUSED", "LavaNetwork", "LavaResult", "build", "check_supported", "run"]
