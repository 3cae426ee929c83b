"""Accesses, word widths and placement: the vocabulary shared by every dataflow.

An :class:`Access` is what a dataflow produces for one tensor at one memory
level: how many words were read and written (per inference) and how wide a
word is. The profile prices it (``reads x bits x read pJ/bit + writes x
bits x write pJ/bit``), so a report can show exactly which level and which
tensor the energy went to.

Tensors: ``weights``; ``inputs`` (input activations, or spikes as address
events); ``state`` (membranes of an SNN, partial sums of an ANN); ``outputs``
(output spikes as address events, or output activations).

The memory hierarchy is the profile's levels as **one shared hierarchy**,
innermost (smallest SRAM) first, DRAM last. An array lives at its *home*:
the smallest level that holds the working set that must stay resident
(:func:`home_level`), not the smallest level that holds the array alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snncost.hardware.profile import HardwareProfile, MemoryLevel

TENSORS = ("weights", "inputs", "state", "outputs")


@dataclass(frozen=True)
class Access:
    """Words of one tensor read and written at one memory level, per inference."""

    level: str
    tensor: str
    reads: float
    writes: float
    bits: int


@dataclass(frozen=True)
class Widths:
    """Word widths (bits) of one network's tensors, decided by the model and the profile.

    ``inputs``: an ANN's activations or an analog input pixel; spikes travel
    as address events whose width the dataflow derives from the layer size.
    ``state``: membranes (SNN) or partial sums (ANN). ``outputs``: an ANN's
    output activations.
    """

    number_format: str  # "float" or "int": the arithmetic's format
    weights: int | None  # None: each layer's own width (the graph's)
    inputs: int
    state: int
    outputs: int


def address_bits(neurons: int) -> int:
    """Bits of one address event among ``neurons`` targets: ``ceil(log2(n))`` (at least 1)."""
    return max(1, (int(neurons) - 1).bit_length())


def hierarchy(profile: HardwareProfile) -> list[MemoryLevel]:
    """The profile's memory levels innermost first: SRAMs by size, then DRAMs (unbounded last)."""

    def capacity(level: MemoryLevel) -> float:
        return math.inf if level.size_bytes is None else float(level.size_bytes)

    order = {"sram": 0, "dram": 1}
    return sorted(profile.memory, key=lambda m: (order[m.kind], capacity(m)))


def home_level(levels: list[MemoryLevel], size_bits: float) -> int:
    """Index of the innermost level whose capacity holds ``size_bits`` (the outermost if none does).

    What does not fit spills to the next level, ultimately the outermost one
    (DRAM), whose capacity a profile may leave unbounded.
    """
    for i, level in enumerate(levels):
        if level.size_bytes is None or level.size_bytes * 8 >= size_bits:
            return i
    return len(levels) - 1
