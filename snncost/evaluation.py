"""One-call evaluation: replay an SNN on real inputs and cost it against its ANN baselines.

>>> import snncost
>>> report = snncost.evaluate(model, profile="45nm", data=(x, y))   # doctest: +SKIP
>>> print(report.to_markdown())                                       # doctest: +SKIP

A short orchestration of the parts, each in its own package:

1. :mod:`snncost.inputs` turns the user's model and data into a module and a checked batch;
2. :mod:`snncost.sim` replays the SNN event by event and counts the ANN's events (the
   ANN is also run on the same inputs, for the zero-skipping baseline);
3. :mod:`snncost.costmodel` turns events into operations and accesses under a dataflow,
   prices them on a profile, and finds the break-even activity;
4. :mod:`snncost.report` assembles and renders the :class:`~snncost.report.CostReport`.

:func:`compare_profiles` does steps 1-2 once and prices the replay on several profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snncost.costmodel import (
    CostOptions,
    ann_baselines,
    break_even,
    cost_run,
    feasibility,
    resolve_dataflows,
    silent,
    snn_widths,
)
from snncost.costmodel.conventions import (
    COST_MODELS,
    check_cost_model,
    convention_params,
    convention_run,
    describe,
    setting,
)
from snncost.costmodel.conventions import DEFAULT as DEFAULT_COST_MODEL
from snncost.hardware import HardwareProfile, load_profile
from snncost.inputs import ResolvedData, load_model_input, model_name, resolve_data
from snncost.report.comparison import (
    CostModelComparison,
    ProfileComparison,
    cost_model_row,
    profile_row,
)
from snncost.report.cost_report import CostReport
from snncost.sim.counts import RunCounts

__all__ = ["compare_cost_models", "compare_profiles", "evaluate"]


# ---------------------------------------------------------------------- the replay
@dataclass
class _Replay:
    """Everything profile-independent: done once, priced per profile."""

    model: str
    data: ResolvedData
    timesteps: int
    snn: RunCounts
    ann: RunCounts
    baseline: str
    accuracy: float | None = None
    ann_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)
    graph: Any = None  # the SNN's LayerGraph (conventions that read its structure)


def _has_lif(model: nn.Module) -> bool:
    from snncost.nn import LIF

    return any(isinstance(m, LIF) for m in model.modules())


def _accuracy(logits: Any, y: torch.Tensor | None) -> float | None:
    if y is None or logits is None:
        return None
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) != len(y):
        return None
    return float((logits.argmax(1) == y.numpy()).mean())


def _replay(
    model: Any,
    data: Any = None,
    timesteps: int | None = None,
    baseline: Any = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int = 256,
    verify: bool = False,
    name: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> _Replay:
    from snncost.graph import build_graph
    from snncost.graph.trace import (
        find_encoder,
        has_encoder,
        is_chain_model,
        is_spiking_model,
        static_input,
        trace_graph,
    )
    from snncost.sim import ann_counts, simulate

    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    module, default_name = load_model_input(model, timesteps)
    traced = not is_chain_model(module)  # anything but an nn.Sequential chain is traced
    if not (is_spiking_model(module) if traced else _has_lif(module)):
        raise ValueError(
            "model has no spiking (snncost.nn.LIF) layers: evaluate() costs an SNN; "
            "pass the ANN as baseline= instead"
        )
    module.eval()
    shape = input_shape if input_shape is not None else getattr(module, "input_shape", None)
    if traced:
        if verify:
            raise ValueError(
                "verify=True reruns the model's forward on the replay's inputs, which needs an "
                "nn.Sequential chain of snncost modules; a traced model is checked by its tests"
            )
        data, shape, timesteps = static_input(data, shape, timesteps, has_encoder(module))
    if shape is None:
        raise ValueError("the model has no input_shape attribute: pass input_shape=(C, H, W)")
    shape = tuple(int(s) for s in shape)
    d = resolve_data(data, shape, max_samples, seed)

    try:
        encoder = find_encoder(module) if traced else module.find_encoder()
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"cannot find the model's input encoder: {exc}") from None
    if timesteps is not None and int(timesteps) < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    old_t = encoder.timesteps if encoder is not None else None
    T = int(timesteps) if timesteps is not None else int(old_t)
    notes: list[str] = []
    try:
        if encoder is not None:
            encoder.timesteps = T
        label = name or default_name or ""
        graph = trace_graph(module, shape, T, label) if traced else build_graph(module, shape, name=label)
        labels = d.y.numpy() if d.y is not None else None
        poisson = getattr(encoder, "kind", "") == "poisson"
        old_gen = getattr(encoder, "generator", None)
        if poisson:
            # reproducible input spike trains: the model's own encoder, seeded
            encoder.generator = torch.Generator().manual_seed(seed)
            notes.append(
                f"Poisson input spike trains drawn by the model's encoder with seed {seed}"
            )
        try:
            if verify:
                from snncost.sim import verify_against_torch

                # one run: the PyTorch forward pass, then the replay of the same input spikes
                check = verify_against_torch(
                    module, graph, d.x, batch_size=batch_size, labels=labels
                )
                counts = check["counts"]
                counts.spike_mismatches = int(check["spike_mismatches"])
                counts.spikes_compared = int(check["spikes_compared"])
            else:
                inputs: Any = d.x
                if poisson:
                    with torch.no_grad():
                        inputs = encoder(d.x)  # [T, B, ...] signed spikes
                counts = simulate(graph, inputs, timesteps=T, batch_size=batch_size, labels=labels)
        finally:
            if poisson:
                encoder.generator = old_gen
    finally:
        if encoder is not None:
            encoder.timesteps = old_t

    ann_acc = None
    if baseline is None:
        # the same graph with ReLU for LIF, run on the same inputs (zero-skipping counts)
        ann = ann_counts(graph, shape, inputs=d.x)
        baseline_desc = "equivalent ANN (same graph, ReLU)"
    else:
        base_module, base_name = load_model_input(baseline)
        if _has_lif(base_module):
            raise ValueError("baseline must be an ANN (it has spiking LIF layers)")
        base_module.eval()
        ann = ann_counts(base_module, shape, inputs=d.x)
        baseline_desc = f"ANN {base_name or model_name(base_module)}"
        if d.y is not None:
            with torch.no_grad():
                out = base_module(d.x)
            ann_acc = _accuracy(out.numpy(), d.y)

    return _Replay(
        model=name or default_name or model_name(module),
        data=d,
        timesteps=T,
        snn=counts,
        ann=ann,
        baseline=baseline_desc,
        accuracy=_accuracy(counts.logits, d.y),
        ann_accuracy=ann_acc,
        notes=notes,
        graph=graph,
    )


def _report(
    replay: _Replay,
    profile: HardwareProfile,
    options: CostOptions,
    cost_model: str = DEFAULT_COST_MODEL,
    params: dict[str, Any] | None = None,
) -> CostReport:
    """Price one replay on ``profile``: the SNN, every ANN baseline, and the break-even activity."""
    snn_df, ann_df = resolve_dataflows(profile, options)
    widths = snn_widths(replay.snn, profile)
    baselines = ann_baselines(replay.snn, profile, options.baseline_precision)
    notes = list(replay.notes)
    if cost_model == DEFAULT_COST_MODEL:
        snn = cost_run(replay.snn, profile, widths, snn_df, options)
        runs = [
            cost_run(replay.ann, profile, b.widths, ann_df, options, zero_skipping=b.zero_skipping)
            for b in baselines
        ]
        fixed = cost_run(silent(replay.snn), profile, widths, snn_df, options)
        conventions = options.conventions(snn_df, runs[0].dataflow)
    else:  # a published convention: its own rules, one baseline (the ANN it describes)
        params = {**convention_params(cost_model, replay.graph), **(params or {})}
        snn = convention_run(replay.snn, cost_model, profile, options, **params)
        ann = convention_run(replay.ann, cost_model, profile, options, **params)
        fixed = convention_run(silent(replay.snn), cost_model, profile, options, **params)
        if ann is None:
            notes.append(f"cost model {cost_model} has no model of an ANN: no baseline")
            ann = snn.model_copy(update={"network": "ann", "rows": []})
        baselines, runs = baselines[:1], [ann]
        conventions = [
            f"cost model: {cost_model} ({describe(cost_model)[1]})",
            f"setting: {setting(cost_model, profile, params)}",
        ]
    main = runs[0]
    return CostReport.from_runs(
        snn,
        main,
        extra_baselines=[(b.key, b.description, r) for b, r in zip(baselines[1:], runs[1:], strict=True)],
        model=replay.model,
        profile_description=" ".join(profile.description.split()),
        baseline=f"{replay.baseline}, {baselines[0].description}",
        batch_size=len(replay.data.x),
        data=replay.data.description,
        synthetic_data=replay.data.synthetic,
        accuracy=replay.accuracy,
        ann_accuracy=replay.ann_accuracy,
        spike_mismatches=replay.snn.spike_mismatches,
        spikes_compared=replay.snn.spikes_compared,
        conventions=conventions,
        break_even=break_even(snn.rows, fixed.rows, main.rows, baselines[0].key, replay.timesteps)
        if main.rows
        else None,
        feasibility=feasibility.check(replay.snn, profile),
        notes=notes,
    )


def _options(**kwargs: Any) -> CostOptions:
    """:class:`CostOptions` from evaluate()'s keywords (a ValueError names a bad one)."""
    from pydantic import ValidationError

    try:
        return CostOptions(**kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{where}: {err['msg']} (got {err.get('input')!r})") from None


def evaluate(
    model: nn.Module | str | Path,
    profile: str | Path | HardwareProfile = "45nm",
    data: Any = None,
    timesteps: int | None = None,
    baseline: nn.Module | str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int = 256,
    verify: bool = False,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    dataflow: str | None = None,
    ann_dataflow: str | None = None,
    count_padding: bool = False,
    analog_input: str = "every-step",
    skip_zero_weights: bool = False,
    baseline_precision: str = "same",
    cost_model: str = DEFAULT_COST_MODEL,
    cost_model_params: dict[str, Any] | None = None,
) -> CostReport:
    """Replay an SNN on inputs and return its :class:`CostReport` on ``profile``.

    Parameters
    ----------
    model
        An SNN built from :mod:`snncost.nn` neurons and torch layers (e.g.
        :func:`snncost.models.build_snn`, or a hand-built
        :class:`~snncost.nn.SpikingSequential` starting with an encoder), the
        path of a checkpoint (:func:`snncost.checkpoint.load_model`), or a
        ``nir.NIRGraph`` / NIR file (``.nir``, ``.h5``, ``.hdf5``), imported
        with :func:`snncost.interop.nir.from_nir` (see ``docs/nir.md``). Any
        other ``nn.Module`` (a plain module whose forward uses snncost neurons
        with residual additions, a SpikingJelly multi-step model) is traced
        with :func:`snncost.graph.trace_graph`; without an encoder it needs
        ``timesteps`` and takes ``[B, ...]`` (or ``[T, B, ...]`` constant over
        ``T``) data (docs/simulator.md, "Models you can pass in").
    profile
        A built-in profile name (:func:`snncost.available_profiles`), a YAML
        path, or a :class:`~snncost.hardware.HardwareProfile`.
    data
        A tensor ``[B, C, H, W]``, an ``(x, y)`` pair, a torch ``Dataset`` or
        ``DataLoader`` (up to ``max_samples`` inputs are used), or ``None``:
        a seeded Gaussian batch of ``model.input_shape`` (the report says the
        data are synthetic). With labels, the report gives the SNN accuracy
        computed from the replay's logits.
    timesteps
        Replay with this ``T`` instead of the model's own.
    baseline
        ``None``: the equivalent ANN of the same graph (ReLU instead of LIF,
        the SNN's weights). Or an ANN module / checkpoint (e.g. the unpruned
        ANN). Either is counted on the same inputs, so the report also has a
        zero-skipping row; its precision follows ``baseline_precision``.
    input_shape
        Per-sample shape ``(C, H, W)`` when the model has no ``input_shape``.
    verify
        Also run the PyTorch forward pass and count spike mismatches.
    name
        Model name in the report (default: checkpoint stem or architecture).
    seed
        Seed of synthetic inputs and Poisson spike trains.
    batch_size
        Replay chunk size (memory only; the counts do not depend on it).
    dataflow, ann_dataflow, count_padding, analog_input, skip_zero_weights, baseline_precision
        The cost conventions (:class:`snncost.costmodel.CostOptions`,
        docs/cost_model.md); the report states the ones used. ``dataflow``
        ``None`` is the profile's ``default_dataflow``.
    cost_model, cost_model_params
        ``"snncost"`` (the dataflow-aware model) or a published convention
        (:data:`snncost.costmodel.conventions.COST_MODELS`: ``paper``,
        ``kerasspiking``, ``spikingjelly``, ``spikingjelly-lemaire``,
        ``lemaire2022``, ``spikesim``; docs/cost_models.md), with its own
        parameters (e.g. ``{"device": "loihi"}`` for KerasSpiking, which
        otherwise reads its device from a ``kerasspiking-*`` profile).

    Raises ``ValueError`` for data of the wrong shape (naming the expected
    and actual shapes), an unknown dataflow or option value, and
    :class:`~snncost.hardware.ProfileError` (a ``ValueError``) for an
    unknown profile, listing the available ones.
    """
    options = _options(
        dataflow=dataflow, ann_dataflow=ann_dataflow, count_padding=count_padding,
        analog_input=analog_input, skip_zero_weights=skip_zero_weights,
        baseline_precision=baseline_precision,
    )  # fmt: skip
    check_cost_model(cost_model)
    prof = load_profile(profile)
    resolve_dataflows(prof, options)  # fail fast on an unknown name
    replay = _replay(
        model, data, timesteps, baseline, input_shape, max_samples, verify, name, seed, batch_size
    )
    return _report(replay, prof, options, cost_model, cost_model_params)


def _comparison_fields(replay: _Replay) -> dict[str, Any]:
    """What every comparison table says about the replay it priced."""
    return {
        "model": replay.model,
        "timesteps": replay.timesteps,
        "batch_size": len(replay.data.x),
        "data": replay.data.description,
        "synthetic_data": replay.data.synthetic,
        "accuracy": replay.accuracy,
    }


def compare_profiles(
    model: nn.Module | str | Path,
    profiles: Iterable[str | Path | HardwareProfile] | None = None,
    data: Any = None,
    timesteps: int | None = None,
    baseline: nn.Module | str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int = 256,
    verify: bool = False,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    **cost_options: Any,
) -> ProfileComparison:
    """Replay ``model`` once and price it on every profile (default: all built-in ones).

    Arguments are those of :func:`evaluate` (``cost_options``: its cost
    conventions, e.g. ``dataflow=``; ``None`` = each profile's default).
    Every profile is loaded (and validated) before the replay, so a bad name
    fails fast.
    """
    from snncost.hardware import available_profiles

    options = _options(**cost_options)
    names: Sequence[Any] = list(profiles) if profiles is not None else available_profiles()
    if not names:
        raise ValueError("compare_profiles needs at least one profile")
    loaded = [load_profile(p) for p in names]
    for p in loaded:
        resolve_dataflows(p, options)
    replay = _replay(
        model, data, timesteps, baseline, input_shape, max_samples, verify, name, seed, batch_size
    )
    reports = [_report(replay, p, options) for p in loaded]
    return ProfileComparison(
        **_comparison_fields(replay),
        rows=[profile_row(r) for r in reports],
        reports=reports,
    )


def compare_cost_models(
    model: nn.Module | str | Path,
    cost_models: Iterable[str] | None = None,
    data: Any = None,
    profile: str | Path | HardwareProfile = "45nm",
    timesteps: int | None = None,
    baseline: nn.Module | str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int = 256,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    params: dict[str, dict[str, Any]] | None = None,
    **cost_options: Any,
) -> CostModelComparison:
    """Replay ``model`` once and price it under several cost models (default: all of them).

    One row per convention (:data:`snncost.costmodel.conventions.COST_MODELS`), each
    with its own rules and source, beside snncost's dataflow-aware model on
    ``profile``. ``params`` maps a cost model's name to its parameters
    (e.g. ``{"kerasspiking": {"device": "loihi"}}``); the other arguments are
    those of :func:`evaluate`.
    """
    options = _options(**cost_options)
    names = list(cost_models) if cost_models is not None else list(COST_MODELS)
    if not names:
        raise ValueError("compare_cost_models needs at least one cost model")
    for n in names:
        check_cost_model(n)
    prof = load_profile(profile)
    resolve_dataflows(prof, options)
    replay = _replay(
        model, data, timesteps, baseline, input_shape, max_samples, False, name, seed, batch_size
    )
    params = params or {}
    reports = [_report(replay, prof, options, n, params.get(n)) for n in names]
    return CostModelComparison(
        **_comparison_fields(replay),
        profile=prof.name,
        rows=[
            cost_model_row(n, setting(n, prof, params.get(n)), describe(n)[0], r)
            for n, r in zip(names, reports, strict=True)
        ],
        reports=reports,
    )
