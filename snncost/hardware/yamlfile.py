"""Read hardware-profile YAML: files, built-in names and one-line errors.

This is the file-level half of profile loading, kept free of
:class:`~snncost.hardware.profile.HardwareProfile` so that ``profile.py``
(``HardwareProfile.from_yaml``) and ``loading.py`` (:func:`load_profile`) can
both use it without importing each other. The model class to validate against
is passed in.

Every failure is a :class:`ProfileError` (a ``ValueError``) with a one-line
message; for a file it starts with the file's path and names the field(s) at
fault, e.g.::

    /tmp/my.yaml: invalid hardware profile: arithmetic[0].energy_pj: Input should
    be greater than or equal to 0 (got -1.0)

Built-in profiles are the ``*.yaml`` files of the ``hwprofiles`` package, read
with :mod:`importlib.resources` (so they work from a wheel as well as from a
checkout).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from snncost.yamlio import YAMLParseError, parse_yaml

__all__ = [
    "BUILTIN_PACKAGE",
    "ProfileError",
    "available_profiles",
    "builtin_dir",
    "format_validation_error",
    "read_model_file",
    "validate_yaml_text",
]

#: The package whose ``*.yaml`` files are the built-in profiles.
BUILTIN_PACKAGE = "hwprofiles"

_M = TypeVar("_M", bound=BaseModel)


class ProfileError(ValueError):
    """A hardware profile could not be found, read, validated or used.

    Raised by the loader with a one-line message that starts with the file path
    (for files) and names the field(s) at fault.
    """


def builtin_dir():
    """The directory (a Traversable) holding the built-in YAML files."""
    try:
        return resources.files(BUILTIN_PACKAGE)
    except ImportError:
        # Running from a checkout without the repository root on sys.path.
        fallback = Path(__file__).resolve().parents[2] / BUILTIN_PACKAGE
        if fallback.is_dir():
            return fallback
        raise ProfileError(
            f"the built-in profile package {BUILTIN_PACKAGE!r} is not importable and "
            f"{fallback} does not exist"
        ) from None


def available_profiles() -> list[str]:
    """Names of the built-in profiles (``hwprofiles/<name>.yaml``), sorted."""
    names = []
    for entry in builtin_dir().iterdir():
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


def validate_yaml_text(text: str, origin: str, model: type[_M]) -> _M:
    """Parse ``text`` (read from ``origin``) and validate it as ``model``.

    Every failure is a one-line :class:`ProfileError` starting with ``origin``.
    """
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
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            f"{origin}: invalid hardware profile: {format_validation_error(exc)}"
        ) from None


def read_model_file(path: str | Path, model: type[_M]) -> _M:
    """Read the YAML file at ``path`` and validate it as ``model``; failures are ProfileError."""
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
    return validate_yaml_text(text, str(path), model)
