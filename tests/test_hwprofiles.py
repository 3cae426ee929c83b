"""Tests for snncost.hardware: profile model, energy/latency rules, loading and errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from snncost.hardware import (
    Energy,
    HardwareProfile,
    MemoryLevel,
    OpEnergy,
    ProfileError,
    TimingModel,
    UnsupportedOperationError,
    available_profiles,
    load_profile,
)

BUILTINS = ["45nm", "loihi", "spinnaker2", "truenorth"]
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers
def minimal_dict(**overrides):
    """A small valid profile as a plain dict (what a YAML file parses to)."""
    data = {
        "name": "tiny",
        "description": "test profile",
        "technology_nm": 45,
        "references": {"ref": "A. Author, A paper, 2024."},
        "arithmetic": [
            {"op": "add", "number_format": "int", "bits": 8, "energy_pj": 0.03, "source": "ref"},
            {"op": "add", "number_format": "int", "bits": 32, "energy_pj": 0.1, "source": "ref"},
            {"op": "mult", "number_format": "int", "bits": 8, "energy_pj": 0.2, "source": "ref"},
            {"op": "mult", "number_format": "int", "bits": 32, "energy_pj": 3.1, "source": "ref"},
        ],
        "memory": [
            {
                "name": "sram_8KB",
                "kind": "sram",
                "size_bytes": 8192,
                "read_pj_per_bit": 0.15625,
                "write_pj_per_bit": 0.15625,
                "source": "ref",
            },
            {
                "name": "dram",
                "kind": "dram",
                "size_bytes": None,
                "read_pj_per_bit": 30.0,
                "write_pj_per_bit": 30.0,
                "source": "ref",
            },
        ],
        "timing": {
            "clock_hz": 1e9,
            "synaptic_ops_per_cycle": 4,
            "macs_per_cycle": 2,
            "neuron_updates_per_cycle": 8,
            "timestep_overhead_cycles": 1,
            "source": "ref",
        },
        "default_bits": 8,
        "default_number_format": "int",
    }
    data.update(overrides)
    return data


def write_yaml(tmp_path: Path, data, name="profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def expect_profile_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --------------------------------------------------------------------------- built-ins
def test_available_profiles_lists_builtins():
    names = available_profiles()
    assert names == sorted(names)
    for name in BUILTINS:
        assert name in names


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profiles_load_and_validate(name):
    profile = load_profile(name)
    assert isinstance(profile, HardwareProfile)
    assert profile.name == name
    # Every source is a reference key (re-validation of the dumped data succeeds).
    assert HardwareProfile.model_validate(profile.to_dict()) == profile
    # What every SNN needs can be priced at the profile's own default width/format.
    bits, fmt = profile.default_bits, profile.default_number_format
    assert profile.ac_energy(bits, fmt) >= 0
    assert profile.neuron_update_energy(bits, fmt, leaky=True) >= 0
    assert profile.neuron_update_energy(bits, fmt, leaky=False) >= 0
    assert profile.latency_seconds([10, 20], 0, [5, 5]) > 0
    assert profile.memory_energy(64, 1024) >= 0


def test_builtin_yaml_files_cite_every_number():
    """Every `source:` in the shipped files is a key of that file's references."""
    for name in BUILTINS:
        data = yaml.safe_load((REPO / "hwprofiles" / f"{name}.yaml").read_text())
        refs = set(data["references"])
        sources = [e["source"] for e in data.get("arithmetic", [])]
        sources += [m["source"] for m in data["memory"]]
        sources.append(data["timing"]["source"])
        for key in (
            "synaptic_op_pj",
            "neuron_update_pj",
            "neuron_update_inactive_pj",
            "spike_pj",
            "mac_pj",
        ):
            if data.get(key):
                sources.append(data[key]["source"])
        assert set(sources) <= refs, name


def test_builtin_yaml_numbers_are_yaml_numbers():
    """No number in a shipped file is a string (e.g. `1.0e9` is a string in YAML 1.1)."""
    numeric = {"energy_pj", "value", "read_pj_per_bit", "write_pj_per_bit", "clock_hz"}
    numeric |= {"synaptic_ops_per_cycle", "macs_per_cycle", "neuron_updates_per_cycle"}
    numeric |= {"timestep_overhead_cycles", "min_timestep_cycles", "size_bytes", "bits"}

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in numeric:
                    assert value is None or isinstance(value, int | float), (where, key, value)
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    for name in BUILTINS:
        walk(yaml.safe_load((REPO / "hwprofiles" / f"{name}.yaml").read_text()), name)


def test_readme_example_is_a_valid_profile():
    text = (REPO / "hwprofiles" / "README.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    profile = HardwareProfile.model_validate(yaml.safe_load(block))
    assert profile.ac_energy(8) == 23.6
    assert profile.mac_energy(8) == 4.6


def test_default_profile_is_45nm():
    assert load_profile().name == "45nm"
    assert load_profile("45nm") is load_profile("45nm")  # cached, immutable


def test_45nm_paper_numbers():
    p = load_profile("45nm")
    assert p.mac_energy(32, "float") == 4.6
    assert p.ac_energy(32, "float") == 0.9
    assert p.default_bits == 32 and p.default_number_format == "float"
    assert p.neuron_update_energy(32, "float", leaky=True) == 5.5  # 3.7 + 0.9 + 0.9
    assert p.neuron_update_energy(32, "float", leaky=False) == 1.8  # 0.9 + 0.9


def test_45nm_table_points_are_exact():
    p = load_profile("45nm")
    assert p.add_energy(8, "int") == 0.03
    assert p.add_energy(32, "int") == 0.1
    assert p.mult_energy(8, "int") == 0.2
    assert p.mult_energy(32, "int") == 3.1
    assert p.add_energy(16, "float") == 0.4
    assert p.add_energy(32, "float") == 0.9
    assert p.mult_energy(16, "float") == 1.1
    assert p.mult_energy(32, "float") == 3.7


def test_neuromorphic_per_event_figures():
    loihi = load_profile("loihi")
    assert loihi.ac_energy(8, "int") == 23.6
    assert loihi.ac_energy(1, "int") == 23.6  # per-event figure, width-independent
    assert loihi.neuron_update_energy(8, "int", leaky=True) == 81.0
    assert loihi.neuron_update_energy(8, "int", leaky=True, active=False) == 52.0
    assert loihi.spike_energy() == 1.7
    truenorth = load_profile("truenorth")
    assert truenorth.ac_energy(1, "int") == 26.0
    assert truenorth.neuron_update_energy(1, "int") == 0.0  # inside the all-in 26 pJ
    assert truenorth.spike_energy() == 0.0
    # 1 ms real-time tick for anything that fits the chip.
    assert truenorth.latency_seconds([1000] * 5, 0, [1000] * 5) == pytest.approx(5e-3)


def test_mac_on_a_chip_without_mac_is_a_clear_error():
    loihi = load_profile("loihi")
    assert not loihi.supports("mac", "int")
    assert loihi.supports("ac", "int")
    with pytest.raises(UnsupportedOperationError, match="loihi"):
        loihi.mac_energy(8, "int")
    with pytest.raises(UnsupportedOperationError, match="MAC"):
        loihi.latency_seconds([1], [1], [1])
    # It is a ValueError too, as callers may rely on.
    with pytest.raises(ValueError):
        loihi.mult_energy(8, "int")


# --------------------------------------------------------------------------- bit-width rule
def test_16bit_int_add_interpolates_linearly_between_table_points():
    p = load_profile("45nm")
    e16 = p.add_energy(16, "int")
    assert 0.03 < e16 < 0.1
    assert e16 == pytest.approx(0.03 + (0.1 - 0.03) * (16 - 8) / (32 - 8))


def test_multiply_interpolates_quadratically_and_extrapolates():
    p = load_profile("45nm")
    # Between 8 and 32 bit: linear in bits**2.
    expected = 0.2 + (3.1 - 0.2) * (16**2 - 8**2) / (32**2 - 8**2)
    assert p.mult_energy(16, "int") == pytest.approx(expected)
    # Outside the table: nearest point times (bits / b)**p.
    assert p.mult_energy(64, "float") == pytest.approx(3.7 * 4)
    assert p.mult_energy(4, "int") == pytest.approx(0.2 / 4)
    assert p.add_energy(64, "float") == pytest.approx(1.8)
    assert p.add_energy(4, "int") == pytest.approx(0.015)
    assert p.add_energy(8, "float") == pytest.approx(0.2)


def test_missing_number_format_names_profile_op_and_format():
    p = HardwareProfile.model_validate(minimal_dict())
    with pytest.raises(ValueError, match=r"'tiny'.*'add'.*'float'"):
        p.add_energy(16, "float")
    with pytest.raises(ValueError, match="number_format"):
        p.add_energy(16, "double")
    with pytest.raises(ValueError, match="bits"):
        p.add_energy(0, "int")
    with pytest.raises(ValueError, match="bits"):
        p.add_energy(8.5, "int")


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["45nm", "spinnaker2"]),
    op=st.sampled_from(["add", "mult"]),
    fmt=st.sampled_from(["int", "float"]),
    a=st.integers(min_value=1, max_value=128),
    b=st.integers(min_value=1, max_value=128),
)
def test_energy_is_positive_and_non_decreasing_in_bits(name, op, fmt, a, b):
    p = load_profile(name)
    lo, hi = sorted((a, b))
    fn = p.add_energy if op == "add" else p.mult_energy
    e_lo, e_hi = fn(lo, fmt), fn(hi, fmt)
    assert e_lo > 0 and e_hi > 0
    assert e_lo <= e_hi
    assert math.isfinite(e_hi)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(min_value=1, max_value=64), fmt=st.sampled_from(["int", "float"]))
def test_mac_is_mult_plus_add(bits, fmt):
    p = load_profile("45nm")
    assert p.mac_energy(bits, fmt) == pytest.approx(
        p.mult_energy(bits, fmt) + p.add_energy(bits, fmt)
    )
    assert p.ac_energy(bits, fmt) == p.add_energy(bits, fmt)


def test_mac_override_is_used():
    data = minimal_dict(mac_pj={"value": 1.25, "source": "ref"})
    p = HardwareProfile.model_validate(data)
    assert p.mac_energy(8, "int") == 1.25
    assert p.mac_energy(32, "float") == 1.25  # one published figure for every width


# --------------------------------------------------------------------------- memory
def test_memory_level_selection_45nm():
    p = load_profile("45nm")
    assert p.memory_level_for(0).name == "sram_8KB"
    assert p.memory_level_for(8192).name == "sram_8KB"
    assert p.memory_level_for(8193).name == "sram_32KB"
    assert p.memory_level_for(32 * 1024).name == "sram_32KB"
    assert p.memory_level_for(500_000).name == "sram_1MB"
    assert p.memory_level_for(1024 * 1024).name == "sram_1MB"
    assert p.memory_level_for(1024 * 1024 + 1).name == "dram"
    assert p.memory_level_for(10**12).name == "dram"


def test_memory_energy_per_bit():
    p = load_profile("45nm")
    assert p.memory_energy(64, 4096) == 10.0  # one 64-bit read of an 8 KB SRAM
    assert p.memory_energy(64, 20_000) == 20.0
    assert p.memory_energy(64, 1 << 20) == 100.0
    assert p.memory_energy(64, 1 << 30) == pytest.approx(1950.0)  # DRAM midpoint
    assert p.memory_energy(64, 4096, write=True) == 10.0  # write = read assumption
    assert p.memory_energy(0, 4096) == 0.0
    with pytest.raises(ValueError):
        p.memory_energy(-1, 4096)
    with pytest.raises(ValueError):
        p.memory_level_for(-5)


def test_memory_level_for_errors_when_nothing_fits():
    data = minimal_dict()
    data["memory"] = [data["memory"][0]]  # only an 8 KB SRAM
    p = HardwareProfile.model_validate(data)
    with pytest.raises(ProfileError, match=r"'tiny'.*9000 bytes"):
        p.memory_level_for(9000)


# --------------------------------------------------------------------------- latency
def test_latency_formula():
    p = HardwareProfile.model_validate(minimal_dict())
    # syn/4 -> 3, macs/2 -> 2, nu/8 -> 1, +1 overhead = 7 cycles per step
    assert p.latency_cycles(9, 3, 8) == 7
    assert p.latency_cycles([9, 0], [3, 0], [8, 0]) == 7 + 1
    assert p.latency_seconds([9, 0], [3, 0], [8, 0]) == pytest.approx(8e-9)
    assert p.latency_cycles([], [], []) == 0
    with pytest.raises(ValueError):
        p.latency_cycles([1, 2], [1, 2, 3], 0)
    with pytest.raises(ValueError):
        p.latency_cycles([-1], 0, 0)


def test_latency_overlap_and_min_tick():
    data = minimal_dict()
    data["timing"] = dict(data["timing"], overlap=True, min_timestep_cycles=5)
    p = HardwareProfile.model_validate(data)
    assert p.latency_cycles(9, 3, 8) == 5  # max(3, 2, 1) + 1 = 4 < 5-cycle tick
    assert p.latency_cycles(40, 0, 0) == 11  # 10 + 1 overhead


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(BUILTINS),
    syn=st.lists(st.integers(0, 10**9), min_size=1, max_size=6),
    extra_syn=st.integers(0, 10**7),
    nu=st.integers(0, 10**7),
    extra_nu=st.integers(0, 10**7),
    steps=st.integers(0, 3),
)
def test_latency_is_monotone_in_counts(name, syn, extra_syn, nu, extra_nu, steps):
    p = load_profile(name)
    base = p.latency_seconds(syn, 0, nu)
    assert base >= 0
    more_syn = [s + extra_syn for s in syn]
    assert p.latency_seconds(more_syn, 0, nu) >= base
    assert p.latency_seconds(syn, 0, nu + extra_nu) >= base
    assert p.latency_seconds(syn + [0] * steps, 0, nu) >= base  # more timesteps
    if p.timing.macs_per_cycle is not None:
        assert p.latency_seconds(syn, 1000, nu) >= base


# --------------------------------------------------------------------------- loading errors
def test_unknown_profile_name_lists_available():
    with pytest.raises(ProfileError) as info:
        load_profile("loihi3")
    message = str(info.value)
    assert "loihi3" in message
    for name in BUILTINS:
        assert name in message
    assert isinstance(info.value, ValueError)


def test_load_by_path_and_passthrough(tmp_path):
    path = write_yaml(tmp_path, minimal_dict())
    by_path = load_profile(path)
    by_str = load_profile(str(path))
    assert by_path == by_str
    assert load_profile(by_path) is by_path
    with pytest.raises(TypeError):
        load_profile(42)


def test_bad_field_type(tmp_path):
    data = minimal_dict()
    data["arithmetic"][0]["energy_pj"] = "cheap"
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "arithmetic[0].energy_pj", "cheap")


def test_bad_bits_type(tmp_path):
    data = minimal_dict()
    data["arithmetic"][1]["bits"] = 8.5
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "arithmetic[1].bits")


def test_negative_energy(tmp_path):
    data = minimal_dict()
    data["arithmetic"][2]["energy_pj"] = -0.2
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "arithmetic[2].energy_pj", "greater than or equal to 0")


def test_negative_memory_energy_and_zero_clock(tmp_path):
    data = minimal_dict()
    data["memory"][1]["read_pj_per_bit"] = -1
    data["timing"]["clock_hz"] = 0
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "memory[1].read_pj_per_bit", "timing.clock_hz")


def test_infinite_energy_rejected(tmp_path):
    path = tmp_path / "inf.yaml"
    data = minimal_dict()
    data["arithmetic"][0]["energy_pj"] = float("inf")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    expect_profile_error(path, "arithmetic[0].energy_pj", "finite")


def test_unknown_field_typo(tmp_path):
    data = minimal_dict()
    data["timing"]["clock_mhz"] = 1000
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "timing.clock_mhz", "unknown field")


def test_unknown_top_level_field(tmp_path):
    path = write_yaml(tmp_path, minimal_dict(tech_nm=45))
    expect_profile_error(path, "tech_nm", "unknown field")


def test_missing_required_field(tmp_path):
    data = minimal_dict()
    del data["timing"]
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "timing", "missing")


def test_source_key_missing_from_references(tmp_path):
    data = minimal_dict()
    data["memory"][0]["source"] = "horowitz"
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "memory[0].source", "'horowitz'", "ref")


def test_duplicate_memory_names_and_arithmetic(tmp_path):
    data = minimal_dict()
    data["memory"][1]["name"] = "sram_8KB"
    data["arithmetic"].append(dict(data["arithmetic"][0]))
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "duplicate level name", "sram_8KB", "duplicate entry")


def test_energy_must_not_decrease_with_bits(tmp_path):
    data = minimal_dict()
    data["arithmetic"][1]["energy_pj"] = 0.01  # 32-bit add cheaper than 8-bit
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "decreases with bit width")


def test_no_way_to_price_an_add(tmp_path):
    data = minimal_dict(arithmetic=[])
    path = write_yaml(tmp_path, data)
    expect_profile_error(path, "cannot price an accumulate", "synaptic_op_pj")


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nreferences: {a: b\narithmetic: [\n", encoding="utf-8")
    expect_profile_error(path, "malformed YAML", "line")


def test_duplicate_yaml_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n", encoding="utf-8")
    expect_profile_error(path, "duplicate key 'name'")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")
    expect_profile_error(path, "empty file")


def test_top_level_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    expect_profile_error(path, "top level must be a mapping", "list")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    expect_profile_error(path, "file not found", "45nm")


def test_directory_instead_of_file(tmp_path):
    expect_profile_error(tmp_path, "directory")


# --------------------------------------------------------------------------- user profiles
def test_user_built_profile_object():
    profile = HardwareProfile(
        name="my_asic",
        technology_nm=28,
        references={"me": "Internal measurement, 2025.", "h": "Horowitz, ISSCC 2014."},
        arithmetic=[
            OpEnergy(op="add", number_format="int", bits=16, energy_pj=0.05, source="me"),
            OpEnergy(op="mult", number_format="int", bits=16, energy_pj=0.4, source="me"),
        ],
        synaptic_op_pj=Energy(value=2.5, source="me"),
        memory=[
            MemoryLevel(
                name="sram",
                kind="sram",
                size_bytes=1 << 20,
                read_pj_per_bit=0.5,
                write_pj_per_bit=0.7,
                source="h",
            )
        ],
        timing=TimingModel(
            clock_hz=5e8,
            synaptic_ops_per_cycle=64,
            macs_per_cycle=16,
            neuron_updates_per_cycle=32,
            source="me",
        ),
        default_bits=16,
        default_number_format="int",
    )
    assert load_profile(profile) is profile
    assert profile.ac_energy(16) == 2.5
    assert profile.mac_energy(16) == pytest.approx(0.45)
    assert profile.neuron_update_energy(16, "int", leaky=False) == pytest.approx(0.1)
    assert profile.memory_energy(8, 1000, write=True) == pytest.approx(5.6)
    with pytest.raises(ValidationError, match="frozen"):
        profile.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="not a key of references"):
        HardwareProfile(**{**profile.model_dump(), "synaptic_op_pj": {"value": 1, "source": "x"}})


@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_to_yaml_from_yaml(tmp_path, name):
    profile = load_profile(name)
    path = tmp_path / f"{name}_copy.yaml"
    text = profile.to_yaml(path)
    assert path.read_text(encoding="utf-8") == text
    again = HardwareProfile.from_yaml(path)
    assert again == profile
    assert again.key_numbers() == profile.key_numbers()
    assert load_profile(str(path)) == profile


def test_hardware_modules_do_not_import_torch():
    """Static check of snncost/hardware/*.py (independent of what snncost/__init__ imports)."""
    import ast

    for path in sorted((REPO / "snncost" / "hardware").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "torch" or n.startswith("torch.") for n in names), path
