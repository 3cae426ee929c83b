"""Fuzzing the two YAML loaders: hardware profiles and run configs.

Random bytes, random YAML documents (``st.recursive`` of dicts, lists and
scalars) and mutations of the real files (``hwprofiles/*.yaml``, the
default run config and every preset: a field deleted, given a wrong type or
a negative value, a subtree replaced by random YAML, the text truncated at
a random point) go through :func:`snncost.hardware.load_profile` and
:func:`trainers.config.resolve_config`. Whatever the input, the loader
either returns a validated object or raises its own error type
(:class:`~snncost.hardware.ProfileError` / :class:`~trainers.config.ConfigError`,
both ``ValueError``) with a one-line message that starts with the file's
path and, where a field is at fault, names it. A raw ``KeyError``,
``TypeError``, ``AttributeError``, YAML error, ``UnicodeDecodeError`` or
``RecursionError`` from deep inside fails the test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snncost.hardware import HardwareProfile, ProfileError, available_profiles, load_profile
from trainers.config import ConfigError, RunConfig, parse_override, resolve_config
from trainers.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
PROFILE_FILES = sorted((REPO / "hwprofiles").glob("*.yaml"))
PROFILE_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in PROFILE_FILES}
CONFIG_TEXTS = {
    "default.yaml": RunConfig().to_yaml(),
    **{
        f"preset-{name}.yaml": yaml.safe_dump(data, sort_keys=False)
        for name, data in PRESETS.items()
    },
}
PROFILE_FIELDS = sorted(HardwareProfile.model_fields)
CONFIG_KEYS = sorted(RunConfig.model_fields)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_DIR: list[Path] = []  # set per module by the fixture below (hypothesis cannot use tmp_path)
_COUNTER = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _fuzz_dir(tmp_path_factory):
    _DIR.append(tmp_path_factory.mktemp("fuzz"))
    yield
    _DIR.pop()


def write(content: str | bytes, suffix: str = ".yaml") -> Path:
    """A fresh file in this module's temporary directory."""
    path = _DIR[-1] / f"case{next(_COUNTER)}{suffix}"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def check_profile(path: Path, *fields: str) -> HardwareProfile | None:
    """Load ``path``; a failure must be a one-line ProfileError naming the path (and ``fields``)."""
    try:
        return load_profile(path)
    except ProfileError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message, message
        for field in fields:
            assert field in message, (field, message)
        return None


def check_config(path: Path, *fields: str) -> RunConfig | None:
    """Resolve ``path``; a failure must be a one-line ConfigError naming the path (and ``fields``)."""
    try:
        return resolve_config(config_file=path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message, message
        for field in fields:
            assert field in message, (field, message)
        return None


# --------------------------------------------------------------------------- strategies
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["P", "45nm", "int", "float", "add", "mult", "sram", "dram", "direct", "-1", "1e400"]
    ),
)
keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        PROFILE_FIELDS + CONFIG_KEYS + ["source", "energy_pj", "bits", "timesteps", "x"]
    ),
    st.integers(min_value=-3, max_value=3),
)
yaml_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
profile_like = st.dictionaries(st.sampled_from(PROFILE_FIELDS), yaml_values, max_size=10)
config_like = st.dictionaries(st.sampled_from(CONFIG_KEYS), yaml_values, max_size=8)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- random bytes
@FUZZ
@given(blob=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_random_bytes_profile(blob):
    check_profile(write(blob))


@FUZZ
@given(blob=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_random_bytes_config(blob):
    check_config(write(blob))


# --------------------------------------------------------------------------- random YAML
@FUZZ
@given(data=st.one_of(yaml_values, profile_like))
def test_random_yaml_profile(data):
    assert check_profile(write(dump(data))) is None  # never a valid profile by chance


@FUZZ
@given(data=st.one_of(yaml_values, config_like))
def test_random_yaml_config(data):
    check_config(write(dump(data)))


# --------------------------------------------------------------------------- mutations of the real files
def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of dict keys / list indices) below ``node``, depth first."""
    out = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for k, v in items:
        out.append((*prefix, k))
        out += paths_of(v, (*prefix, k))
    return out


def get(node: Any, path: tuple) -> Any:
    for k in path:
        node = node[k]
    return node


def wrong_type(value: Any) -> Any:
    """A value of another type than ``value`` that no field of that type accepts."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "not-a-number"
    if isinstance(value, str):
        return [1, 2]
    if isinstance(value, dict):
        return [1, 2]
    if isinstance(value, list):
        return {"not": "a list"}
    return "not-null"  # None


MUTATIONS = ("delete", "wrong_type", "negative", "replace")


def mutate(data: Any, path: tuple, how: str, replacement: Any) -> str | None:
    """Apply mutation ``how`` at ``path`` in place; returns the field name the error must name."""
    parent, key = get(data, path[:-1]), path[-1]
    value = parent[key]
    if how == "delete":
        del parent[key]
    elif how == "wrong_type":
        parent[key] = wrong_type(value)
    elif how == "negative":
        parent[key] = -abs(value) - 1
    else:
        parent[key] = replacement
    return key if isinstance(key, str) else None


@st.composite
def mutated(draw, texts: dict[str, str]):
    name = draw(st.sampled_from(sorted(texts)))
    data = yaml.safe_load(texts[name])
    how = draw(st.sampled_from(MUTATIONS))
    candidates = paths_of(data)
    if how == "negative":
        candidates = [
            p
            for p in candidates
            if isinstance(get(data, p), int | float) and not isinstance(get(data, p), bool)
        ]
    path = draw(st.sampled_from(candidates))
    replacement = draw(yaml_values) if how == "replace" else None
    field = mutate(data, path, how, replacement)
    return name, path, how, field, dump(data)


@FUZZ
@given(case=mutated(PROFILE_TEXTS))
def test_mutated_profile(case):
    name, path, how, field, text = case
    file = write(text)
    if how in ("wrong_type", "negative"):
        # every field of a profile has a type, and every number is >= 0 (or > 0)
        assert check_profile(file, *([field] if field else [])) is None, (name, path, how)
    elif how == "delete" and field is not None:
        check_profile(file, field)  # optional fields may go; required ones are named
    else:
        check_profile(file)


@FUZZ
@given(case=mutated(CONFIG_TEXTS))
def test_mutated_config(case):
    name, path, how, field, text = case
    file = write(text)
    if how == "wrong_type" and field is not None:
        check_config(file, field)
    else:
        check_config(file)


@FUZZ
@given(name=st.sampled_from(sorted(PROFILE_TEXTS)), cut=st.floats(0.0, 1.0))
def test_truncated_profile(name, cut):
    text = PROFILE_TEXTS[name]
    check_profile(write(text[: int(len(text) * cut)]))


@FUZZ
@given(name=st.sampled_from(sorted(CONFIG_TEXTS)), cut=st.floats(0.0, 1.0))
def test_truncated_config(name, cut):
    text = CONFIG_TEXTS[name]
    check_config(write(text[: int(len(text) * cut)]))


@FUZZ
@given(
    name=st.sampled_from(sorted(PROFILE_TEXTS)),
    cut=st.integers(0, 10_000),
    junk=st.binary(min_size=1, max_size=8),
)
def test_corrupted_bytes_profile(name, cut, junk):
    raw = PROFILE_TEXTS[name].encode("utf-8")
    cut = cut % len(raw)
    check_profile(write(raw[:cut] + junk + raw[cut + len(junk) :]))


# --------------------------------------------------------------------------- overrides
KEY_PATHS = [
    ".".join(map(str, p))
    for p in paths_of(RunConfig().model_dump(mode="json"))
    if all(isinstance(k, str) for k in p)
]


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=30),
        st.tuples(
            st.sampled_from(KEY_PATHS + ["bogus", "snn.bogus", "data..name", "name.x"]), yaml_values
        ).map(
            lambda kv: f"{kv[0]}={dump(kv[1]).removesuffix(chr(10)).removesuffix('...').strip()}"
        ),
    )
)
def test_random_overrides(text):
    try:
        parse_override(text)
        resolve_config(overrides=[text])
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)


# --------------------------------------------------------------------------- a few fixed nasties
NASTY = {
    "deep nesting": "[" * 3000 + "]" * 3000,
    "bad date": "name: 2020-13-45\n",
    "5000-digit int": "default_bits: " + "9" * 5000 + "\n",
    "huge hex int": "default_bits: 0x" + "f" * 3000 + "\n",
    # valid YAML ints whose repr() exceeds Python's 4300-digit limit, in invalid fields
    "huge negative ints": "default_bits: -0x"
    + "f" * 4000
    + "\ndata: {batch_size: -0x"
    + "f" * 4000
    + "}\n",
    "python tag": "!!python/object/apply:os.system ['true']\n",
    "unhashable key": "? [1, 2]\n: 3\n",
    "merge key": "base: &b {x: 1}\n<<: *b\n",
    "bad merge": "<<: [1, 2]\n",
    "tab indent": "name:\n\t- x\n",
    "utf-16": "name: x\n".encode("utf-16"),
    "latin-1": "name: caf\xe9\n".encode("latin-1"),
    "nul bytes": b"name: \x00\x00\n",
    "alias bomb": "a: &a [1, 1]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n",
    "binary value": "name: !!binary AAAA\n",
    "empty": "",
    "comment only": "# nothing\n",
    "list top level": "- 1\n- 2\n",
    "scalar top level": "hello\n",
}


NASTY_OVERRIDES = [
    "name=2020-13-45",  # PyYAML raises a bare ValueError for this date
    "seed=" + "9" * 5000,  # and for an int of more than 4300 digits
    "snn.timesteps=" + "[" * 3000,  # RecursionError in PyYAML
    "data.batch_size=-0x" + "f" * 4000,  # an error whose value cannot be repr()'d
    "a..b=1",
    ".=1",
    "=1",
    " =1",
    "novalue",
    "snn=3",
    "name.x=1",
    "snn.timesteps.x=1",
    "bogus.key=1",
]


@pytest.mark.parametrize("text", NASTY_OVERRIDES, ids=range(len(NASTY_OVERRIDES)))
def test_nasty_overrides(text):
    try:
        resolve_config(overrides=[text])
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000, str(exc)[:300]


@pytest.mark.parametrize("label", sorted(NASTY))
def test_nasty_documents(label):
    content = NASTY[label]
    assert check_profile(write(content)) is None
    check_config(write(content))


def test_builtin_profiles_survive_a_round_trip_through_the_fuzz_helpers():
    # the helpers must accept the real files unchanged (or every test above is vacuous)
    assert sorted(PROFILE_TEXTS) == sorted(f"{n}.yaml" for n in available_profiles())
    for name, text in PROFILE_TEXTS.items():
        assert check_profile(write(dump(yaml.safe_load(text)))) is not None, name
    for name, text in CONFIG_TEXTS.items():
        assert check_config(write(text)) is not None, name
