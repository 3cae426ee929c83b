"""One SNN, one replay, priced on several hardware profiles: :class:`ProfileComparison`.

Built by :func:`snncost.compare_profiles`; renders with the same table
helpers as :class:`~snncost.report.CostReport` (:mod:`snncost.report.formatting`).
"""

from __future__ import annotations

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

__all__ = ["ProfileComparison", "ProfileRow", "profile_row"]


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


class ProfileComparison(BaseModel):
    """One SNN, one replay, priced on several hardware profiles."""

    model_config = ConfigDict(extra="forbid")

    model: str
    timesteps: int
    batch_size: int
    data: str
    synthetic_data: bool
    accuracy: float | None
    rows: list[ProfileRow]
    reports: list[CostReport]

    def report(self, profile: str) -> CostReport:
        """The full :class:`CostReport` of one profile."""
        for r in self.reports:
            if r.profile == profile:
                return r
        raise KeyError(
            f"no report for profile {profile!r}; have {[r.profile for r in self.reports]}"
        )

    def _synthetic_tag(self) -> str:
        return ", synthetic" if self.synthetic_data and "synthetic" not in self.data.lower() else ""

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = [
            "Profile",
            "Dataflow",
            "SNN synaptic",
            "SNN compute",
            "SNN total",
            "ANN total",
            "ANN/SNN compute",
            "ANN/SNN total",
            "SNN latency",
            "ANN latency",
        ]
        rows = [
            [
                r.profile,
                r.dataflow,
                fmt_energy(r.snn_synaptic_pj),
                fmt_energy(r.snn_compute_pj),
                fmt_energy(r.snn_total_pj),
                fmt_energy(r.ann_total_pj)
                + ("" if r.ann_profile == r.profile else f" ({r.ann_profile})"),
                fmt_ratio(r.ratio_compute),
                fmt_ratio(r.ratio_total),
                fmt_time(r.snn_latency_s),
                fmt_time(r.ann_latency_s),
            ]
            for r in self.rows
        ]
        return header, rows

    def to_markdown(self) -> str:
        """One Markdown table: a row per profile, energies per inference."""
        header, rows = self._cells()
        lines = [
            f"# {self.model}: energy and latency per inference across hardware profiles",
            "",
            f"- Timesteps: {self.timesteps}; inputs evaluated: {self.batch_size} "
            f"({self.data}{self._synthetic_tag()})",
        ]
        if self.accuracy is not None:
            lines.append(f"- SNN accuracy (replay): {100 * self.accuracy:.2f} %")
        lines += ["", md_table(header, rows)]
        notes = []
        for rep in self.reports:
            notes += [f"{rep.profile}: {n}" for n in rep.notes]
        if notes:
            lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
        return "\n".join(lines) + "\n"

    def to_latex(self, caption: str | None = None, label: str | None = "tab:snn-profiles") -> str:
        """A booktabs table, one row per profile (energies in one unit, latency in µs)."""
        unit, scale = energy_unit(
            max([r.snn_total_pj for r in self.rows] + [r.ann_total_pj for r in self.rows] + [1.0])
        )
        tex_unit = r"$\mu$J" if unit == "µJ" else unit
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\begin{tabular}{lrrrrrrr}",
            r"\toprule",
            f"Profile & SNN $E_\\mathrm{{syn}}$ ({tex_unit}) & SNN $E_\\mathrm{{comp}}$ ({tex_unit}) & "
            f"SNN $E_\\mathrm{{total}}$ ({tex_unit}) & ANN $E_\\mathrm{{total}}$ ({tex_unit}) & "
            r"ANN/SNN & SNN latency ($\mu$s) & ANN latency ($\mu$s) \\",
            r"\midrule",
        ]
        for r in self.rows:
            lines.append(
                " & ".join(
                    [
                        latex_escape(r.profile),
                        num(r.snn_synaptic_pj / scale),
                        num(r.snn_compute_pj / scale),
                        num(r.snn_total_pj / scale),
                        num(r.ann_total_pj / scale),
                        latex_ratio(r.ratio_total),
                        num(r.snn_latency_s * 1e6),
                        num(r.ann_latency_s * 1e6),
                    ]
                )
                + r" \\"
            )
        lines += [r"\bottomrule", r"\end{tabular}"]
        if caption is None:
            tex_caption = (
                f"Energy and latency per inference of {latex_escape(self.model)} "
                f"($T={self.timesteps}$, {self.batch_size} inputs) on each hardware profile; "
                "ANN/SNN is the ratio of total energies."
            )
        else:
            tex_caption = latex_escape(caption)
        return latex_close_table(lines, tex_caption, label)

    def to_csv(self) -> str:
        """One CSV line per profile with the :class:`ProfileRow` fields (pJ, seconds)."""
        fields = list(ProfileRow.model_fields)
        return csv_text(fields, [[getattr(r, f) for f in fields] for r in self.rows])

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def summary(self) -> str:
        header, rows = self._cells()
        return (
            f"{self.model}, T={self.timesteps}, {self.batch_size} inputs\n"
            + text_table(header, rows)
            + "\n"
        )

    def __str__(self) -> str:
        return self.summary()


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
