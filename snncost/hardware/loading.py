"""Find, read and validate hardware profiles.

Built-in profiles are the ``*.yaml`` files of the ``hwprofiles`` package, read
with :mod:`importlib.resources` (so they work from a wheel as well as from a
checkout). Any other profile is a YAML file given by path, or a
:class:`~snncost.hardware.profile.HardwareProfile` built in Python.

Every failure is a :class:`~snncost.hardware.profile.ProfileError` (a
``ValueError``) with a one-line message; for a file it starts with the file's
path and names the field(s) at fault, e.g.::

    /tmp/my.yaml: invalid hardware profile: arithmetic[0].energy_pj: Input should
    be greater than or equal to 0 (got -1.0)
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from snncost.hardware.profile import HardwareProfile, ProfileError
from snncost.yamlio import YAMLParseError, parse_yaml

__all__ = [
    "DEFAULT_PROFILE",
    "available_profiles",
    "format_validation_error",
    "load_profile",
    "load_profile_file",
]

#: The profile used when none is named: Horowitz 45 nm, as in the paper.
DEFAULT_PROFILE = "45nm"
_PACKAGE = "hwprofiles"
_SUFFIXES = (".yaml", ".yml")


def _builtin_dir():
    """The directory (a Traversable) holding the built-in YAML files."""
    try:
        return resources.files(_PACKAGE)
    except ImportError:
        # Running from a checkout without the repository root on sys.path.
        fallback = Path(__file__).resolve().parents[2] / _PACKAGE
        if fallback.is_dir():
            return fallback
        raise ProfileError(
            f"the built-in profile package {_PACKAGE!r} is not importable and "
            f"{fallback} does not exist"
        ) from None


def available_profiles() -> list[str]:
    """Names of the built-in profiles (``hwprofiles/<name>.yaml``), sorted."""
    names = []
    for entry in _builtin_dir().iterdir():
        if entry.is_file() and entry.name.endswith(".yaml"):
            names.append(entry.name[: -len(".yaml")])
    return sorted(names)


def _loc_to_str(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _short_repr(value: Any, limit: int = 60) -> str | None:
    """``repr(value)`` when it is short, else None (also when repr fails, e.g. a huge int)."""
    try:
        shown = repr(value)
    except Exception:  # noqa: BLE001 - repr of user data must not break the error message
        return None
    return shown if len(shown) <= limit else None


def format_validation_error(exc: ValidationError) -> str:
    """One line: ``field.path: message (got value)`` per error, joined by ``'; '``."""
    items = []
    for err in exc.errors(include_url=False):
        loc = _loc_to_str(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed; check for a typo)"
        if err.get("type") == "missing":
            msg = "missing required field"
        text = f"{loc}: {msg}" if loc else msg
        if err.get("type") not in ("missing", "extra_forbidden", "value_error") and "input" in err:
            shown = _short_repr(err["input"])
            if shown is not None:
                text += f" (got {shown})"
        items.append(text)
    return "; ".join(items).replace("\n", " ")


def _parse(text: str, origin: str) -> HardwareProfile:
    try:
        data = parse_yaml(text)
    except YAMLParseError as exc:
        raise ProfileError(f"{origin}: malformed YAML{exc}") from None
    if data is None:
        raise ProfileError(f"{origin}: empty file (expected a mapping of profile fields)")
    if not isinstance(data, dict):
        raise ProfileError(
            f"{origin}: top level must be a mapping of profile fields, got {type(data).__name__}"
        )
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            f"{origin}: invalid hardware profile: {format_validation_error(exc)}"
        ) from None


def load_profile_file(path: str | Path) -> HardwareProfile:
    """Read and validate the YAML file at ``path``; every failure is a one-line ProfileError."""
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ProfileError(f"{path}: cannot access: {exc.strerror or exc}") from None
    if not exists:
        raise ProfileError(
            f"{path}: file not found (built-in profiles: {', '.join(available_profiles())})"
        )
    if is_dir:
        raise ProfileError(f"{path}: is a directory, not a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})"
        ) from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    return _parse(text, str(path))


@functools.cache
def _load_builtin(name: str) -> HardwareProfile:
    entry = _builtin_dir() / f"{name}.yaml"
    return _parse(entry.read_text(encoding="utf-8"), f"{_PACKAGE}/{name}.yaml")


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(_SUFFIXES) or "/" in spec or "\\" in spec


def load_profile(name_or_path: str | Path | HardwareProfile = DEFAULT_PROFILE) -> HardwareProfile:
    """Return a validated :class:`HardwareProfile`.

    * a :class:`HardwareProfile` is passed through unchanged;
    * a built-in name (see :func:`available_profiles`, e.g. ``"45nm"``,
      ``"loihi"``) is read from the ``hwprofiles`` package (cached: profiles
      are immutable);
    * a :class:`~pathlib.Path`, or a string that ends in ``.yaml``/``.yml`` or
      contains a path separator, is read as a YAML file.

    Raises :class:`ProfileError` for an unknown name (listing the available
    ones) and for any unreadable or invalid file.
    """
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    if isinstance(name_or_path, Path):
        return load_profile_file(name_or_path)
    if not isinstance(name_or_path, str):
        raise TypeError(
            "load_profile expects a profile name, a path or a HardwareProfile, "
            f"got {type(name_or_path).__name__}"
        )
    available = available_profiles()
    if name_or_path in available:
        return _load_builtin(name_or_path)
    try:
        is_file = Path(name_or_path).is_file()
    except OSError:  # e.g. a name too long to be a path: treat it as a profile name
        is_file = False
    if _looks_like_path(name_or_path) or is_file:
        return load_profile_file(name_or_path)
    shown = name_or_path if len(name_or_path) <= 60 else name_or_path[:57] + "..."
    raise ProfileError(
        f"unknown hardware profile {shown!r}; available: {', '.join(available)} "
        "(or pass the path of a YAML file)"
    )
