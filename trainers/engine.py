"""Training and evaluation loops shared by the ANN and SNN stages."""

from __future__ import annotations

import math
import os

import torch
from torch import nn
from tqdm import tqdm

from snncost.checkpoint import crash_point
from snncost.models import spiking_layers
from trainers import distributed as dist
from trainers.config import OptimConfig
from trainers.data import BatchLoader

# ---------------------------------------------------------------- fault injection (tests only)
#: Two fault-injection hooks, both no-ops unless their environment variable is set:
#:
#: - ``SNNCOST_CRASH_AT`` (:data:`snncost.checkpoint.CRASH_AT`, see
#:   :func:`snncost.checkpoint.crash_point`) SIGKILLs the process at a named
#:   point; :func:`train_epoch` checks ``batch:<stage>:<epoch>:<batch>`` after
#:   that batch's optimiser step (``tests/test_crash_safety.py``).
#: - ``SNNCOST_NAN_AT=<stage>:<epoch>:<batch>:<rank>`` makes the training loss
#:   of that batch NaN on that rank only (epochs and batches count from 1,
#:   rank 0 when single-process), before the non-finite check, as a diverging
#:   rank would (``tests/test_distributed_faults.py``).
#:
#: Read once, at import; unset (always, outside those tests) every check is
#: one comparison with ``None``.
NAN_AT: str | None = os.environ.get("SNNCOST_NAN_AT") or None


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss (on any rank); the last good checkpoint is kept."""


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
    nan_tag: str | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss and accuracy.

    A NaN/inf loss raises :class:`NonFiniteLossError` before that batch's
    ``backward``. Under torchrun every rank's loss is all-reduced each step
    (:func:`trainers.distributed.losses_over_ranks`), so when any rank's loss
    is non-finite all ranks raise, at the same batch, the same message naming
    the rank(s); single-process there is no collective.

    ``crash_tag`` (e.g. ``"batch:snn:2"``) is only for the fault-injection
    hook of the crash-safety tests (:func:`snncost.checkpoint.crash_point`):
    after batch ``n``'s step the point ``"<crash_tag>:<n>"`` is checked.
    ``nan_tag`` (e.g. ``"snn:2"``, stage and epoch) is only for the
    ``SNNCOST_NAN_AT`` hook (:data:`NAN_AT`): batch ``n``'s loss is made NaN
    on rank ``r`` when it reads ``"<nan_tag>:<n>:<r>"``.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=None if progress else True, unit="batch")
    for batch, (x, y) in enumerate(bar, 1):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        if NAN_AT is not None and nan_tag is not None and NAN_AT == f"{nan_tag}:{batch}:{dist.rank()}":
            loss = loss * float("nan")
        if dist.active():  # one all-reduce: all ranks learn together that some rank diverged
            _stop_if_any_rank_diverged(dist.losses_over_ranks(loss), desc, batch)
        elif not math.isfinite(loss.item()):
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


def _stop_if_any_rank_diverged(losses: list[float], desc: str, batch: int) -> None:
    """Raise the same :class:`NonFiniteLossError` on every rank if any rank's loss is NaN/inf.

    ``losses`` is the all-reduced list (index = rank), identical on all
    ranks, so the decision and the message are too.
    """
    bad = [(r, v) for r, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        dist.stop_together()  # every rank raises here, at this batch: shutdown() may wait for all
        where = ", ".join(f"{v} on rank {r}" for r, v in bad)
        raise NonFiniteLossError(
            f"{desc}: loss became {where} (of {len(losses)} ranks) at batch {batch} (lower the learning rate?)"
        )


@torch.no_grad()
def evaluate(model: nn.Module, loader: BatchLoader, desc: str = "eval", progress: bool = True, split: str = "test") -> dict:
    """Accuracy and loss on ``loader`` (keys ``<split>_acc``, ``<split>_loss``); for SNNs also mean
    spikes per inference per layer."""
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
    out: dict = {f"{split}_loss": loss_sum / max(seen, 1), f"{split}_acc": correct / max(seen, 1)}
    if layers:
        per_layer = {name: c / max(seen, 1) for name, c in counts.items()}
        out["spikes_per_inference"] = sum(per_layer.values())
        out["spikes_per_layer"] = per_layer
    return out
