"""Pure text formatting for cost reports: units, numbers and tables.

Shared by :mod:`snncost.report.cost_report`, :mod:`snncost.report.plots`,
:mod:`snncost.evaluate` and the CLI. Kept apart from :class:`CostReport` so
that modules which only format numbers do not import the report (and so that
``plots`` and ``cost_report`` do not import each other). Energies are in pJ,
times in seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ENERGY_UNITS",
    "csv_text",
    "energy_unit",
    "fmt_count",
    "fmt_energy",
    "fmt_rate",
    "fmt_ratio",
    "fmt_time",
    "latex_close_table",
    "latex_escape",
    "latex_ratio",
    "md_table",
    "num",
    "ratio",
    "text_table",
]

#: ``(unit, pJ per unit)``, smallest first.
ENERGY_UNITS = (("pJ", 1.0), ("nJ", 1e3), ("µJ", 1e6), ("mJ", 1e9), ("J", 1e12))
_TIME_UNITS = (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0))
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``_ & % $ # { } ~ ^ \\``) in ``text``."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_close_table(lines: list[str], tex_caption: str, label: str | None) -> str:
    """Append caption, label and ``\\end{table}`` to a booktabs table's lines; the whole text."""
    lines.append(r"\caption{" + tex_caption + "}")
    if label:
        lines.append(r"\label{" + latex_escape(label) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def energy_unit(pj: float) -> tuple[str, float]:
    """``(unit, scale)`` that shows ``pj`` picojoules as a number between 1 and 1000."""
    unit, scale = ENERGY_UNITS[0]
    for u, s in ENERGY_UNITS:
        if abs(pj) >= s:
            unit, scale = u, s
    return unit, scale


def fmt_energy(pj: float | None, unit: tuple[str, float] | None = None) -> str:
    """``pj`` picojoules as e.g. ``"12.35 nJ"`` (or in the given ``(unit, scale)``)."""
    if pj is None:
        return "-"
    u, s = unit or energy_unit(pj)
    return f"{num(pj / s)} {u}" if unit is None else num(pj / s)


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    unit, scale = _TIME_UNITS[0]
    for u, s in _TIME_UNITS:
        if abs(seconds) >= s:
            unit, scale = u, s
    return f"{num(seconds / scale)} {unit}"


def num(x: float) -> str:
    """4 significant digits, no exponent for ordinary magnitudes."""
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.4g}"


def fmt_count(x: float | int | None) -> str:
    """A count with an SI suffix: 950, 12.3k, 4.56M, 7.89G."""
    if x is None:
        return "-"
    x = float(x)
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    if x == int(x):
        return str(int(x))
    return f"{x:.3g}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}x"


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; None when the denominator is not positive."""
    if denominator is None or numerator is None or not denominator > 0:
        return None
    return float(numerator) / float(denominator)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for j, row in enumerate([header, *rows]):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def latex_ratio(x: float | None) -> str:
    """A ratio for a LaTeX cell, e.g. ``12.3$\\times$`` (``--`` when None)."""
    return "--" if x is None else f"{x:.3g}$\\times$"
