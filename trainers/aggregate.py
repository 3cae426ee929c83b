"""Several seeds' results as one: every number becomes its mean, sample standard deviation and n.

The per-seed ``results.json`` files of a multi-seed run (:mod:`trainers.seeds`)
share one shape. :func:`aggregate` walks them together and keeps that shape,
with each numeric leaf replaced by a *stat* ``{"mean", "std", "n"}``
(``std`` with ddof=1, None when n < 2; ``n`` counts the seeds that have the
value, so a temporal step that only some seeds reached says so). Rows of a
list are matched by what identifies them (:data:`ROW_KEYS`: a variant by its
stage, a temporal step by its T, a sweep row by its number format and bits),
not by position. Text that differs between seeds is joined with `` / ``.

Everything derived from several numbers at once (the paper's claims at
matched accuracy, the accuracy gap to the ANN) is recomputed from the means
by the caller: a mean of ratios of best variants would mix variants.
"""

from __future__ import annotations

import math
from typing import Any

#: how rows of a list are matched across seeds: the first key set every row of every seed has
ROW_KEYS: tuple[tuple[str, ...], ...] = (("stage",), ("number_format", "bits"), ("timesteps",), ("name",))

STAT_KEYS = frozenset({"mean", "std", "n"})


def is_stat(value: Any) -> bool:
    """True for an aggregated number ``{"mean", "std", "n"}``."""
    return isinstance(value, dict) and set(value) == STAT_KEYS


def mean_of(value: Any) -> Any:
    """The mean of a stat; any other value as it is (so code reads single-seed and aggregate results alike)."""
    return value["mean"] if is_stat(value) else value


def stat(values: list[float]) -> dict:
    """``{"mean", "std" (sample, ddof=1; None for one value), "n"}`` of ``values`` (at least one)."""
    if not values:
        raise ValueError("stat: no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        std = None
    elif min(values) == max(values):
        std, mean = 0.0, float(values[0])  # exactly, not up to the rounding of the sum
    else:
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "std": std, "n": n}


def means(tree: Any) -> Any:
    """``tree`` with every stat replaced by its mean."""
    if is_stat(tree):
        return tree["mean"]
    if isinstance(tree, dict):
        return {k: means(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [means(v) for v in tree]
    return tree


def aggregate(trees: list[Any], where: str = "results") -> Any:
    """One tree of the shape of ``trees`` (one per seed) with every number aggregated (see the module doc).

    ``where`` names the position in error messages: seeds whose results have
    a different shape at a place (a number in one, a table in another) are
    refused naming it.
    """
    present = [t for t in trees if t is not None]
    if not present:
        return None
    if all(_is_number(t) for t in present):
        return stat([float(t) for t in present])
    if all(isinstance(t, str) for t in present):
        return " / ".join(dict.fromkeys(present))
    if all(isinstance(t, dict) for t in present):
        keys = list(dict.fromkeys(k for t in present for k in t))
        return {k: aggregate([t.get(k) for t in present], f"{where}.{k}") for k in keys}
    if all(isinstance(t, list) for t in present):
        return _aggregate_lists(present, where)
    kinds = sorted({type(t).__name__ for t in present})
    raise ValueError(f"the seeds' results differ in kind at {where} ({', '.join(kinds)}): not one pipeline's results")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # a bool is an int: a flag aggregates to the fraction of seeds


def _aggregate_lists(lists: list[list], where: str) -> list:
    rows = [row for lst in lists for row in lst]
    if rows and all(isinstance(r, dict) for r in rows):
        key = next((k for k in ROW_KEYS if all(all(f in r for f in k) for r in rows)), None)
        if key is not None:
            ids = list(dict.fromkeys(tuple(r[f] for f in key) for r in rows))
            return [
                aggregate([_row(lst, key, i) for lst in lists], f"{where}[{'/'.join(map(str, i))}]") for i in ids
            ]
    width = max(len(lst) for lst in lists)
    return [aggregate([lst[i] if i < len(lst) else None for lst in lists], f"{where}[{i}]") for i in range(width)]


def _row(rows: list[dict], key: tuple[str, ...], ident: tuple) -> dict | None:
    return next((r for r in rows if tuple(r[f] for f in key) == ident), None)
