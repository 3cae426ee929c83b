"""What every pipeline stage shares: the :class:`Context` and the resumable training loop.

A stage is a function ``stage(ctx)`` (see :mod:`trainers.stages`). It finds
the models of earlier stages with :meth:`Context.model` (in memory, or
rebuilt from that stage's finished checkpoint, which is self-describing:
spec, neurons, quantization, weights), trains with :func:`train_stage`
(one checkpoint per epoch, resumable), and stores its finished model and
metrics with :meth:`Context.finish`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from snncost import checkpoint as _ckpt
from snncost.checkpoint import (
    CheckpointError,
    crash_point,
    load_state_dict_checked,
    model_record,
    rebuild_model,
)
from snncost.models import (
    ARCHS,
    NeuronConfig,
    ResNetSpec,
    Spec,
    VGGSpec,
    spec_from_arch,
    spiking_layers,
)
from trainers import distributed as dist
from trainers.config import OptimConfig, RunConfig
from trainers.data import BatchLoader, DataBundle
from trainers.engine import (
    NonFiniteLossError,
    evaluate,
    make_optimizer,
    make_scheduler,
    train_epoch,
)
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

    def loader(self, split: str, shuffle: bool = False, augment: bool = False, shard: bool = False) -> BatchLoader:
        """Batches of ``split`` (train, val or test); ``shard`` splits each epoch across distributed ranks."""
        d = self.data
        splits = {"train": d.train, "val": d.val, "test": d.test}
        if split not in splits:
            raise ValueError(f"Context.loader: unknown split {split!r}; choose one of {', '.join(splits)}")
        rank, world = (dist.rank(), dist.world_size()) if shard else (0, 1)
        return BatchLoader(
            splits[split],
            self.cfg.data.batch_size // world if shard else self.cfg.data.batch_size,
            d.mean,
            d.std,
            shuffle=shuffle,
            augment=augment,
            device=self.device,
            channels_last=self.cfg.channels_last,
            seed=self.cfg.seed,
            rank=rank,
            world=world,
        )

    def place(self, model: nn.Module) -> nn.Module:
        """``model`` on the run's device, its conv weights channels-last when ``channels_last`` is set."""
        if self.cfg.channels_last:
            return model.to(self.device, memory_format=torch.channels_last)
        return model.to(self.device)

    def evaluate_final(self, model: nn.Module, stage: str) -> dict:
        """A finished model's metrics: validation (what later choices read) and test, read once here.

        Spikes per inference are the test split's, as reported. (A fresh
        validation pass rather than the last epoch's: with Poisson inputs it
        draws random numbers, and a run resumed after its last epoch must
        draw the same ones.)
        """
        show = self.cfg.progress and dist.is_main()
        val = evaluate(model, self.loader("val"), f"{stage} val", show, split="val")
        test = evaluate(model, self.loader("test"), f"{stage} test", show, split="test")
        return {"val_loss": val["val_loss"], "val_acc": val["val_acc"], **test}

    def say(self, text: str) -> None:
        if dist.is_main():
            print(text, flush=True)

    # ------------------------------------------------------------ models of stages
    def model(self, stage: str) -> nn.Module | None:
        """The finished model of ``stage``: in memory, else rebuilt from its checkpoint, else None."""
        if stage in self.models:
            return self.models[stage]
        data = self.run.finished(stage)
        if data is None:
            return None
        model = self.place(rebuild_model(data, str(self.run.stage_file(stage))))
        self.models[stage] = model
        self.results.setdefault(stage, data.get("metrics", {}))
        return model

    def require(self, *stages: str) -> nn.Module:
        """The first available model among ``stages`` (most compressed first); fails naming them."""
        return self.latest(*stages)[1]

    def latest(self, *stages: str) -> tuple[str, nn.Module]:
        """``(stage, model)`` of the first available model among ``stages``; fails naming them."""
        for stage in stages:
            model = self.model(stage)
            if model is not None:
                return stage, model
        raise CheckpointError(
            f"this stage needs the model of {' or '.join(map(repr, stages))}: "
            f"run that stage first (no finished checkpoint in {self.run.checkpoints})"
        )

    def restore(self, stage: str) -> bool:
        """Load ``stage``'s finished model and metrics if it is done; True when skipped."""
        if stage in self.models and stage in self.results:
            return True
        if self.model(stage) is None:
            return False
        self.say(f"[{stage}] already done ({self.run.stage_file(stage)}), skipping")
        return True

    def finish(self, stage: str, model: nn.Module, metrics: dict, history: list[dict], **extra) -> None:
        """Write ``stage``'s finished checkpoint (atomically, rank 0) and keep its model and metrics."""
        if dist.is_main():
            self.run.save_finished(stage, {**record_of(model), "metrics": metrics, **extra}, history)
        dist.barrier()
        self.models[stage], self.results[stage] = model, metrics
        crash_point(f"after:{stage}")  # fault-injection hook of the crash-safety tests (no-op unless set)


def record_of(model: nn.Module) -> dict:
    """The self-describing checkpoint record of a zoo model (VGG or ResNet, ANN or SNN)."""
    neurons = getattr(model, "neurons", None)
    form = "snn" if spiking_layers(model) else "ann"
    return model_record(model, model.spec, form, neurons)


def weight_count(model: nn.Module) -> int:
    """Synaptic weights of the conv/linear layers (what spatial pruning shrinks)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def model_spec(cfg: RunConfig, data: DataBundle) -> Spec:
    """The network ``model.*`` describes, shaped for ``data`` (VGG or ResNet by ``model.arch``)."""
    m = cfg.model
    if ARCHS.get(m.arch) is ResNetSpec:
        return _resnet_spec(cfg, data)
    if m.widths is not None:
        raise ValueError("model.widths sets ResNet widths; VGGs take model.features and model.classifier")
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


def _resnet_spec(cfg: RunConfig, data: DataBundle) -> ResNetSpec:
    """``model.arch`` a ResNet: ``model.widths`` (stem then stages) and ``model.classifier`` (head) resize it."""
    m = cfg.model
    if m.features is not None or m.pool != "avg":
        raise ValueError(f"model.arch={m.arch} is a ResNet: model.features and model.pool apply to VGGs only")
    base = spec_from_arch(m.arch)
    sizes: dict = {}
    if m.widths is not None:
        if len(m.widths) != len(base.widths) + 1:
            raise ValueError(
                f"model.widths for {m.arch} needs {len(base.widths) + 1} entries (stem, then "
                f"{len(base.widths)} stages), got {m.widths}"
            )
        sizes = {"stem": m.widths[0], "widths": list(m.widths[1:])}
    if m.classifier is not None:
        sizes["head"] = list(m.classifier)
    return ResNetSpec.from_arch(
        m.arch,
        **sizes,
        in_channels=data.in_channels,
        image_size=data.image_size,
        num_classes=data.num_classes,
        bias=m.bias,
        dropout=m.dropout,
    )


def neuron_config(cfg: RunConfig) -> NeuronConfig:
    """The SNN's neuron settings: every :class:`NeuronConfig` field that ``snn.*`` sets."""
    shared = [f.name for f in fields(NeuronConfig) if f.name in type(cfg.snn).model_fields]
    return NeuronConfig(**{name: getattr(cfg.snn, name) for name in shared})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device=cuda but no CUDA device is available (use device=cpu or auto)")
        return torch.device("cuda", dist.local_rank())
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


def scalar_metrics(ev: dict) -> dict:
    """The JSON-lines-friendly part of an evaluation (no per-layer dicts)."""
    return {k: v for k, v in ev.items() if not isinstance(v, dict)}


def train_stage(ctx: Context, stage: str, model: nn.Module, ocfg: OptimConfig, extra: dict | None = None) -> tuple[dict, list[dict]]:
    """Train ``model`` for ``ocfg.epochs`` epochs, checkpointing every epoch; resumable.

    A ``<stage>-last`` checkpoint holds weights, optimiser, scheduler and RNG
    states after the last finished epoch, so a re-run continues exactly where
    an interrupted one stopped. Under ``torchrun`` the model is wrapped in
    DistributedDataParallel, each rank sees its shard of every batch, and
    only rank 0 writes. Returns the final evaluation and the history.
    """
    opt = make_optimizer(model, ocfg)
    sched = make_scheduler(opt, ocfg)
    train_loader = ctx.loader("train", shuffle=True, augment=ctx.cfg.data.augment, shard=True)
    val_loader = ctx.loader("val")
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
    trained = dist.wrap(model)
    show = ctx.cfg.progress and dist.is_main()
    for epoch in range(start, ocfg.epochs):
        t0 = time.perf_counter()
        train_loader.set_epoch(epoch)
        lr = opt.param_groups[0]["lr"]
        crash_tag = f"batch:{stage}:{epoch + 1}" if _ckpt.CRASH_AT is not None else None
        try:
            tr = train_epoch(
                trained, train_loader, opt, f"{stage} {epoch + 1}/{ocfg.epochs}", show,
                crash_tag=crash_tag, nan_tag=f"{stage}:{epoch + 1}",
            )  # fmt: skip
        except NonFiniteLossError as exc:  # under torchrun: raised by every rank at the same batch
            last = ctx.run.progress_file(stage)
            kept = f"the last good checkpoint {last} (epoch {epoch}) is kept" if epoch > 0 else "no epoch of it was saved"
            raise NonFiniteLossError(f"stage {stage!r} stopped: {exc}; {kept}") from None
        tr = dist.mean_over_ranks(tr, 1.0)  # equal shards: the plain mean is the global one
        sched.step()
        ev = evaluate(model, val_loader, f"{stage} val", show, split="val")
        rec = {"stage": stage, "epoch": epoch + 1, "lr": lr, **(extra or {}), **tr, **scalar_metrics(ev)}
        rec["seconds"] = time.perf_counter() - t0
        history.append(rec)
        if dist.is_main():
            ctx.run.save_progress(
                stage,
                {
                    **record_of(model),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": _rng_state(ctx.device),
                    "epoch": epoch + 1,
                },
                history,
            )
        dist.barrier()
        spikes = f" spikes/img {ev['spikes_per_inference']:.0f}" if "spikes_per_inference" in ev else ""
        ctx.say(
            f"[{stage}] epoch {epoch + 1}/{ocfg.epochs} loss {tr['train_loss']:.4f} "
            f"train {tr['train_acc']:.4f} val {ev['val_acc']:.4f}{spikes} ({rec['seconds']:.1f}s)"
        )
    final = ctx.evaluate_final(model, stage)
    return final, history
