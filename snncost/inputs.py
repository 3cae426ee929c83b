"""Input coercion for :func:`snncost.evaluate`: user model and data -> module and checked batch.

Users pass a model as a torch module, a checkpoint path, a ``nir.NIRGraph`` or
a NIR file, and data as a tensor, an array, an ``(x, y)`` pair, a Dataset, a
DataLoader, any iterable of batches or nothing at all. :func:`load_model_input`
turns the model into an ``nn.Module`` and :func:`stream_data` turns the data
into a :class:`DataStream`: float batches ``[b, *input_shape]`` with optional
integer labels, read lazily so that a full test set is costed in bounded memory.

Doing this in one place means a bad input fails before it is replayed (in-memory
data before any replay starts), with a ``TypeError``/``ValueError`` that names
the field at fault (``data``, ``labels``, ``dataset item 3``, ``DataLoader
batch 2``, ...) and the shape or dtype found versus the one expected, instead of
an obscure error deep inside a layer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ALL_SAMPLES",
    "SYNTHETIC_SAMPLES",
    "DataStream",
    "is_nir",
    "load_model_input",
    "model_name",
    "sample_limit",
    "stream_data",
]

#: Inputs drawn when no data are given.
SYNTHETIC_SAMPLES = 32
#: ``max_samples`` / ``--samples`` value meaning every sample of the data.
ALL_SAMPLES = "all"


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


def _check_finite(t: torch.Tensor, what: str, first_sample: int = 0) -> None:
    """Reject NaN/inf (also values beyond the float32 range), naming the first bad sample
    (counted from ``first_sample``, the index of the batch's first sample in the data)."""
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            first = int(bad.reshape(len(t), -1).any(1).nonzero()[0]) if t.dim() and len(t) else 0
            raise ValueError(
                f"{what} has {int(bad.sum())} non-finite values (NaN, inf or beyond the float32 "
                f"range), the first in sample {first_sample + first}"
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


def sample_limit(max_samples: int | str | None) -> int | None:
    """``max_samples`` as a count, or None for every sample (``"all"`` or None)."""
    if max_samples is None or max_samples == ALL_SAMPLES:
        return None
    if (
        isinstance(max_samples, bool)
        or not isinstance(max_samples, int | np.integer)
        or max_samples < 1
    ):
        raise ValueError(f"max_samples must be an integer >= 1 or 'all', got {max_samples!r}")
    return int(max_samples)


# A raw batch as a source yields it: inputs, labels (or None), and a name for error messages.
RawBatch = tuple[Any, Any, str]


@dataclass
class DataStream:
    """The checked batches of one data source, read lazily: one batch in memory at a time.

    Iterating yields ``(x, y)``: ``x`` float32 ``[b, *input_shape]``, ``y`` int64
    ``[b]`` or None, at most ``limit`` samples in all. Each batch is checked
    as it is read (real, finite, the model's shape, integer labels, labels on
    every batch or on none), so a whole test set is never held as floats.
    ``total`` is the number of samples the stream will yield when the source
    knows its length (for a progress bar), else None.
    """

    batches: Callable[[], Iterator[RawBatch]]
    input_shape: tuple[int, ...]
    limit: int | None
    description: str
    synthetic: bool
    total: int | None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        seen = 0
        labelled: bool | None = None
        for raw_x, raw_y, what in self.batches():
            x, y = _check_batch(raw_x, raw_y, what, self.input_shape, seen)
            if self.limit is not None and seen + len(x) > self.limit:
                x = x[: self.limit - seen]
                y = y[: len(x)] if y is not None else None
            if labelled is None:
                labelled = y is not None
            elif labelled != (y is not None):
                raise ValueError(
                    f"{what} has {'labels' if y is not None else 'no labels'} but the first batch "
                    f"had {'labels' if labelled else 'none'}: give labels for every batch or none"
                )
            seen += len(x)
            if len(x):
                yield x, y
            if self.limit is not None and seen >= self.limit:
                return  # without reading (decoding) another batch


def _shape_error(what: str, shape: tuple[int, ...], input_shape: tuple[int, ...]) -> ValueError:
    expected = "[B, " + ", ".join(str(s) for s in input_shape) + "]"
    return ValueError(
        f"{what} has shape {shape}; expected a batch {expected} "
        f"(per-sample input shape {tuple(input_shape)})"
    )


def _check_batch(
    x: Any, y: Any, what: str, input_shape: tuple[int, ...], first_sample: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One raw batch as float inputs and long labels; errors name ``what`` and the sample."""
    x = _as_tensor(x, what)
    _check_real(x, what)
    if tuple(x.shape[1:]) != tuple(input_shape) or x.dim() != len(input_shape) + 1:
        raise _shape_error(what, tuple(x.shape), input_shape)
    x = x.float()
    _check_finite(x, what, first_sample)
    if y is None:
        return x.contiguous(), None
    what_y = "labels" if what == "data" else f"{what} labels"
    y = _as_tensor(y, what_y).reshape(-1)
    _check_real(y, what_y)
    _check_finite(y, what_y, first_sample)
    if y.is_floating_point() and bool((y != y.round()).any()):
        i = int((y != y.round()).nonzero()[0])
        raise ValueError(
            f"labels must be integer class indices; label {first_sample + i} is {float(y[i])}"
        )
    if len(y) != len(x):
        raise ValueError(f"{what} has {len(x)} inputs but {len(y)} labels")
    return x.contiguous(), y.long()


def _sliced(x: Any, y: Any, n: int, batch_size: int) -> Callable[[], Iterator[RawBatch]]:
    """Batches of in-memory inputs ``x`` (and labels ``y``): slices, converted one at a time."""

    def batches() -> Iterator[RawBatch]:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield x[start:stop], (y[start:stop] if y is not None else None), "data"

    return batches


def _iterated(batches_of: Any, kind: str) -> Callable[[], Iterator[RawBatch]]:
    """The batches of a DataLoader or any iterable of ``x`` / ``(x, y)`` batches."""

    def batches() -> Iterator[RawBatch]:
        count = 0
        for count, batch in enumerate(batches_of, start=1):
            bx, by = _split_item(batch)
            yield bx, by, f"{kind} batch {count - 1}"
        if count == 0:
            raise ValueError(f"the {kind} yielded no batches")

    return batches


def _items(dataset: Any, n: int, batch_size: int) -> Callable[[], Iterator[RawBatch]]:
    """Batches of ``batch_size`` items of an indexable dataset, each item read when its batch is."""

    def batches() -> Iterator[RawBatch]:
        first_shape = None
        for start in range(0, n, batch_size):
            xs, labels = [], []
            for i in range(start, min(n, start + batch_size)):
                ix, iy = _split_item(dataset[i])
                xi = _as_tensor(ix, f"dataset item {i}")
                first_shape = tuple(xi.shape) if first_shape is None else first_shape
                if tuple(xi.shape) != first_shape:
                    raise ValueError(
                        f"dataset item {i} has shape {tuple(xi.shape)}, item 0 has {first_shape}"
                    )
                xs.append(xi)
                labels.append(None if iy is None else _label(iy, i))
            y = None if any(v is None for v in labels) else torch.cat(labels)
            yield torch.stack(xs), y, f"dataset items {start}-{start + len(xs) - 1}"

    return batches


def _label(value: Any, i: int) -> torch.Tensor:
    t = _as_tensor(value, f"dataset item {i} label")
    if t.numel() != 1:
        raise ValueError(
            f"dataset item {i}: the label must be one class index, got shape {tuple(t.shape)}"
        )
    return t.reshape(1)


def _in_memory(x: Any, y: Any, input_shape: tuple[int, ...]) -> tuple[Any, Any, int]:
    """Check in-memory inputs up front (shape, label count) without converting them to float."""
    if not isinstance(x, torch.Tensor | np.ndarray):
        x = _as_tensor(x, "data")  # nested lists / lists of tensors: already in memory
    if x.ndim == 0 or tuple(x.shape[1:]) != tuple(input_shape) or x.ndim != len(input_shape) + 1:
        raise _shape_error("data", tuple(x.shape), input_shape)
    if len(x) == 0:
        raise ValueError("data is empty (0 samples)")
    if y is not None:
        if not isinstance(y, torch.Tensor | np.ndarray):
            y = _as_tensor(y, "labels")
        y = y.reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"data has {len(x)} inputs but {len(y)} labels")
    return x, y, len(x)


def stream_data(
    data: Any,
    input_shape: tuple[int, ...],
    max_samples: int | str | None,
    seed: int,
    batch_size: int,
) -> DataStream:
    """A lazy :class:`DataStream` over ``data``, at most ``max_samples`` inputs (``"all"``: every one).

    ``data`` is a tensor/array ``[B, *input_shape]`` (any numeric dtype, e.g.
    uint8, converted to float one batch at a time), an ``(x, y)`` pair, a
    torch ``DataLoader`` or any other iterable of ``x`` / ``(x, y)`` batches
    (read as it yields them: its own batch size), an indexable dataset of
    ``x`` or ``(x, y)`` items (read ``batch_size`` items at a time), or None
    (``min(max_samples, SYNTHETIC_SAMPLES)`` Gaussian inputs drawn with
    ``seed``). A ``TypeError``/``ValueError`` names the field and shape at fault.
    A list is an indexable dataset; wrap a list of batches in ``iter()``.
    """
    limit = sample_limit(max_samples)
    input_shape = tuple(input_shape)

    def stream(batches, description: str, total: int | None, synthetic: bool = False) -> DataStream:
        if total is not None and limit is not None:
            total = min(total, limit)
        return DataStream(batches, input_shape, limit, description, synthetic, total)

    if data is None:
        n = int(min(limit or SYNTHETIC_SAMPLES, SYNTHETIC_SAMPLES))
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((n, *input_shape), generator=gen)
        desc = f"synthetic Gaussian N(0, 1) inputs, seed {seed}"
        return stream(_sliced(x, None, n, batch_size), desc, n, synthetic=True)
    if isinstance(data, str | bytes | Mapping):
        raise TypeError(
            "data must be a tensor [B, C, H, W], an (x, y) pair, a torch Dataset or DataLoader, "
            f"an iterable of batches, or None; got a {type(data).__name__}"
            + (" (pass (data['x'], data['y']) for a dict)" if isinstance(data, Mapping) else "")
        )
    if isinstance(data, torch.Tensor | np.ndarray):
        x, _, n = _in_memory(data, None, input_shape)
        return stream(_sliced(x, None, n, batch_size), "tensor", n)
    if isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], int | float):
        x, y, n = _in_memory(data[0], data[1], input_shape)
        return stream(_sliced(x, y, n, batch_size), "tensor with labels", n)
    if isinstance(data, torch.utils.data.DataLoader):
        dataset = data.dataset
        total = len(dataset) if hasattr(dataset, "__len__") else None
        desc = f"DataLoader over {type(dataset).__name__}"
        return stream(_iterated(data, "DataLoader"), desc, total)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError("the dataset is empty")
        n = len(data) if limit is None else min(len(data), limit)
        desc = f"{type(data).__name__} ({len(data)} items)"
        return stream(_items(data, n, batch_size), desc, n)
    if hasattr(data, "__iter__"):
        return stream(_iterated(data, "data iterable"), f"{type(data).__name__} of batches", None)
    raise TypeError(
        "data must be a tensor [B, C, H, W], an (x, y) pair, a torch Dataset or DataLoader, "
        f"an iterable of batches, or None; got {type(data).__name__}"
    )
