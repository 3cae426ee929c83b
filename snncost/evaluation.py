"""One-call evaluation: replay an SNN on real inputs and cost it against its ANN baselines.

>>> import snncost
>>> report = snncost.evaluate(model, profile="45nm", data=(x, y))   # doctest: +SKIP
>>> print(report.to_markdown())                                       # doctest: +SKIP

A short orchestration of the parts, each in its own package:

1. :mod:`snncost.inputs` turns the user's model and data into a module and a lazy
   stream of checked batches;
2. :mod:`snncost.sim` replays the SNN event by event and counts the ANN's events (the
   ANN is also run on the same inputs, for the zero-skipping baseline), batch by batch,
   summing the counts (:meth:`~snncost.sim.counts.RunCounts.merge`) so memory does
   not grow with the number of inputs;
3. :mod:`snncost.costmodel` turns events into operations and accesses under a dataflow,
   prices them on a profile, and finds the break-even activity;
4. :mod:`snncost.report` assembles and renders the :class:`~snncost.report.CostReport`.

:func:`compare_profiles` does steps 1-2 once and prices the replay on several profiles.
"""

from __future__ import annotations

import sys
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
from snncost.inputs import load_model_input, model_name, stream_data
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
    samples: int
    data: str  # what the inputs were, with their count
    synthetic: bool
    timesteps: int
    snn: RunCounts
    ann: RunCounts
    baseline: str
    accuracy: float | None = None
    ann_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)
    graph: Any = None  # the SNN's LayerGraph (conventions that read its structure)


@dataclass
class _Tally:
    """Running totals over streamed batches: merged counts and correct predictions.

    Logits are reduced to a correct count batch by batch and then dropped, so
    the memory a replay holds does not grow with the number of samples.
    """

    snn: RunCounts | None = None
    ann: RunCounts | None = None
    samples: int = 0
    snn_correct: int | None = 0
    ann_correct: int | None = 0

    def add(self, snn: RunCounts, ann: RunCounts, y: torch.Tensor | None, ann_logits: Any) -> None:
        self.snn_correct = _sum(self.snn_correct, _correct(snn.logits, y))
        self.ann_correct = _sum(self.ann_correct, _correct(ann_logits, y))
        snn.logits = snn.labels = None
        self.snn = snn if self.snn is None else self.snn.merge(snn)
        self.ann = ann if self.ann is None else self.ann.merge(ann)
        self.samples += snn.batch_size

    def accuracy(self, correct: int | None) -> float | None:
        return None if correct is None or not self.samples else correct / self.samples


def _correct(logits: Any, y: torch.Tensor | None) -> int | None:
    """Correct top-1 predictions of one batch (None without labels or class logits)."""
    if y is None or logits is None:
        return None
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) != len(y):
        return None
    return int((logits.argmax(1) == y.numpy()).sum())


def _sum(total: int | None, part: int | None) -> int | None:
    return None if total is None or part is None else total + part


def _progress_bar(progress: bool | None, total: int | None) -> Any:
    """A tqdm bar on stderr over samples; ``progress`` None: only when stderr is a terminal."""
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(total=total, unit="sample", desc="replay", disable=disable, leave=False, file=sys.stderr)


def _replay(
    model: Any,
    data: Any = None,
    timesteps: int | None = None,
    baseline: Any = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int | str = 256,
    verify: bool = False,
    name: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool | None = False,
) -> _Replay:
    """Replay ``model`` on ``data`` batch by batch and count its SNN and ANN events."""
    from snncost.graph.trace import (
        find_encoder,
        graph_of,
        has_encoder,
        is_chain_model,
        is_spiking_model,
        static_input,
    )
    from snncost.sim import ann_counts, simulate

    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    batch_size = int(batch_size)
    module, default_name = load_model_input(model, timesteps)
    traced = not is_chain_model(module)  # anything but an nn.Sequential chain is traced
    if not is_spiking_model(module):
        raise ValueError(
            "model has no spiking (snncost.nn.LIF) layers: evaluate() costs an SNN; "
            "pass the ANN as baseline= instead"
        )
    module.eval()
    shape = input_shape if input_shape is not None else getattr(module, "input_shape", None)
    if traced:
        if verify and not has_encoder(module):
            raise ValueError(
                "verify=True reruns the model's forward on the replay's inputs and compares the spikes "
                "of its snncost LIF modules, so it needs a model of snncost modules with an encoder "
                "(a SpikingJelly model is checked by the tests against its own forward)"
            )
        data, shape, timesteps = static_input(data, shape, timesteps, has_encoder(module))
    if shape is None:
        raise ValueError("the model has no input_shape attribute: pass input_shape=(C, H, W)")
    shape = tuple(int(s) for s in shape)
    stream = stream_data(data, shape, max_samples, seed, batch_size)

    try:
        encoder = find_encoder(module) if traced else module.find_encoder()
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"cannot find the model's input encoder: {exc}") from None
    if timesteps is not None and int(timesteps) < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    base_module = base_graph = None
    baseline_desc = "equivalent ANN (same graph, ReLU)"
    if baseline is not None:
        base_module, base_name = load_model_input(baseline)
        if is_spiking_model(base_module):
            raise ValueError("baseline must be an ANN (it has spiking LIF layers)")
        base_module.eval()
        if is_chain_model(base_module):
            base_graph = graph_of(base_module, shape)
        else:  # a residual ANN of the zoo: its spiking twin's graph, run as an ANN by ann_counts
            from snncost.models.zoo import spiking_twin

            base_graph = graph_of(spiking_twin(base_module), shape)
        baseline_desc = f"ANN {base_name or model_name(base_module)}"
    old_t = encoder.timesteps if encoder is not None else None
    T = int(timesteps) if timesteps is not None else int(old_t)
    notes: list[str] = []
    tally = _Tally()
    try:
        if encoder is not None:
            encoder.timesteps = T
        label = name or default_name or ""
        graph = graph_of(module, shape, T, label)
        poisson = getattr(encoder, "kind", "") == "poisson"
        old_gen = getattr(encoder, "generator", None)
        if poisson:
            # reproducible input spike trains: the model's own encoder, seeded, batch after batch
            encoder.generator = torch.Generator().manual_seed(seed)
            notes.append(
                f"Poisson input spike trains drawn by the model's encoder with seed {seed}, "
                f"batch after batch ({batch_size} inputs each)"
            )
        bar = _progress_bar(progress, stream.total)
        try:
            for x, y in stream:
                labels = y.numpy() if y is not None else None
                if verify:
                    from snncost.sim import verify_against_torch

                    # one run: the PyTorch forward pass, then the replay of the same input spikes
                    counts = verify_against_torch(
                        module, graph, x, batch_size=batch_size, labels=labels
                    )["counts"]
                    counts.extra.pop("spikes", None)  # compared already; not kept across batches
                else:
                    inputs: Any = x
                    if poisson:
                        with torch.no_grad():
                            inputs = encoder(x)  # [T, b, ...] signed spikes
                    counts = simulate(graph, inputs, timesteps=T, batch_size=batch_size, labels=labels)
                ann_logits = None
                if base_graph is None:
                    # the same graph with ReLU for LIF, run on the same inputs (zero-skipping counts)
                    ann = ann_counts(graph, shape, inputs=x)
                else:
                    ann = ann_counts(base_graph, shape, inputs=x)
                    if y is not None:
                        with torch.no_grad():
                            ann_logits = base_module(x).numpy()
                tally.add(counts, ann, y, ann_logits)
                bar.update(len(x))
        finally:
            bar.close()
            if poisson:
                encoder.generator = old_gen
    finally:
        if encoder is not None:
            encoder.timesteps = old_t

    assert tally.snn is not None and tally.ann is not None  # the stream yields at least one batch
    return _Replay(
        model=name or default_name or model_name(module),
        samples=tally.samples,
        data=f"{stream.description}, {tally.samples} samples",
        synthetic=stream.synthetic,
        timesteps=T,
        snn=tally.snn,
        ann=tally.ann,
        baseline=baseline_desc,
        accuracy=tally.accuracy(tally.snn_correct),
        ann_accuracy=tally.accuracy(tally.ann_correct) if base_module is not None else None,
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
        batch_size=replay.samples,
        data=replay.data,
        synthetic_data=replay.synthetic,
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
    max_samples: int | str = 256,
    verify: bool = False,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool | None = False,
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
        A tensor ``[B, C, H, W]`` (any numeric dtype), an ``(x, y)`` pair, a
        torch ``Dataset`` or ``DataLoader``, any other iterable of ``x`` or
        ``(x, y)`` batches (e.g. a generator), or ``None``: a seeded Gaussian
        batch of ``model.input_shape`` (the report says the data are
        synthetic). Data are read and replayed batch by batch
        (:func:`snncost.inputs.stream_data`), so memory does not grow with
        their size. With labels, the report gives the SNN accuracy computed
        from the replay's logits (a running count of correct predictions).
    max_samples
        Replay at most this many inputs; ``"all"`` (or None): every one.
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
        Inputs read and replayed at a time (a DataLoader or iterable keeps its
        own batches). Memory only: the counts do not depend on it, except that
        Poisson spike trains are drawn batch after batch from one seeded
        generator (the report's note says so).
    progress
        A progress bar over the samples on stderr: True, False, or None (only
        when stderr is a terminal).
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
        model, data, timesteps, baseline, input_shape, max_samples, verify, name, seed, batch_size,
        progress,
    )
    return _report(replay, prof, options, cost_model, cost_model_params)


def _comparison_fields(replay: _Replay) -> dict[str, Any]:
    """What every comparison table says about the replay it priced."""
    return {
        "model": replay.model,
        "timesteps": replay.timesteps,
        "batch_size": replay.samples,
        "data": replay.data,
        "synthetic_data": replay.synthetic,
        "accuracy": replay.accuracy,
    }


def compare_profiles(
    model: nn.Module | str | Path,
    profiles: Iterable[str | Path | HardwareProfile] | None = None,
    data: Any = None,
    timesteps: int | None = None,
    baseline: nn.Module | str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_samples: int | str = 256,
    verify: bool = False,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool | None = False,
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
        model, data, timesteps, baseline, input_shape, max_samples, verify, name, seed, batch_size,
        progress,
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
    max_samples: int | str = 256,
    name: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool | None = False,
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
        model, data, timesteps, baseline, input_shape, max_samples, False, name, seed, batch_size,
        progress,
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
