"""Weight quantization: a post-training sweep over bit widths, then the chosen width (+ optional QAT).

Uniform symmetric k-bit weights (per output channel by default), stored as
integers plus a scale (:func:`snncost.nn.quantize_model`), so the simulator
replays them in integer arithmetic and the hardware profile prices the real
bit width. ``quantize.qat_epochs > 0`` fine-tunes the quantized SNN with a
straight-through estimator.
"""

from __future__ import annotations

import copy

import torch

from snncost.nn import quantize_model
from trainers.context import Context, train_stage
from trainers.engine import evaluate

SOURCES = ("temporal", "spatial", "snn")


def stage_quantize(ctx: Context) -> None:
    if ctx.restore("quantize"):
        return
    cfg = ctx.cfg.quantize
    source, src = ctx.latest(*SOURCES)
    test = ctx.loader("test")
    rows = [{"bits": 32, "number_format": "float", **_acc(evaluate(src, test, "float eval", ctx.cfg.progress))}]
    for bits in sorted(set(cfg.sweep), reverse=True):
        q = quantize_model(copy.deepcopy(src), bits, per_channel=cfg.per_channel)
        rows.append({"bits": bits, "number_format": "int", **_acc(evaluate(q, test, f"int{bits} eval", ctx.cfg.progress))})
        ctx.say(f"[quantize] int{bits}: test {rows[-1]['test_acc']:.4f} (float {rows[0]['test_acc']:.4f})")
    model = quantize_model(copy.deepcopy(src), cfg.bits, per_channel=cfg.per_channel)
    history = [{"stage": "quantize", "epoch": 0, **r} for r in rows]
    if cfg.qat_epochs > 0:
        ocfg = ctx.cfg.snn.model_copy(update={"epochs": cfg.qat_epochs, "lr": cfg.qat_lr})
        torch.manual_seed(ctx.cfg.seed + 5)  # independent of what ran before in this process
        # trained under the stage's own name: its -last checkpoint is removed when the stage finishes
        metrics, qat_history = train_stage(ctx, "quantize", model, ocfg, {"bits": cfg.bits})
        history += qat_history
    else:
        metrics = evaluate(model, test, "quantized eval", ctx.cfg.progress)
    metrics.update(bits=cfg.bits, per_channel=cfg.per_channel, source=source, sweep=rows)
    ctx.finish("quantize", model, metrics, history)


def _acc(ev: dict) -> dict:
    return {"test_acc": ev["test_acc"], "spikes_per_inference": ev.get("spikes_per_inference")}
