"""Every op class of the IR is handled or refused, with a reason, by every per-op table: a new op
or neuron type is added by filling one entry per table, and this test names each one missing.

Tables dispatch on the exact class (the interpreter and the simulators' rules, quantize's and
Lava's lowering) or on the nearest class in the op's MRO (placement's axes, the exporters)."""

from __future__ import annotations

import pytest

from snnc.backends import netx_export, nir_export
from snnc.backends.lava import lowering as lava_lowering
from snnc.compiler import quantize
from snnc.compiler.placement import connectivity
from snnc.ir import interpret, ops
from snnc.ir.serialize import OP_CLASSES
from snnc.sim import Counters, FixedRules, FloatRules, fixed_rules, float_rules

# concern -> (handled op classes, refused {class or role: reason}, dispatch)
TABLES = {
    "ANN interpretation": (interpret.ANN_RULES, interpret.REFUSED, "exact"),
    "float simulation": (FloatRules(Counters()), float_rules.REFUSED, "exact"),
    "bit-exact simulation": (FixedRules(Counters()), fixed_rules.REFUSED, "exact"),
    "quantization lowering": (quantize.LOWERING, quantize.REFUSED, "exact"),
    "placement usage": (connectivity.AXES, connectivity.REFUSED, "mro"),
    "Lava lowering": (lava_lowering.LOWERING, lava_lowering.REFUSED, "exact"),
    "NIR export": (nir_export.NIR_NODES, nir_export.REFUSED, "mro"),
    "netx export": (netx_export.NETX_LAYERS, netx_export.REFUSED, "mro"),
}


def _handled(cls: type, table, dispatch: str) -> bool:
    return cls in table or (dispatch == "mro" and any(b in table for b in cls.__mro__))


def test_every_op_is_handled_or_refused_by_every_table():
    missing = [f"{cls.__name__} in {concern}" for concern, (table, refused, how) in TABLES.items()
               for cls in OP_CLASSES.values()
               if not _handled(cls, table, how) and ops.refusal(cls, refused) is None]
    assert not missing, "neither handled nor refused: " + ", ".join(missing)


@pytest.mark.parametrize("concern", TABLES)
def test_no_op_is_both_handled_and_refused_by_class(concern):
    table, refused, _ = TABLES[concern]
    both = [c.__name__ for c in table if c in refused]
    assert not both, f"{concern}: {both}"


@pytest.mark.parametrize("concern", TABLES)
def test_refusals_give_a_reason(concern):
    _, refused, _ = TABLES[concern]
    assert all(isinstance(r, str) and len(r) > 10 for r in refused.values())


def test_every_op_declares_a_role():
    assert all(isinstance(cls.role, ops.Role) for cls in OP_CLASSES.values())
