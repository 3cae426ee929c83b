"""Hardware profiles: cited per-operation energies, memory levels and timing.

>>> from snncost.hardware import load_profile
>>> p = load_profile("45nm")
>>> p.mac_energy(32, "float"), p.ac_energy(32, "float")
(4.6, 0.9)

See ``docs/hardware_profiles.md`` for the energy, bit-width and latency rules.

The names below are imported lazily (on first attribute access), so importing
one submodule (e.g. ``snncost.hardware.profile``) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snncost._lazy import lazy_exports

_LAZY = {
    "DEFAULT_PROFILE": "snncost.hardware.loading",
    "load_profile": "snncost.hardware.loading",
    "load_profile_file": "snncost.hardware.loading",
    "Energy": "snncost.hardware.profile",
    "HardwareProfile": "snncost.hardware.profile",
    "ChipLimits": "snncost.hardware.profile",
    "MemoryLevel": "snncost.hardware.profile",
    "NumberFormat": "snncost.hardware.profile",
    "OpEnergy": "snncost.hardware.profile",
    "TimingModel": "snncost.hardware.profile",
    "UnsupportedOperationError": "snncost.hardware.profile",
    "ProfileError": "snncost.hardware.yamlfile",
    "available_profiles": "snncost.hardware.yamlfile",
    "format_validation_error": "snncost.hardware.yamlfile",
}

__all__ = [
    "DEFAULT_PROFILE",
    "Energy",
    "ChipLimits",
    "HardwareProfile",
    "MemoryLevel",
    "NumberFormat",
    "OpEnergy",
    "ProfileError",
    "TimingModel",
    "UnsupportedOperationError",
    "available_profiles",
    "format_validation_error",
    "load_profile",
    "load_profile_file",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from snncost.hardware.loading import DEFAULT_PROFILE, load_profile, load_profile_file
    from snncost.hardware.profile import (
        ChipLimits,
        Energy,
        HardwareProfile,
        MemoryLevel,
        NumberFormat,
        OpEnergy,
        TimingModel,
        UnsupportedOperationError,
    )
    from snncost.hardware.yamlfile import ProfileError, available_profiles, format_validation_error


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
