"""The ``snnc targets`` table: each target's headline limits and formats."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snnc.targets.target import TargetSpec

__all__ = ["format_targets"]


def _count(n: int | None) -> str:
    return "∞" if n is None else f"{n:,}"


def _memory(bits: int | None) -> str:
    if bits is None:
        return "∞"
    return f"{bits // 8192:,} KiB" if bits % 8192 == 0 else f"{bits:,} b"


def format_targets(specs: Iterable[TargetSpec]) -> Any:
    """A ``rich.table.Table`` for ``snnc targets``; ``?`` marks unconfirmed values (caption)."""
    from rich.table import Table

    specs = list(specs)
    table = Table(title="snnc targets", caption_justify="left")
    table.add_column("name")
    for col in ("cores/chip", "neurons/core", "synapse memory/core", "weight bits", "state bits",
                "delay", "graded spikes", "E_synop"):
        table.add_column(col, justify="right")
    for s in specs:
        def cell(path: str, text: str, s: TargetSpec = s) -> str:
            return f"{text}?" if s.is_unconfirmed(path) else text

        w, n = s.weights, s.neuron
        wbits = "float" if w.mantissa_bits is None else (
            f"{w.mantissa_bits}+sign" if w.mixed_sign_extra_bit else str(w.mantissa_bits)
        )
        graded = {None: "float", 0: "binary"}.get(n.graded_spike_bits, f"{n.graded_spike_bits} b")
        table.add_row(
            s.name,
            cell("chip.cores_per_chip", _count(s.chip.cores_per_chip)),
            cell("core.max_neurons", _count(s.core.max_neurons)),
            cell("core.synapse_mem_bits", _memory(s.core.synapse_mem_bits)),
            cell("weights.mantissa_bits", wbits),
            cell("neuron.uv_bits", "float" if n.uv_bits is None else str(n.uv_bits)),
            cell("neuron.max_delay_steps", _count(n.max_delay_steps)),
            cell("neuron.graded_spike_bits", graded),
            cell("energy.E_synop", f"{s.energy.E_synop:g} pJ"),
        )
    notes = [f"{s.name}: {', '.join(s.unconfirmed)}" for s in specs if s.unconfirmed]
    if notes:
        table.caption = ("? unconfirmed (placeholder values, see docs/targets.md): "
                         + "; ".join(notes))
    return table
