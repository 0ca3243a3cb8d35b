"""Target descriptions: hardware limits and number formats as data (STYLE rule 12).

A target is a TOML file. ``loihi2``, ``loihi1`` and ``cpu`` ship as package data next to this
module; users pass a path to their own file for other chips. Every field of the shipped files
carries a one-line comment citing its source (docs/targets.md). Passes read limits and formats only
from the ``TargetSpec`` returned by ``load_target``.

Conventions:
    * ``None`` means "no hardware bound / not applicable" (the ideal ``cpu`` target). It is spelled
      ``"unlimited"`` in TOML and ``null`` in JSON. ``0`` is a real value (e.g. ``graded_spike_bits
      = 0``: binary spikes only), never "unlimited".
    * Units: counts and bits; energy in pJ (static power in mW per chip); timing in ns.
    * ``unconfirmed`` lists ``"table.field"`` paths whose values docs/targets.md §5 marks ``?``.
    * A user file may set ``base = "loihi2"`` (a built-in name or a path relative to the file) and
      then only lists what differs. Without ``unconfirmed`` it inherits the base's list minus the
      fields it overrides; ``name`` defaults to the file's stem.

Example:
    >>> spec = load_target("loihi2")
    >>> spec.core.max_neurons, spec.weights.scale_shift
    (8192, 6)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from snnc.errors import BadData

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # pragma: no cover - depends on the interpreter
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        # pip vendors tomli and is in every venv: 3.10 installs without dev extras still work.
        from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

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
]

UNLIMITED = "unlimited"  # TOML spelling of None ("no bound")

Overflow = Literal["wrap", "saturate", "none"]
SpikeCompare = Literal[">", ">="]
Reset = Literal["zero", "subtract"]


def _at_least(minimum: int | None) -> Any:
    """Field with a lower bound for validation; ``None`` allows negative values."""
    return field(metadata={"min": minimum})


@dataclass(frozen=True)
class ChipSpec:
    """Chip and system size; the mesh is ``mesh_cols`` (E-W) x ``mesh_rows`` (N-S) tiles."""

    cores_per_chip: int | None = _at_least(1)  # cores a mapper may use per chip
    physical_cores_per_chip: int | None = _at_least(1)  # cores on the die (mesh nodes)
    chips_per_system: int | None = _at_least(1)  # chips of the default board/system
    system: str  # name of that board/system
    mesh_cols: int | None = _at_least(1)  # tiles along E-W (hop cost energy.E_hop_ew)
    mesh_rows: int | None = _at_least(1)  # tiles along N-S (hop cost energy.E_hop_ns)
    cores_per_tile: int | None = _at_least(1)  # cores sharing a tile (no hop between them)


@dataclass(frozen=True)
class CoreLimits:
    """Per-core hard constraints a placement must respect (docs/targets.md §3a)."""

    max_neurons: int | None = _at_least(1)  # compartments per core
    max_in_axons: int | None = _at_least(1)  # input axon slots (fan-in lists)
    max_out_axons: int | None = _at_least(1)  # output axon slots (core-to-core edges)
    synapse_mem_bits: int | None = _at_least(1)  # synaptic memory
    synapse_word_bits: int | None = _at_least(1)  # synapse blocks round up to this word size
    population_axons: bool  # conv-style axons: one per source pixel, weight sets shared


@dataclass(frozen=True)
class WeightFormat:
    """Weights are ``mantissa * 2^(scale_shift + exp)``, one exponent per connection."""

    mantissa_bits: int | None = _at_least(1)  # stored mantissa bits; None = float weights
    mixed_sign_extra_bit: bool  # mixed-sign weights need a sign bit beyond mantissa_bits
    exp_min: int | None = _at_least(None)  # smallest shared weight exponent
    exp_max: int | None = _at_least(None)  # largest shared weight exponent
    scale_shift: int = _at_least(0)  # fixed left shift applied to every weight


@dataclass(frozen=True)
class NeuronSpec:
    """Native neuron (CUBA LIF) state formats and semantics (docs/targets.md §2a)."""

    programmable: bool  # custom neuron models (microcode) available
    uv_bits: int | None = _at_least(1)  # signed width of current u and voltage v
    u_overflow: Overflow  # what u does past uv_bits
    v_overflow: Overflow  # what v does past uv_bits
    input_accum_bits: int | None = _at_least(1)  # signed width of the per-step synaptic input
    decay_bits: int | None = _at_least(1)  # decay constants are integers in [0, 2^decay_bits)
    decay_u_offset: int = _at_least(0)  # added to du by the hardware
    decay_v_offset: int = _at_least(0)  # added to dv by the hardware
    vth_mant_bits: int | None = _at_least(1)  # unsigned threshold mantissa width
    vth_shift: int = _at_least(0)  # threshold is vth_mant << vth_shift
    bias_mant_bits: int | None = _at_least(1)  # signed bias mantissa width
    bias_exp_max: int | None = _at_least(0)  # bias is bias_mant << exp, exp in [0, bias_exp_max]
    spike_compare: SpikeCompare  # spike when v <op> threshold
    reset: Reset  # native reset after a spike
    refractory_max: int | None = _at_least(0)  # longest refractory period (steps)
    max_delay_steps: int | None = _at_least(0)  # longest synaptic delay (steps)
    graded_spike_bits: int | None = _at_least(0)  # spike payload width; 0 = binary spikes
    syn_latency_steps: int = _at_least(0)  # steps from a spike to its effect on the next layer


@dataclass(frozen=True)
class EnergyModel:
    """Per-event energies in pJ (static power in mW per chip); 0 = not modelled."""

    E_synop: float = _at_least(0)  # one synaptic operation
    E_neuron_active: float = _at_least(0)  # neuron update that integrates input
    E_neuron_inactive: float = _at_least(0)  # neuron update without input
    E_spike_in_tile: float = _at_least(0)  # spike delivered within a tile
    E_hop_ew: float = _at_least(0)  # one east-west mesh hop
    E_hop_ns: float = _at_least(0)  # one north-south mesh hop
    E_mac_ref: float = _at_least(0)  # ANN multiply-accumulate baseline
    E_ac_ref: float = _at_least(0)  # SNN accumulate baseline
    P_static_mW_per_chip: float = _at_least(0)  # leakage power of one chip


@dataclass(frozen=True)
class TimingModel:
    """Per-event latencies in ns; 0 = not modelled."""

    t_synop: float = _at_least(0)  # one synaptic operation
    t_neuron_active: float = _at_least(0)  # neuron update with input
    t_neuron_inactive: float = _at_least(0)  # neuron update without input
    t_spike_in_tile: float = _at_least(0)  # spike delivered within a tile
    t_hop_ew: float = _at_least(0)  # one east-west mesh hop
    t_hop_ns: float = _at_least(0)  # one north-south mesh hop
    t_barrier_min: float = _at_least(0)  # time-step barrier, smallest mesh
    t_barrier_max: float = _at_least(0)  # time-step barrier, whole chip


@dataclass(frozen=True)
class TargetSpec:
    """A compilation target: what the hardware can hold and how it computes."""

    name: str
    description: str
    fixed_point: bool  # False: ideal float target, quantization is skipped
    unconfirmed: tuple[str, ...]  # "table.field" paths with values not confirmed by a source
    chip: ChipSpec
    core: CoreLimits
    weights: WeightFormat
    neuron: NeuronSpec
    energy: EnergyModel
    timing: TimingModel

    def field_value(self, path: str) -> Any:
        """Value at ``"table.field"``, e.g. ``spec.field_value("core.max_neurons")``."""
        table, _, name = path.partition(".")
        return getattr(getattr(self, table), name)

    def is_unconfirmed(self, path: str) -> bool:
        return path in self.unconfirmed


_TABLES: dict[str, type] = {
    "chip": ChipSpec,
    "core": CoreLimits,
    "weights": WeightFormat,
    "neuron": NeuronSpec,
    "energy": EnergyModel,
    "timing": TimingModel,
}
_SCALARS = ("name", "description", "fixed_point", "unconfirmed")
_HINTS = {t: typing.get_type_hints(cls) for t, cls in _TABLES.items()}
_FIELDS = {t: {f.name: f for f in dataclasses.fields(cls)} for t, cls in _TABLES.items()}
# Formats a fixed-point target must define (``None`` only makes sense on float targets).
_FIXED_POINT_REQUIRED = (
    "weights.mantissa_bits",
    "weights.exp_min",
    "weights.exp_max",
    "neuron.uv_bits",
    "neuron.input_accum_bits",
    "neuron.decay_bits",
    "neuron.vth_mant_bits",
    "neuron.bias_mant_bits",
    "neuron.bias_exp_max",
)


# ---------------------------------------------------------------------------------------------
# validation


def _fail(where: str, path: str | None, problem: str) -> BadData:
    return BadData(f"{where}: field '{path}': {problem}" if path else f"{where}: {problem}")


def _check_structure(data: Mapping[str, Any], where: str, allow_base: bool) -> None:
    """Reject unknown tables/fields and non-table values where a table belongs."""
    known = set(_SCALARS) | set(_TABLES) | ({"base"} if allow_base else set())
    for key, value in data.items():
        if key not in known:
            raise _fail(where, key, f"unknown field (known: {', '.join(sorted(known))})")
        if key in _TABLES:
            if not isinstance(value, Mapping):
                raise _fail(where, key, f"must be a table, got {_show(value)}")
            for name in value:
                if name not in _FIELDS[key]:
                    raise _fail(
                        where, f"{key}.{name}",
                        f"unknown field (known: {', '.join(_FIELDS[key])})",
                    )


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(value: Any, hint: Any, minimum: int | None, where: str, path: str) -> Any:
    """Check one value against its annotation and return it in canonical Python form."""
    args = typing.get_args(hint)
    nullable = type(None) in args
    if nullable and (value is None or value == UNLIMITED):
        return None
    kind = next((a for a in args if a is not type(None)), hint) if nullable else hint
    if typing.get_origin(kind) is Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(repr(c) for c in typing.get_args(kind))
            raise _fail(where, path, f"must be one of {choices}, got {_show(value)}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(where, path, f"must be true or false, got {_show(value)}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _fail(where, path, f"must be a string, got {_show(value)}")
        return value
    numbers = (int, float) if kind is float else (int,)
    noun = "integer" if kind is int else "number"
    if minimum == 0:
        expected = f"a non-negative {noun}"
    else:
        expected = ("an integer" if kind is int else "a number") + (
            "" if minimum is None else f" >= {minimum}"
        )
    if nullable:
        expected += f' or "{UNLIMITED}"'
    if isinstance(value, bool) or not isinstance(value, numbers):
        raise _fail(where, path, f"must be {expected}, got {_show(value)}")
    if kind is float and not math.isfinite(value):
        raise _fail(where, path, f"must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise _fail(where, path, f"must be {expected}, got {value!r}")
    return kind(value)


def _build_table(table: str, data: Mapping[str, Any], where: str) -> Any:
    values = {}
    for name, f in _FIELDS[table].items():
        path = f"{table}.{name}"
        if name not in data:
            raise _fail(where, path, "missing (required unless the file sets `base`)")
        values[name] = _convert(data[name], _HINTS[table][name], f.metadata.get("min"), where, path)
    return _TABLES[table](**values)


def _build(data: Mapping[str, Any], where: str) -> TargetSpec:
    """Validate a complete target mapping (TOML or ``target_to_dict`` form) into a TargetSpec."""
    _check_structure(data, where, allow_base=False)
    for key in (*_SCALARS, *_TABLES):
        if key not in data:
            raise _fail(where, key, "missing (required unless the file sets `base`)")
    name = _convert(data["name"], str, None, where, "name")
    if not name.strip():
        raise _fail(where, "name", "must not be empty")
    unconfirmed = data["unconfirmed"]
    is_list = isinstance(unconfirmed, (list, tuple))
    if not is_list or not all(isinstance(u, str) for u in unconfirmed):
        raise _fail(where, "unconfirmed", f"must be a list of strings, got {_show(unconfirmed)}")
    for entry in unconfirmed:
        table, _, fname = entry.partition(".")
        if fname not in _FIELDS.get(table, {}):
            raise _fail(where, "unconfirmed", f"entry {entry!r} names no field (use 'table.field')")
    spec = TargetSpec(
        name=name,
        description=_convert(data["description"], str, None, where, "description"),
        fixed_point=_convert(data["fixed_point"], bool, None, where, "fixed_point"),
        unconfirmed=tuple(dict.fromkeys(unconfirmed)),
        **{t: _build_table(t, data[t], where) for t in _TABLES},
    )
    _check_consistency(spec, where)
    return spec


def _check_consistency(spec: TargetSpec, where: str) -> None:
    """Cross-field rules that single-field checks cannot express."""
    w, c = spec.weights, spec.chip
    if (w.exp_min is None) != (w.exp_max is None):
        raise _fail(where, "weights.exp_max", "must be unlimited exactly when exp_min is")
    if w.exp_min is not None and w.exp_min > w.exp_max:
        raise _fail(where, "weights.exp_min", f"{w.exp_min} is greater than exp_max {w.exp_max}")
    if spec.fixed_point:
        for path in _FIXED_POINT_REQUIRED:
            if spec.field_value(path) is None:
                raise _fail(where, path, f'cannot be "{UNLIMITED}" on a fixed-point target')
        for path in ("neuron.u_overflow", "neuron.v_overflow"):
            if spec.field_value(path) == "none":
                raise _fail(where, path, "must be 'wrap' or 'saturate' on a fixed-point target")
    if None not in (c.cores_per_chip, c.physical_cores_per_chip):
        if c.cores_per_chip > c.physical_cores_per_chip:
            raise _fail(
                where, "chip.cores_per_chip",
                f"{c.cores_per_chip} exceeds physical_cores_per_chip {c.physical_cores_per_chip}",
            )
    mesh = (c.mesh_cols, c.mesh_rows, c.cores_per_tile, c.physical_cores_per_chip)
    if None not in mesh and mesh[0] * mesh[1] * mesh[2] != mesh[3]:
        raise _fail(
            where, "chip.mesh_cols",
            f"{mesh[0]}x{mesh[1]} tiles x {mesh[2]} cores != physical_cores_per_chip {mesh[3]}",
        )
    t = spec.timing
    if t.t_barrier_min > t.t_barrier_max:
        raise _fail(
            where, "timing.t_barrier_min", f"{t.t_barrier_min} > t_barrier_max {t.t_barrier_max}"
        )


# ---------------------------------------------------------------------------------------------
# loading


def builtin_targets() -> list[str]:
    """Names of the targets shipped with snnc (sorted)."""
    files = resources.files(__package__)
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # message ends with "(at line L, column C)"
        raise BadData(f"{where}: invalid TOML: {exc}") from None


def _is_name(ref: str) -> bool:
    return not ref.lower().endswith(".toml") and "/" not in ref and os.sep not in ref


def _read(ref: str, relative_to: Path | None) -> tuple[dict[str, Any], str, str, Path | None]:
    """Parse a built-in name or a file. Returns (data, label for errors, stem, folder)."""
    if _is_name(ref):
        if ref not in builtin_targets():
            raise BadData(
                f"unknown target {ref!r} (built-in targets: {', '.join(builtin_targets())}; "
                "or give the path to a .toml file)"
            )
        text = resources.files(__package__).joinpath(f"{ref}.toml").read_text(encoding="utf-8")
        where = f"built-in target '{ref}'"
        return _parse_toml(text, where), where, ref, None
    path = Path(ref).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    where = f"target file '{path}'"
    if not path.is_file():
        raise BadData(f"{where}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadData(f"{where}: cannot read: {exc}") from None
    return _parse_toml(text, where), where, path.stem, path.parent


def _load(ref: str, relative_to: Path | None, chain: tuple[str, ...]) -> TargetSpec:
    data, where, stem, folder = _read(ref, relative_to)
    _check_structure(data, where, allow_base=True)
    if "base" not in data:
        data.setdefault("name", stem)
        return _build(data, where)
    base_ref = data.pop("base")
    if not isinstance(base_ref, str) or not base_ref:
        raise _fail(where, "base", f"must be a built-in target name or path, got {_show(base_ref)}")
    key = where if folder is None else str((folder / stem).resolve())
    if key in chain:
        raise _fail(where, "base", "circular chain of base targets")
    base = _load(base_ref, folder, (*chain, key))
    merged = target_to_dict(base)
    for k, v in data.items():
        merged[k] = {**merged[k], **v} if k in _TABLES else v
    if "unconfirmed" not in data:  # a value the user gives is their data, not our placeholder
        overridden = {f"{t}.{f}" for t in _TABLES for f in data.get(t, {})}
        merged["unconfirmed"] = [u for u in base.unconfirmed if u not in overridden]
    if "name" not in data:
        merged["name"] = stem
    if "description" not in data:
        merged["description"] = f"{stem}: custom target based on {base.name}"
    return _build(merged, where)


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> TargetSpec:
    return _load(name, None, ())


def load_target(name_or_path: str | os.PathLike[str]) -> TargetSpec:
    """Load a built-in target (``"loihi2"``, ``"loihi1"``, ``"cpu"``) or a user ``.toml`` file.

    Raises:
        BadData: unknown name, missing file, TOML syntax error (with line), unknown field, wrong
            type, out-of-range or inconsistent value; the message names the file and the field.
    """
    ref = os.fspath(name_or_path)
    if _is_name(ref):
        return _load_builtin(ref)
    return _load(ref, None, ())


# ---------------------------------------------------------------------------------------------
# serialisation and display


def target_to_dict(spec: TargetSpec) -> dict[str, Any]:
    """JSON-able nested dict with the TOML layout; ``None`` (JSON null) means unlimited."""
    out = dataclasses.asdict(spec)
    out["unconfirmed"] = list(spec.unconfirmed)
    return out


def target_from_dict(data: Mapping[str, Any], source: str = "target dict") -> TargetSpec:
    """Inverse of ``target_to_dict`` (e.g. for artifacts); validates like a TOML file."""
    if not isinstance(data, Mapping):
        raise BadData(f"{source}: must be a mapping, got {type(data).__name__}")
    return _build(copy.deepcopy(dict(data)), source)
