"""snncost: spatio-temporal compression of spiking neural networks and hardware cost modelling.

The public entry points are imported lazily (on first attribute access), so
``import snncost.nn`` stays light and does not pull in numba or matplotlib:

- :func:`evaluate`: replay an SNN on inputs and return its :class:`CostReport`;
- :func:`compare_profiles`: one replay priced on several hardware profiles;
- :func:`compare_cost_models`: one replay priced under every published energy convention;
- :func:`load_profile`, :func:`available_profiles`: hardware profiles;
- :func:`build_graph`, :func:`simulate`: the LayerGraph and the event-driven replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snncost._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "evaluate": "snncost.evaluation",
    "compare_profiles": "snncost.evaluation",
    "compare_cost_models": "snncost.evaluation",
    "CostModelComparison": "snncost.report",
    "ProfileComparison": "snncost.report",
    "CostReport": "snncost.report",
    "CostOptions": "snncost.costmodel",
    "load_profile": "snncost.hardware",
    "available_profiles": "snncost.hardware",
    "HardwareProfile": "snncost.hardware",
    "ProfileError": "snncost.hardware",
    "build_graph": "snncost.graph",
    "simulate": "snncost.sim",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from snncost.costmodel import CostOptions
    from snncost.evaluation import compare_cost_models, compare_profiles, evaluate
    from snncost.graph import build_graph
    from snncost.hardware import HardwareProfile, ProfileError, available_profiles, load_profile
    from snncost.report import CostModelComparison, CostReport, ProfileComparison
    from snncost.sim import simulate


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
