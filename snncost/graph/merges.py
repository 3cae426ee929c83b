"""What each :class:`~snncost.graph.nodes.MergeNode` op does: one rule table.

Values flowing along a LayerGraph's edges are of three kinds:

- ``analog``: the direct-coded input (the same at every step);
- ``events``: spike maps; integers (0/1 spikes, -1/0/1 Poisson input, or
  spike counts after a SEW ADD of spike maps);
- ``current``: float32 per step (a weight layer's output, a membrane or
  pre-activation shortcut).

A rule says which kinds an op accepts, which kind it produces, and the
element-wise function. The functions use only ``+``, ``*`` and a given
``concat``, so numpy (the replay) and torch (the reference executor,
:mod:`snncost.graph.executor`) apply the very same float32 operations in
the very same order: ``add`` sums left to right in ``inputs`` order.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("analog", "events", "current")


def promoted_kind(kinds: Sequence[str]) -> str:
    """``add``/``concat``: spikes with spikes stay events, the analog input with itself stays
    analog; anything mixed (or any current) is a current (spikes enter as their values)."""
    unique = set(kinds)
    return unique.pop() if len(unique) == 1 else "current"


@dataclass(frozen=True)
class MergeRule:
    """``kinds``: accepted input kinds; ``binary``: inputs must be 0/1 spikes; ``arity``:
    the number of inputs (None: two or more); ``out_kind``: input kinds -> output kind;
    ``apply(xs, concat)``: the element-wise function (``concat`` joins along channels);
    ``elementwise``: whether each output element costs one operation (``concat`` is free)."""

    kinds: frozenset[str]
    binary: bool
    arity: int | None
    out_kind: Callable[[Sequence[str]], str]
    apply: Callable[[Sequence[Any], Callable[[Sequence[Any]], Any]], Any]
    elementwise: bool = True


MERGE_RULES: dict[str, MergeRule] = {
    "add": MergeRule(
        frozenset(KINDS), False, None, promoted_kind, lambda xs, cat: functools.reduce(operator.add, xs)
    ),
    "and": MergeRule(frozenset({"events"}), True, 2, lambda k: "events", lambda xs, cat: xs[0] * xs[1]),
    "iand": MergeRule(frozenset({"events"}), True, 2, lambda k: "events", lambda xs, cat: (1 - xs[0]) * xs[1]),
    "concat": MergeRule(frozenset(KINDS), False, None, promoted_kind, lambda xs, cat: cat(xs), elementwise=False),
}


def merge_rule(node: Any) -> MergeRule:
    """The rule of a :class:`MergeNode`, checking its op and its number of inputs."""
    rule = MERGE_RULES.get(node.op)
    if rule is None:
        raise ValueError(f"{node.name}: unknown merge op {node.op!r}; choose one of {', '.join(MERGE_RULES)}")
    n = len(node.inputs)
    if (rule.arity is not None and n != rule.arity) or n < 2:
        want = rule.arity if rule.arity is not None else "two or more"
        raise ValueError(f"{node.name}: merge {node.op!r} takes {want} inputs, got {n} ({', '.join(node.inputs)})")
    return rule


__all__ = ["KINDS", "MERGE_RULES", "MergeRule", "merge_rule", "promoted_kind"]
