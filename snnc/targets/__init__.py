"""Compilation targets: hardware limits, number formats and energy/timing models as data.

Built-in targets ship as TOML files in this package (``loihi2``, ``loihi1``, ``cpu``); users can
load their own file with ``load_target("path/to/chip.toml")``. See ``snnc.targets.target``.
"""

from snnc.targets.table import format_targets
from snnc.targets.target import (
    UNLIMITED,
    ChipSpec,
    CoreLimits,
    EnergyModel,
    NeuronSpec,
    TargetSpec,
    TimingModel,
    WeightFormat,
    builtin_targets,
    load_target,
    target_from_dict,
    target_to_dict,
)

__all__ = [
    "UNLIMITED",
    "ChipSpec",
    "CoreLimits",
    "WeightFormat",
    "NeuronSpec",
    "EnergyModel",
    "TimingModel",
    "TargetSpec",
    "load_target",
    "builtin_targets",
    "target_to_dict",
    "target_from_dict",
    "format_targets",
]
