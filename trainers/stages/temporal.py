"""Temporal pruning: lower the number of timesteps T step by step, each step from the last.

Chowdhury et al. (2021), section III-B: an SNN trained at T=25 is
fine-tuned at T=20, that one at T=15, and so on; each short retraining
lets thresholds and leaks (still trainable) adapt to fewer steps, which a
single jump to small T cannot. Every step is its own resumable stage
(``temporal-T<k>``); the ``temporal`` checkpoint is the last step kept.
With ``temporal.tolerance`` set, the schedule stops at the first step whose
*validation* accuracy falls more than that below the first step's, and the
step before it is kept; test accuracy is recorded for each step, never read
for the choice.
"""

from __future__ import annotations

import copy

import torch

from trainers.context import Context, train_stage


def step_name(timesteps: int) -> str:
    return f"temporal-T{timesteps}"


def schedule_for(ctx: Context, start_t: int) -> list[int]:
    """The configured schedule, keeping only T values no larger than the starting model's."""
    steps = [t for t in ctx.cfg.temporal.schedule if t <= start_t]
    if not steps:
        raise ValueError(
            f"temporal.schedule {ctx.cfg.temporal.schedule} has no T <= the starting model's T={start_t}"
        )
    return steps


def stage_temporal(ctx: Context) -> None:
    if ctx.restore("temporal"):
        return
    cfg = ctx.cfg.temporal
    source, prev = ctx.latest("spatial", "snn")
    rows, kept, first_acc = [], None, None
    ocfg = ctx.cfg.snn.model_copy(update={"epochs": cfg.epochs})
    for t in schedule_for(ctx, prev.timesteps):
        name = step_name(t)
        model = ctx.model(name)
        if model is None:
            model = copy.deepcopy(prev)
            model.timesteps = t
            torch.manual_seed(ctx.cfg.seed + 1000 + t)  # the same dropout draws whether or not the run was resumed
            metrics, history = train_stage(ctx, name, model, ocfg, {"timesteps": t})
            ctx.finish(name, model, metrics, history)
        metrics = ctx.results[name]
        row = {
            "timesteps": t,
            "val_acc": metrics["val_acc"],
            "test_acc": metrics["test_acc"],
            "spikes_per_inference": metrics.get("spikes_per_inference"),
        }
        rows.append(row)
        ctx.say(
            f"[temporal] T={t}: val {row['val_acc']:.4f} (test {row['test_acc']:.4f}), "
            f"spikes/img {row['spikes_per_inference']:.0f}"
        )
        if first_acc is None:
            first_acc = row["val_acc"]
        if cfg.tolerance is not None and row["val_acc"] < first_acc - cfg.tolerance and kept is not None:
            ctx.say(f"[temporal] T={t}: validation accuracy more than {cfg.tolerance} below T={rows[0]['timesteps']}: stopping")
            row["kept"] = False
            break
        row["kept"] = True
        kept, prev = (t, model), model
    t_kept, final = kept
    metrics = {**ctx.results[step_name(t_kept)], "source": source, "schedule": rows}
    ctx.finish("temporal", final, metrics, [{"stage": "temporal", **r} for r in rows])
