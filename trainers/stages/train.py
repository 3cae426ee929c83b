"""The first three stages: train the ANN, convert it to an SNN, fine-tune the SNN with BPTT."""

from __future__ import annotations

import torch

from snncost.models import build_ann, build_snn
from trainers.context import Context, model_spec, neuron_config, scalar_metrics, train_stage
from trainers.convert import convert


def stage_ann(ctx: Context) -> None:
    """Train the ANN form of the configured network (ReLU; the conversion source and the baseline)."""
    if ctx.restore("ann"):
        return
    torch.manual_seed(ctx.cfg.seed)
    ann = ctx.place(build_ann(model_spec(ctx.cfg, ctx.data)))
    metrics, history = train_stage(ctx, "ann", ann, ctx.cfg.ann)
    ctx.finish("ann", ann, metrics, history)


def stage_convert(ctx: Context) -> None:
    """ANN -> SNN: copy the weights, set each layer's threshold from a percentile of its input."""
    if ctx.restore("convert"):
        return
    ann = ctx.require("ann")
    neurons = neuron_config(ctx.cfg)
    torch.manual_seed(ctx.cfg.seed + 1)
    snn = ctx.place(build_snn(ann.spec, neurons))
    snn.timesteps = ctx.cfg.convert.timesteps or neurons.timesteps
    thresholds = convert(ann, snn, ctx.loader("train", shuffle=True), ctx.cfg.convert.percentile, ctx.cfg.convert.batches)
    snn.timesteps = neurons.timesteps
    metrics = ctx.evaluate_final(snn, "convert")
    metrics["thresholds"] = thresholds
    rec = {"stage": "convert", "epoch": 0, "timesteps": snn.timesteps, **scalar_metrics(metrics)}
    ctx.finish("convert", snn, metrics, [rec])
    ctx.say(
        f"[convert] T={snn.timesteps} val {metrics['val_acc']:.4f} test {metrics['test_acc']:.4f} "
        f"thresholds {', '.join(f'{t:.3g}' for t in thresholds)}"
    )


def stage_snn(ctx: Context) -> None:
    """Surrogate-gradient BPTT at ``snn.timesteps``, from the converted SNN (or from scratch)."""
    if ctx.restore("snn"):
        return
    neurons = neuron_config(ctx.cfg)
    init = ctx.model("convert")
    spec = init.spec if init is not None else model_spec(ctx.cfg, ctx.data)
    torch.manual_seed(ctx.cfg.seed + 2)
    snn = ctx.place(build_snn(spec, neurons))
    if init is not None:
        snn.load_state_dict(init.state_dict())
    else:
        ctx.say("[snn] no converted model: training the SNN from random initialisation")
    snn.timesteps = neurons.timesteps
    metrics, history = train_stage(ctx, "snn", snn, ctx.cfg.snn, {"timesteps": snn.timesteps})
    ctx.finish("snn", snn, metrics, history)
