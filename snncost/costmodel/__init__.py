"""The cost model: events + shapes + a dataflow -> accesses per memory level -> energy.

Events come from :mod:`snncost.sim` (what happened, no prices); this package
decides what they cost:

- :mod:`~snncost.costmodel.options`: the conventions (dataflow, padding taps,
  first-layer MACs, zero weights, baseline precision), stated in every report;
- :mod:`~snncost.costmodel.nest` and :mod:`~snncost.costmodel.mapper`: the
  Timeloop-style loop-nest access counts of one layer and the greedy tiling;
- :mod:`~snncost.costmodel.dataflows`: the rule table from events to
  :class:`~snncost.costmodel.accesses.Access` es per level and tensor;
- :mod:`~snncost.costmodel.baselines`: word widths of the SNN and each ANN baseline;
- :mod:`~snncost.costmodel.pricing`: operations and accesses priced on a
  :class:`~snncost.hardware.HardwareProfile` (:func:`cost_run`);
- :mod:`~snncost.costmodel.breakeven`: the activity at which the SNN costs
  as much as its baseline;
- :mod:`~snncost.costmodel.feasibility`: whether the network fits a chip
  with published limits (cores, chips, weight precision).

See docs/cost_model.md.
"""

from snncost.costmodel import feasibility
from snncost.costmodel.accesses import Access, Widths, address_bits
from snncost.costmodel.baselines import Baseline, ann_baselines, snn_widths
from snncost.costmodel.breakeven import BreakEven, BreakEvenRow, break_even, silent
from snncost.costmodel.dataflows import DATAFLOWS, check_dataflow, resolve_dataflows
from snncost.costmodel.options import CostOptions
from snncost.costmodel.pricing import AccessRow, CostedRun, LayerRow, Totals, cost_run

__all__ = [
    "DATAFLOWS",
    "Access",
    "AccessRow",
    "Baseline",
    "BreakEven",
    "BreakEvenRow",
    "CostOptions",
    "CostedRun",
    "LayerRow",
    "Totals",
    "Widths",
    "address_bits",
    "ann_baselines",
    "break_even",
    "check_dataflow",
    "feasibility",
    "cost_run",
    "resolve_dataflows",
    "silent",
    "snn_widths",
]
