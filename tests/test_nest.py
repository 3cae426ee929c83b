"""Exact loop-nest access counts (snncost.costmodel.nest) and the greedy mapper (mapper).

The closed form in ``nest.analyze`` is checked three ways: against a brute-force
enumeration of the whole nest with Python sets (random tiny layers and
mappings), against Timeloop's reference output for the ISPASS 2020 tutorial
layer, and on hand-checkable sliding-window / partial-sum cases.
"""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snncost.costmodel.mapper import DATAFLOWS, map_layer, working_set_bits
from snncost.costmodel.nest import (
    DIMS,
    TENSORS,
    ConvProblem,
    LevelLoops,
    NestCounts,
    TensorAccess,
    analyze,
)

# --------------------------------------------------------------------------- brute-force reference


def _digit_weights(nest: list[tuple[int, str, int]]) -> list[int]:
    """Mixed-radix weight of each loop (outer -> inner) within its dim: inner loops are low digits."""
    weight = dict.fromkeys(DIMS, 1)
    weights = [0] * len(nest)
    for j in range(len(nest) - 1, -1, -1):
        _, dim, bound = nest[j]
        weights[j] = weight[dim]
        weight[dim] *= bound
    return weights


def analyze_bruteforce(problem: ConvProblem, levels: list[LevelLoops]) -> NestCounts:
    """Walk every iteration of the nest and track each level's tiles as Python sets (tiny layers only)."""
    (sh, sw), (ph, pw) = problem.stride, problem.padding
    n = len(levels)
    nest = [(li, d, b) for li in range(n - 1, -1, -1) for d, b in levels[li].loops]
    weights = _digit_weights(nest)

    def points(loop_ids, base):
        """All (k, c, r, s, p, q) reached by the loops ``loop_ids`` around index ``base``."""
        for values in itertools.product(*(range(nest[j][2]) for j in loop_ids)):
            idx = dict(base)
            for j, v in zip(loop_ids, values, strict=True):
                idx[nest[j][1]] += v * weights[j]
            yield tuple(idx[d] for d in DIMS)

    def real_input(p, r, q, s):
        h, w = p * sh + r - ph, q * sw + s - pw
        return (h, w) if 0 <= h < problem.H and 0 <= w < problem.W else None

    everything = list(points(range(len(nest)), dict.fromkeys(DIMS, 0)))
    assert len(set(everything)) == problem.padded_macs  # the nest covers the problem exactly once
    real = [pt for pt in everything if real_input(pt[4], pt[2], pt[5], pt[3])]
    touched = {(k, p, q) for k, _, _, _, p, q in real}
    macs = len(real)

    fills, drains = [], []
    for li in range(n - 1):
        outer = [j for j, lp in enumerate(nest) if lp[0] > li]
        inner = [j for j, lp in enumerate(nest) if lp[0] <= li]
        new_words = dict.fromkeys(TENSORS, 0)
        previous = {t: set() for t in TENSORS}
        for values in itertools.product(*(range(nest[j][2]) for j in outer)):
            base = dict.fromkeys(DIMS, 0)
            for j, v in zip(outer, values, strict=True):
                base[nest[j][1]] += v * weights[j]
            tiles = {t: set() for t in TENSORS}
            for k, c, r, s, p, q in points(inner, base):
                tiles["weights"].add((k, c, r, s))
                hw = real_input(p, r, q, s)
                if hw:
                    tiles["inputs"].add((c, *hw))
                if (k, p, q) in touched:
                    tiles["outputs"].add((k, p, q))
            for t in TENSORS:
                new_words[t] += len(tiles[t] - previous[t])
            previous = tiles
        fills.append(new_words)
        # drains: |old \ new| summed + the last tile equals |new \ old| summed + the first tile
        drains.append(new_words["outputs"])

    accesses = {}
    for li, level in enumerate(levels):
        top = li == n - 1
        below = fills[li - 1] if li else None
        reads = {t: macs if li == 0 else below[t] for t in ("weights", "inputs")}
        updates = macs if li == 0 else drains[li - 1]
        out_reads = macs - len(touched) if li == 0 else drains[li - 1] - len(touched)
        accesses[level.name] = {
            "weights": TensorAccess(reads["weights"], 0 if top else fills[li]["weights"], 0),
            "inputs": TensorAccess(reads["inputs"], 0 if top else fills[li]["inputs"], 0),
            "outputs": TensorAccess(out_reads, 0 if top else drains[li] - len(touched), updates),
        }
    return NestCounts(tuple(lv.name for lv in levels), accesses, macs)


# --------------------------------------------------------------------------- random problems and mappings


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def problems(draw) -> ConvProblem:
    """Tiny convs, stride 1-2, padding 0-1; H, W drawn so that the output is at least 1x1."""
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, r - 2 * ph), max(1, r - 2 * ph) + 5))
    w = draw(st.integers(max(1, s - 2 * pw), max(1, s - 2 * pw) + 5))
    k, c = draw(st.sampled_from([1, 2, 3, 4, 6])), draw(st.sampled_from([1, 2, 4]))
    return ConvProblem.conv(k, c, (r, s), (h, w), stride=(sh, sw), padding=(ph, pw))


@st.composite
def mappings(draw, problem: ConvProblem) -> list[LevelLoops]:
    """Each dim factorised over the levels (sometimes twice into one level), loops in random order."""
    n = draw(st.integers(1, 3))
    per_level: list[list[tuple[str, int]]] = [[] for _ in range(n)]
    for dim in DIMS:
        remaining = problem.size(dim)
        # one slot per level plus an extra one that repeats the dim in some level
        slots = [*range(n), draw(st.integers(0, n - 1))]
        for slot in slots[:-1]:
            factor = draw(st.sampled_from(_divisors(remaining)))
            per_level[slot].append((dim, factor))
            remaining //= factor
        per_level[slots[-1]].append((dim, remaining))
    names = ["L0", "L1", "L2"][:n]
    return [
        LevelLoops(name, tuple(draw(st.permutations(loops))))
        for name, loops in zip(names, per_level, strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_closed_form_equals_bruteforce(data):
    problem = data.draw(problems())
    levels = data.draw(mappings(problem))
    assert analyze(problem, levels) == analyze_bruteforce(problem, levels)


@settings(max_examples=30, deadline=None)
@given(problem=problems())
def test_real_macs_and_touched_outputs_are_border_exact(problem):
    (sh, sw), (ph, pw) = problem.stride, problem.padding
    real = [
        (k, p, q)
        for k, c, r, s, p, q in itertools.product(*(range(problem.size(d)) for d in DIMS))
        if 0 <= p * sh + r - ph < problem.H and 0 <= q * sw + s - pw < problem.W
    ]
    assert problem.real_macs == len(real)
    assert problem.outputs_touched == len(set(real))
    assert problem.padded_macs == math.prod(problem.size(d) for d in DIMS)


# --------------------------------------------------------------------------- Timeloop golden


TUTORIAL = ConvProblem(K=1, C=1, R=3, S=1, P=16, Q=1, H=18, W=1)
TUTORIAL_WS = [LevelLoops("Buffer", (("P", 16),)), LevelLoops("MainMemory", (("R", 3),))]
TUTORIAL_OS = [LevelLoops("Buffer", (("R", 3),)), LevelLoops("MainMemory", (("P", 16),))]


def _assert_tutorial_counts(counts: NestCounts) -> None:
    buf, mem = counts["Buffer"], counts["MainMemory"]
    assert counts.macs == 48
    assert buf["weights"] == TensorAccess(reads=48, fills=3, updates=0)
    assert buf["inputs"] == TensorAccess(reads=48, fills=18, updates=0)
    assert buf["outputs"] == TensorAccess(reads=32, fills=0, updates=48)
    assert mem["weights"] == TensorAccess(reads=3, fills=0, updates=0)
    assert mem["inputs"] == TensorAccess(reads=18, fills=0, updates=0)
    assert mem["outputs"] == TensorAccess(reads=0, fills=0, updates=16)


@pytest.mark.parametrize("levels", [TUTORIAL_WS, TUTORIAL_OS], ids=["ws", "os"])
def test_timeloop_tutorial_conv1d_2level(levels):
    """Timeloop/Accelergy ISPASS 2020 tutorial, exercise ``01-model-conv1d-2level``.

    Source: github.com/Accelergy-Project/timeloop-accelergy-exercises,
    ``workspace/tutorial_exercises/01_accelergy_timeloop_2020_ispass/timeloop/
    01-model-conv1d-2level/ref-output/{ws,os}/timeloop-model.stats.txt``.
    Problem: 1-D conv R=3, P=16 over 18 inputs (modelled here along the h
    axis: H=18, S=Q=W=1, K=C=1), 48 MACs, 8-bit words; levels Buffer (64
    words) and MainMemory. Mappings: weight-stationary MainMemory [R:3],
    Buffer [P:16]; output-stationary MainMemory [P:16], Buffer [R:3].

    Timeloop's reference counts, identical for both mappings:
    Buffer weights reads 48 fills 3; inputs reads 48 fills 18; outputs
    updates 48 reads 32 fills 0; MainMemory weights reads 3, inputs reads 18,
    outputs updates 16 (reads 0).

    Energy: MACC 0.845 pJ (845.00 fJ/compute), Buffer 0.43 pJ per access,
    MainMemory 14.45 pJ per weight read, 7.23 per input read, 3.86 per
    output update, as printed (rounded) by Timeloop; its total is
    7500.08 fJ/compute, which the recomputed total matches within 0.2%.
    """
    counts = analyze(TUTORIAL, levels)
    _assert_tutorial_counts(counts)

    buf, mem = counts["Buffer"], counts["MainMemory"]
    energy_pj = (
        0.845 * counts.macs
        + 0.43 * counts.level_total("Buffer")
        + 14.45 * mem["weights"].reads
        + 7.23 * mem["inputs"].reads
        + 3.86 * mem["outputs"].updates
    )
    assert counts.level_total("Buffer") == 197  # Timeloop: "Total scalar accesses : 197"
    assert sum(a.total for a in mem.values()) == 37
    assert buf["outputs"].updates == 48
    fj_per_mac = 1000 * energy_pj / counts.macs
    assert abs(fj_per_mac - 7500.08) / 7500.08 < 0.002


# --------------------------------------------------------------------------- hand-checkable cases


def test_sliding_window_refetches_only_the_new_row():
    """3x3 conv, stride 1, no padding, one output row per buffer tile: each step fetches one new row."""
    problem = ConvProblem.conv(1, 1, 3, (6, 4))  # P = 4, Q = 2
    levels = [
        LevelLoops("Buffer", (("R", 3), ("S", 3), ("Q", 2))),
        LevelLoops("DRAM", (("P", 4),)),
    ]
    counts = analyze(problem, levels)
    # first tile: 3 rows x 4 cols = 12 inputs; then 3 slides of one 4-wide row
    assert counts["Buffer"]["inputs"].fills == 12 + 3 * 4 == problem.input_count
    assert counts["Buffer"]["weights"].fills == 9  # weights stay resident


def test_partial_sums_are_written_back_and_re_read():
    """C outside P: each output is visited once per input channel, and re-read on every visit but the first."""
    problem = ConvProblem(K=1, C=2, R=1, S=1, P=2, Q=1, H=2, W=1)
    levels = [LevelLoops("Reg", ()), LevelLoops("Buffer", (("C", 2), ("P", 2)))]
    counts = analyze(problem, levels)
    assert counts["Buffer"]["outputs"] == TensorAccess(reads=2, fills=0, updates=4)
    # the MAC reads 4 - 2 partial sums (first visits start from zero)
    assert counts["Reg"]["outputs"] == TensorAccess(reads=2, fills=2, updates=4)


def test_linear_layer():
    problem = ConvProblem.linear(out_features=6, in_features=4)
    assert (problem.weight_count, problem.output_count, problem.input_count) == (24, 6, 4)
    levels = [LevelLoops("Buf", (("C", 4),)), LevelLoops("DRAM", (("K", 6),))]
    counts = analyze(problem, levels)
    assert counts.macs == 24
    assert counts["Buf"]["inputs"].fills == 4  # the whole input vector stays resident across K
    assert counts["DRAM"]["weights"].reads == 24
    assert counts["DRAM"]["outputs"] == TensorAccess(reads=0, fills=0, updates=6)


def test_bound_one_loops_are_ignored():
    with_ones = [
        LevelLoops("Buffer", (("K", 1), ("P", 16), ("C", 1))),
        LevelLoops("MainMemory", (("Q", 1), ("R", 3))),
    ]
    _assert_tutorial_counts(analyze(TUTORIAL, with_ones))


def test_mapping_validation():
    with pytest.raises(ValueError, match=r"dim P: product of loop bounds 8 != problem size 16"):
        analyze(TUTORIAL, [LevelLoops("Buffer", (("P", 8),)), LevelLoops("Mem", (("R", 3),))])
    with pytest.raises(ValueError, match="unknown dim"):
        analyze(TUTORIAL, [LevelLoops("Buffer", (("X", 16),))])
    with pytest.raises(ValueError, match="unique"):
        analyze(TUTORIAL, [LevelLoops("A", (("P", 16),)), LevelLoops("A", (("R", 3),))])
    with pytest.raises(ValueError, match="positive"):
        ConvProblem(K=0, C=1, R=1, S=1, P=1, Q=1, H=1, W=1)


def test_analyze_is_fast_on_a_vgg16_layer():
    """Closed form, not enumeration: conv1_2 of VGG16 (3.7 G padded MACs) on 4 levels."""
    problem = ConvProblem.conv(64, 64, 3, 224, padding=1)
    levels = [
        LevelLoops("RF", (("R", 3), ("S", 3), ("C", 4))),
        LevelLoops("L1", (("K", 8), ("C", 4), ("Q", 28))),
        LevelLoops("L2", (("C", 4), ("P", 56), ("Q", 8))),
        LevelLoops("DRAM", (("K", 8), ("P", 4))),
    ]
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        counts = analyze(problem, levels)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05
    assert counts.macs == problem.real_macs < problem.padded_macs


# --------------------------------------------------------------------------- mapper

BITS8 = {"weights": 8, "inputs": 8, "outputs": 8}
KB = 8 * 1024  # bits
VGG_CAPS = [("L8K", 8 * KB), ("L32K", 32 * KB), ("L1M", 1024 * KB), ("DRAM", None)]


def _cumulative_tiles(levels) -> list[dict[str, int]]:
    tile = dict.fromkeys(DIMS, 1)
    tiles = []
    for level in levels:
        for dim, bound in level.loops:
            tile[dim] *= bound
        tiles.append(dict(tile))
    return tiles


MAPPER_PROBLEMS = [
    TUTORIAL,
    ConvProblem.conv(64, 64, 3, 32, padding=1),
    ConvProblem.conv(64, 3, 3, 224, padding=1),
    ConvProblem.conv(128, 64, 1, 56, stride=2),
    ConvProblem.conv(96, 3, 11, 227, stride=4),
    ConvProblem.linear(1000, 4096),
]


@pytest.mark.parametrize("dataflow", list(DATAFLOWS))
@pytest.mark.parametrize("problem", MAPPER_PROBLEMS, ids=lambda p: f"{p.K}x{p.C}x{p.R}x{p.P}")
def test_mapper_factors_cover_the_problem_and_fit(problem, dataflow):
    caps = [("RF", 64 * 8), *VGG_CAPS]
    levels = map_layer(problem, dataflow, caps, BITS8)
    assert [lv.name for lv in levels] == [name for name, _ in caps]
    tiles = _cumulative_tiles(levels)
    assert tiles[-1] == {d: problem.size(d) for d in DIMS}
    for tile, (name, cap) in zip(tiles[:-1], caps[:-1], strict=True):
        assert working_set_bits(problem, tile, BITS8) <= cap, name
    order = DATAFLOWS[dataflow].loop_order
    for level in levels:
        dims = [d for d, _ in level.loops]
        assert dims == sorted(dims, key=order.index) and all(b > 1 for _, b in level.loops)
    assert map_layer(problem, dataflow, caps, BITS8) == levels  # deterministic
    analyze(problem, levels)  # a valid mapping


@pytest.mark.parametrize("dataflow", list(DATAFLOWS))
def test_mapper_reproduces_the_tutorial_counts(dataflow):
    levels = map_layer(TUTORIAL, dataflow, [("Buffer", 64 * 8), ("MainMemory", None)], BITS8)
    _assert_tutorial_counts(analyze(TUTORIAL, levels))


def test_mapper_dataflows_trade_weight_for_output_traffic():
    """VGG-like 64x64 3x3 conv on a 32x32 map, 8-bit words, 8 KB / 32 KB / 1 MB / DRAM.

    Weight-stationary moves fewer weights and output-stationary fewer partial
    sums. The comparison is made at the outermost level where the two
    dataflows' traffic differs: here the 1 MB level holds the whole layer, so
    DRAM sees each weight and output exactly once under both, and the
    difference shows in what the 32 KB level serves to the 8 KB level.
    """
    problem = ConvProblem.conv(64, 64, 3, 32, padding=1)
    counts = {df: analyze(problem, map_layer(problem, df, VGG_CAPS, BITS8)) for df in DATAFLOWS}
    ws, os_ = counts["weight-stationary"], counts["output-stationary"]
    names = [name for name, _ in VGG_CAPS]

    def outermost_difference(tensor: str, field: str) -> str:
        for name in reversed(names):
            if getattr(ws[name][tensor], field) != getattr(os_[name][tensor], field):
                return name
        raise AssertionError(f"{tensor} {field} identical at every level")

    w_level = outermost_difference("weights", "reads")
    assert ws[w_level]["weights"].reads < os_[w_level]["weights"].reads
    o_level = outermost_difference("outputs", "updates")
    assert os_[o_level]["outputs"].updates < ws[o_level]["outputs"].updates
    assert (w_level, o_level) == ("L32K", "L32K")
    for c in (ws, os_):
        assert c["DRAM"]["weights"].reads >= problem.weight_count
        assert c["DRAM"]["outputs"].updates >= problem.outputs_touched


def test_mapper_rejects_bad_requests():
    with pytest.raises(ValueError, match="weight-stationary, output-stationary"):
        map_layer(TUTORIAL, "row-stationary", [("Buffer", 512), ("DRAM", None)], BITS8)
    with pytest.raises(ValueError, match=r"'RF' \(16 bits\) cannot hold even a 1x1 tile \(24 bits"):
        map_layer(TUTORIAL, "weight-stationary", [("RF", 16), ("DRAM", None)], BITS8)
