"""One-call evaluation: replay an SNN on real inputs and cost it against its ANN baseline.

>>> import snncost
>>> report = snncost.evaluate(model, profile="45nm", data=(x, y))   # doctest: +SKIP
>>> print(report.to_markdown())                                       # doctest: +SKIP

:func:`evaluate` builds the model's :class:`~snncost.graph.LayerGraph`,
replays it event by event on the inputs (:func:`snncost.sim.simulate`),
counts the equivalent dense ANN (:func:`snncost.sim.ann_counts`) and prices
both with a hardware profile (:func:`snncost.report.cost_run`).
:func:`compare_profiles` does the replay once and prices it on several
profiles.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from snncost.hardware import HardwareProfile, load_profile
from snncost.report.cost_report import (
    CostReport,
    _csv_text,
    _latex_ratio,
    _md_table,
    _num,
    energy_unit,
    fmt_energy,
    fmt_ratio,
    fmt_time,
    latex_close_table,
    latex_escape,
)
from snncost.report.costing import cost_run
from snncost.sim.counts import RunCounts

__all__ = ["ProfileComparison", "ProfileRow", "compare_profiles", "evaluate"]

#: Inputs drawn when no data are given.
SYNTHETIC_SAMPLES = 32


# ---------------------------------------------------------------------- inputs
def _is_path(x: Any) -> bool:
    return isinstance(x, str | Path)


def _is_nir(model: Any) -> bool:
    """A ``nir.NIRGraph`` or the path of a NIR file (``.nir``, ``.h5``, ``.hdf5``)."""
    if _is_path(model):
        return Path(model).suffix.lower() in (".nir", ".h5", ".hdf5")
    nir = sys.modules.get("nir")  # a NIRGraph object means nir is already imported
    return nir is not None and isinstance(model, getattr(nir, "NIRGraph", ()))


def _load_model(model: Any, timesteps: int | None = None) -> tuple[nn.Module, str | None]:
    """``(module, default name)`` from a module, a checkpoint path, or a NIR graph/file.

    A NIR graph is imported (:func:`snncost.interop.nir.from_nir`, ``timesteps``
    needed when the graph does not store it) and rebuilt as snncost layers
    (:func:`~snncost.interop.nir.graph_to_module`), whose LayerGraph is the
    imported one; the equivalent-ANN baseline then comes from that graph.
    """
    if _is_nir(model):
        from snncost.interop.nir import module_from_nir

        return module_from_nir(model, timesteps)
    if _is_path(model):
        from snncost.checkpoint import load_model

        return load_model(model), Path(model).stem
    if isinstance(model, nn.Module):
        return model, None
    raise TypeError(
        "model must be a torch nn.Module, a checkpoint path, a nir.NIRGraph or a .nir file, "
        f"got {type(model).__name__}"
    )


def _model_name(model: nn.Module) -> str:
    spec = getattr(model, "spec", None)
    if spec is not None and hasattr(spec, "features"):
        try:
            from snncost.models.vgg import CFGS

            for arch, (feats, cls) in CFGS.items():
                if list(spec.features) == list(feats) and list(spec.classifier) == list(cls):
                    return arch
        except Exception:  # pragma: no cover - naming is cosmetic
            pass
        feats = "-".join(str(w) for w in spec.features)
        return f"vgg[{feats}|{'-'.join(str(w) for w in spec.classifier)}]"
    return type(model).__name__


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, list | tuple) and x and all(isinstance(v, torch.Tensor) for v in x):
        shapes = {tuple(v.shape) for v in x}
        if len(shapes) > 1:
            raise ValueError(f"{what}: tensors of different shapes {sorted(shapes)[:3]} cannot be batched")
        return torch.stack([v.detach().cpu() for v in x])
    if x is None:
        raise TypeError(f"{what} is None")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged nested lists, ...
            raise TypeError(f"{what}: cannot turn a {type(x).__name__} into a tensor ({exc})") from None
    if x.dtype.kind not in "biufc":
        raise TypeError(
            f"{what}: dtype {x.dtype} is not numeric (expected numbers: float, int or bool)"
        )
    try:
        return torch.from_numpy(np.ascontiguousarray(x))
    except Exception as exc:  # e.g. numpy dtypes torch lacks (uint32 on old torch, float128)
        raise TypeError(f"{what}: cannot turn a {x.dtype} array into a tensor ({exc})") from None


def _check_real(t: torch.Tensor, what: str) -> None:
    if t.is_complex():
        raise TypeError(f"{what} has dtype {t.dtype}; expected real numbers (float, int or bool)")


def _check_finite(t: torch.Tensor, what: str) -> None:
    """Reject NaN/inf (also values beyond the float32 range), naming the first bad sample."""
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            first = int(bad.reshape(len(t), -1).any(1).nonzero()[0]) if t.dim() and len(t) else 0
            raise ValueError(
                f"{what} has {int(bad.sum())} non-finite values (NaN, inf or beyond the float32 "
                f"range), the first in sample {first}"
            )


def _split_item(item: Any) -> tuple[Any, Any]:
    if isinstance(item, list | tuple):
        if len(item) == 2:
            return item[0], item[1]
        if len(item) == 1:
            return item[0], None
        raise ValueError(f"a data item must be x or (x, y); got a sequence of {len(item)}")
    if isinstance(item, dict) and "x" in item:  # pragma: no cover - convenience
        return item["x"], item.get("y")
    return item, None


@dataclass
class _Data:
    x: torch.Tensor
    y: torch.Tensor | None
    description: str
    synthetic: bool


def _resolve_data(data: Any, input_shape: tuple[int, ...], max_samples: int, seed: int) -> _Data:
    if max_samples is not None and (
        isinstance(max_samples, bool)
        or not isinstance(max_samples, int | np.integer)
        or max_samples < 1
    ):
        raise ValueError(f"max_samples must be an integer >= 1, got {max_samples!r}")
    limit = max_samples if max_samples is not None else math.inf
    if data is None:
        n = int(min(limit, SYNTHETIC_SAMPLES))
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((n, *input_shape), generator=gen)
        return _Data(x, None, f"synthetic Gaussian N(0, 1) inputs, seed {seed}", True)

    y: Any = None
    if isinstance(data, str | bytes | Mapping):
        raise TypeError(
            "data must be a tensor [B, C, H, W], an (x, y) pair, a torch Dataset or DataLoader, "
            f"or None; got a {type(data).__name__}"
            + (" (pass (data['x'], data['y']) for a dict)" if isinstance(data, Mapping) else "")
        )
    if isinstance(data, torch.Tensor | np.ndarray):
        x, desc = data, "tensor"
    elif isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], int | float):
        x, y = data
        desc = "tensor with labels"
    elif isinstance(data, torch.utils.data.DataLoader):
        xs, ys = [], []
        count = 0
        for batch in data:
            bx, by = _split_item(batch)
            bx = _as_tensor(bx, "DataLoader batch")
            xs.append(bx)
            if by is not None:
                ys.append(_as_tensor(by, "DataLoader labels").reshape(-1))
            count += len(bx)
            if count >= limit:
                break
        if not xs:
            raise ValueError("the DataLoader yielded no batches")
        shapes = {tuple(b.shape[1:]) for b in xs}
        if len(shapes) > 1:
            raise ValueError(f"the DataLoader's batches have different sample shapes {sorted(shapes)[:3]}")
        x = torch.cat(xs)
        y = torch.cat(ys) if ys and len(ys) == len(xs) else None
        desc = f"DataLoader over {type(data.dataset).__name__}"
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        n = int(min(len(data), limit))
        if n == 0:
            raise ValueError("the dataset is empty")
        items = [_split_item(data[i]) for i in range(n)]
        xs = [_as_tensor(ix, f"dataset item {i}") for i, (ix, _) in enumerate(items)]
        for i, xi in enumerate(xs):
            if xi.shape != xs[0].shape:
                raise ValueError(
                    f"dataset item {i} has shape {tuple(xi.shape)}, item 0 has {tuple(xs[0].shape)}"
                )
        x = torch.stack(xs)
        labels = [iy for _, iy in items]
        y = None
        if not any(v is None for v in labels):
            ys = []
            for i, v in enumerate(labels):
                t = _as_tensor(v, f"dataset item {i} label")
                if t.numel() != 1:
                    raise ValueError(
                        f"dataset item {i}: the label must be one class index, got shape {tuple(t.shape)}"
                    )
                ys.append(t.reshape(1))
            y = torch.cat(ys)
        desc = f"{type(data).__name__} ({len(data)} items)"
    else:
        raise TypeError(
            "data must be a tensor [B, C, H, W], an (x, y) pair, a torch Dataset or DataLoader, "
            f"or None; got {type(data).__name__}"
        )

    x = _as_tensor(x, "data")
    _check_real(x, "data")
    x = x.float()
    _check_finite(x, "data")
    if tuple(x.shape[1:]) != tuple(input_shape) or x.dim() != len(input_shape) + 1:
        expected = "[B, " + ", ".join(str(s) for s in input_shape) + "]"
        raise ValueError(
            f"data has shape {tuple(x.shape)}; expected a batch {expected} "
            f"(per-sample input shape {tuple(input_shape)})"
        )
    if len(x) == 0:
        raise ValueError("data is empty (0 samples)")
    if y is not None:
        y = _as_tensor(y, "labels").reshape(-1)
        _check_real(y, "labels")
        _check_finite(y, "labels")
        if y.is_floating_point() and bool((y != y.round()).any()):
            i = int((y != y.round()).nonzero()[0])
            raise ValueError(f"labels must be integer class indices; label {i} is {float(y[i])}")
        y = y.long()
        if len(y) != len(x):
            raise ValueError(f"data has {len(x)} inputs but {len(y)} labels")
    if len(x) > limit:
        x = x[: int(limit)]
        y = y[: int(limit)] if y is not None else None
    return _Data(x.contiguous(), y, f"{desc}, {len(x)} samples", False)


# ---------------------------------------------------------------------- the replay
@dataclass
class _Replay:
    """Everything profile-independent: done once, priced per profile."""

    model: str
    data: _Data
    timesteps: int
    snn: RunCounts
    ann: RunCounts
    baseline: str
    accuracy: float | None = None
    ann_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)


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


def _weight_format(graph: Any) -> str:
    """``"32-bit float"``, ``"int8 weights"`` or e.g. ``"int4/int8 weights"`` (mixed)."""
    kinds = {(n.number_format, int(n.weight_bits)) for n in graph.weight_layers()}
    if all(fmt == "float" and bits == 32 for fmt, bits in kinds):
        return "32-bit float"
    text = "/".join(
        f"int{bits}" if fmt == "int" else f"fp{bits}" for fmt, bits in sorted(kinds, key=lambda k: k[1])
    )
    return f"{text} weights, 32-bit activations"


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
    from snncost.sim import ann_counts, simulate

    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    module, default_name = _load_model(model, timesteps)
    if not _has_lif(module):
        raise ValueError(
            "model has no spiking (snncost.nn.LIF) layers: evaluate() costs an SNN; "
            "pass the ANN as baseline= instead"
        )
    module.eval()
    shape = input_shape if input_shape is not None else getattr(module, "input_shape", None)
    if shape is None:
        raise ValueError("the model has no input_shape attribute: pass input_shape=(C, H, W)")
    shape = tuple(int(s) for s in shape)
    d = _resolve_data(data, shape, max_samples, seed)

    try:
        encoder = module.find_encoder()
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"cannot find the model's input encoder: {exc}") from None
    if timesteps is not None and int(timesteps) < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    old_t = encoder.timesteps
    T = int(timesteps) if timesteps is not None else int(old_t)
    notes: list[str] = []
    try:
        encoder.timesteps = T
        graph = build_graph(module, shape, name=name or default_name or "")
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
        encoder.timesteps = old_t

    ann_acc = None
    if baseline is None:
        # the ANN keeps the SNN's weights: fp32, or k-bit integers for a quantized model
        ann = ann_counts(graph, shape, batch_size=1, activation_bits=32, weight_bits=None)
        baseline_desc = f"equivalent ANN (same graph, ReLU, {_weight_format(graph)})"
    else:
        base_module, base_name = _load_model(baseline)
        if _has_lif(base_module):
            raise ValueError("baseline must be an ANN (it has spiking LIF layers)")
        base_module.eval()
        ann = ann_counts(base_module, shape)
        baseline_desc = f"ANN {base_name or _model_name(base_module)}"
        if d.y is not None:
            with torch.no_grad():
                out = base_module(d.x)
            ann_acc = _accuracy(out.numpy(), d.y)

    return _Replay(
        model=name or default_name or _model_name(module),
        data=d,
        timesteps=T,
        snn=counts,
        ann=ann,
        baseline=baseline_desc,
        accuracy=_accuracy(counts.logits, d.y),
        ann_accuracy=ann_acc,
        notes=notes,
    )


def _report(replay: _Replay, profile: HardwareProfile) -> CostReport:
    snn = cost_run(replay.snn, profile)
    ann = cost_run(replay.ann, profile)
    return CostReport.from_runs(
        snn,
        ann,
        model=replay.model,
        profile_description=" ".join(profile.description.split()),
        baseline=replay.baseline,
        batch_size=len(replay.data.x),
        data=replay.data.description,
        synthetic_data=replay.data.synthetic,
        accuracy=replay.accuracy,
        ann_accuracy=replay.ann_accuracy,
        spike_mismatches=replay.snn.spike_mismatches,
        spikes_compared=replay.snn.spikes_compared,
        notes=replay.notes,
    )


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
        with :func:`snncost.interop.nir.from_nir` (see ``docs/nir.md``).
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
        dense MACs with the SNN's weights: 32-bit float, or the k-bit
        integer weights of a quantized model; 32-bit activations). Or an ANN
        module / checkpoint (e.g. the unpruned ANN), counted with
        :func:`snncost.sim.ann_counts`.
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

    Raises ``ValueError`` for data of the wrong shape (naming the expected
    and actual shapes) and :class:`~snncost.hardware.ProfileError` (a
    ``ValueError``) for an unknown profile, listing the available ones.
    """
    prof = load_profile(profile)
    replay = _replay(
        model,
        data,
        timesteps,
        baseline,
        input_shape,
        max_samples,
        verify,
        name,
        seed,
        batch_size,
    )
    return _report(replay, prof)


# ---------------------------------------------------------------------- profile comparison
class ProfileRow(BaseModel):
    """One profile's headline numbers, per inference (energies in pJ, latency in s)."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    description: str
    ann_profile: str
    snn_synaptic_pj: float
    snn_compute_pj: float
    snn_memory_pj: float
    snn_total_pj: float
    ann_compute_pj: float
    ann_total_pj: float
    ratio_compute: float | None
    ratio_total: float | None
    snn_latency_s: float
    ann_latency_s: float


class ProfileComparison(BaseModel):
    """One SNN, one replay, priced on several hardware profiles."""

    model_config = ConfigDict(extra="forbid")

    model: str
    timesteps: int
    batch_size: int
    data: str
    synthetic_data: bool
    accuracy: float | None
    rows: list[ProfileRow]
    reports: list[CostReport]

    def report(self, profile: str) -> CostReport:
        """The full :class:`CostReport` of one profile."""
        for r in self.reports:
            if r.profile == profile:
                return r
        raise KeyError(
            f"no report for profile {profile!r}; have {[r.profile for r in self.reports]}"
        )

    def _synthetic_tag(self) -> str:
        return ", synthetic" if self.synthetic_data and "synthetic" not in self.data.lower() else ""

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = [
            "Profile",
            "SNN synaptic",
            "SNN compute",
            "SNN total",
            "ANN total",
            "ANN/SNN compute",
            "ANN/SNN total",
            "SNN latency",
            "ANN latency",
        ]
        rows = [
            [
                r.profile,
                fmt_energy(r.snn_synaptic_pj),
                fmt_energy(r.snn_compute_pj),
                fmt_energy(r.snn_total_pj),
                fmt_energy(r.ann_total_pj)
                + ("" if r.ann_profile == r.profile else f" ({r.ann_profile})"),
                fmt_ratio(r.ratio_compute),
                fmt_ratio(r.ratio_total),
                fmt_time(r.snn_latency_s),
                fmt_time(r.ann_latency_s),
            ]
            for r in self.rows
        ]
        return header, rows

    def to_markdown(self) -> str:
        """One Markdown table: a row per profile, energies per inference."""
        header, rows = self._cells()
        lines = [
            f"# {self.model}: energy and latency per inference across hardware profiles",
            "",
            f"- Timesteps: {self.timesteps}; inputs evaluated: {self.batch_size} "
            f"({self.data}{self._synthetic_tag()})",
        ]
        if self.accuracy is not None:
            lines.append(f"- SNN accuracy (replay): {100 * self.accuracy:.2f} %")
        lines += ["", _md_table(header, rows)]
        notes = []
        for rep in self.reports:
            notes += [f"{rep.profile}: {n}" for n in rep.notes]
        if notes:
            lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
        return "\n".join(lines) + "\n"

    def to_latex(self, caption: str | None = None, label: str | None = "tab:snn-profiles") -> str:
        """A booktabs table, one row per profile (energies in one unit, latency in µs)."""
        unit, scale = energy_unit(
            max([r.snn_total_pj for r in self.rows] + [r.ann_total_pj for r in self.rows] + [1.0])
        )
        tex_unit = r"$\mu$J" if unit == "µJ" else unit
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\begin{tabular}{lrrrrrrr}",
            r"\toprule",
            f"Profile & SNN $E_\\mathrm{{syn}}$ ({tex_unit}) & SNN $E_\\mathrm{{comp}}$ ({tex_unit}) & "
            f"SNN $E_\\mathrm{{total}}$ ({tex_unit}) & ANN $E_\\mathrm{{total}}$ ({tex_unit}) & "
            r"ANN/SNN & SNN latency ($\mu$s) & ANN latency ($\mu$s) \\",
            r"\midrule",
        ]
        for r in self.rows:
            lines.append(
                " & ".join(
                    [
                        latex_escape(r.profile),
                        _num(r.snn_synaptic_pj / scale),
                        _num(r.snn_compute_pj / scale),
                        _num(r.snn_total_pj / scale),
                        _num(r.ann_total_pj / scale),
                        _latex_ratio(r.ratio_total),
                        _num(r.snn_latency_s * 1e6),
                        _num(r.ann_latency_s * 1e6),
                    ]
                )
                + r" \\"
            )
        lines += [r"\bottomrule", r"\end{tabular}"]
        if caption is None:
            tex_caption = (
                f"Energy and latency per inference of {latex_escape(self.model)} "
                f"($T={self.timesteps}$, {self.batch_size} inputs) on each hardware profile; "
                "ANN/SNN is the ratio of total energies."
            )
        else:
            tex_caption = latex_escape(caption)
        return latex_close_table(lines, tex_caption, label)

    def to_csv(self) -> str:
        """One CSV line per profile with the :class:`ProfileRow` fields (pJ, seconds)."""
        fields = list(ProfileRow.model_fields)
        return _csv_text(fields, [[getattr(r, f) for f in fields] for r in self.rows])

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def summary(self) -> str:
        from snncost.report.cost_report import _text_table

        header, rows = self._cells()
        return (
            f"{self.model}, T={self.timesteps}, {self.batch_size} inputs\n"
            + _text_table(header, rows)
            + "\n"
        )

    def __str__(self) -> str:
        return self.summary()


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
) -> ProfileComparison:
    """Replay ``model`` once and price it on every profile (default: all built-in ones).

    Arguments are those of :func:`evaluate`. Every profile is loaded (and
    validated) before the replay, so a bad name fails fast.
    """
    from snncost.hardware import available_profiles

    names: Sequence[Any] = list(profiles) if profiles is not None else available_profiles()
    if not names:
        raise ValueError("compare_profiles needs at least one profile")
    loaded = [load_profile(p) for p in names]
    replay = _replay(
        model,
        data,
        timesteps,
        baseline,
        input_shape,
        max_samples,
        verify,
        name,
        seed,
        batch_size,
    )
    reports = [_report(replay, p) for p in loaded]
    rows = [
        ProfileRow(
            profile=r.profile,
            description=r.profile_description,
            ann_profile=r.ann_profile,
            snn_synaptic_pj=r.snn_total.energy_synaptic_pj,
            snn_compute_pj=r.snn_total.energy_compute_pj,
            snn_memory_pj=r.snn_total.energy_memory_pj,
            snn_total_pj=r.snn_total.energy_total_pj,
            ann_compute_pj=r.ann_total.energy_compute_pj,
            ann_total_pj=r.ann_total.energy_total_pj,
            ratio_compute=r.ratios.compute_energy,
            ratio_total=r.ratios.total_energy,
            snn_latency_s=r.snn_total.latency_s,
            ann_latency_s=r.ann_total.latency_s,
        )
        for r in reports
    ]
    return ProfileComparison(
        model=replay.model,
        timesteps=replay.timesteps,
        batch_size=len(replay.data.x),
        data=replay.data.description,
        synthetic_data=replay.data.synthetic,
        accuracy=replay.accuracy,
        rows=rows,
        reports=reports,
    )


class _CallableModule(type(math)):
    """``snncost.evaluate`` is both this module and the function :func:`evaluate`.

    Once ``snncost.evaluate`` (the module) has been imported, Python's import
    system binds the package attribute ``snncost.evaluate`` to the module;
    making the module callable keeps ``snncost.evaluate(model, ...)`` working
    either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> CostReport:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
