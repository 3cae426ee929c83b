"""Explained-variance curves of a spatial pruning plan (matplotlib, Agg canvas).

Drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas, never
through pyplot, so it works on headless machines and leaves the caller's
backend alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from snncost.compress.spatial import SpatialPlan

__all__ = ["plot_explained_variance"]


def plot_explained_variance(plan: SpatialPlan, path: str | Path | None = None) -> Figure:
    """Cumulative explained variance per layer, with the threshold and chosen widths.

    Left: cumulative explained variance against the number of principal
    components (one curve per layer, a dot at the width chosen). Right: the
    variance left out, ``1 - cumulative``, on a log scale, where thresholds
    such as 0.999 are actually readable; dashed line at ``1 - threshold``.
    Layers without statistics (width fixed by an int override) are skipped;
    layers with no variance at all are only named in the legend.
    Saves a PNG (or whatever ``path``'s suffix says) when ``path`` is given.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_cum, ax_res = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(plan.layers))]
    widest = 1
    for layer, color in zip(plan.layers, colors, strict=True):
        if not layer.explained_variance:
            continue
        ratio = np.asarray(layer.explained_variance, dtype=np.float64)
        if ratio.sum() <= 0:  # a dead or constant layer: no curve to draw
            ax_cum.plot(
                [], [], color=color, label=f"{layer.name} (no variance, \u2192{layer.new_width})"
            )
            continue
        cum = np.minimum(np.cumsum(ratio), 1.0)
        k = np.arange(1, len(cum) + 1)
        widest = max(widest, len(cum))
        label = f"{layer.name} ({layer.original_width}\u2192{layer.new_width})"
        ax_cum.plot(k, cum, color=color, lw=1.2, label=label)
        ax_cum.plot([layer.new_width], [cum[layer.new_width - 1]], "o", color=color, ms=5)
        residual = np.clip(1.0 - cum, 1e-12, None)
        ax_res.plot(k, residual, color=color, lw=1.2)
        ax_res.plot([layer.new_width], [residual[layer.new_width - 1]], "o", color=color, ms=5)
        if layer.threshold is not None and layer.threshold != plan.threshold:
            ax_res.axhline(max(1.0 - layer.threshold, 1e-12), color=color, ls=":", lw=0.8)
    ax_cum.axhline(
        plan.threshold, color="k", ls="--", lw=0.8, label=f"threshold {plan.threshold:g}"
    )
    ax_res.axhline(max(1.0 - plan.threshold, 1e-12), color="k", ls="--", lw=0.8)
    for ax in (ax_cum, ax_res):
        ax.set_xlabel("principal components kept")
        if widest > 64:
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    ax_cum.set_ylabel("cumulative explained variance")
    ax_cum.set_ylim(0.0, 1.02)
    ax_res.set_yscale("log")
    ax_res.set_ylabel("variance left out (1 - cumulative)")
    ax_cum.legend(fontsize=7, loc="lower right")
    c = plan.compression
    fig.suptitle(
        f"PCA spatial pruning: {c.param_ratio:.2f}x fewer parameters, {c.mac_ratio:.2f}x fewer MACs",
        fontsize=10,
    )
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from snncost.checkpoint import atomic_savefig

        atomic_savefig(fig, path, dpi=150)
    return fig
