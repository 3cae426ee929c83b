"""Figures for cost reports (matplotlib, drawn off-screen with the Agg canvas).

No pyplot state is touched: figures are :class:`matplotlib.figure.Figure`
objects with an Agg canvas, so plotting works on headless machines and does
not change the caller's backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snncost.report.formatting import energy_unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from snncost.report.cost_report import CostReport

__all__ = ["plot_pareto", "plot_report"]


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path | None) -> None:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from snncost.checkpoint import atomic_savefig

        atomic_savefig(fig, path, dpi=150)


def _is_report(point: object) -> bool:
    """Whether a Pareto point is a CostReport (duck-typed: plots does not import cost_report)."""
    return hasattr(point, "snn_total") and hasattr(point, "timesteps")


def plot_report(report: CostReport, path: str | Path | None = None) -> Figure:
    """Two panels: per-layer energy (stacked compute + memory, SNN next to ANN) and
    spikes per layer with the spike rate.

    Energies are per inference, on a log axis when they span more than two
    decades. Returns the Figure; saves it to ``path`` when given.
    """
    pairs = report.paired_rows()
    names = [(s or a).name for s, a in pairs]
    unit, scale = energy_unit(
        max([r.energy_total_pj for r in report.snn + report.ann if r.energy_total_pj > 0] or [1.0])
    )

    def col(rows, attr):
        return np.array([getattr(r, attr) / scale if r is not None else 0.0 for r in rows])

    snn_rows = [s for s, _ in pairs]
    ann_rows = [a for _, a in pairs]
    x = np.arange(len(names))
    w = 0.38

    fig = _new_figure(max(6.0, 0.9 * len(names) + 3.0), 6.5)
    ax_e, ax_s = fig.subplots(2, 1, sharex=True)

    s_comp, s_mem = col(snn_rows, "energy_compute_pj"), col(snn_rows, "energy_memory_pj")
    a_comp, a_mem = col(ann_rows, "energy_compute_pj"), col(ann_rows, "energy_memory_pj")
    ax_e.bar(x - w / 2, s_comp, w, label="SNN compute", color="#1f77b4")
    ax_e.bar(x - w / 2, s_mem, w, bottom=s_comp, label="SNN memory", color="#aec7e8")
    ax_e.bar(x + w / 2, a_comp, w, label="ANN compute", color="#d62728")
    ax_e.bar(x + w / 2, a_mem, w, bottom=a_comp, label="ANN memory", color="#ff9896")
    totals = np.concatenate([s_comp + s_mem, a_comp + a_mem])
    positive = totals[totals > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax_e.set_yscale("log")
    ax_e.set_ylabel(f"energy per inference ({unit})")
    ax_e.set_title(
        f"{report.model} on {report.profile} (T={report.timesteps}): "
        f"ANN/SNN total energy "
        + ("-" if report.ratios.total_energy is None else f"{report.ratios.total_energy:.3g}x")
    )
    ax_e.legend(fontsize="small", ncols=2)
    ax_e.grid(axis="y", alpha=0.3)

    spikes = np.array([r.spikes if r is not None else 0.0 for r in snn_rows])
    ax_s.bar(x, spikes, 0.6, color="#2ca02c", label="spikes")
    ax_s.set_ylabel("spikes per inference")
    ax_s.grid(axis="y", alpha=0.3)
    rates = [
        r.spike_rate if r is not None and r.spike_rate is not None else np.nan for r in snn_rows
    ]
    ax_r = ax_s.twinx()
    ax_r.plot(x, rates, "o-", color="black", label="spike rate")
    ax_r.set_ylabel("spike rate (spikes / neuron / step)")
    ax_r.set_ylim(bottom=0)
    ax_s.set_xticks(x, names, rotation=45, ha="right")
    ax_s.set_xlabel("layer")
    _save(fig, path)
    return fig


def plot_pareto(
    points: Sequence[CostReport] | Sequence[tuple[float, float, int]],
    path: str | Path | None = None,
    energy: str = "total",
    labels: Sequence[str] | None = None,
) -> Figure:
    """Accuracy vs energy, coloured by ``T``, with the Pareto front drawn.

    ``points`` are :class:`CostReport` s (their SNN ``accuracy``, ``T`` and
    ``energy`` = ``"total"``, ``"compute"`` or ``"synaptic"`` energy) or
    ``(accuracy, energy_pj, T)`` tuples. A point is on the front when no other
    point has both higher (or equal) accuracy and lower (or equal) energy.
    """
    attr = {
        "total": "energy_total_pj",
        "compute": "energy_compute_pj",
        "synaptic": "energy_synaptic_pj",
    }.get(energy)
    if attr is None:
        raise ValueError(f"energy must be 'total', 'compute' or 'synaptic', got {energy!r}")
    data: list[tuple[float, float, int]] = []
    for p in points:
        if _is_report(p):
            if p.accuracy is None:
                raise ValueError(f"report for {p.model} has no accuracy (evaluate it with labels)")
            data.append((p.accuracy, getattr(p.snn_total, attr), p.timesteps))
        else:
            acc, e, t = p
            data.append((float(acc), float(e), int(t)))
    if not data:
        raise ValueError("plot_pareto needs at least one point")
    acc = np.array([d[0] for d in data])
    en = np.array([d[1] for d in data])
    ts = np.array([d[2] for d in data])
    unit, scale = energy_unit(float(en.max()))

    front = [
        i
        for i in range(len(data))
        if not any(
            (acc[j] >= acc[i] and en[j] <= en[i]) and (acc[j] > acc[i] or en[j] < en[i])
            for j in range(len(data))
        )
    ]
    front.sort(key=lambda i: en[i])

    fig = _new_figure(6.0, 4.5)
    ax = fig.subplots()
    sc = ax.scatter(en / scale, 100 * acc, c=ts, cmap="viridis", s=40, zorder=3)
    ax.plot(en[front] / scale, 100 * acc[front], "--", color="grey", zorder=2, label="Pareto front")
    if labels is not None:
        for xi, yi, text in zip(en / scale, 100 * acc, labels, strict=False):
            ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    fig.colorbar(sc, ax=ax, label="timesteps T")
    ax.set_xlabel(f"{energy} energy per inference ({unit})")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)
    return fig
