"""Exact Timeloop-style access counts for one conv (or linear) layer under a loop nest.

Why this module exists: the dataflow cost model prices every memory level by
the number of words it reads, fills and updates. Those counts depend on the
*mapping* (which loops run at which level, in which order), and a hardware
reviewer must be able to check them against Timeloop's own output. So the
semantics here are Timeloop's (temporal mappings only, no bypass, one
inference, batch N = 1), and the counts are exact integers, not estimates.

Problem and tensors (dims ``K, C, R, S, P, Q``)::

    W[k, c, r, s]    I[c, h, w]    O[k, p, q]
    h = p * sh + r - ph,   w = q * sw + s - pw

Only *real* taps exist: a tap whose input position lies in the padding is
never computed and its input is never fetched (``real_macs``). An output is
*touched* when it receives at least one real tap (all of them, for ordinary
convolutions).

Mapping: a sequence of :class:`LevelLoops`, innermost level first; each level
lists its temporal loops outer -> inner. The nest, from outside in, is the top
level's loops down to the innermost level's loops. For every dim the product
of its bounds over all levels is the dim's size; a dim's index is the
mixed-radix number formed by its loops in nest order (outer loop = high digit).

Counting rules (``analyze``):

* The tile of tensor ``t`` at level ``L`` is the footprint of ``t`` over all
  loops at levels ``<= L``; it changes whenever a loop of a level above ``L``
  advances. Fills of ``t`` at ``L`` (below the top) = the sum over those outer
  iterations of ``|tile_new \\ tile_previous|`` (the first iteration fills its
  whole tile; only the immediately previous tile is remembered). Input tiles
  count real positions only, so a sliding window refetches only its new rows.
  The top level has no fills.
* Innermost level: weight reads = input reads = output updates = real_macs;
  output reads = real_macs - outputs_touched (an output's first accumulation
  starts from zero).
* Level ``L`` above the innermost: weight/input reads = fills of ``L - 1``.
  Output *drains* of ``L - 1`` (partial sums written back when its output
  tile is replaced, and at the end) are counted like fills, over the touched
  outputs of the tile; updates at ``L`` = drains of ``L - 1``; output fills at
  ``L - 1`` = drains - outputs_touched (every visit of an output but its first
  re-reads a partial sum that had been written back); reads at ``L`` = those
  fills.

Closed form (why not just simulate: real layers have millions of outer
iterations). Each tensor's tile is a product of per-axis sets (W: K, C, R, S;
O: K, P, Q; I: C, h <- (P, R), w <- (Q, S)), and on each axis the tile is a
fixed offset set ``D`` (from the inner loops) translated by a base that is a
linear function of the outer loop indices, clipped to the axis's valid
positions. Consecutive outer iterations differ by a transition of type ``i``:
loop ``i`` advances, the loops inside it wrap, the loops outside keep any
value. Summed over all transitions of type ``i``, ``|new|`` and
``|new & old|`` are products over axes of per-axis sums (loops that belong to
no axis of the tensor only multiply), and ``new & old`` is the translate of
``D & (D - delta_i)`` for a per-type constant shift ``delta_i``. Each per-axis
sum adds up entries of a table giving, for every base, how many valid
positions the translated offset set covers (prefix sums, one term per run of
the offset set), so the cost does not grow with the number of iterations.

Where this deliberately differs from Timeloop: Timeloop has no notion of
padding and bounds a footprint by its axis-aligned box; here a strided input
tile with gaps, and padding positions, are counted exactly (both agree for
stride 1 without padding, e.g. the tutorial layer of ``tests/test_nest.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

DIMS: tuple[str, ...] = ("K", "C", "R", "S", "P", "Q")
TENSORS: tuple[str, ...] = ("weights", "inputs", "outputs")

Pair = tuple[int, int]


def _pair(value: int | Sequence[int], name: str) -> Pair:
    """Accept ``3`` or ``(3, 3)``, like torch's conv arguments."""
    if isinstance(value, numbers.Integral):
        return (int(value), int(value))
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def _valid_taps(n_out: int, kernel: int, stride: int, pad: int, size: int) -> np.ndarray:
    """Boolean (n_out, kernel) table: does output position o with kernel tap k read a real input?"""
    pos = np.arange(n_out)[:, None] * stride + np.arange(kernel)[None, :] - pad
    return (pos >= 0) & (pos < size)


@dataclass(frozen=True)
class ConvProblem:
    """One conv layer (a linear layer is a 1x1 conv on a 1x1 map), batch 1.

    ``H, W`` are the real (unpadded) input sizes; ``P, Q`` are given explicitly
    so that a layer can be described exactly as a framework reports it
    (``conv`` derives them with the usual floor formula).
    """

    K: int
    C: int
    R: int
    S: int
    P: int
    Q: int
    H: int
    W: int
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)

    def __post_init__(self) -> None:
        for dim in (*DIMS, "H", "W"):
            size = getattr(self, dim)
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
                raise ValueError(f"{dim} must be a positive int, got {size!r}")
            object.__setattr__(self, dim, int(size))  # numpy ints become plain ints
        stride, padding = _pair(self.stride, "stride"), _pair(self.padding, "padding")
        if min(stride) < 1 or min(padding) < 0:
            raise ValueError(f"need stride >= 1 and padding >= 0, got {stride}, {padding}")
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)

    @classmethod
    def conv(
        cls,
        out_channels: int,
        in_channels: int,
        kernel_size: int | Sequence[int],
        input_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
    ) -> ConvProblem:
        """A conv layer as torch describes it; output size = floor((H + 2p - R) / s) + 1."""
        (r, s), (h, w) = _pair(kernel_size, "kernel_size"), _pair(input_size, "input_size")
        st, pad = _pair(stride, "stride"), _pair(padding, "padding")
        p = (h + 2 * pad[0] - r) // st[0] + 1
        q = (w + 2 * pad[1] - s) // st[1] + 1
        if p < 1 or q < 1:
            raise ValueError(
                f"kernel {r}x{s} does not fit the padded input {h}x{w} (padding {pad})"
            )
        return cls(out_channels, in_channels, r, s, p, q, h, w, st, pad)

    @classmethod
    def linear(cls, out_features: int, in_features: int) -> ConvProblem:
        """A fully connected layer: K = out, C = in, every spatial size 1."""
        return cls(out_features, in_features, 1, 1, 1, 1, 1, 1)

    def size(self, dim: str) -> int:
        """The size of one of the six loop dims."""
        if dim not in DIMS:
            raise ValueError(f"unknown dim {dim!r}; dims are {', '.join(DIMS)}")
        return int(getattr(self, dim))

    @property
    def weight_count(self) -> int:
        return self.K * self.C * self.R * self.S

    @property
    def output_count(self) -> int:
        return self.K * self.P * self.Q

    @property
    def input_count(self) -> int:
        return self.C * self.H * self.W

    def _taps_h(self) -> np.ndarray:
        return _valid_taps(self.P, self.R, self.stride[0], self.padding[0], self.H)

    def _taps_w(self) -> np.ndarray:
        return _valid_taps(self.Q, self.S, self.stride[1], self.padding[1], self.W)

    @property
    def real_macs(self) -> int:
        """MACs whose input tap is a real position (padding taps are skipped), border-exact."""
        return self.K * self.C * int(self._taps_h().sum()) * int(self._taps_w().sum())

    @property
    def padded_macs(self) -> int:
        """The dense count K*C*R*S*P*Q, padding taps included."""
        return self.weight_count * self.P * self.Q

    def touched_rows(self) -> np.ndarray:
        """Output rows p that receive at least one real tap (all rows of an ordinary conv)."""
        return self._taps_h().any(axis=1)

    def touched_cols(self) -> np.ndarray:
        """Output columns q that receive at least one real tap."""
        return self._taps_w().any(axis=1)

    @property
    def outputs_touched(self) -> int:
        """Outputs receiving at least one real tap; touched-ness factorises over rows and columns."""
        return self.K * int(self.touched_rows().sum()) * int(self.touched_cols().sum())


@dataclass(frozen=True)
class LevelLoops:
    """The temporal loops of one memory level, ordered outer -> inner, as (dim, bound)."""

    name: str
    loops: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "loops", tuple((d, b) for d, b in self.loops))


@dataclass(frozen=True)
class TensorAccess:
    """Word accesses of one tensor at one level (Timeloop's scalar reads / fills / updates)."""

    reads: int
    fills: int
    updates: int

    @property
    def total(self) -> int:
        return self.reads + self.fills + self.updates


@dataclass(frozen=True)
class NestCounts:
    """Per level (innermost first) and per tensor access counts, plus the real MACs."""

    levels: tuple[str, ...]
    accesses: Mapping[str, Mapping[str, TensorAccess]] = field(repr=False)
    macs: int

    def __getitem__(self, level: str) -> Mapping[str, TensorAccess]:
        return self.accesses[level]

    def level_total(self, level: str) -> int:
        """All word accesses of one level (what Timeloop calls its scalar accesses)."""
        return sum(a.total for a in self.accesses[level].values())


# --------------------------------------------------------------------------- nest structure


@dataclass(frozen=True)
class _Loop:
    """One non-trivial loop of the flattened nest; ``stride`` is its digit weight in its dim."""

    level: int
    dim: str
    bound: int
    stride: int


def validate_mapping(problem: ConvProblem, levels: Sequence[LevelLoops]) -> None:
    """Reject unknown dims, bad bounds, duplicate level names and factorisations that miss a dim."""
    if not levels:
        raise ValueError("a mapping needs at least one level")
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise ValueError(f"level names must be unique, got {names}")
    products = dict.fromkeys(DIMS, 1)
    for lv in levels:
        for dim, bound in lv.loops:
            if dim not in DIMS:
                raise ValueError(
                    f"level {lv.name!r}: unknown dim {dim!r}; dims are {', '.join(DIMS)}"
                )
            if not isinstance(bound, (int, np.integer)) or bound < 1:
                raise ValueError(
                    f"level {lv.name!r}: loop {dim} has bound {bound!r}, need an int >= 1"
                )
            products[dim] *= int(bound)
    for dim in DIMS:
        if products[dim] != problem.size(dim):
            raise ValueError(
                f"dim {dim}: product of loop bounds {products[dim]} != problem size {problem.size(dim)}"
            )


def _flatten(levels: Sequence[LevelLoops]) -> list[_Loop]:
    """The nest outer -> inner (top level first), bound-1 loops dropped, with digit weights."""
    raw = [
        (li, dim, int(bound))
        for li in range(len(levels) - 1, -1, -1)
        for dim, bound in levels[li].loops
        if bound > 1
    ]
    weight = dict.fromkeys(DIMS, 1)
    out: list[_Loop] = []
    for li, dim, bound in reversed(raw):  # inner -> outer: inner loops are the low digits
        out.append(_Loop(li, dim, bound, weight[dim]))
        weight[dim] *= bound
    return out[::-1]


# --------------------------------------------------------------------------- per-axis algebra


@dataclass(frozen=True, eq=False)
class _Axis:
    """One axis of a tensor: coordinate = offset + sum(coef[d] * index[d]), real where ``valid``."""

    coefs: Mapping[str, int]
    offset: int
    valid: np.ndarray  # int64 0/1 indicator over coordinates [0, len(valid))


def _tensor_axes(problem: ConvProblem) -> dict[str, tuple[_Axis, ...]]:
    """The box structure of each tensor; a dim belongs to at most one axis of a tensor."""
    (sh, sw), (ph, pw) = problem.stride, problem.padding

    def full(dim: str) -> _Axis:
        return _Axis({dim: 1}, 0, np.ones(problem.size(dim), dtype=np.int64))

    return {
        "weights": tuple(full(d) for d in ("K", "C", "R", "S")),
        "inputs": (
            full("C"),
            _Axis({"P": sh, "R": 1}, -ph, np.ones(problem.H, dtype=np.int64)),
            _Axis({"Q": sw, "S": 1}, -pw, np.ones(problem.W, dtype=np.int64)),
        ),
        "outputs": (
            full("K"),
            _Axis({"P": 1}, 0, problem.touched_rows().astype(np.int64)),
            _Axis({"Q": 1}, 0, problem.touched_cols().astype(np.int64)),
        ),
    }


def _offset_set(axis: _Axis, extent: Mapping[str, int]) -> np.ndarray:
    """Indicator of the tile's offsets from its base: {sum coef*x : 0 <= x < extent}."""
    ind = np.ones(1, dtype=np.int64)
    for dim, coef in axis.coefs.items():
        comb = np.zeros(coef * (extent[dim] - 1) + 1, dtype=np.int64)
        comb[::coef] = 1
        ind = (np.convolve(ind, comb) > 0).astype(np.int64)
    return ind


def _shift_overlap(offsets: np.ndarray, delta: int) -> np.ndarray:
    """Indicator of offsets & (offsets - delta): where tile(base) meets tile(base - delta)."""
    out = np.zeros_like(offsets)
    n = len(offsets)
    if abs(delta) >= n:
        return out
    if delta >= 0:
        out[: n - delta] = offsets[: n - delta] & offsets[delta:]
    else:
        out[-delta:] = offsets[-delta:] & offsets[: n + delta]
    return out


def _runs(indicator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of ones: an offset set is a few intervals."""
    edges = np.diff(np.concatenate(([0], indicator, [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


class _AxisNest:
    """An axis seen from one level: its offset set and the outer loops that move its base."""

    def __init__(self, axis: _Axis, offsets: np.ndarray, loops: tuple[tuple[int, int, int], ...]):
        self.axis = axis
        self.offsets = offsets
        self.loops = loops  # (position among the outer loops, coordinate step, bound)
        self.span = sum(step * (bound - 1) for _, step, bound in loops)  # largest base displacement
        lo, length = axis.offset, self.span + len(offsets)
        ext = np.zeros(length, dtype=np.int64)  # valid positions seen from base displacement 0
        a, b = max(0, -lo), min(length, len(axis.valid) - lo)
        if b > a:
            ext[a:b] = axis.valid[lo + a : lo + b]
        self._prefix = np.concatenate(([0], np.cumsum(ext)))

    def table(self, offsets: np.ndarray) -> np.ndarray:
        """t[b] = |(offset + b + offsets) & valid| for every displacement b in 0..span.

        A sum of prefix-sum differences, one per run of the offset set, so the
        cost is (runs x span) rather than (|offsets| x span).
        """
        disp = np.arange(self.span + 1)
        table = np.zeros(self.span + 1, dtype=np.int64)
        for start, end in zip(*_runs(offsets), strict=True):
            table += self._prefix[disp + end] - self._prefix[disp + start]
        return table

    def new_bases(self, i: int) -> np.ndarray:
        """Base displacements of every 'new' tile of a type-i transition, with multiplicity."""
        vals = np.zeros(1, dtype=np.int64)
        for pos, step, bound in self.loops:
            if pos < i:
                vals = (vals[:, None] + step * np.arange(bound)).ravel()
            elif pos == i:
                vals = (vals[:, None] + step * np.arange(1, bound)).ravel()
        return vals

    def delta(self, i: int) -> int:
        """new base - old base for a type-i transition (loop i +1, loops inside it wrap)."""
        d = 0
        for pos, step, bound in self.loops:
            if pos == i:
                d += step
            elif pos > i:
                d -= step * (bound - 1)
        return d


def _tile_changes(axes: Iterable[_Axis], outer: Sequence[_Loop], extent: Mapping[str, int]) -> int:
    """Sum over the outer iterations of |tile_new \\ tile_previous|, the first tile counted whole."""
    nests = []
    owned: set[int] = set()
    for axis in axes:
        loops = tuple(
            (pos, axis.coefs[lp.dim] * lp.stride, lp.bound)
            for pos, lp in enumerate(outer)
            if lp.dim in axis.coefs
        )
        owned.update(pos for pos, _, _ in loops)
        nests.append(_AxisNest(axis, _offset_set(axis, extent), loops))
    full_tables = [n.table(n.offsets) for n in nests]
    total = math.prod(int(t[0]) for t in full_tables)
    free = 1  # product of the bounds of the loops outside i that no axis sees
    for i, lp in enumerate(outer):
        mult = free * (1 if i in owned else lp.bound - 1)
        new, kept = mult, mult
        for nest, table in zip(nests, full_tables, strict=True):
            bases = nest.new_bases(i)
            n_new = int(table[bases].sum())
            delta = nest.delta(i)
            n_kept = (
                n_new
                if delta == 0
                else int(nest.table(_shift_overlap(nest.offsets, delta))[bases].sum())
            )
            new *= n_new
            kept *= n_kept
        total += new - kept
        if i not in owned:
            free *= lp.bound
    return total


# --------------------------------------------------------------------------- public entry point


def analyze(problem: ConvProblem, levels: Sequence[LevelLoops]) -> NestCounts:
    """Exact reads / fills / updates per level and tensor for a temporal mapping (module docstring)."""
    levels = tuple(levels)
    validate_mapping(problem, levels)
    nest = _flatten(levels)
    axes = _tensor_axes(problem)
    macs, touched = problem.real_macs, problem.outputs_touched

    fills: list[dict[str, int]] = []
    drains: list[int] = []
    for li in range(len(levels) - 1):
        outer = [lp for lp in nest if lp.level > li]
        extent = dict.fromkeys(DIMS, 1)
        for lp in nest:
            if lp.level <= li:
                extent[lp.dim] *= lp.bound
        fills.append({t: _tile_changes(axes[t], outer, extent) for t in ("weights", "inputs")})
        drains.append(_tile_changes(axes["outputs"], outer, extent))

    accesses: dict[str, dict[str, TensorAccess]] = {}
    for li, level in enumerate(levels):
        top = li == len(levels) - 1
        if li == 0:
            w_reads = i_reads = o_updates = macs
            o_reads = macs - touched
        else:
            w_reads, i_reads = fills[li - 1]["weights"], fills[li - 1]["inputs"]
            o_updates, o_reads = drains[li - 1], drains[li - 1] - touched
        accesses[level.name] = {
            "weights": TensorAccess(w_reads, 0 if top else fills[li]["weights"], 0),
            "inputs": TensorAccess(i_reads, 0 if top else fills[li]["inputs"], 0),
            "outputs": TensorAccess(o_reads, 0 if top else drains[li] - touched, o_updates),
        }
    return NestCounts(tuple(lv.name for lv in levels), accesses, macs)
