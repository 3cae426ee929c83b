"""The :class:`CostReport`: per-layer and total cost of an SNN and its ANN baseline.

A report is a pydantic model, so it serialises to JSON and back
(``CostReport.model_validate_json(report.to_json())``); it renders to
Markdown, LaTeX (booktabs), CSV and a short terminal summary, and draws a
figure (:meth:`CostReport.plot`). Every count and energy is **per
inference**; energies are stored in pJ and rendered in a unit chosen from
their magnitude.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from snncost.report.costing import CostedRun, LayerRow, Totals

__all__ = ["CostReport", "Ratios", "latex_escape"]


# ---------------------------------------------------------------------- formatting helpers
_ENERGY_UNITS = (("pJ", 1.0), ("nJ", 1e3), ("µJ", 1e6), ("mJ", 1e9), ("J", 1e12))
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
    unit, scale = _ENERGY_UNITS[0]
    for u, s in _ENERGY_UNITS:
        if abs(pj) >= s:
            unit, scale = u, s
    return unit, scale


def fmt_energy(pj: float | None, unit: tuple[str, float] | None = None) -> str:
    """``pj`` picojoules as e.g. ``"12.35 nJ"`` (or in the given ``(unit, scale)``)."""
    if pj is None:
        return "-"
    u, s = unit or energy_unit(pj)
    return f"{_num(pj / s)} {u}" if unit is None else _num(pj / s)


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    unit, scale = _TIME_UNITS[0]
    for u, s in _TIME_UNITS:
        if abs(seconds) >= s:
            unit, scale = u, s
    return f"{_num(seconds / scale)} {unit}"


def _num(x: float) -> str:
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


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
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


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


# ---------------------------------------------------------------------- the report
class Ratios(BaseModel):
    """ANN / SNN ratios (None where the SNN figure is zero)."""

    model_config = ConfigDict(extra="forbid")

    synaptic_energy: float | None  # ANN MACs x E_MAC / SNN (ACs x E_AC + MACs x E_MAC)
    compute_energy: float | None  # compute = synaptic + neuron updates + routing
    memory_energy: float | None
    total_energy: float | None
    ops: float | None  # ANN MACs / SNN (ACs + MACs)
    memory_bits: float | None
    latency: float | None  # ANN latency / SNN latency (< 1: the SNN is slower)

    @classmethod
    def between(cls, snn: Totals, ann: Totals) -> Ratios:
        return cls(
            synaptic_energy=ratio(ann.energy_synaptic_pj, snn.energy_synaptic_pj),
            compute_energy=ratio(ann.energy_compute_pj, snn.energy_compute_pj),
            memory_energy=ratio(ann.energy_memory_pj, snn.energy_memory_pj),
            total_energy=ratio(ann.energy_total_pj, snn.energy_total_pj),
            ops=ratio(ann.macs + ann.synaptic_ops, snn.synaptic_ops + snn.macs),
            memory_bits=ratio(ann.memory_bits, snn.memory_bits),
            latency=ratio(ann.latency_s, snn.latency_s),
        )


class CostReport(BaseModel):
    """Cost of one SNN and its ANN baseline on one hardware profile, per inference.

    ``snn``/``ann`` hold one :class:`~snncost.report.costing.LayerRow` per
    weight layer; ``snn_total``/``ann_total`` are their sums (plus latency);
    ``ratios`` are ANN / SNN. Energies in pJ, latency in seconds.
    """

    model_config = ConfigDict(extra="forbid")

    snncost_version: str = ""
    model: str
    profile: str
    profile_description: str = ""
    ann_profile: str  # where the ANN baseline was costed (the profile, or its fallback)
    baseline: str = "equivalent ANN (same graph, ReLU)"
    timesteps: int
    batch_size: int  # inputs evaluated
    data: str
    synthetic_data: bool = False
    accuracy: float | None = None  # SNN accuracy from the replay's logits, when labels given
    ann_accuracy: float | None = None  # baseline ANN accuracy (PyTorch), when computed
    snn: list[LayerRow]
    ann: list[LayerRow]
    snn_total: Totals
    ann_total: Totals
    ratios: Ratios
    spike_mismatches: int | None = None
    spikes_compared: int | None = None
    notes: list[str] = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_runs(cls, snn: CostedRun, ann: CostedRun, **fields: Any) -> CostReport:
        """Assemble a report from two costed runs; ``fields`` fill the metadata."""
        from snncost import __version__

        notes = list(fields.pop("notes", []))
        for n in [*snn.notes, *(f"ANN: {x}" for x in ann.notes)]:
            if n not in notes:
                notes.append(n)
        return cls(
            snncost_version=__version__,
            profile=snn.profile,
            ann_profile=ann.profile,
            timesteps=snn.timesteps,
            snn=snn.rows,
            ann=ann.rows,
            snn_total=snn.total,
            ann_total=ann.total,
            ratios=Ratios.between(snn.total, ann.total),
            notes=notes,
            **fields,
        )

    # ------------------------------------------------------------------ helpers
    def _unit(self) -> tuple[str, float]:
        return energy_unit(max(self.snn_total.energy_total_pj, self.ann_total.energy_total_pj))

    def paired_rows(self) -> list[tuple[LayerRow | None, LayerRow | None]]:
        """SNN and ANN rows side by side: matched by layer name, else by position."""
        ann_by_name = {r.name: r for r in self.ann}
        if all(r.name in ann_by_name for r in self.snn):
            pairs = [(r, ann_by_name[r.name]) for r in self.snn]
            used = {r.name for r in self.snn}
            return pairs + [(None, r) for r in self.ann if r.name not in used]
        if len(self.snn) == len(self.ann):
            return list(zip(self.snn, self.ann, strict=True))
        n = max(len(self.snn), len(self.ann))
        return [
            (self.snn[i] if i < len(self.snn) else None, self.ann[i] if i < len(self.ann) else None)
            for i in range(n)
        ]

    def _synthetic_tag(self) -> str:
        return ", synthetic" if self.synthetic_data and "synthetic" not in self.data.lower() else ""

    def _header_lines(self) -> list[str]:
        lines = [
            f"- Profile: **{self.profile}**"
            + (f" ({self.profile_description.strip()})" if self.profile_description else ""),
            f"- Timesteps: {self.timesteps}; inputs evaluated: {self.batch_size} "
            f"({self.data}{self._synthetic_tag()})",
            f"- Baseline: {self.baseline}"
            + (f", costed on {self.ann_profile}" if self.ann_profile != self.profile else ""),
        ]
        if self.accuracy is not None:
            lines.append(f"- SNN accuracy (replay): {100 * self.accuracy:.2f} %")
        if self.ann_accuracy is not None:
            lines.append(f"- ANN accuracy: {100 * self.ann_accuracy:.2f} %")
        if self.spikes_compared is not None:
            lines.append(
                f"- Replay vs PyTorch: {self.spike_mismatches} spike mismatches "
                f"in {self.spikes_compared} spikes compared"
            )
        return lines

    def _totals_rows(self) -> list[list[str]]:
        s, a, r = self.snn_total, self.ann_total, self.ratios
        return [
            [
                "Synaptic compute (ACs x E_AC + MACs x E_MAC)",
                fmt_energy(s.energy_synaptic_pj),
                fmt_energy(a.energy_synaptic_pj),
                fmt_ratio(r.synaptic_energy),
            ],
            [
                "Compute energy (+ neuron updates, routing)",
                fmt_energy(s.energy_compute_pj),
                fmt_energy(a.energy_compute_pj),
                fmt_ratio(r.compute_energy),
            ],
            [
                "Memory energy",
                fmt_energy(s.energy_memory_pj),
                fmt_energy(a.energy_memory_pj),
                fmt_ratio(r.memory_energy),
            ],
            [
                "Total energy",
                fmt_energy(s.energy_total_pj),
                fmt_energy(a.energy_total_pj),
                fmt_ratio(r.total_energy),
            ],
            [
                "Operations (ACs + MACs)",
                f"{fmt_count(s.synaptic_ops)} AC + {fmt_count(s.macs)} MAC",
                f"{fmt_count(a.macs + a.synaptic_ops)} MAC",
                fmt_ratio(r.ops),
            ],
            [
                "Memory traffic (bits)",
                fmt_count(s.memory_bits),
                fmt_count(a.memory_bits),
                fmt_ratio(r.memory_bits),
            ],
            [
                "Latency",
                f"{fmt_time(s.latency_s)} ({s.timesteps} steps)",
                fmt_time(a.latency_s),
                fmt_ratio(r.latency),
            ],
        ]

    # ------------------------------------------------------------------ renderers
    def to_markdown(self) -> str:
        """A Markdown document: metadata, SNN and ANN per-layer tables, totals and ratios."""
        unit, scale = self._unit()

        def e(x: float) -> str:
            return fmt_energy(x, (unit, scale))

        snn_header = [
            "Layer",
            "Kind",
            "Neurons",
            "Input events",
            "Spikes",
            "Spike rate",
            "ACs",
            "MACs",
            "Neuron updates",
            "Memory bits",
            f"E synaptic ({unit})",
            f"E compute ({unit})",
            f"E memory ({unit})",
            f"E total ({unit})",
            "Latency share",
        ]

        def snn_cells(name: str, r: LayerRow | Totals, kind: str) -> list[str]:
            return [
                name,
                kind,
                fmt_count(r.neurons),
                fmt_count(r.input_events),
                fmt_count(r.spikes),
                fmt_rate(r.spike_rate),
                fmt_count(r.synaptic_ops),
                fmt_count(r.macs),
                fmt_count(r.neuron_updates),
                fmt_count(r.memory_bits),
                e(r.energy_synaptic_pj),
                e(r.energy_compute_pj),
                e(r.energy_memory_pj),
                e(r.energy_total_pj),
                f"{100 * r.latency_share:.1f} %" if isinstance(r, LayerRow) else "100 %",
            ]

        snn_rows = [snn_cells(f"`{r.name}`", r, f"{r.kind}/{r.neuron}") for r in self.snn]
        snn_rows.append(snn_cells("**Total**", self.snn_total, ""))

        ann_header = [
            "Layer",
            "Kind",
            "Neurons",
            "MACs",
            "Activations",
            "Memory bits",
            f"E compute ({unit})",
            f"E memory ({unit})",
            f"E total ({unit})",
            "Latency share",
        ]

        def ann_cells(name: str, r: LayerRow | Totals, kind: str) -> list[str]:
            return [
                name,
                kind,
                fmt_count(r.neurons),
                fmt_count(r.macs + r.synaptic_ops),
                fmt_count(r.neuron_updates),
                fmt_count(r.memory_bits),
                e(r.energy_compute_pj),
                e(r.energy_memory_pj),
                e(r.energy_total_pj),
                f"{100 * r.latency_share:.1f} %" if isinstance(r, LayerRow) else "100 %",
            ]

        ann_rows = [ann_cells(f"`{r.name}`", r, f"{r.kind}/{r.neuron}") for r in self.ann]
        ann_rows.append(ann_cells("**Total**", self.ann_total, ""))

        parts = [
            f"# Cost report: {self.model}",
            "",
            *self._header_lines(),
            "",
            f"## SNN, per inference ({self.timesteps} timesteps)",
            "",
            _md_table(snn_header, snn_rows, "ll" + "r" * (len(snn_header) - 2)),
            "",
            "## ANN baseline, per inference",
            "",
            _md_table(ann_header, ann_rows, "ll" + "r" * (len(ann_header) - 2)),
            "",
            "## Totals and ratios",
            "",
            _md_table(["", "SNN", "ANN", "ANN / SNN"], self._totals_rows()),
        ]
        if self.notes:
            parts += ["", "Notes:", "", *(f"- {n}" for n in self.notes)]
        return "\n".join(parts) + "\n"

    def to_latex(
        self,
        caption: str | None = None,
        label: str | None = "tab:snn-energy",
        energy_unit: str | None = None,
    ) -> str:
        """A booktabs ``table`` (needs ``\\usepackage{booktabs}``), ready for a paper.

        One row per layer: SNN spike rate, ACs, MACs, compute and total energy;
        ANN MACs, compute and total energy; then the totals. ``caption`` is
        escaped; by default it states the model, profile, ``T`` and the ANN/SNN
        energy ratios. ``energy_unit`` forces one of pJ, nJ, µJ, mJ, J.
        """
        if energy_unit is not None:
            units = dict(_ENERGY_UNITS)
            if energy_unit not in units:
                raise ValueError(
                    f"energy_unit must be one of {', '.join(units)}, got {energy_unit!r}"
                )
            unit, scale = energy_unit, units[energy_unit]
        else:
            unit, scale = self._unit()
        tex_unit = r"$\mu$J" if unit == "µJ" else unit

        def e(x: float | None) -> str:
            return "--" if x is None else _num(x / scale)

        def c(x: float | None) -> str:
            return "--" if x is None else latex_escape(fmt_count(x))

        def rate(x: float | None) -> str:
            return "--" if x is None else f"{x:.3f}"

        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\begin{tabular}{lrrrrrrrr}",
            r"\toprule",
            r" & \multicolumn{5}{c}{SNN (" + f"$T={self.timesteps}$" + r")}"
            r" & \multicolumn{3}{c}{ANN} \\",
            r"\cmidrule(lr){2-6} \cmidrule(lr){7-9}",
            "Layer & Spike rate & ACs & MACs & "
            f"$E_\\mathrm{{comp}}$ ({tex_unit}) & $E_\\mathrm{{total}}$ ({tex_unit}) & "
            f"MACs & $E_\\mathrm{{comp}}$ ({tex_unit}) & $E_\\mathrm{{total}}$ ({tex_unit}) \\\\",
            r"\midrule",
        ]
        for s, a in self.paired_rows():
            name = latex_escape((s or a).name)
            cells = [name]
            if s is not None:
                cells += [
                    rate(s.spike_rate),
                    c(s.synaptic_ops),
                    c(s.macs),
                    e(s.energy_compute_pj),
                    e(s.energy_total_pj),
                ]
            else:
                cells += ["--"] * 5
            if a is not None:
                cells += [c(a.macs + a.synaptic_ops), e(a.energy_compute_pj), e(a.energy_total_pj)]
            else:
                cells += ["--"] * 3
            lines.append(" & ".join(cells) + r" \\")
        st, at = self.snn_total, self.ann_total
        lines += [
            r"\midrule",
            " & ".join(
                [
                    "Total",
                    rate(st.spike_rate),
                    c(st.synaptic_ops),
                    c(st.macs),
                    e(st.energy_compute_pj),
                    e(st.energy_total_pj),
                    c(at.macs + at.synaptic_ops),
                    e(at.energy_compute_pj),
                    e(at.energy_total_pj),
                ]
            )
            + r" \\",
            r"ANN / SNN & & & & "
            + f"{_latex_ratio(self.ratios.compute_energy)} & {_latex_ratio(self.ratios.total_energy)}"
            + r" & & & \\",
            r"\bottomrule",
            r"\end{tabular}",
        ]
        if caption is None:
            tex_caption = (
                f"Energy per inference of {latex_escape(self.model)} on the "
                f"{latex_escape(self.profile)} profile ({self.timesteps} timesteps, "
                f"{self.batch_size} inputs). ANN/SNN compute energy "
                f"{_latex_ratio(self.ratios.compute_energy)}, synaptic operations only "
                r"($\mathrm{ACs}\times E_\mathrm{AC} + \mathrm{MACs}\times E_\mathrm{MAC}$) "
                f"{_latex_ratio(self.ratios.synaptic_energy)}, total with memory "
                f"{_latex_ratio(self.ratios.total_energy)}."
            )
        else:
            tex_caption = latex_escape(caption)
        return latex_close_table(lines, tex_caption, label)

    def csv_header(self) -> list[str]:
        return ["network", "row_type", *LayerRow.model_fields]

    def to_csv(self) -> str:
        """One CSV line per layer (``row_type=layer``) and per total (``row_type=total``).

        ``network`` is ``snn`` or ``ann``; columns are the :class:`LayerRow`
        fields (energies in pJ, per inference). Total rows leave per-layer
        columns (kind, bits, memory level...) empty.
        """
        fields = list(LayerRow.model_fields)
        rows: list[list[Any]] = []
        for network, layer_rows, total in (
            ("snn", self.snn, self.snn_total),
            ("ann", self.ann, self.ann_total),
        ):
            for r in layer_rows:
                rows.append([network, "layer", *(getattr(r, f) for f in fields)])
            t = total.model_dump()
            t["name"] = "total"
            t["latency_share"] = 1.0 if layer_rows else 0.0
            rows.append([network, "total", *(t.get(f) for f in fields)])
        return _csv_text(self.csv_header(), rows)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; ``CostReport.model_validate_json(text)`` gives the report back."""
        return self.model_dump_json(indent=indent)

    def summary(self) -> str:
        """A short plain-text table for terminals."""
        head = f"{self.model} on {self.profile}: T={self.timesteps}, {self.batch_size} inputs ({self.data}"
        head += self._synthetic_tag() + ")"
        if self.accuracy is not None:
            head += f", SNN accuracy {100 * self.accuracy:.2f} %"
        s, a, r = self.snn_total, self.ann_total, self.ratios
        rows = [
            [label, fmt_energy(getattr(s, part)), fmt_energy(getattr(a, part)), fmt_ratio(getattr(r, ratio))]
            for label, part, ratio in (
                ("synaptic compute", "energy_synaptic_pj", "synaptic_energy"),
                ("compute", "energy_compute_pj", "compute_energy"),
                ("memory", "energy_memory_pj", "memory_energy"),
                ("total", "energy_total_pj", "total_energy"),
            )
        ]
        rows += [
            [
                "ops",
                f"{fmt_count(s.synaptic_ops)} AC+{fmt_count(s.macs)} MAC",
                f"{fmt_count(a.macs + a.synaptic_ops)} MAC",
                fmt_ratio(r.ops),
            ],
            ["spike rate", fmt_rate(s.spike_rate), "-", ""],
            ["latency", fmt_time(s.latency_s), fmt_time(a.latency_s), fmt_ratio(r.latency)],
        ]
        text = head + "\n" + _text_table(["per inference", "SNN", "ANN", "ANN/SNN"], rows)
        if self.spikes_compared is not None:
            text += (
                f"\nreplay vs PyTorch: {self.spike_mismatches} spike mismatches"
                f" in {self.spikes_compared}"
            )
        return text + "\n"

    def plot(self, path: str | Path | None = None):
        """Figure: per-layer energy (compute vs memory, SNN vs ANN) and spikes per layer.

        Returns a :class:`matplotlib.figure.Figure` (Agg, no window); saves it
        to ``path`` when given (format from the suffix).
        """
        from snncost.report.plots import plot_report

        return plot_report(self, path)

    def __str__(self) -> str:
        return self.summary()


def _latex_ratio(x: float | None) -> str:
    return "--" if x is None else f"{x:.3g}$\\times$"
