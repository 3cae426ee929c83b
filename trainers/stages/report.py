"""The ``evaluate`` stage: cost every model variant side by side, plus noise robustness.

For each variant the run produced (unpruned SNN, spatially pruned,
spatio-temporally pruned, quantized) :func:`snncost.evaluate` replays it
event by event on test images and prices it on ``evaluate.profile``,
always against the same baseline: the unpruned ANN of the ``ann`` stage.
Writes to the run directory:

- ``reports/<variant>.{md,tex,csv,json,png}``: each variant's CostReport;
- ``report.*``: the CostReport of the most compressed variant;
- ``results.md`` / ``results.json``: the comparison table (accuracy, T,
  parameters, spikes, energies, ratios to the ANN baseline named in each
  row, to the zero-skipping ANN, spikes per synapse and the break-even
  activity), the replay's agreement with PyTorch on a fixed sample of the
  costed batch, the temporal schedule, the quantization sweep and the
  noise-robustness table;
- ``accuracy_energy.png`` (test accuracy vs synaptic compute energy: the ANN,
  every variant and each T of the temporal schedule, with the Pareto front;
  :func:`trainers.results.plot_accuracy_energy`) and ``robustness.png``.

Every accuracy is recorded on the validation and the test split; the test
split is only reported (``results.md`` says which split chose what).
"""

from __future__ import annotations

import copy
import json

import torch
from torch import nn

import snncost
from snncost.checkpoint import CheckpointError, atomic_torch_save, atomic_write_text
from trainers import distributed as dist
from trainers.context import Context, weight_count
from trainers.results import (
    claims_at_matched_accuracy,
    draw_figure,
    plot_accuracy_energy,
    results_markdown,
)
from trainers.robustness import plot_robustness, robustness_table
from trainers.stages.temporal import step_name

#: (label, stage) of the SNN variants, least to most compressed.
VARIANTS = (
    ("SNN (unpruned)", "snn"),
    ("spatial", "spatial"),
    ("spatio-temporal", "temporal"),
    ("quantized", "quantize"),
)


def stage_evaluate(ctx: Context) -> None:
    if not dist.is_main():  # costing is cheap and single-process; rank 0 writes it
        dist.barrier()
        return
    ann = ctx.model("ann")
    variants = [(label, stage, ctx.model(stage)) for label, stage in VARIANTS]
    variants = [(label, stage, m) for label, stage, m in variants if m is not None]
    if not variants and ctx.model("convert") is not None:
        variants = [("SNN (converted)", "convert", ctx.model("convert"))]
    if not variants:
        raise CheckpointError("the evaluate stage needs an SNN: run the convert or snn stage first")
    x, y = _test_batch(ctx, ctx.cfg.evaluate.samples)
    # the exact inputs costed, so `python -m snncost evaluate CKPT --data eval_batch.pt` reproduces a report
    atomic_torch_save({"x": x, "y": y}, ctx.run.path / "eval_batch.pt")
    baseline = _cpu(ann) if ann is not None else None
    out = ctx.run.path
    rows, reports = [], {}
    for label, stage, model in variants:
        report = _cost(ctx, model, x, y, baseline, label)
        reports[stage] = report
        _write_report(ctx, out / "reports" / stage, report)
        rows.append({**_row(ctx, label, stage, model, report), **_verify(ctx, model, x)})
    final_stage = variants[-1][1]
    _write_report(ctx, out / "report", reports[final_stage])
    ann_row = _ann_row(ctx, ann, reports[variants[0][1]]) if ann is not None else None
    curve = _temporal_curve(ctx, x, y, baseline)
    noise = _robustness(ctx, ann, variants)
    first = reports[variants[0][1]]
    results = {
        "profile": ctx.cfg.evaluate.profile,
        "dataflow": first.dataflow,
        "ann_dataflow": first.ann_dataflow,
        "conventions": first.conventions,
        "samples_costed": len(x),
        "splits": {
            "train": len(ctx.data.train), "val": len(ctx.data.val), "test": len(ctx.data.test),
            "val_fraction": ctx.cfg.data.val_fraction,
        },
        "accuracy_tolerance": ctx.cfg.evaluate.accuracy_tolerance,
        "variants": ([ann_row] if ann_row else []) + rows,
        "temporal": curve,
        "quantize_sweep": ctx.results.get("quantize", {}).get("sweep"),
        "spatial_plan": ctx.results.get("spatial", {}).get("plan"),
        "robustness": {k: {str(s): a for s, a in v.items()} for k, v in noise.items()},
    }
    results["claims"] = claims_at_matched_accuracy(results["variants"], results["accuracy_tolerance"])
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=float))
    text = results_markdown(results)
    atomic_write_text(out / "results.md", text)
    _plot(ctx, "accuracy-energy", lambda: plot_accuracy_energy(results, out / "accuracy_energy.png"))
    ctx.results["evaluate"] = {"report": reports[final_stage], "results": results}
    ctx.say(text)
    dist.barrier()


def _cpu(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()


def _test_batch(ctx: Context, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(n, len(ctx.data.test))
    loader = ctx.loader("test")
    loader.batch_size = n
    x, y = next(iter(loader))
    return x.cpu(), y.cpu()


def _cost(ctx: Context, model: nn.Module, x, y, baseline, label: str):
    return snncost.evaluate(
        _cpu(model), profile=ctx.cfg.evaluate.profile, data=(x, y), baseline=baseline,
        max_samples=len(x), name=f"{ctx.cfg.name}: {label}", dataflow=ctx.cfg.evaluate.dataflow,
    )  # fmt: skip


def _verify(ctx: Context, model: nn.Module, x) -> dict:
    """The replay against the PyTorch forward pass on the first ``verify_samples`` costed images."""
    n = min(ctx.cfg.evaluate.verify_samples, len(x))
    if n == 0:
        return {"verified_samples": 0}
    from snncost.sim import verify_against_torch

    check = verify_against_torch(_cpu(model), None, x[:n])
    return {
        "verified_samples": n,
        "spikes_compared": int(check["spikes_compared"]),
        "spike_mismatches": int(check["spike_mismatches"]),
        "prediction_agreement": float(check["prediction_agreement"]),
    }


def _row(ctx: Context, label: str, stage: str, model: nn.Module, report) -> dict:
    s, r = report.snn_total, report.ratios
    bits = {row.weight_bits for row in report.snn}
    zero_skip = next((b for b in report.baselines if b.key == "ann-zero-skipping"), None)
    be = report.break_even.network if report.break_even is not None else None
    return {
        "variant": label,
        "stage": stage,
        "timesteps": model.timesteps,
        "weight_bits": max(bits) if bits else 32,
        "params": weight_count(model),
        "val_acc": ctx.results.get(stage, {}).get("val_acc"),
        "test_acc": ctx.results.get(stage, {}).get("test_acc"),
        "replay_acc": report.accuracy,
        "spikes_per_inference": s.spikes,
        "synaptic_ops": s.synaptic_ops + s.macs,
        "energy_synaptic_uj": s.energy_synaptic_pj / 1e6,
        "energy_compute_uj": s.energy_compute_pj / 1e6,
        "energy_total_uj": s.energy_total_pj / 1e6,
        "latency_s": s.latency_s,
        "vs_ann_synaptic_energy": r.synaptic_energy,
        "vs_ann_compute_energy": r.compute_energy,
        "vs_ann_total_energy": r.total_energy,
        "baseline": report.baseline,
        "vs_zero_skipping_ann_total_energy": zero_skip.ratios.total_energy if zero_skip else None,
        "spikes_per_synapse": be.spikes_per_synapse if be else None,
        "break_even_spikes_per_synapse": be.break_even_spikes_per_synapse if be else None,
    }


def _ann_row(ctx: Context, ann: nn.Module, report) -> dict:
    a = report.ann_total
    return {
        "variant": "ANN",
        "stage": "ann",
        "timesteps": 1,
        "weight_bits": 32,
        "params": weight_count(ann),
        "val_acc": ctx.results.get("ann", {}).get("val_acc"),
        "test_acc": ctx.results.get("ann", {}).get("test_acc"),
        "replay_acc": report.ann_accuracy,
        "spikes_per_inference": None,
        "synaptic_ops": a.macs + a.synaptic_ops,
        "energy_synaptic_uj": a.energy_synaptic_pj / 1e6,
        "energy_compute_uj": a.energy_compute_pj / 1e6,
        "energy_total_uj": a.energy_total_pj / 1e6,
        "latency_s": a.latency_s,
        "vs_ann_synaptic_energy": 1.0,
        "vs_ann_compute_energy": 1.0,
        "vs_ann_total_energy": 1.0,
        "baseline": report.baseline,
        "vs_zero_skipping_ann_total_energy": None,
        "spikes_per_synapse": None,
        "break_even_spikes_per_synapse": None,
    }


def _temporal_curve(ctx: Context, x, y, baseline) -> list[dict]:
    """Each step of the temporal schedule, costed: accuracy vs energy vs T."""
    rows = []
    for step in ctx.results.get("temporal", {}).get("schedule", []):
        model = ctx.model(step_name(step["timesteps"]))
        if model is None:
            continue
        report = _cost(ctx, model, x, y, baseline, f"T={step['timesteps']}")
        rows.append(
            {
                **step,
                "energy_synaptic_uj": report.snn_total.energy_synaptic_pj / 1e6,
                "energy_compute_uj": report.snn_total.energy_compute_pj / 1e6,
                "latency_s": report.snn_total.latency_s,
                "vs_ann_synaptic_energy": report.ratios.synaptic_energy,
            }
        )
    return rows


def _robustness(ctx: Context, ann: nn.Module | None, variants) -> dict[str, dict[float, float]]:
    stds = list(ctx.cfg.evaluate.noise_stds)
    if not stds:
        return {}
    models = {}
    if ann is not None:
        models["ANN"] = ann
    models[variants[0][0]] = variants[0][2]
    if len(variants) > 1:
        models[variants[-1][0]] = variants[-1][2]
    loader = ctx.loader("test")
    n = ctx.cfg.evaluate.noise_samples
    if n is not None and n < len(ctx.data.test):  # a fixed stratified subset: same images for every model
        loader.data = ctx.data.test.subset(n, ctx.cfg.seed + 7)
    table = robustness_table(models, loader, stds, seed=ctx.cfg.seed)
    _plot(ctx, "robustness", lambda: plot_robustness(table, ctx.run.path / "robustness.png"))
    return table


def _write_report(ctx: Context, stem, report) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    for ext, text in (("md", report.to_markdown()), ("tex", report.to_latex()), ("json", report.to_json()), ("csv", report.to_csv())):
        atomic_write_text(stem.with_suffix(f".{ext}"), text)
    _plot(ctx, stem.name, lambda: report.plot(stem.with_suffix(".png")))


def _plot(ctx: Context, what: str, draw) -> None:
    """Draw (and close) one figure; a plot that fails is reported and skipped: it must never cost the numbers."""
    draw_figure(draw, lambda exc: ctx.say(f"[evaluate] {what} plot skipped: {exc}"))
