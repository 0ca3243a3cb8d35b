"""Target files: built-ins match docs/targets.md; custom files inherit; bad files fail clearly."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console

from snnc.errors import BadData, SnncError
from snnc.targets import (
    TargetSpec,
    builtin_targets,
    format_targets,
    load_target,
    target_from_dict,
    target_to_dict,
)

BUILTINS = ("loihi2", "loihi1", "cpu")
TABLES = ("chip", "core", "weights", "neuron", "energy", "timing")


def write(tmp_path: Path, text: str, name: str = "chip.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def all_paths(spec: TargetSpec) -> list[str]:
    return [f"{t}.{f.name}" for t in TABLES for f in dataclasses.fields(getattr(spec, t))]


# --------------------------------------------------------------------------------------------
# built-ins


def test_builtin_targets_listed_from_package_data():
    assert builtin_targets() == sorted(BUILTINS)
    files = resources.files("snnc.targets")
    for name in BUILTINS:
        assert files.joinpath(f"{name}.toml").is_file()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name):
    spec = load_target(name)
    assert isinstance(spec, TargetSpec)
    assert spec.name == name
    assert spec.description
    assert load_target(name) == spec  # cached and immutable
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.core.max_neurons = 1  # type: ignore[misc]


def test_loihi1_values_match_targets_md():
    s = load_target("loihi1")
    assert s.fixed_point
    assert s.chip.cores_per_chip == 128
    assert s.chip.chips_per_system == 32  # Nahuku
    assert s.chip.mesh_cols * s.chip.mesh_rows * s.chip.cores_per_tile == 128
    assert s.core.max_neurons == 1024
    assert s.core.max_in_axons == 4096 and s.core.max_out_axons == 4096
    assert s.core.synapse_mem_bits == 1_048_576 == 16384 * 64
    assert s.core.synapse_word_bits == 64
    assert (s.weights.mantissa_bits, s.weights.mixed_sign_extra_bit) == (8, True)
    assert (s.weights.exp_min, s.weights.exp_max, s.weights.scale_shift) == (-7, 7, 6)
    n = s.neuron
    assert (n.uv_bits, n.u_overflow, n.v_overflow) == (24, "wrap", "saturate")
    assert (n.decay_bits, n.decay_u_offset, n.decay_v_offset) == (12, 1, 0)
    assert (n.vth_mant_bits, n.vth_shift, n.bias_mant_bits, n.bias_exp_max) == (17, 6, 13, 7)
    assert (n.spike_compare, n.reset, n.refractory_max) == (">", "zero", 63)
    assert (n.max_delay_steps, n.graded_spike_bits, n.syn_latency_steps) == (62, 0, 1)
    assert n.input_accum_bits == 22 and not n.programmable
    e = s.energy
    assert (e.E_synop, e.E_neuron_active, e.E_neuron_inactive) == (23.6, 81.0, 52.0)
    assert (e.E_spike_in_tile, e.E_hop_ew, e.E_hop_ns) == (1.7, 3.0, 4.0)
    assert (e.E_mac_ref, e.E_ac_ref, e.P_static_mW_per_chip) == (4.6, 0.9, 104.0)
    t = s.timing
    assert (t.t_synop, t.t_neuron_active, t.t_neuron_inactive) == (3.5, 8.4, 5.3)
    assert (t.t_hop_ew, t.t_hop_ns, t.t_barrier_min, t.t_barrier_max) == (4.1, 6.5, 113.0, 465.0)
    assert s.unconfirmed == ()


def test_loihi2_values_match_targets_md():
    s = load_target("loihi2")
    assert s.fixed_point
    assert (s.chip.cores_per_chip, s.chip.physical_cores_per_chip) == (120, 128)
    assert (s.chip.chips_per_system, s.chip.system) == (8, "Kapoho Point")
    assert s.core.max_neurons == 8192
    assert s.core.synapse_mem_bits == 1_048_576
    assert (s.weights.mantissa_bits, s.weights.mixed_sign_extra_bit) == (8, False)
    assert (s.weights.exp_min, s.weights.exp_max, s.weights.scale_shift) == (-7, 7, 6)
    assert (s.neuron.vth_shift, s.neuron.uv_bits, s.neuron.max_delay_steps) == (6, 24, 63)
    assert s.neuron.graded_spike_bits == 24 and s.neuron.programmable
    assert s.energy.E_synop == 23.6
    # '?' values of docs/targets.md §5 are flagged
    for path in ("core.max_neurons", "core.max_in_axons", "core.synapse_mem_bits",
                 "weights.exp_min", "neuron.graded_spike_bits", "chip.chips_per_system",
                 "energy.E_synop", "timing.t_synop"):
        assert s.is_unconfirmed(path), path
    confirmed = ("chip.cores_per_chip", "neuron.uv_bits", "weights.scale_shift", "energy.E_mac_ref")
    for path in confirmed:
        assert not s.is_unconfirmed(path), path


def test_cpu_is_ideal_float_target():
    s = load_target("cpu")
    assert not s.fixed_point
    assert s.core == type(s.core)(None, None, None, None, None, False)  # all unlimited
    assert s.chip.cores_per_chip is None and s.chip.chips_per_system is None
    assert s.weights.mantissa_bits is None and s.neuron.uv_bits is None
    assert (s.neuron.u_overflow, s.neuron.v_overflow) == ("none", "none")
    assert (s.energy.E_mac_ref, s.energy.E_ac_ref, s.energy.E_synop) == (4.6, 0.9, 0.9)
    assert s.energy.E_neuron_active == 0.0 and s.energy.P_static_mW_per_chip == 0.0
    assert s.unconfirmed == ()


@pytest.mark.parametrize("name", BUILTINS)
def test_unconfirmed_entries_name_existing_fields(name):
    spec = load_target(name)
    paths = all_paths(spec)
    for entry in spec.unconfirmed:
        assert entry in paths
        spec.field_value(entry)
    assert len(set(spec.unconfirmed)) == len(spec.unconfirmed)


@pytest.mark.parametrize("name", ("loihi1", "loihi2"))
def test_every_field_has_source_comment(name):
    text = resources.files("snnc.targets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    spec = load_target(name)
    unconfirmed_fields = {p.split(".")[1] for p in spec.unconfirmed}
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        metadata = key in ("name", "description", "unconfirmed")
        if "=" in line and not line.startswith(("#", " ")) and not metadata:
            assert "  # " in line, f"{name}: no source comment: {line!r}"
            comment = line.split("  # ", 1)[1]
            if key in unconfirmed_fields:
                assert comment.startswith("?"), f"{name}: unconfirmed value not flagged: {line!r}"


# --------------------------------------------------------------------------------------------
# custom files


def test_custom_file_with_base_overrides(tmp_path):
    path = write(tmp_path, 'base = "loihi2"\n\n[core]\nmax_neurons = 10\n', "tiny.toml")
    spec = load_target(str(path))
    base = load_target("loihi2")
    assert spec.core.max_neurons == 10
    assert spec.name == "tiny" and "loihi2" in spec.description
    assert spec.core.max_in_axons == base.core.max_in_axons
    assert spec.neuron == base.neuron and spec.energy == base.energy
    # the user's value is theirs; the other placeholders stay flagged
    assert not spec.is_unconfirmed("core.max_neurons")
    assert spec.is_unconfirmed("core.max_in_axons")


def test_custom_file_accepts_pathlike_and_relative_base(tmp_path):
    write(tmp_path, 'base = "loihi1"\nname = "mid"\n[weights]\nexp_min = -3\n', "mid.toml")
    path = write(tmp_path, 'base = "mid.toml"\nunconfirmed = ["core.max_neurons"]\n', "leaf.toml")
    spec = load_target(path)
    assert spec.name == "leaf"
    assert spec.weights.exp_min == -3 and spec.core.max_neurons == 1024
    assert spec.unconfirmed == ("core.max_neurons",)


def test_custom_file_without_base_must_be_complete(tmp_path):
    full = load_target("loihi1")
    lines = resources.files("snnc.targets").joinpath("loihi1.toml").read_text(encoding="utf-8")
    path = write(tmp_path, lines.replace('name = "loihi1"', 'name = "copy"'), "copy.toml")
    assert dataclasses.replace(load_target(path), name="loihi1") == full
    partial = write(tmp_path, lines.replace("max_neurons = 1024", ""), "partial.toml")
    with pytest.raises(BadData, match=r"partial\.toml.*'core\.max_neurons'.*missing"):
        load_target(partial)


def test_unlimited_spelling(tmp_path):
    path = write(tmp_path, 'base = "loihi2"\n[core]\nmax_neurons = "unlimited"\n')
    assert load_target(path).core.max_neurons is None


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "body, field, problem",
    [
        ("[core]\nmax_neurone = 10\n", "core.max_neurone", "unknown field"),
        ("colour = 3\n", "colour", "unknown field"),
        ("[cache]\nsize = 1\n", "cache", "unknown field"),
        ('[core]\nmax_neurons = "many"\n', "core.max_neurons", 'an integer >= 1 or "unlimited"'),
        ("[core]\nmax_neurons = 1.5\n", "core.max_neurons", "must be an integer >= 1"),
        ("[core]\nmax_neurons = true\n", "core.max_neurons", "must be an integer >= 1"),
        ("[core]\nmax_neurons = -3\n", "core.max_neurons", "got -3"),
        ("[energy]\nE_synop = -1.0\n", "energy.E_synop", "non-negative number"),
        ("[energy]\nE_synop = nan\n", "energy.E_synop", "finite"),
        ('[neuron]\nu_overflow = "clip"\n', "neuron.u_overflow", "must be one of"),
        ('[neuron]\nspike_compare = "<"\n', "neuron.spike_compare", "must be one of"),
        ("[weights]\nmixed_sign_extra_bit = 1\n", "weights.mixed_sign_extra_bit", "true or false"),
        ("[weights]\nexp_min = 3\nexp_max = -3\n", "weights.exp_min", "greater than exp_max"),
        ('[weights]\nmantissa_bits = "unlimited"\n', "weights.mantissa_bits", "fixed-point"),
        ('[neuron]\nv_overflow = "none"\n', "neuron.v_overflow", "fixed-point"),
        ("[chip]\ncores_per_chip = 200\n", "chip.cores_per_chip", "exceeds"),
        ("[chip]\nmesh_cols = 3\n", "chip.mesh_cols", "physical_cores_per_chip"),
        ('core = 3\n', "core", "must be a table"),
        ('unconfirmed = ["core.nope"]\n', "unconfirmed", "names no field"),
        ('unconfirmed = "core.max_neurons"\n', "unconfirmed", "list of strings"),
        ("fixed_point = 1\n", "fixed_point", "true or false"),
        ("base = 3\n", "base", "built-in target name"),
    ],
)
def test_bad_field_raises_bad_data_naming_file_and_field(tmp_path, body, field, problem):
    if not body.startswith("base"):
        body = 'base = "loihi2"\n' + body
    path = write(tmp_path, body, "bad.toml")
    with pytest.raises(BadData) as info:
        load_target(str(path))
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert f"field '{field}'" in msg
    assert problem in msg


def test_missing_file(tmp_path):
    with pytest.raises(BadData, match=r"nope\.toml.*not found"):
        load_target(str(tmp_path / "nope.toml"))


def test_unknown_builtin_name_lists_builtins():
    with pytest.raises(BadData, match=r"unknown target 'loihi3'.*cpu, loihi1, loihi2"):
        load_target("loihi3")


def test_broken_toml_reports_line(tmp_path):
    path = write(tmp_path, 'base = "loihi2"\n[core]\nmax_neurons = = 3\n', "broken.toml")
    with pytest.raises(BadData, match=r"broken\.toml.*invalid TOML.*line 3"):
        load_target(path)


def test_missing_base_file_and_cycle(tmp_path):
    path = write(tmp_path, 'base = "other.toml"\n', "a.toml")
    with pytest.raises(BadData, match=r"other\.toml.*not found"):
        load_target(path)
    write(tmp_path, 'base = "a.toml"\n', "other.toml")
    with pytest.raises(BadData, match=r"field 'base'.*circular"):
        load_target(path)


def test_bad_data_is_snnc_error():
    assert issubclass(BadData, SnncError)


# --------------------------------------------------------------------------------------------
# serialisation and display


@pytest.mark.parametrize("name", BUILTINS)
def test_target_to_dict_json_round_trip(name):
    spec = load_target(name)
    data = target_to_dict(spec)
    assert set(data) == {"name", "description", "fixed_point", "unconfirmed", *TABLES}
    text = json.dumps(data, sort_keys=True)
    assert target_from_dict(json.loads(text)) == spec
    assert json.dumps(target_to_dict(target_from_dict(json.loads(text))), sort_keys=True) == text


def test_target_from_dict_validates():
    data = target_to_dict(load_target("loihi1"))
    data["core"]["max_neurons"] = -1
    with pytest.raises(BadData, match=r"manifest.*'core\.max_neurons'"):
        target_from_dict(data, source="manifest")


def test_format_targets_table():
    specs = [load_target(n) for n in BUILTINS]
    table = format_targets(specs)
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    out = console.export_text()
    for text in ("neurons/core", "E_synop", "loihi2", "8,192?", "1,024", "128 KiB", "binary",
                 "23.6 pJ", "unconfirmed", "core.max_neurons", "float"):
        assert text in out, text
    assert table.row_count == 3
