"""The training pipeline: stages ``ann -> convert -> snn -> evaluate``.

Each stage reads the previous stage's model from its finished checkpoint,
does its work, and writes its own finished checkpoint; a stage that finds
its checkpoint already there is skipped, and a training stage that finds a
``-last`` checkpoint continues from that epoch (with the optimiser,
scheduler and RNG states), so an interrupted run, re-run, ends with the same
weights and metrics as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from snncost.checkpoint import CheckpointError, load_state_dict_checked, model_record
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn, spiking_layers
from trainers.config import OptimConfig, RunConfig
from trainers.convert import convert
from trainers.data import BatchLoader, DataBundle, load_data
from trainers.engine import evaluate, make_optimizer, make_scheduler, train_epoch
from trainers.rundir import RunDir


@dataclass
class Context:
    """What the stages share: config, run directory, data, device and results."""

    cfg: RunConfig
    run: RunDir
    data: DataBundle
    device: torch.device
    models: dict[str, nn.Module] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)

    def loader(self, split: str, shuffle: bool = False, augment: bool = False) -> BatchLoader:
        d = self.data
        return BatchLoader(
            d.train if split == "train" else d.test,
            self.cfg.data.batch_size,
            d.mean,
            d.std,
            shuffle=shuffle,
            augment=augment,
            device=self.device,
            seed=self.cfg.seed,
        )

    def say(self, text: str) -> None:
        print(text, flush=True)


def model_spec(cfg: RunConfig, data: DataBundle) -> VGGSpec:
    m = cfg.model
    common = dict(
        in_channels=data.in_channels,
        image_size=data.image_size,
        num_classes=data.num_classes,
        pool=m.pool,
        bias=m.bias,
        dropout=m.dropout,
    )
    if m.arch == "custom":
        if m.features is None or m.classifier is None:
            raise ValueError("model.arch=custom needs model.features and model.classifier")
        return VGGSpec(features=list(m.features), classifier=list(m.classifier), **common)
    spec = VGGSpec.from_arch(m.arch, **common)
    if m.features is not None or m.classifier is not None:
        spec = VGGSpec(
            features=list(m.features or spec.features), classifier=list(m.classifier or spec.classifier), **common
        )
    return spec


def neuron_config(cfg: RunConfig) -> NeuronConfig:
    s = cfg.snn
    return NeuronConfig(
        timesteps=s.timesteps,
        encoding=s.encoding,
        leak=s.leak,
        learn_threshold=s.learn_threshold,
        learn_leak=s.learn_leak,
        surrogate=s.surrogate,
        slope=s.slope,
        detach_reset=s.detach_reset,
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)


# ---------------------------------------------------------------- training with resume


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train_stage(ctx: Context, stage: str, model: nn.Module, ocfg: OptimConfig, form: str, neurons=None) -> dict:
    """Train ``model`` for ``ocfg.epochs`` epochs, checkpointing every epoch."""
    opt = make_optimizer(model, ocfg)
    sched = make_scheduler(opt, ocfg)
    train_loader = ctx.loader("train", shuffle=True, augment=ctx.cfg.data.augment)
    test_loader = ctx.loader("test")
    start, history = 0, []
    state = ctx.run.in_progress(stage)
    if state is not None:
        origin = str(ctx.run.progress_file(stage))
        load_state_dict_checked(model, state["state_dict"], origin)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], ctx.device)
        start, history = state["epoch"], state["history"]
        ctx.say(f"[{stage}] resuming after epoch {start}/{ocfg.epochs} from {origin}")
    spec = model.spec
    for epoch in range(start, ocfg.epochs):
        t0 = time.perf_counter()
        train_loader.set_epoch(epoch)
        lr = opt.param_groups[0]["lr"]
        tr = train_epoch(model, train_loader, opt, f"{stage} {epoch + 1}/{ocfg.epochs}", ctx.cfg.progress)
        sched.step()
        ev = evaluate(model, test_loader, f"{stage} eval", ctx.cfg.progress)
        rec = {"stage": stage, "epoch": epoch + 1, "lr": lr, **tr, **_scalar(ev), "seconds": time.perf_counter() - t0}
        history.append(rec)
        ctx.run.save_progress(
            stage,
            {
                **model_record(model, spec, form, neurons),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": _rng_state(ctx.device),
                "epoch": epoch + 1,
            },
            history,
        )
        extra = f" spikes/img {ev['spikes_per_inference']:.0f}" if "spikes_per_inference" in ev else ""
        ctx.say(
            f"[{stage}] epoch {epoch + 1}/{ocfg.epochs} loss {tr['train_loss']:.4f} "
            f"train {tr['train_acc']:.4f} test {ev['test_acc']:.4f}{extra} ({rec['seconds']:.1f}s)"
        )
    final = evaluate(model, test_loader, f"{stage} eval", ctx.cfg.progress)
    ctx.run.save_finished(stage, {**model_record(model, spec, form, neurons), "metrics": final}, history)
    return final


def _scalar(ev: dict) -> dict:
    return {k: v for k, v in ev.items() if not isinstance(v, dict)}


def _restore(ctx: Context, stage: str, model: nn.Module) -> dict | None:
    """Load a finished stage's weights into ``model``; its metrics, or None if not finished."""
    data = ctx.run.finished(stage)
    if data is None:
        return None
    load_state_dict_checked(model, data["state_dict"], str(ctx.run.stage_file(stage)))
    if "timesteps" in data:
        model.timesteps = data["timesteps"]
    ctx.say(f"[{stage}] already done ({ctx.run.stage_file(stage)}), skipping")
    return data.get("metrics", {})


# ---------------------------------------------------------------- stages


def stage_ann(ctx: Context) -> None:
    spec = model_spec(ctx.cfg, ctx.data)
    torch.manual_seed(ctx.cfg.seed)
    ann = build_ann(spec).to(ctx.device)
    metrics = _restore(ctx, "ann", ann)
    if metrics is None:
        metrics = train_stage(ctx, "ann", ann, ctx.cfg.ann, "ann")
    ctx.models["ann"], ctx.results["ann"] = ann, metrics


def stage_convert(ctx: Context) -> None:
    spec = model_spec(ctx.cfg, ctx.data)
    neurons = neuron_config(ctx.cfg)
    torch.manual_seed(ctx.cfg.seed + 1)
    snn = build_snn(spec, neurons).to(ctx.device)
    metrics = _restore(ctx, "convert", snn)
    if metrics is None:
        ann = _require(ctx, "ann")
        conv_t = ctx.cfg.convert.timesteps or neurons.timesteps
        snn.timesteps = conv_t
        thresholds = convert(ann, snn, ctx.loader("train", shuffle=True), ctx.cfg.convert.percentile, ctx.cfg.convert.batches)
        snn.timesteps = neurons.timesteps
        metrics = evaluate(snn, ctx.loader("test"), "convert eval", ctx.cfg.progress)
        metrics["thresholds"] = thresholds
        rec = {"stage": "convert", "epoch": 0, "timesteps": snn.timesteps, **_scalar(metrics)}
        ctx.run.save_finished("convert", {**model_record(snn, spec, "snn", neurons), "metrics": metrics}, [rec])
        ctx.say(
            f"[convert] T={snn.timesteps} test {metrics['test_acc']:.4f} "
            f"thresholds {', '.join(f'{t:.3g}' for t in thresholds)}"
        )
    ctx.models["convert"], ctx.results["convert"] = snn, metrics


def stage_snn(ctx: Context) -> None:
    spec = model_spec(ctx.cfg, ctx.data)
    neurons = neuron_config(ctx.cfg)
    snn = build_snn(spec, neurons).to(ctx.device)
    metrics = _restore(ctx, "snn", snn)
    if metrics is None:
        init = ctx.models.get("convert") or _load_finished(ctx, "convert", snn)
        if init is not None and init is not snn:
            snn.load_state_dict(init.state_dict())
        snn.timesteps = neurons.timesteps
        metrics = train_stage(ctx, "snn", snn, ctx.cfg.snn, "snn", neurons)
    ctx.models["snn"], ctx.results["snn"] = snn, metrics


def _load_finished(ctx: Context, stage: str, like: nn.Module) -> nn.Module | None:
    data = ctx.run.finished(stage)
    if data is None:
        return None
    load_state_dict_checked(like, data["state_dict"], str(ctx.run.stage_file(stage)))
    return like


def _require(ctx: Context, stage: str) -> nn.Module:
    if stage in ctx.models:
        return ctx.models[stage]
    raise CheckpointError(f"stage {stage!r} must run (or have finished in {ctx.run.path}) before this one")


def stage_evaluate(ctx: Context) -> None:
    """Cost the final SNN on the hardware profile with the event-driven simulator."""
    import snncost

    snn = ctx.models.get("snn") or ctx.models.get("convert")
    if snn is None:
        raise CheckpointError("the evaluate stage needs an SNN: run the convert or snn stage first")
    n = min(ctx.cfg.evaluate.samples, len(ctx.data.test))
    loader = ctx.loader("test")
    loader.batch_size = n
    x, y = next(iter(loader))
    report = snncost.evaluate(
        snn.cpu().eval(),
        profile=ctx.cfg.evaluate.profile,
        data=(x.cpu(), y.cpu()),
        baseline=ctx.models["ann"].cpu().eval() if "ann" in ctx.models else None,
        name=ctx.cfg.name,
    )
    snn.to(ctx.device)
    out = ctx.run.path
    from snncost.checkpoint import atomic_write_text

    atomic_write_text(out / "report.md", report.to_markdown())
    atomic_write_text(out / "report.tex", report.to_latex())
    atomic_write_text(out / "report.json", report.to_json())
    atomic_write_text(out / "report.csv", report.to_csv())
    try:
        import matplotlib.pyplot as plt

        fig = report.plot(out / "report.png")
        plt.close(fig)
    except Exception as exc:  # a plot must never cost the numbers
        ctx.say(f"[evaluate] plot skipped: {exc}")
    ctx.results["evaluate"] = {"report": report}
    ctx.say(report.to_markdown())


STAGE_FUNCS = {"ann": stage_ann, "convert": stage_convert, "snn": stage_snn, "evaluate": stage_evaluate}


def run_pipeline(cfg: RunConfig) -> Context:
    """Run (or resume) every configured stage; returns the context with results."""
    run = RunDir(cfg)
    resuming = run.open()
    device = resolve_device(cfg.device)
    data = load_data(cfg.data, cfg.seed)
    ctx = Context(cfg, run, data, device)
    ctx.say(
        f"run {cfg.name} in {run.path} ({'resuming' if resuming else 'new'}) on {device}: "
        f"{data.name} {len(data.train)} train / {len(data.test)} test images, "
        f"{data.in_channels}x{data.image_size}x{data.image_size}, {data.num_classes} classes"
    )
    stages = list(cfg.stages)
    # a later stage that needs an earlier model can read it from its checkpoint
    for stage in ("ann", "convert"):
        if stage not in stages and any(s in stages for s in ("convert", "snn", "evaluate")):
            _load_side_model(ctx, stage)
    for stage in stages:
        STAGE_FUNCS[stage](ctx)
    return ctx


def _load_side_model(ctx: Context, stage: str) -> None:
    spec = model_spec(ctx.cfg, ctx.data)
    model = build_ann(spec) if stage == "ann" else build_snn(spec, neuron_config(ctx.cfg))
    if _load_finished(ctx, stage, model.to(ctx.device)) is not None:
        ctx.models[stage] = model


def summary_table(ctx: Context) -> str:
    """The final table: one row per model with accuracy, T and spikes."""
    rows = [("stage", "model", "T", "test acc", "spikes/img", "params")]
    for stage in ("ann", "convert", "snn"):
        if stage not in ctx.results:
            continue
        model, m = ctx.models[stage], ctx.results[stage]
        t = str(model.timesteps) if spiking_layers(model) else "-"
        spikes = f"{m['spikes_per_inference']:.0f}" if "spikes_per_inference" in m else "-"
        params = sum(p.numel() for p in model.parameters())
        rows.append((stage, "SNN" if spiking_layers(model) else "ANN", t, f"{100 * m['test_acc']:.2f}%", spikes, f"{params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
