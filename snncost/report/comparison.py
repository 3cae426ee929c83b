"""One replay priced several ways, one table: :class:`ProfileComparison` and :class:`CostModelComparison`.

Both share one renderer (:class:`Comparison`): a row per profile or per cost
model, rendered to Markdown, LaTeX (booktabs), CSV, JSON and a terminal
summary with the table helpers of :mod:`snncost.report.formatting`, the
same ones :class:`~snncost.report.CostReport` uses.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from snncost.report.cost_report import CostReport
from snncost.report.formatting import (
    csv_text,
    energy_unit,
    fmt_energy,
    fmt_ratio,
    fmt_time,
    latex_close_table,
    latex_escape,
    latex_ratio,
    md_table,
    num,
    text_table,
)

__all__ = [
    "Comparison",
    "CostModelComparison",
    "CostModelRow",
    "ProfileComparison",
    "ProfileRow",
    "cost_model_row",
    "profile_row",
]


class Comparison(BaseModel):
    """Shared metadata and rendering of a one-row-per-X comparison of the same replay."""

    model_config = ConfigDict(extra="forbid")

    model: str
    timesteps: int
    batch_size: int
    data: str
    synthetic_data: bool
    accuracy: float | None
    reports: list[CostReport]

    #: subclass hooks: what one row stands for, the title's last words, the LaTeX label
    row_kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    latex_label: ClassVar[str] = ""

    def _synthetic_tag(self) -> str:
        return ", synthetic" if self.synthetic_data and "synthetic" not in self.data.lower() else ""

    def _cells(self) -> tuple[list[str], list[list[str]]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _latex(self) -> tuple[str, list[str], list[list[str]], str]:  # pragma: no cover - abstract
        """``(column spec, header cells, row cells, default caption)`` of the LaTeX table."""
        raise NotImplementedError

    def _note_lines(self) -> list[str]:
        return []

    def _rows(self) -> list[BaseModel]:
        return list(self.rows)

    def to_markdown(self) -> str:
        """One Markdown table, energies per inference."""
        header, rows = self._cells()
        lines = [
            f"# {self.model}: {self.title}",
            "",
            f"- Timesteps: {self.timesteps}; inputs evaluated: {self.batch_size} "
            f"({self.data}{self._synthetic_tag()})",
        ]
        if self.accuracy is not None:
            lines.append(f"- SNN accuracy (replay): {100 * self.accuracy:.2f} %")
        lines += ["", md_table(header, rows)]
        notes = self._note_lines()
        if notes:
            lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
        return "\n".join(lines) + "\n"

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        """A booktabs ``table`` (needs ``\\usepackage{booktabs}``), one row per entry."""
        spec, header, rows, default_caption = self._latex()
        lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + spec + "}",
                 r"\toprule", " & ".join(header) + r" \\", r"\midrule"]  # fmt: skip
        lines += [" & ".join(cells) + r" \\" for cells in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        tex_caption = default_caption if caption is None else latex_escape(caption)
        return latex_close_table(lines, tex_caption, label if label is not None else self.latex_label)

    def to_csv(self) -> str:
        """One CSV line per row with the row's fields (pJ, seconds)."""
        rows = self._rows()
        fields = list(type(rows[0]).model_fields) if rows else []
        return csv_text(fields, [[getattr(r, f) for f in fields] for r in rows])

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def summary(self) -> str:
        header, rows = self._cells()
        return f"{self.model}, T={self.timesteps}, {self.batch_size} inputs\n" + text_table(header, rows) + "\n"

    def __str__(self) -> str:
        return self.summary()


def _tex_unit(pj_values: list[float]) -> tuple[str, float]:
    unit, scale = energy_unit(max([*pj_values, 1.0]))
    return (r"$\mu$J" if unit == "µJ" else unit), scale


# ---------------------------------------------------------------------- profiles
class ProfileRow(BaseModel):
    """One profile's headline numbers, per inference (energies in pJ, latency in s)."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    description: str
    dataflow: str
    ann_profile: str
    snn_synaptic_pj: float
    snn_compute_pj: float
    snn_memory_pj: float
    snn_total_pj: float
    ann_compute_pj: float
    ann_total_pj: float
    ratio_compute: float | None
    ratio_total: float | None
    snn_latency_s: float
    ann_latency_s: float


class ProfileComparison(Comparison):
    """One SNN, one replay, priced on several hardware profiles."""

    rows: list[ProfileRow]
    row_kind: ClassVar[str] = "profile"
    title: ClassVar[str] = "energy and latency per inference across hardware profiles"
    latex_label: ClassVar[str] = "tab:snn-profiles"

    def report(self, profile: str) -> CostReport:
        """The full :class:`CostReport` of one profile."""
        for r in self.reports:
            if r.profile == profile:
                return r
        raise KeyError(f"no report for profile {profile!r}; have {[r.profile for r in self.reports]}")

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["Profile", "Dataflow", "SNN synaptic", "SNN compute", "SNN total", "ANN total",
                  "ANN/SNN compute", "ANN/SNN total", "SNN latency", "ANN latency"]  # fmt: skip
        rows = [
            [
                r.profile,
                r.dataflow,
                fmt_energy(r.snn_synaptic_pj),
                fmt_energy(r.snn_compute_pj),
                fmt_energy(r.snn_total_pj),
                fmt_energy(r.ann_total_pj) + ("" if r.ann_profile == r.profile else f" ({r.ann_profile})"),
                fmt_ratio(r.ratio_compute),
                fmt_ratio(r.ratio_total),
                fmt_time(r.snn_latency_s),
                fmt_time(r.ann_latency_s),
            ]
            for r in self.rows
        ]
        return header, rows

    def _note_lines(self) -> list[str]:
        return [f"{rep.profile}: {n}" for rep in self.reports for n in rep.notes]

    def _latex(self) -> tuple[str, list[str], list[list[str]], str]:
        unit, scale = _tex_unit([r.snn_total_pj for r in self.rows] + [r.ann_total_pj for r in self.rows])
        header = ["Profile", f"SNN $E_\\mathrm{{syn}}$ ({unit})", f"SNN $E_\\mathrm{{comp}}$ ({unit})",
                  f"SNN $E_\\mathrm{{total}}$ ({unit})", f"ANN $E_\\mathrm{{total}}$ ({unit})", "ANN/SNN",
                  r"SNN latency ($\mu$s)", r"ANN latency ($\mu$s)"]  # fmt: skip
        rows = [
            [latex_escape(r.profile), num(r.snn_synaptic_pj / scale), num(r.snn_compute_pj / scale),
             num(r.snn_total_pj / scale), num(r.ann_total_pj / scale), latex_ratio(r.ratio_total),
             num(r.snn_latency_s * 1e6), num(r.ann_latency_s * 1e6)]  # fmt: skip
            for r in self.rows
        ]
        caption = (
            f"Energy and latency per inference of {latex_escape(self.model)} "
            f"($T={self.timesteps}$, {self.batch_size} inputs) on each hardware profile; "
            "ANN/SNN is the ratio of total energies."
        )
        return "lrrrrrrr", header, rows, caption


def profile_row(r: CostReport) -> ProfileRow:
    """The headline numbers of one profile's report."""
    return ProfileRow(
        profile=r.profile,
        description=r.profile_description,
        dataflow=r.dataflow,
        ann_profile=r.ann_profile,
        snn_synaptic_pj=r.snn_total.energy_synaptic_pj,
        snn_compute_pj=r.snn_total.energy_compute_pj,
        snn_memory_pj=r.snn_total.energy_memory_pj,
        snn_total_pj=r.snn_total.energy_total_pj,
        ann_compute_pj=r.ann_total.energy_compute_pj,
        ann_total_pj=r.ann_total.energy_total_pj,
        ratio_compute=r.ratios.compute_energy,
        ratio_total=r.ratios.total_energy,
        snn_latency_s=r.snn_total.latency_s,
        ann_latency_s=r.ann_total.latency_s,
    )


# ---------------------------------------------------------------------- cost models
class CostModelRow(BaseModel):
    """One cost model's (convention's) headline numbers, per inference (pJ)."""

    model_config = ConfigDict(extra="forbid")

    cost_model: str
    setting: str  # the convention's parameters in words (device, precision, crossbar...)
    source: str
    snn_compute_pj: float
    snn_memory_pj: float  # data movement (and addressing, where the convention counts it)
    snn_total_pj: float
    ann_total_pj: float | None  # None: the convention has no model of an ANN
    ratio_total: float | None
    spikes_per_synapse: float | None
    break_even_spikes_per_synapse: float | None


class CostModelComparison(Comparison):
    """One SNN, one replay, priced under several published energy conventions."""

    profile: str
    rows: list[CostModelRow]
    row_kind: ClassVar[str] = "cost model"
    title: ClassVar[str] = "energy per inference under each published convention"
    latex_label: ClassVar[str] = "tab:snn-cost-models"

    def report(self, cost_model: str) -> CostReport:
        """The full :class:`CostReport` of one cost model."""
        for row, rep in zip(self.rows, self.reports, strict=True):
            if row.cost_model == cost_model:
                return rep
        raise KeyError(f"no report for cost model {cost_model!r}; have {[r.cost_model for r in self.rows]}")

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["Cost model", "Setting", "SNN compute", "SNN memory", "SNN total", "ANN total",
                  "ANN/SNN total", "Spikes / synapse", "Break-even"]  # fmt: skip

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3g}"

        rows = [
            [r.cost_model, r.setting, fmt_energy(r.snn_compute_pj), fmt_energy(r.snn_memory_pj), fmt_energy(r.snn_total_pj),
             fmt_energy(r.ann_total_pj), fmt_ratio(r.ratio_total), f(r.spikes_per_synapse),
             f(r.break_even_spikes_per_synapse)]  # fmt: skip
            for r in self.rows
        ]
        return header, rows

    def _note_lines(self) -> list[str]:
        lines = [f"{r.cost_model}: {r.source}" for r in self.rows]
        for row, rep in zip(self.rows, self.reports, strict=True):
            lines += [f"{row.cost_model}: {n}" for n in rep.notes]
        return lines

    def _latex(self) -> tuple[str, list[str], list[list[str]], str]:
        values = [r.snn_total_pj for r in self.rows] + [r.ann_total_pj or 0.0 for r in self.rows]
        unit, scale = _tex_unit(values)
        header = ["Cost model", f"SNN $E_\\mathrm{{comp}}$ ({unit})", f"SNN $E_\\mathrm{{mem}}$ ({unit})",
                  f"SNN $E_\\mathrm{{total}}$ ({unit})", f"ANN $E_\\mathrm{{total}}$ ({unit})", "ANN/SNN"]  # fmt: skip
        rows = [
            [latex_escape(r.cost_model), num(r.snn_compute_pj / scale), num(r.snn_memory_pj / scale),
             num(r.snn_total_pj / scale), "--" if r.ann_total_pj is None else num(r.ann_total_pj / scale),
             latex_ratio(r.ratio_total)]  # fmt: skip
            for r in self.rows
        ]
        caption = (
            f"Energy per inference of {latex_escape(self.model)} ($T={self.timesteps}$, {self.batch_size} "
            f"inputs, profile {latex_escape(self.profile)}) under each published convention, from one replay; "
            "ANN/SNN is the ratio of total energies."
        )
        return "lrrrrr", header, rows, caption


def cost_model_row(name: str, setting: str, source: str, r: CostReport) -> CostModelRow:
    """The headline numbers of one cost model's report."""
    be = r.break_even.network if r.break_even is not None else None
    has_ann = bool(r.ann)
    return CostModelRow(
        cost_model=name,
        setting=setting,
        source=source,
        snn_compute_pj=r.snn_total.energy_compute_pj,
        snn_memory_pj=r.snn_total.energy_memory_pj,
        snn_total_pj=r.snn_total.energy_total_pj,
        ann_total_pj=r.ann_total.energy_total_pj if has_ann else None,
        ratio_total=r.ratios.total_energy if has_ann else None,
        spikes_per_synapse=be.spikes_per_synapse if be else None,
        break_even_spikes_per_synapse=be.break_even_spikes_per_synapse if be else None,
    )
