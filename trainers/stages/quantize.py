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

SOURCES = ("temporal", "spatial", "snn")


def stage_quantize(ctx: Context) -> None:
    """Sweep ``quantize.sweep`` (each width's validation and test accuracy, reported; no choice is made
    from it: the final width is ``quantize.bits``), then quantize to ``quantize.bits``."""
    if ctx.restore("quantize"):
        return
    cfg = ctx.cfg.quantize
    source, src = ctx.latest(*SOURCES)
    rows = [{"bits": 32, "number_format": "float", **_accuracies(ctx.evaluate_final(src, "float"))}]
    evaluated = {}
    for bits in sorted(set(cfg.sweep), reverse=True):
        q = quantize_model(copy.deepcopy(src), bits, per_channel=cfg.per_channel)
        evaluated[bits] = ctx.evaluate_final(q, f"int{bits}")
        rows.append({"bits": bits, "number_format": "int", **_accuracies(evaluated[bits])})
        ctx.say(
            f"[quantize] int{bits}: val {rows[-1]['val_acc']:.4f} test {rows[-1]['test_acc']:.4f} "
            f"(float: val {rows[0]['val_acc']:.4f} test {rows[0]['test_acc']:.4f})"
        )
    model = quantize_model(copy.deepcopy(src), cfg.bits, per_channel=cfg.per_channel)
    history = [{"stage": "quantize", "epoch": 0, **r} for r in rows]
    if cfg.qat_epochs > 0:
        ocfg = ctx.cfg.snn.model_copy(update={"epochs": cfg.qat_epochs, "lr": cfg.qat_lr})
        torch.manual_seed(ctx.cfg.seed + 5)  # independent of what ran before in this process
        # trained under the stage's own name: its -last checkpoint is removed when the stage finishes
        metrics, qat_history = train_stage(ctx, "quantize", model, ocfg, {"bits": cfg.bits})
        history += qat_history
    else:  # the same weights as the sweep's row for these bits, when it has one: not evaluated twice
        metrics = evaluated.get(cfg.bits) or ctx.evaluate_final(model, "quantized")
    metrics.update(bits=cfg.bits, per_channel=cfg.per_channel, source=source, sweep=rows)
    ctx.finish("quantize", model, metrics, history)


def _accuracies(ev: dict) -> dict:
    return {"val_acc": ev["val_acc"], "test_acc": ev["test_acc"], "spikes_per_inference": ev.get("spikes_per_inference")}
