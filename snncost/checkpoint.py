"""Checkpoints: atomic writes and self-describing model files.

A checkpoint is a ``torch.save`` dict that carries what is needed to
rebuild its model without the trainer: the :class:`~snncost.models.VGGSpec`,
the form (``ann``/``snn``), the neuron settings and the weights. Files are
written to a temporary name in the same directory, flushed, fsynced and
renamed over the target, so a crash leaves either the old file or the new
one, never a truncated one.
"""

from __future__ import annotations

import io
import os
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "snncost-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable snncost checkpoint (message names the file)."""


# ---------------------------------------------------------------- fault injection (tests only)
#: Fault-injection hook for the crash-safety tests (``tests/test_crash_safety.py``):
#: with the environment variable ``SNNCOST_CRASH_AT`` set, the process kills
#: itself with SIGKILL (as a power cut or the OOM killer would, no clean-up)
#: at one named point:
#:
#: - ``write:<file name>:<n>``: the n-th atomic write (in this process) to a
#:   file of that name, after half of its bytes reached the temporary file,
#:   before the rename;
#: - ``batch:<stage>:<epoch>:<batch>``: after that training batch's optimiser
#:   step (epochs and batches count from 1), see :func:`trainers.engine.train_epoch`;
#: - ``after:<stage>``: once the stage's finished checkpoint and metrics are
#:   written, before the next stage starts (:meth:`trainers.context.Context.finish`).
#:
#: Read once, at import; unset (always, outside those tests) every check is
#: one comparison with ``None``.
CRASH_AT: str | None = os.environ.get("SNNCOST_CRASH_AT") or None
_writes: dict[str, int] = {}


def crash_point(point: str) -> None:
    """Fault-injection hook: SIGKILL this process if ``SNNCOST_CRASH_AT`` names ``point``."""
    if CRASH_AT is not None and point == CRASH_AT:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _crash_mid_write(name: str) -> bool:
    _writes[name] = _writes.get(name, 0) + 1
    return CRASH_AT == f"write:{name}:{_writes[name]}"


def _default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _default_file_mode()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    The temporary file is ``.<name>.<random>.tmp`` in the same directory; a
    process killed mid-write leaves it behind (``trainers.rundir`` removes
    such files when a run directory is opened).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if CRASH_AT is not None and _crash_mid_write(path.name):
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
                crash_point(CRASH_AT)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _FILE_MODE)  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)``, written atomically (format from the suffix, default png)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=kwargs.pop("format", None) or path.suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def model_record(model: nn.Module, spec, form: str, neurons=None) -> dict:
    """The self-describing part of a checkpoint for ``model``.

    ``"quant"`` is :func:`snncost.nn.model_quantization` (``None`` for float
    weights): the state dict holds the float master weights under the usual
    keys, and :func:`load_model` re-applies the quantization.
    """
    from snncost.nn.quant import model_quantization

    record = {
        "format": FORMAT,
        "version": VERSION,
        "form": form,
        "spec": spec.to_dict(),
        "neurons": asdict(neurons) if neurons is not None else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "quant": model_quantization(model),
    }
    if form == "snn":
        record["timesteps"] = model.timesteps
    return record


def save_model(path: str | Path, model: nn.Module, spec, form: str, neurons=None, **extra) -> None:
    """Atomically save ``model`` so :func:`load_model` can rebuild it."""
    atomic_torch_save({**model_record(model, spec, form, neurons), **extra}, path)


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint dict; errors name the file and what is wrong."""
    path = Path(path)
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise CheckpointError(f"{path}: cannot access the checkpoint: {exc.strerror or exc}") from None
    if is_dir:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not is_file:
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, random bytes, pickle errors...
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(detail) > 200:
            detail = detail[:197] + "..."
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not written by torch.save; {detail})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an snncost checkpoint (no format={FORMAT!r} marker)")
    for key in ("form", "spec", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks the field {key!r}")
    return data


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model stored in a checkpoint file (ANN or SNN), in eval mode."""
    return rebuild_model(read_checkpoint(path), str(path))


def rebuild_model(data: dict, path: str) -> nn.Module:
    """Rebuild the model of an already-read checkpoint dict (``path`` names it in errors)."""
    from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn

    try:
        spec = VGGSpec.from_dict(data["spec"])
        if data["form"] == "snn":
            neurons = NeuronConfig(**(data.get("neurons") or {}))
            model = build_snn(spec, neurons)
            model.timesteps = data.get("timesteps", neurons.timesteps)
        elif data["form"] == "ann":
            model = build_ann(spec)
        else:
            raise CheckpointError(f"{path}: field 'form' is {data['form']!r}, expected 'ann' or 'snn'")
        if data.get("quant"):
            from snncost.nn.quant import apply_quantization

            apply_quantization(model, data["quant"])
        load_state_dict_checked(model, data["state_dict"], str(path))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot rebuild its model: {exc}") from None
    return model.eval()


def load_state_dict_checked(model: nn.Module, state: dict, origin: str) -> None:
    """``load_state_dict`` with an error naming the origin and the first bad key."""
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{origin}: the weights (state_dict) are of type {type(state).__name__}, not a mapping of tensors"
        )
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{origin}: weights do not fit this architecture "
            f"(missing: {missing[:3]}, unexpected: {unexpected[:3]})"
        )
    for k, v in own.items():
        if not isinstance(state[k], torch.Tensor):
            raise CheckpointError(f"{origin}: {k} is of type {type(state[k]).__name__}, not a tensor")
        if not torch.can_cast(state[k].dtype, v.dtype):
            raise CheckpointError(
                f"{origin}: {k} has dtype {state[k].dtype}, which does not convert to the model's {v.dtype}"
            )
        if tuple(v.shape) != tuple(state[k].shape):
            raise CheckpointError(
                f"{origin}: {k} has shape {tuple(state[k].shape)}, the model expects {tuple(v.shape)}"
            )
    model.load_state_dict(state)
