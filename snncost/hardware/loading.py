"""Resolve a hardware-profile name or path to a validated profile.

:func:`load_profile` accepts a built-in name (the ``*.yaml`` files of the
``hwprofiles`` package), a path to a YAML file, or a
:class:`~snncost.hardware.profile.HardwareProfile` built in Python. Reading,
parsing and validating the YAML itself is done by
:mod:`snncost.hardware.yamlfile`, which also defines the error type.

Every failure is a :class:`~snncost.hardware.yamlfile.ProfileError` (a
``ValueError``) with a one-line message; for a file it starts with the file's
path and names the field(s) at fault, e.g.::

    /tmp/my.yaml: invalid hardware profile: arithmetic[0].energy_pj: Input should
    be greater than or equal to 0 (got -1.0)
"""

from __future__ import annotations

import functools
from pathlib import Path

from snncost.hardware.profile import HardwareProfile
from snncost.hardware.yamlfile import (
    BUILTIN_PACKAGE,
    ProfileError,
    available_profiles,
    builtin_dir,
    validate_yaml_text,
)

__all__ = [
    "DEFAULT_PROFILE",
    "load_profile",
    "load_profile_file",
]

#: The profile used when none is named: Horowitz 45 nm, as in the paper.
DEFAULT_PROFILE = "45nm"
_SUFFIXES = (".yaml", ".yml")


def load_profile_file(path: str | Path) -> HardwareProfile:
    """Read and validate the YAML file at ``path``; every failure is a one-line ProfileError.

    The same as :meth:`HardwareProfile.from_yaml`.
    """
    return HardwareProfile.from_yaml(path)


@functools.cache
def _load_builtin(name: str) -> HardwareProfile:
    entry = builtin_dir() / f"{name}.yaml"
    return validate_yaml_text(
        entry.read_text(encoding="utf-8"), f"{BUILTIN_PACKAGE}/{name}.yaml", HardwareProfile
    )


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
