"""The conventions a cost figure depends on, made explicit and selectable.

Every report states these (``CostReport.conventions``), because each one can
move an SNN/ANN energy ratio by tens of percent or flip the verdict.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

AnalogInput = Literal["every-step", "once"]
BaselinePrecision = Literal["same", "fp32"]


class CostOptions(BaseModel):
    """How events become operations and accesses (see docs/cost_model.md).

    - ``dataflow``: ``no-reuse``, ``weight-stationary``, ``output-stationary``
      or ``neuromorphic`` (SNN only); ``None`` = the profile's default.
    - ``ann_dataflow``: the ANN baseline's dataflow; ``None`` = ``dataflow``,
      or ``weight-stationary`` when the SNN runs on a neuromorphic core.
    - ``count_padding``: dense-array MACs count the taps that land in zero
      padding (default False: real taps only, like the SNN's ACs).
    - ``analog_input``: the direct-coded first layer's MACs are charged at
      ``every-step`` (the seed paper's convention) or ``once`` (the current is
      computed once and reused, as the replay does).
    - ``skip_zero_weights``: weight-sparse hardware performs no AC or MAC on a
      zero weight and stores only nonzero weights (indices not charged).
    - ``baseline_precision``: ``same`` (the ANN has the SNN's weight width and
      8-bit activations when the SNN is integer; fp32 when it is float) or
      ``fp32``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataflow: str | None = None
    ann_dataflow: str | None = None
    count_padding: bool = False
    analog_input: AnalogInput = "every-step"
    skip_zero_weights: bool = False
    baseline_precision: BaselinePrecision = "same"

    def conventions(self, snn_dataflow: str, ann_dataflow: str) -> list[str]:
        """One sentence per convention, for the report's header."""
        return [
            f"dataflow: SNN {snn_dataflow}, ANN {ann_dataflow}",
            "ANN MACs: every tap, padding included (dense array)"
            if self.count_padding
            else "ANN MACs: real taps only (border-exact, like the SNN's ACs)",
            "direct-input first layer: MACs charged at every step"
            if self.analog_input == "every-step"
            else "direct-input first layer: MACs charged once, the current reused",
            "zero weights: skipped (no AC/MAC, not stored)"
            if self.skip_zero_weights
            else "zero weights: charged like any other",
        ]


__all__ = ["AnalogInput", "BaselinePrecision", "CostOptions"]
