"""Accuracy under Gaussian input noise (the paper's robustness comparison, its Table V).

Noise ``N(0, std^2)`` is added to the *normalised* inputs, so a std is in
units of the data set's per-channel standard deviation. The noise is drawn
on the CPU from a generator seeded by ``(seed, std index, batch index)``,
so every model sees exactly the same noisy images and a re-run gives the
same numbers on any device.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from snncost.checkpoint import atomic_savefig
from trainers.aggregate import is_stat
from trainers.data import BatchLoader


@torch.no_grad()
def noisy_accuracy(
    model: nn.Module, loader: BatchLoader, stds: list[float], seed: int = 0, progress: bool = False
) -> dict[float, float]:
    """Test accuracy of ``model`` at each noise standard deviation in ``stds``."""
    model.eval()
    out: dict[float, float] = {}
    for k, std in enumerate(stds):
        if std < 0:
            raise ValueError(f"noise std must be >= 0, got {std}")
        correct = seen = 0
        for b, (x, y) in enumerate(tqdm(loader, desc=f"noise {std:g}", leave=False, disable=not progress)):
            if std > 0:
                gen = torch.Generator().manual_seed(seed * 1_000_003 + k * 10_007 + b)
                x = x + std * torch.randn(x.shape, generator=gen).to(x.device)
            correct += (model(x).argmax(1) == y).sum().item()
            seen += len(y)
        out[float(std)] = correct / max(seen, 1)
    return out


def robustness_table(models: dict[str, nn.Module], loader: BatchLoader, stds: list[float], seed: int = 0) -> dict[str, dict[float, float]]:
    """``{model name: {std: accuracy}}`` for several models on the same noisy inputs."""
    return {name: noisy_accuracy(m, loader, stds, seed) for name, m in models.items()}


def plot_robustness(table: dict, path=None):
    """Accuracy vs noise std, one line per model; returns the figure (saved when ``path``).

    ``table`` is ``{model: {std: accuracy}}`` (stds as numbers or, as in
    ``results.json``, text); an accuracy aggregated over seeds
    (:mod:`trainers.aggregate`) is drawn at its mean with an error bar of one
    sample standard deviation.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, accs in table.items():
        stds = sorted(accs, key=float)
        values = [accs[s] for s in stds]
        ys = [100 * (v["mean"] if is_stat(v) else v) for v in values]
        errs = [100 * (v["std"] or 0.0) if is_stat(v) else 0.0 for v in values]
        ax.errorbar([float(s) for s in stds], ys, yerr=errs, marker="o", capsize=2, label=name)
    ax.set_xlabel("Gaussian noise std (normalised input units)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        atomic_savefig(fig, path, dpi=150)
    return fig
