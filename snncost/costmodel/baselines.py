"""Word widths of the SNN and of each ANN baseline, and which baselines a report shows.

Fair by default (docs/cost_model.md, "Baselines"): the ANN a k-bit integer
SNN is compared with has the same k-bit weights and 8-bit activations; a
float SNN is compared with an fp32 ANN. The fp32 ANN and a **zero-skipping**
ANN (MACs only where the input activation is nonzero, counted on the same
inputs) are always reported beside the main baseline, so a reader sees how
far the verdict depends on the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncost.costmodel.accesses import Widths
from snncost.hardware.profile import HardwareProfile
from snncost.sim.counts import RunCounts

#: Activation width of an integer (quantized) ANN baseline and of an integer SNN's analog input.
INT_ACTIVATION_BITS = 8
FLOAT_BITS = 32


@dataclass(frozen=True)
class Baseline:
    """One ANN baseline: a key, a sentence for the report, its widths, whether it skips zeros."""

    key: str  # "ann" (same precision), "ann-fp32", "ann-zero-skipping"
    description: str
    widths: Widths
    zero_skipping: bool = False


def integer_network(counts: RunCounts) -> tuple[bool, int]:
    """``(all layers integer, widest weight)`` of a run."""
    integer = all(lc.number_format == "int" for lc in counts.layers)
    return integer, max(int(lc.weight_bits) for lc in counts.layers)


def snn_widths(counts: RunCounts, profile: HardwareProfile) -> Widths:
    """An SNN's widths: its own weights; fp32 membranes for a float model, the profile's
    ``state_bits`` (integer membranes) for a quantized one; 8-bit integer analog input."""
    integer, _ = integer_network(counts)
    if integer:
        return Widths("int", None, INT_ACTIVATION_BITS, int(profile.state_bits), 1)
    return Widths(None, None, FLOAT_BITS, FLOAT_BITS, 1)


def ann_baselines(snn: RunCounts, profile: HardwareProfile, precision: str = "same") -> list[Baseline]:
    """The baselines of a report, the main one first (``precision``: ``same`` or ``fp32``)."""
    integer, kbits = integer_network(snn)
    fp32 = Widths("float", FLOAT_BITS, FLOAT_BITS, FLOAT_BITS, FLOAT_BITS)
    if integer:
        same = Widths("int", kbits, INT_ACTIVATION_BITS, int(profile.state_bits), INT_ACTIVATION_BITS)
        same_text = f"int{kbits} weights, int{INT_ACTIVATION_BITS} activations (same precision as the SNN)"
    else:
        same, same_text = fp32, "fp32 weights and activations (same precision as the SNN)"
    main = same if precision == "same" else fp32
    main_text = same_text if precision == "same" else "fp32 weights and activations"
    out = [Baseline("ann", main_text, main)]
    if integer:
        out.append(Baseline("ann-fp32", "fp32 weights and activations", fp32))
    out.append(
        Baseline("ann-zero-skipping", f"{main_text}, MACs only on nonzero activations", main, True)
    )
    return out


__all__ = ["Baseline", "ann_baselines", "integer_network", "snn_widths"]
