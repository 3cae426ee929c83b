"""A deterministic greedy mapper: tile sizes per memory level for two dataflows.

Why a fixed rule instead of a search: Timeloop explores a map space (millions
of candidate mappings) and keeps the best one it finds, which is slow and
depends on the search budget and seed. snncost instead applies one documented
greedy rule, so a layer's mapping is reproducible, fast to compute and easy to
explain; the access counts of whatever mapping comes out are then exact
(:func:`snncost.costmodel.nest.analyze`). The rule does not claim optimality.

The rule (a table, :data:`DATAFLOWS`, not branches):

* Each dataflow has a *growth order* (which dims are grown first into the
  inner levels) and a *loop order* (outer -> inner) used for every level.

  ===================  ========================  ========================
  dataflow             growth order              loop order (outer->inner)
  ===================  ========================  ========================
  weight-stationary    P, Q, K, C, R, S          K, C, R, S, P, Q
  output-stationary    C, R, S, P, Q, K          K, P, Q, C, R, S
  ===================  ========================  ========================

  Weight-stationary grows an output sweep (P, Q) under a fixed weight tile
  first, and puts the weight dims outermost so a weight tile stays resident
  while P, Q iterate. Output-stationary grows the reduction (C, R, S) first so
  partial sums never leave the inner level.
* From the innermost level outwards, the cumulative tile (the product of the
  factors of this level and every level inside it) is grown one dim at a time
  in growth order, each to the largest divisor of the dim's size that is a
  multiple of the factor already fixed and keeps the working set within the
  level's capacity::

      weights  K_t C_t R_t S_t                                  x weight bits
    + inputs   C_t ((P_t - 1) sh + R_t) ((Q_t - 1) sw + S_t)    x input bits
    + outputs  K_t P_t Q_t                                      x output bits

  (the input footprint is not clipped to the real input: a buffer sized this
  way also holds a tile in the padded border). A level's loops are the ratios
  between its cumulative tile and the one inside it, in loop order, bound-1
  loops omitted.
* A level of capacity ``None`` is unbounded (holds the whole layer). The last
  (outermost) level is the backing store: it takes whatever remains, and its
  capacity is not checked.
* If even the all-ones tile does not fit the innermost level, the layer
  cannot be mapped and ``ValueError`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from snncost.costmodel.nest import DIMS, TENSORS, ConvProblem, LevelLoops


@dataclass(frozen=True)
class DataflowRule:
    """One row of the rule table: the order dims are grown in, and the loop order of each level."""

    growth_order: tuple[str, ...]
    loop_order: tuple[str, ...]


DATAFLOWS: Mapping[str, DataflowRule] = {
    "weight-stationary": DataflowRule(
        growth_order=("P", "Q", "K", "C", "R", "S"),
        loop_order=("K", "C", "R", "S", "P", "Q"),
    ),
    "output-stationary": DataflowRule(
        growth_order=("C", "R", "S", "P", "Q", "K"),
        loop_order=("K", "P", "Q", "C", "R", "S"),
    ),
}


def working_set_bits(problem: ConvProblem, tile: Mapping[str, int], bits: Mapping[str, int]) -> int:
    """Bits a level needs to hold one tile of each tensor (input footprint unclipped)."""
    (sh, sw) = problem.stride
    weights = tile["K"] * tile["C"] * tile["R"] * tile["S"]
    rows = (tile["P"] - 1) * sh + tile["R"]
    cols = (tile["Q"] - 1) * sw + tile["S"]
    inputs = tile["C"] * rows * cols
    outputs = tile["K"] * tile["P"] * tile["Q"]
    return weights * bits["weights"] + inputs * bits["inputs"] + outputs * bits["outputs"]


def _fits(
    problem: ConvProblem, tile: Mapping[str, int], bits: Mapping[str, int], capacity: int | None
) -> bool:
    return capacity is None or working_set_bits(problem, tile, bits) <= capacity


def _grow(
    problem: ConvProblem,
    tile: dict[str, int],
    rule: DataflowRule,
    bits: Mapping[str, int],
    capacity: int | None,
) -> dict[str, int]:
    """Grow the cumulative tile dim by dim (growth order), each as far as the capacity allows."""
    tile = dict(tile)
    for dim in rule.growth_order:
        size, fixed = problem.size(dim), tile[dim]
        candidates = [m for m in range(size, fixed, -fixed) if size % m == 0]
        for m in candidates:  # multiples of the fixed factor, largest first
            if _fits(problem, {**tile, dim: m}, bits, capacity):
                tile[dim] = m
                break
    return tile


def _level(
    name: str, inner: Mapping[str, int], outer: Mapping[str, int], order: Sequence[str]
) -> LevelLoops:
    """The loops of one level: the factors between two cumulative tiles, in loop order."""
    return LevelLoops(name, tuple((d, outer[d] // inner[d]) for d in order if outer[d] > inner[d]))


def _check_inputs(
    dataflow: str, capacities_bits: Sequence[tuple[str, int | None]], bits: Mapping[str, int]
) -> DataflowRule:
    if dataflow not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; valid: {', '.join(DATAFLOWS)}")
    if not capacities_bits:
        raise ValueError("capacities_bits needs at least one level")
    missing = [t for t in TENSORS if t not in bits]
    if missing:
        raise ValueError(f"bits is missing word widths for {missing}")
    if any(not isinstance(bits[t], int) or bits[t] < 1 for t in TENSORS):
        raise ValueError(f"word widths must be positive ints, got {dict(bits)}")
    for name, cap in capacities_bits:
        if cap is not None and (not isinstance(cap, int) or cap < 0):
            raise ValueError(
                f"level {name!r}: capacity must be a non-negative int or None, got {cap!r}"
            )
    return DATAFLOWS[dataflow]


def map_layer(
    problem: ConvProblem,
    dataflow: str,
    capacities_bits: Sequence[tuple[str, int | None]],
    bits: Mapping[str, int],
) -> tuple[LevelLoops, ...]:
    """Tile ``problem`` over the levels ``capacities_bits`` (innermost first) by the greedy rule.

    Returns one :class:`LevelLoops` per level, innermost first, ready for
    :func:`snncost.costmodel.nest.analyze`.
    """
    rule = _check_inputs(dataflow, capacities_bits, bits)
    ones = dict.fromkeys(DIMS, 1)
    name0, cap0 = capacities_bits[0]
    if not _fits(problem, ones, bits, cap0):
        need = working_set_bits(problem, ones, bits)
        raise ValueError(
            f"level {name0!r} ({cap0} bits) cannot hold even a 1x1 tile ({need} bits: "
            f"{bits['weights']} weight + {bits['inputs']} input + {bits['outputs']} output)"
        )
    full = {d: problem.size(d) for d in DIMS}
    levels: list[LevelLoops] = []
    inner = ones
    for index, (name, capacity) in enumerate(capacities_bits):
        last = index == len(capacities_bits) - 1
        tile = full if last else _grow(problem, inner, rule, bits, capacity)
        levels.append(_level(name, inner, tile, rule.loop_order))
        inner = tile
    return tuple(levels)
