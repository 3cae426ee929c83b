"""Hardware profiles: cited per-operation energies, memory levels and timing.

>>> from snncost.hardware import load_profile
>>> p = load_profile("45nm")
>>> p.mac_energy(32, "float"), p.ac_energy(32, "float")
(4.6, 0.9)

See ``docs/hardware_profiles.md`` for the energy, bit-width and latency rules.
"""

from snncost.hardware.loading import (
    DEFAULT_PROFILE,
    available_profiles,
    format_validation_error,
    load_profile,
    load_profile_file,
)
from snncost.hardware.profile import (
    Energy,
    HardwareProfile,
    MemoryLevel,
    NumberFormat,
    OpEnergy,
    ProfileError,
    TimingModel,
    UnsupportedOperationError,
)

__all__ = [
    "DEFAULT_PROFILE",
    "Energy",
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
