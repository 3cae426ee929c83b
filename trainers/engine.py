"""Training and evaluation loops shared by the ANN and SNN stages."""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

from snncost.checkpoint import crash_point
from snncost.models import spiking_layers
from trainers.config import OptimConfig
from trainers.data import BatchLoader


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: cosine to 0, steps at fractions of the epochs, or constant."""
    epochs = max(cfg.epochs, 1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if cfg.schedule == "step":
        milestones = sorted({max(1, round(f * epochs)) for f in cfg.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def train_epoch(
    model: nn.Module,
    loader: BatchLoader,
    opt: torch.optim.Optimizer,
    desc: str = "train",
    progress: bool = True,
    crash_tag: str | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss and accuracy.

    ``crash_tag`` (e.g. ``"batch:snn:2"``) is only for the fault-injection
    hook of the crash-safety tests (:func:`snncost.checkpoint.crash_point`):
    after batch ``n``'s step the point ``"<crash_tag>:<n>"`` is checked.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=None if progress else True, unit="batch")
    for batch, (x, y) in enumerate(bar, 1):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(f"{desc}: loss became {loss.item()} at batch {batch} (lower the learning rate?)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        if crash_tag is not None:
            crash_point(f"{crash_tag}:{batch}")
    return {"train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1)}


@torch.no_grad()
def evaluate(model: nn.Module, loader: BatchLoader, desc: str = "eval", progress: bool = True) -> dict:
    """Test accuracy and loss; for SNNs also mean spikes per inference per layer."""
    model.eval()
    layers = spiking_layers(model)
    counts = {name: 0.0 for name, _ in layers}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=name: counts.__setitem__(name, counts[name] + out.sum().item()))
        for name, m in layers
    ]
    loss_sum, correct, seen = 0.0, 0, 0
    try:
        for x, y in tqdm(loader, desc=desc, leave=False, disable=None if progress else True, unit="batch"):
            logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    finally:
        for h in hooks:
            h.remove()
    out: dict = {"test_loss": loss_sum / max(seen, 1), "test_acc": correct / max(seen, 1)}
    if layers:
        per_layer = {name: c / max(seen, 1) for name, c in counts.items()}
        out["spikes_per_inference"] = sum(per_layer.values())
        out["spikes_per_layer"] = per_layer
    return out
