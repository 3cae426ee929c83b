"""Cost reports: turn replay counts and a hardware profile into energy, latency and tables.

- :mod:`snncost.report.costing`: the cost model (:func:`cost_run`), counts -> per-layer rows;
- :mod:`snncost.report.cost_report`: :class:`CostReport` and its renderers;
- :mod:`snncost.report.plots`: figures (matplotlib, Agg).

See ``docs/cost_model.md`` for the costing rules.
"""

from snncost.report.cost_report import CostReport, Ratios, latex_escape
from snncost.report.costing import CostedRun, LayerRow, Totals, cost_run

__all__ = [
    "CostReport",
    "CostedRun",
    "LayerRow",
    "Ratios",
    "Totals",
    "cost_run",
    "latex_escape",
]
