"""Cost reports: assemble and render what the cost model computed (tables, plots).

- :mod:`snncost.report.comparison`: :class:`ProfileComparison` (one replay, many profiles);
- :mod:`snncost.report.cost_report`: :class:`CostReport` and its renderers;
- :mod:`snncost.report.formatting`: units, number formats and text/Markdown/LaTeX/CSV tables;
- :mod:`snncost.report.plots`: figures (matplotlib, Agg).

See ``docs/cost_model.md`` for the costing rules. The names below are imported
lazily (on first attribute access), so importing one submodule (e.g.
``snncost.report.plots``) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snncost._lazy import lazy_exports

_LAZY = {
    "CostReport": "snncost.report.cost_report",
    "Ratios": "snncost.report.cost_report",
    "BaselineResult": "snncost.report.cost_report",
    "ProfileComparison": "snncost.report.comparison",
    "CostModelComparison": "snncost.report.comparison",
    "ProfileRow": "snncost.report.comparison",
    "latex_escape": "snncost.report.formatting",
}

__all__ = [
    "BaselineResult",
    "CostModelComparison",
    "CostReport",
    "ProfileComparison",
    "ProfileRow",
    "Ratios",
    "latex_escape",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from snncost.report.comparison import CostModelComparison, ProfileComparison, ProfileRow
    from snncost.report.cost_report import BaselineResult, CostReport, Ratios
    from snncost.report.formatting import latex_escape


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
