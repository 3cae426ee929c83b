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
- ``accuracy_energy.png`` (accuracy vs compute energy, one point per T of
  the temporal schedule) and ``robustness.png``.
"""

from __future__ import annotations

import copy
import json

import torch
from torch import nn

import snncost
from snncost.checkpoint import CheckpointError, atomic_savefig, atomic_torch_save, atomic_write_text
from trainers import distributed as dist
from trainers.context import Context, weight_count
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
    _plot_accuracy_energy(ctx, results)
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
    try:
        import matplotlib.pyplot as plt

        plt.close(plot_robustness(table, ctx.run.path / "robustness.png"))
    except Exception as exc:  # a plot must never cost the numbers
        ctx.say(f"[evaluate] robustness plot skipped: {exc}")
    return table


def _write_report(ctx: Context, stem, report) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    for ext, text in (("md", report.to_markdown()), ("tex", report.to_latex()), ("json", report.to_json()), ("csv", report.to_csv())):
        atomic_write_text(stem.with_suffix(f".{ext}"), text)
    try:
        import matplotlib.pyplot as plt

        plt.close(report.plot(stem.with_suffix(".png")))
    except Exception as exc:  # a plot must never cost the numbers
        ctx.say(f"[evaluate] plot skipped: {exc}")


def _fmt(v, spec: str, scale: float = 1.0) -> str:
    return "-" if v is None else format(v * scale, spec)


def _ratio(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


#: The seed paper's claims checked on every run: (name, what is compared, threshold, how to read it).
CLAIMS = (
    ("spatial pruning: 10-14x fewer parameters", "params_ratio", 10.0),
    ("temporal pruning: 3-30x fewer timesteps", "timesteps_ratio", 3.0),
    ("8-14x less compute energy than the unpruned ANN", "vs_ann_synaptic_energy", 8.0),
)


def _gap_points(r: dict, ann_acc: float | None) -> float | None:
    if ann_acc is None or r.get("test_acc") is None:
        return None
    return 100.0 * (r["test_acc"] - ann_acc)


def claims_at_matched_accuracy(variants: list[dict], tolerance: float) -> list[dict]:
    """Each paper claim, held only by a variant within ``tolerance`` points of the ANN's accuracy.

    The paper claims its compression and energy at about the ANN's accuracy; a
    ratio reached 7 points below the ANN is a different claim, so both numbers
    are reported: the best value within tolerance and the best value overall
    with its accuracy gap.
    """
    ann = next((r for r in variants if r["stage"] == "ann"), None)
    snn = next((r for r in variants if r["stage"] in ("snn", "convert")), None)
    ann_acc = ann.get("test_acc") if ann else None
    out = []
    for name, key, threshold in CLAIMS:
        values = []
        for r in variants:
            if r["stage"] == "ann":
                continue
            if key == "params_ratio":
                value = ann["params"] / r["params"] if ann and r["params"] else None
            elif key == "timesteps_ratio":
                value = snn["timesteps"] / r["timesteps"] if snn and r["timesteps"] else None
            else:
                value = r.get(key)
            if value is not None:
                values.append((value, _gap_points(r, ann_acc), r["variant"]))
        matched = [v for v in values if v[1] is not None and v[1] >= -tolerance]
        best = max(values, default=None)
        best_matched = max(matched, default=None)
        held = best_matched is not None and best_matched[0] >= threshold
        out.append({
            "claim": name, "threshold": threshold, "tolerance_points": tolerance, "held": held,
            "best_matched": None if best_matched is None else
            {"value": best_matched[0], "gap_points": best_matched[1], "variant": best_matched[2]},
            "best_overall": None if best is None else
            {"value": best[0], "gap_points": best[1], "variant": best[2]},
        })  # fmt: skip
    return out


def results_markdown(results: dict) -> str:
    """The comparison of all variants as Markdown (what ``results.md`` holds)."""
    lines = [
        f"## Model variants on `{results['profile']}` ({results['samples_costed']} test images replayed)",
        "",
        f"Dataflow: SNN {results.get('dataflow', '-')}, ANN {results.get('ann_dataflow', '-')}. "
        "Conventions: " + "; ".join(results.get("conventions", [])) + ".",
        "Each ANN/SNN ratio is against the baseline named in its row (b1, b2, ... below); "
        "`zero-skip` is the same baseline performing MACs only on nonzero activations. "
        "Spikes/synapse and break-even are per inference (ACs / real-tap synapses).",
        "",
        "| variant | T | bits | params | test acc | acc vs ANN (pts) | spikes/img | synaptic energy (µJ) | compute energy (µJ) "
        "| total energy (µJ) | baseline | ANN/SNN synaptic | ANN/SNN compute | ANN/SNN total | zero-skip ANN/SNN total "
        "| spikes/synapse | break-even |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|",
    ]
    keys: dict[str, str] = {}
    ann_acc = next((r.get("test_acc") for r in results["variants"] if r["stage"] == "ann"), None)
    for r in results["variants"]:
        key = keys.setdefault(r.get("baseline") or "-", f"b{len(keys) + 1}")
        gap = _gap_points(r, ann_acc)
        lines.append(
            f"| {r['variant']} | {r['timesteps']} | {r['weight_bits']} | {r['params']:,} | "
            f"{_fmt(r['test_acc'], '.2f', 100)}% | {'-' if gap is None else f'{gap:+.2f}'} | "
            f"{_fmt(r['spikes_per_inference'], ',.0f')} | "
            f"{_fmt(r['energy_synaptic_uj'], '.3f')} | {_fmt(r['energy_compute_uj'], '.3f')} | "
            f"{_fmt(r['energy_total_uj'], '.3f')} | {key} | {_fmt(r['vs_ann_synaptic_energy'], '.2f')}x | "
            f"{_fmt(r['vs_ann_compute_energy'], '.2f')}x | {_fmt(r['vs_ann_total_energy'], '.2f')}x | "
            f"{_ratio(r.get('vs_zero_skipping_ann_total_energy'))} | "
            f"{_fmt(r.get('spikes_per_synapse'), '.3f')} | {_fmt(r.get('break_even_spikes_per_synapse'), '.3f')} |"
        )
    lines += [""] + [f"- {k}: {text}" for text, k in keys.items()]
    checked = [r for r in results["variants"] if r.get("verified_samples")]
    if checked:
        lines += ["", "Replay vs PyTorch on the first costed images: " + "; ".join(
            f"{r['variant']} {r['spike_mismatches']} spike mismatches in {r['spikes_compared']:,} "
            f"({r['verified_samples']} images, predictions agree {100 * r['prediction_agreement']:.1f}%)"
            for r in checked
        ) + "."]  # fmt: skip
    if results.get("claims"):
        tol = results.get("accuracy_tolerance", 1.0)
        lines += ["", f"## The paper's claims at matched accuracy (within {tol:g} point of the ANN)", "",
                  "| claim | held? | best within tolerance | best overall |", "|:---|:---|:---|:---|"]  # fmt: skip

        def cell(b: dict | None) -> str:
            if b is None:
                return "-"
            gap = "" if b["gap_points"] is None else f", {b['gap_points']:+.2f} pts"
            return f"{b['value']:.2f}x ({b['variant']}{gap})"

        for c in results["claims"]:
            lines.append(f"| {c['claim']} | {'yes' if c['held'] else 'no'} | {cell(c['best_matched'])} | "
                         f"{cell(c['best_overall'])} |")  # fmt: skip
    if results["temporal"]:
        lines += ["", "## Temporal pruning schedule", "", "| T | test acc | spikes/img | synaptic energy (µJ) | ANN/SNN synaptic | kept |", "|---:|---:|---:|---:|---:|:---|"]
        for r in results["temporal"]:
            lines.append(
                f"| {r['timesteps']} | {_fmt(r['test_acc'], '.2f', 100)}% | {_fmt(r['spikes_per_inference'], ',.0f')} | "
                f"{_fmt(r['energy_synaptic_uj'], '.3f')} | {_fmt(r['vs_ann_synaptic_energy'], '.2f')}x | {'yes' if r.get('kept') else 'no'} |"
            )
    if results.get("quantize_sweep"):
        lines += ["", "## Post-training weight quantization", "", "| weights | test acc |", "|:---|---:|"]
        for r in results["quantize_sweep"]:
            name = "float32" if r["number_format"] == "float" else f"int{r['bits']}"
            lines.append(f"| {name} | {_fmt(r['test_acc'], '.2f', 100)}% |")
    if results["robustness"]:
        stds = list(next(iter(results["robustness"].values())))
        lines += ["", "## Accuracy under Gaussian input noise", "", "| model | " + " | ".join(f"σ={s}" for s in stds) + " |"]
        lines.append("|:---|" + "---:|" * len(stds))
        for name, accs in results["robustness"].items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * accs[s]:.2f}%" for s in stds) + " |")
    return "\n".join(lines) + "\n"


def _plot_accuracy_energy(ctx: Context, results: dict) -> None:
    try:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4))
        curve = results["temporal"]
        if curve:
            ax.plot([r["energy_synaptic_uj"] for r in curve], [100 * r["test_acc"] for r in curve], "o-", color="tab:blue", label="temporal schedule")
            for r in curve:
                ax.annotate(f"T={r['timesteps']}", (r["energy_synaptic_uj"], 100 * r["test_acc"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for r in results["variants"]:
            if r["test_acc"] is not None:
                ax.scatter([r["energy_synaptic_uj"]], [100 * r["test_acc"]], marker="s", zorder=3)
                ax.annotate(r["variant"], (r["energy_synaptic_uj"], 100 * r["test_acc"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(f"synaptic compute energy per inference (µJ, {results['profile']})")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        atomic_savefig(fig, ctx.run.path / "accuracy_energy.png", dpi=150)
        plt.close(fig)
    except Exception as exc:  # a plot must never cost the numbers
        ctx.say(f"[evaluate] accuracy-energy plot skipped: {exc}")

