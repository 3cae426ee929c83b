"""Spatial pruning: PCA of each layer's mean membrane potential picks its width; rebuild, retrain.

Chowdhury et al. (2021), section III-A: the number of principal components
that explain ``spatial.threshold`` of the variance of a layer's average
accumulated membrane potential is the number of channels it needs. The
narrower network is rebuilt (whole channels go; in a ResNet the channels
tied by shortcuts go together, see ``docs/models.md``) and retrained,
either warm-started from the wide SNN's most significant channels or from
scratch through ANN -> convert -> SNN (``spatial.init``).
"""

from __future__ import annotations

import json

import torch

from snncost.checkpoint import atomic_write_text
from snncost.compress import (
    collect_membrane_stats,
    plan_spatial_pruning,
    plot_explained_variance,
    warm_start_weights,
)
from snncost.models import build_ann, build_snn
from trainers import distributed as dist
from trainers.context import Context, train_stage
from trainers.convert import convert
from trainers.results import draw_figure


def stage_spatial(ctx: Context) -> None:
    if ctx.restore("spatial"):
        return
    cfg = ctx.cfg.spatial
    wide = ctx.require("snn", "convert")
    loader = ctx.loader("train", shuffle=True, shard=True)
    stats = collect_membrane_stats(wide, (x for x, _ in loader), max_batches=cfg.batches)
    for s in stats.values():
        s.all_reduce()  # every rank then plans the same widths from all the data
    plan = plan_spatial_pruning(wide, stats, threshold=cfg.threshold, overrides=dict(cfg.overrides))
    _write_plan(ctx, plan)
    ctx.say("[spatial] PCA widths\n" + plan.to_markdown())

    neurons = wide.neurons
    torch.manual_seed(ctx.cfg.seed + 3)
    if cfg.init == "warm":
        narrow = ctx.place(build_snn(plan.pruned_spec, neurons))
        warm_start_weights(wide, narrow, stats, plan)
    else:
        narrow = _from_scratch(ctx, plan.pruned_spec, neurons)
    narrow.timesteps = wide.timesteps
    ocfg = ctx.cfg.snn.model_copy(update={"epochs": cfg.epochs if cfg.epochs is not None else ctx.cfg.snn.epochs})
    metrics, history = train_stage(ctx, "spatial", narrow, ocfg, {"timesteps": narrow.timesteps})
    metrics["plan"] = plan.to_dict()
    ctx.finish("spatial", narrow, metrics, history)


def _from_scratch(ctx: Context, spec, neurons):
    """ANN of the pruned widths, trained and converted: the paper's retraining route."""
    ann = ctx.model("spatial-ann")
    if ann is None:
        ann = ctx.place(build_ann(spec))
        ocfg = ctx.cfg.ann
        if ctx.cfg.spatial.ann_epochs is not None:
            ocfg = ocfg.model_copy(update={"epochs": ctx.cfg.spatial.ann_epochs})
        metrics, history = train_stage(ctx, "spatial-ann", ann, ocfg)
        ctx.finish("spatial-ann", ann, metrics, history)
    torch.manual_seed(ctx.cfg.seed + 4)  # the same state whether spatial-ann was trained or restored
    snn = ctx.place(build_snn(spec, neurons))
    convert(ann, snn, ctx.loader("train", shuffle=True), ctx.cfg.convert.percentile, ctx.cfg.convert.batches)
    return snn


def _write_plan(ctx: Context, plan) -> None:
    if not dist.is_main():
        return
    out = ctx.run.path
    atomic_write_text(out / "spatial_plan.md", plan.to_markdown() + "\n")
    atomic_write_text(out / "spatial_plan.json", json.dumps(plan.to_dict(), indent=2))
    draw_figure(lambda: plot_explained_variance(plan, out / "spatial_pca.png"), lambda exc: ctx.say(f"[spatial] plot skipped: {exc}"))
