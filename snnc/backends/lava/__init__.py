"""Lava backend: snnc's quantized graphs as Lava processes, run under
``Loihi2SimCfg(select_tag="fixed_pt")`` (DESIGN.md "Lava backend", docs/decisions.md)."""

from snnc.backends.lava.runner import LavaNetwork, LavaResult, build, check_supported, run

__all__ = ["LavaNetwork", "LavaResult", "build", "check_supported", "run"]
