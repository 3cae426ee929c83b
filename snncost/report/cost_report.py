"""The :class:`CostReport`: per-layer and total cost of an SNN and its ANN baseline.

A report is a pydantic model, so it serialises to JSON and back
(``CostReport.model_validate_json(report.to_json())``); it renders to
Markdown, LaTeX (booktabs), CSV and a short terminal summary, and draws a
figure (:meth:`CostReport.plot`). Every count and energy is **per
inference**; energies are stored in pJ and rendered in a unit chosen from
their magnitude.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from snncost.costmodel.breakeven import BreakEven, BreakEvenRow
from snncost.costmodel.feasibility import Feasibility
from snncost.costmodel.pricing import CostedRun, LayerRow, Totals
from snncost.report.formatting import (
    ENERGY_UNITS,
    csv_text,
    energy_unit,
    fmt_count,
    fmt_energy,
    fmt_rate,
    fmt_ratio,
    fmt_time,
    latex_close_table,
    latex_escape,
    latex_ratio,
    md_table,
    num,
    ratio,
    text_table,
)

__all__ = ["BaselineResult", "CostReport", "Ratios"]


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
    def none(cls) -> Ratios:
        """No baseline to compare with."""
        return cls(**{f: None for f in cls.model_fields})

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


class BaselineResult(BaseModel):
    """One ANN baseline's totals and its ratios to the SNN (a row of the baselines table)."""

    model_config = ConfigDict(extra="forbid")

    key: str  # "ann", "ann-fp32", "ann-zero-skipping"
    description: str
    profile: str
    dataflow: str
    total: Totals
    ratios: Ratios


class CostReport(BaseModel):
    """Cost of one SNN and its ANN baselines on one hardware profile, per inference.

    ``snn``/``ann`` hold one :class:`~snncost.costmodel.pricing.LayerRow` per
    weight layer; ``snn_total``/``ann_total`` are their sums (plus latency);
    ``ratios`` are ANN / SNN against the main baseline (``baselines[0]``);
    ``baselines`` lists every baseline costed (fp32, zero-skipping...);
    ``break_even`` the activity at which the SNN costs as much as the main
    baseline. ``conventions`` says which cost conventions produced the
    figures. Energies in pJ, latency in seconds.
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
    dataflow: str = ""
    ann_dataflow: str = ""
    conventions: list[str] = []
    baselines: list[BaselineResult] = []
    break_even: BreakEven | None = None
    feasibility: Feasibility | None = None  # chips with published limits: does the SNN fit?
    notes: list[str] = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_runs(
        cls,
        snn: CostedRun,
        ann: CostedRun,
        extra_baselines: list[tuple[str, str, CostedRun]] = (),
        **fields: Any,
    ) -> CostReport:
        """Assemble a report from costed runs; ``fields`` fill the metadata.

        ``ann`` is the main baseline (described by ``fields["baseline"]``);
        ``extra_baselines`` are ``(key, description, run)`` of the others.
        """
        from snncost import __version__

        notes = list(fields.pop("notes", []))
        for n in [*snn.notes, *(f"ANN: {x}" for x in ann.notes)]:
            if n not in notes:
                notes.append(n)
        rows = [("ann", fields.get("baseline", "ANN"), ann), *extra_baselines] if ann.rows else []
        baselines = [
            BaselineResult(key=key, description=text, profile=run.profile, dataflow=run.dataflow,
                           total=run.total, ratios=Ratios.between(snn.total, run.total))  # fmt: skip
            for key, text, run in rows
        ]
        return cls(
            snncost_version=__version__,
            profile=snn.profile,
            ann_profile=ann.profile,
            timesteps=snn.timesteps,
            snn=snn.rows,
            ann=ann.rows,
            snn_total=snn.total,
            ann_total=ann.total,
            ratios=Ratios.between(snn.total, ann.total) if ann.rows else Ratios.none(),
            dataflow=snn.dataflow,
            ann_dataflow=ann.dataflow,
            baselines=baselines,
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
        if self.conventions:
            lines.append("- Conventions: " + "; ".join(self.conventions))
        if self.feasibility is not None:
            lines.append(("- Chip: " if self.feasibility.fits else "- **Warning**: the SNN ")
                         + self.feasibility.summary())  # fmt: skip
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

    def _baseline_cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["Baseline", "Dataflow", "Compute energy", "Total energy",
                  "ANN/SNN compute", "ANN/SNN total"]  # fmt: skip
        rows = [
            [
                f"{b.key}: {b.description}" + (f" (on {b.profile})" if b.profile != self.profile else ""),
                b.dataflow,
                fmt_energy(b.total.energy_compute_pj),
                fmt_energy(b.total.energy_total_pj),
                fmt_ratio(b.ratios.compute_energy),
                fmt_ratio(b.ratios.total_energy),
            ]
            for b in self.baselines
        ]
        return header, rows

    def _break_even_cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["Layer", "Spikes / synapse", "Break-even spikes / synapse", "Input spike rate",
                  "Break-even rate", "SNN energy", "Fixed (no events)", "Baseline energy"]  # fmt: skip
        be = self.break_even
        rows = [_break_even_cells(f"`{r.name}`", r) for r in be.layers]
        rows.append(_break_even_cells("**Network**", be.network))
        return header, rows

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
            md_table(snn_header, snn_rows, "ll" + "r" * (len(snn_header) - 2)),
            "",
            "## ANN baseline, per inference",
            "",
            md_table(ann_header, ann_rows, "ll" + "r" * (len(ann_header) - 2)),
            "",
            "## Totals and ratios",
            "",
            md_table(["", "SNN", "ANN", "ANN / SNN"], self._totals_rows()),
        ]
        if self.baselines:
            parts += ["", "## Baselines", "", md_table(*self._baseline_cells())]
        if self.break_even is not None:
            parts += ["", "## Break-even activity", "", self.break_even.network_sentence(), "",
                      md_table(*self._break_even_cells())]  # fmt: skip
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
            units = dict(ENERGY_UNITS)
            if energy_unit not in units:
                raise ValueError(
                    f"energy_unit must be one of {', '.join(units)}, got {energy_unit!r}"
                )
            unit, scale = energy_unit, units[energy_unit]
        else:
            unit, scale = self._unit()
        tex_unit = r"$\mu$J" if unit == "µJ" else unit

        def e(x: float | None) -> str:
            return "--" if x is None else num(x / scale)

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
            + f"{latex_ratio(self.ratios.compute_energy)} & {latex_ratio(self.ratios.total_energy)}"
            + r" & & & \\",
        ]
        be = self.break_even.network if self.break_even is not None else None
        if be is not None and be.spikes_per_synapse is not None:
            lines += [
                r"\midrule",
                r"\multicolumn{9}{l}{Spikes per synapse per inference: "
                + f"{be.spikes_per_synapse:.3g}; break-even: "
                + ("--" if be.break_even_spikes_per_synapse is None else f"{be.break_even_spikes_per_synapse:.3g}")
                + r"} \\",
            ]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if caption is None:
            tex_caption = (
                f"Energy per inference of {latex_escape(self.model)} on the "
                f"{latex_escape(self.profile)} profile ({self.timesteps} timesteps, "
                f"{self.batch_size} inputs). ANN/SNN compute energy "
                f"{latex_ratio(self.ratios.compute_energy)}, synaptic operations only "
                r"($\mathrm{ACs}\times E_\mathrm{AC} + \mathrm{MACs}\times E_\mathrm{MAC}$) "
                f"{latex_ratio(self.ratios.synaptic_energy)}, total with memory "
                f"{latex_ratio(self.ratios.total_energy)}. Baseline: {latex_escape(self.baseline)}; "
                f"dataflow: SNN {latex_escape(self.dataflow)}, ANN {latex_escape(self.ann_dataflow)}."
            )
        else:
            tex_caption = latex_escape(caption)
        return latex_close_table(lines, tex_caption, label)

    def csv_header(self) -> list[str]:
        return ["network", "row_type", *_csv_fields()]

    def to_csv(self) -> str:
        """One CSV line per layer (``row_type=layer``) and per total (``row_type=total``).

        ``network`` is ``snn`` or ``ann``; columns are the :class:`LayerRow`
        fields (energies in pJ, per inference). Total rows leave per-layer
        columns (kind, bits, memory level...) empty.
        """
        fields = _csv_fields()
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
        return csv_text(self.csv_header(), rows)

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
            [
                label,
                fmt_energy(getattr(s, part)),
                fmt_energy(getattr(a, part)),
                fmt_ratio(getattr(r, ratio)),
            ]
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
        text = head + "\n" + text_table(["per inference", "SNN", "ANN", "ANN/SNN"], rows)
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


def _csv_fields() -> list[str]:
    """LayerRow columns of the CSV (the per-level accesses are in the JSON)."""
    return [f for f in LayerRow.model_fields if f != "accesses"]


def _break_even_cells(label: str, r: BreakEvenRow) -> list[str]:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    return [label, f(r.spikes_per_synapse), f(r.break_even_spikes_per_synapse), f(r.input_spike_rate),
            f(r.break_even_spike_rate), fmt_energy(r.snn_energy_pj), fmt_energy(r.fixed_energy_pj),
            fmt_energy(r.baseline_energy_pj)]  # fmt: skip
