"""The training pipeline: ``ann -> convert -> snn -> spatial -> temporal -> quantize -> evaluate``.

Each stage (:mod:`trainers.stages`) reads earlier stages' models from memory
or from their finished checkpoints, does its work and writes its own
finished checkpoint; a stage that finds its checkpoint done is skipped, and
a training stage that finds a ``-last`` checkpoint continues from that
epoch (with optimiser, scheduler and RNG states), so an interrupted run,
re-run, ends with the same weights and metrics as an uninterrupted one.
``stages=[...]`` picks which stages run; a skipped stage's model is taken
from its checkpoint when a later stage needs it.

Re-running with changed settings extends the run (:mod:`trainers.rundir`):
the finished stages before the first changed one are reused, the rest are
rerun, their old outputs moved to ``superseded/<time>/``. Before each stage
its fingerprint and inputs are recorded in ``stages.json``; the evaluate
stage, which has no checkpoint, is skipped when ``stages.json`` records it
done with the same fingerprint and inputs and ``results.json`` is there.
"""

from __future__ import annotations

import json

from trainers import distributed as dist
from trainers.config import RunConfig
from trainers.context import Context, model_spec, neuron_config, resolve_device, weight_count
from trainers.data import load_data
from trainers.rundir import RunDir
from trainers.stages import STAGE_FUNCS

__all__ = ["model_spec", "neuron_config", "run_pipeline", "summary_table"]


def run_pipeline(cfg: RunConfig) -> Context:
    """Run (or resume) every configured stage; returns the context with results."""
    device = resolve_device(cfg.device)
    dist.init(device.type)
    run = RunDir(cfg)
    resuming = run.open() if dist.is_main() else True
    dist.barrier()
    data = load_data(cfg.data, cfg.seed)
    ctx = Context(cfg, run, data, device)
    world = f" x{dist.world_size()} processes" if dist.active() else ""
    state = "extending" if run.extended else "resuming" if resuming else "new"
    ctx.say(
        f"run {cfg.name} in {run.path} ({state}) on {device}{world}: "
        f"{data.name} {len(data.train)} train / {len(data.test)} test images, "
        f"{data.in_channels}x{data.image_size}x{data.image_size}, {data.num_classes} classes"
    )
    for notice in run.notices:
        ctx.say(notice)
    for stage in cfg.stages:
        if dist.is_main():
            notice = run.begin(stage)  # records the stage's fingerprint and inputs in stages.json
            if notice:
                ctx.say(notice)
        if stage == "evaluate" and dist.is_main() and _evaluated(ctx):
            dist.barrier()  # the other ranks' stage_evaluate waits here
            continue
        STAGE_FUNCS[stage](ctx)
        if stage == "evaluate" and dist.is_main():
            run.mark_done("evaluate")
    if dist.is_main():
        run.sync_metrics()  # a run killed between a checkpoint and its metrics left them behind
    return ctx


def _evaluated(ctx: Context) -> bool:
    """True (and its results loaded) when the evaluate stage is done for exactly these models and settings."""
    results = ctx.run.path / "results.json"
    if not (ctx.run.is_done("evaluate") and results.is_file()):
        return False
    try:
        ctx.results["evaluate"] = {"results": json.loads(results.read_text(encoding="utf-8"))}
    except ValueError:
        return False  # unreadable: cost again
    for stage in ("ann", "convert", "snn", "spatial", "temporal", "quantize"):
        ctx.model(stage)  # the summary table's models, as if the stage had been run
    ctx.say(f"[evaluate] already done ({results}), skipping")
    return True


#: rows of the final table: (stage, label)
SUMMARY_ROWS = (
    ("ann", "ANN"),
    ("convert", "SNN converted"),
    ("snn", "SNN"),
    ("spatial", "SNN spatial"),
    ("temporal", "SNN spatio-temporal"),
    ("quantize", "SNN quantized"),
)


def summary_table(ctx: Context) -> str:
    """The final table: one row per model with accuracy, T, spikes, parameters and energy."""
    evaluated = {r["stage"]: r for r in ctx.results.get("evaluate", {}).get("results", {}).get("variants", [])}
    rows = [("stage", "model", "T", "bits", "test acc", "spikes/img", "params", "ANN/SNN energy")]
    for stage, label in SUMMARY_ROWS:
        if stage not in ctx.results or stage not in ctx.models:
            continue
        model, m = ctx.models[stage], ctx.results[stage]
        snn = stage != "ann"
        spikes = f"{m['spikes_per_inference']:.0f}" if m.get("spikes_per_inference") is not None else "-"
        bits = str(m.get("bits", 32))
        ratio = evaluated.get(stage, {}).get("vs_ann_synaptic_energy")
        rows.append(
            (
                stage,
                label,
                str(model.timesteps) if snn else "-",
                bits,
                f"{100 * m['test_acc']:.2f}%",
                spikes,
                f"{weight_count(model):,}",
                f"{ratio:.2f}x" if ratio and stage != "ann" else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
