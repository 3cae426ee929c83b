"""Input coercion for :func:`snncost.evaluate`: user model and data -> module and checked batch.

Users pass a model as a torch module, a checkpoint path, a ``nir.NIRGraph`` or
a NIR file, and data as a tensor, an array, an ``(x, y)`` pair, a Dataset, a
DataLoader or nothing at all. :func:`load_model_input` turns the model into an
``nn.Module`` and :func:`resolve_data` turns the data into one float batch
``[B, *input_shape]`` with optional integer labels (:class:`ResolvedData`).

Doing this up front, in one place, means a bad input fails before any replay
starts, with a ``TypeError``/``ValueError`` that names the field at fault
(``data``, ``labels``, ``dataset item 3``, ...) and the shape or dtype found
versus the one expected, instead of an obscure error deep inside a layer.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "SYNTHETIC_SAMPLES",
    "ResolvedData",
    "is_nir",
    "load_model_input",
    "model_name",
    "resolve_data",
]

#: Inputs drawn when no data are given.
SYNTHETIC_SAMPLES = 32


def _is_path(x: Any) -> bool:
    return isinstance(x, str | Path)


def is_nir(model: Any) -> bool:
    """A ``nir.NIRGraph`` or the path of a NIR file (``.nir``, ``.h5``, ``.hdf5``)."""
    if _is_path(model):
        return Path(model).suffix.lower() in (".nir", ".h5", ".hdf5")
    nir = sys.modules.get("nir")  # a NIRGraph object means nir is already imported
    return nir is not None and isinstance(model, getattr(nir, "NIRGraph", ()))


def load_model_input(model: Any, timesteps: int | None = None) -> tuple[nn.Module, str | None]:
    """``(module, default name)`` from a module, a checkpoint path, or a NIR graph/file.

    A NIR graph is imported (:func:`snncost.interop.nir.from_nir`, ``timesteps``
    needed when the graph does not store it) and rebuilt as snncost layers
    (:func:`~snncost.interop.nir.graph_to_module`), whose LayerGraph is the
    imported one; the equivalent-ANN baseline then comes from that graph.
    """
    if is_nir(model):
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


def model_name(model: nn.Module) -> str:
    """A readable name: the VGG architecture key for snncost VGGs, else the class name."""
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
            raise ValueError(
                f"{what}: tensors of different shapes {sorted(shapes)[:3]} cannot be batched"
            )
        return torch.stack([v.detach().cpu() for v in x])
    if x is None:
        raise TypeError(f"{what} is None")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged nested lists, ...
            raise TypeError(
                f"{what}: cannot turn a {type(x).__name__} into a tensor ({exc})"
            ) from None
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
class ResolvedData:
    """A checked input batch: ``x`` float ``[B, *input_shape]``, ``y`` long ``[B]`` or None."""

    x: torch.Tensor
    y: torch.Tensor | None
    description: str
    synthetic: bool


def resolve_data(
    data: Any, input_shape: tuple[int, ...], max_samples: int | None, seed: int
) -> ResolvedData:
    """Turn ``data`` into a checked batch of at most ``max_samples`` inputs (and labels).

    ``data`` is a tensor/array ``[B, *input_shape]``, an ``(x, y)`` pair, a torch
    ``DataLoader``, an indexable dataset of ``x`` or ``(x, y)`` items, or None
    (``min(max_samples, SYNTHETIC_SAMPLES)`` Gaussian inputs drawn with ``seed``).
    Inputs must be real and finite, labels integer class indices, one per input;
    a ``TypeError``/``ValueError`` names the field and shape at fault.
    """
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
        return ResolvedData(x, None, f"synthetic Gaussian N(0, 1) inputs, seed {seed}", True)

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
            raise ValueError(
                f"the DataLoader's batches have different sample shapes {sorted(shapes)[:3]}"
            )
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
    return ResolvedData(x.contiguous(), y, f"{desc}, {len(x)} samples", False)
