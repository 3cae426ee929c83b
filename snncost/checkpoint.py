"""Checkpoints: atomic writes and self-describing model files.

A checkpoint is a ``torch.save`` dict that carries what is needed to
rebuild its model without the trainer: the network's spec (VGG or ResNet),
the form (``ann``/``snn``), the neuron settings and the weights. Files are
written to a temporary name in the same directory, flushed, fsynced and
renamed over the target, so a crash leaves either the old file or the new
one, never a truncated one.

Checkpoints are read with ``torch.load(..., weights_only=True)`` only, through
:func:`safe_load`: a ``.pt`` file is a pickle, and a pickle from a paper's
web page could otherwise run arbitrary code when opened. What snncost writes
is plain data (dicts, lists, tuples, str, int, float, bool, None, tensors,
plus the optimiser/scheduler/RNG states, which are made of the same), and
:func:`atomic_torch_save` turns the few convenient non-plain values into plain
ones (:func:`to_plain`) and refuses anything else, so every file it writes
loads with ``weights_only=True``. The one extra type the reader admits is in
:data:`SAFE_GLOBALS`. A file holding anything else is refused with a
:class:`CheckpointError` naming it. An old file holding numpy values, paths
or snncost's own spec dataclasses is converted once, explicitly::

    python -m snncost.checkpoint convert OLD.pt NEW.pt [--allow module.Class ...]

(:func:`convert_checkpoint`). Conversion is weights-only too: it admits the
data types of :data:`CONVERTIBLE_GLOBALS` and the classes the user names
with ``--allow``, and refuses anything else; no ``.pt`` file is ever
unpickled with ``weights_only=False``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import enum
import importlib
import io
import os
import re
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path, PurePath
from typing import Any

import torch
from torch import nn

from snncost.paths import require_file

FORMAT = "snncost-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable snncost checkpoint (message names the file)."""


#: The allow-list: the only non-plain globals :func:`safe_load` admits beyond
#: what ``torch.load(weights_only=True)`` accepts by itself (tensors and
#: parameters, their storages, dtypes, devices, ``torch.Size``,
#: ``OrderedDict``, and the builtin containers and scalars).
#:
#: - ``collections.Counter``: ``MultiStepLR.state_dict()["milestones"]``, in the
#:   scheduler state of a ``<stage>-last.pt`` checkpoint of a run with
#:   ``schedule=step`` (recent torch admits it by default; listed so the
#:   dependency is explicit).
#:
#: Nothing else is needed: specs and neuron settings are stored as dicts
#: (``asdict``), metrics as floats, RNG states as uint8 tensors. Keep this
#: list short; every entry is a class whose unpickling must not run code.
SAFE_GLOBALS: tuple[Any, ...] = (collections.Counter,)

#: What :func:`convert_checkpoint` admits beyond :data:`SAFE_GLOBALS`: data
#: types that older files (or other code) stored, whose unpickling builds a
#: value and calls nothing else: numpy arrays, scalars and dtypes (under
#: numpy 1 and numpy 2 module names; every ``numpy.dtypes.*`` class too),
#: ``pathlib`` paths, and snncost's spec and neuron-settings dataclasses
#: (under the module names older versions wrote). Names, not objects: a name
#: is imported only once a file asks for it.
CONVERTIBLE_GLOBALS: tuple[str, ...] = (
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "snncost.models.vgg.VGGSpec",
    "snncost.models.vgg.NeuronConfig",
    "snncost.models.common.NeuronConfig",
    "snncost.models.resnet.ResNetSpec",
)
_CONVERTIBLE_PREFIXES = ("numpy.dtypes.",)


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
    """``torch.save(obj)`` to ``path`` atomically, as plain data that :func:`safe_load` reads.

    ``obj`` goes through :func:`to_plain` first: numpy values, paths, enums
    and dataclasses become plain values, and anything else that is not plain
    data raises ``TypeError`` (naming where it is) before anything is written.
    """
    buf = io.BytesIO()
    torch.save(to_plain(obj), buf)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- plain data and the safe loader
_PLAIN_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None), torch.dtype, torch.device, torch.layout)


def to_plain(obj: Any, where: str = "") -> Any:
    """``obj`` as the plain data ``torch.load(weights_only=True)`` reads back.

    Kept as they are: tensors and parameters, str/bytes/int/float/complex/
    bool/None, torch dtypes/devices/layouts, ``torch.Size``; dicts (and
    ``OrderedDict``/``Counter``), lists, tuples and sets, converted item by
    item. Converted: numpy scalars to Python scalars, numpy arrays to tensors,
    paths to ``str``, enum members to their value, dataclass instances to
    dicts (``asdict``), other dict/list/tuple/set subclasses and
    ``frozenset`` to the plain container, other tensor subclasses to
    ``torch.Tensor``, subclasses of int/float/str to the base type. Anything
    else raises ``TypeError`` naming its place (``where``) and type.
    """
    import numpy as np

    t = type(obj)
    if t in _PLAIN_SCALARS or t in (torch.Tensor, nn.Parameter, torch.Size):
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.as_subclass(torch.Tensor)
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, where)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return to_plain(obj.tolist(), where)
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(asdict(obj), where)
    if isinstance(obj, Mapping):
        items = {to_plain(k, f"{where}[key {k!r}]"): to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
        if t in (collections.OrderedDict, collections.Counter):
            return t(items)
        return items
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (set, frozenset)):
        return {to_plain(v, f"{where}{{...}}") for v in obj}
    for base in (bool, int, float, complex, str, bytes):
        if isinstance(obj, base):
            return base(obj)
    raise TypeError(
        f"{where or 'the object'} is a {t.__module__}.{t.__qualname__}, which a checkpoint cannot hold: "
        "store plain data (dicts, lists, str, int, float, bool, None, tensors)"
    )


def _safe_load_raw(source: Any, admitted: Sequence[Any] = ()) -> Any:
    """``torch.load(source, weights_only=True)`` on the CPU with :data:`SAFE_GLOBALS` (and ``admitted``,
    ``(object, "module.name")`` pairs, for :func:`convert_checkpoint`) admitted."""
    serialization = torch.serialization
    allowed = [*SAFE_GLOBALS, *admitted]
    if hasattr(serialization, "safe_globals"):  # torch >= 2.5: scoped to this call
        with serialization.safe_globals(allowed):
            return torch.load(source, map_location="cpu", weights_only=True)
    if hasattr(serialization, "add_safe_globals"):  # torch 2.4
        serialization.add_safe_globals(allowed)
    return torch.load(source, map_location="cpu", weights_only=True)


_GLOBAL_IN_MESSAGE = re.compile(r"(?:(?:GLOBAL|Unsupported class|reduce for)\s+|got <class ')([\w.]+)")


def _names_in_message(exc: Exception) -> list[str]:
    """The globals a weights-only refusal names (a legacy file's, or a class only BUILD needs)."""
    return list(dict.fromkeys(_GLOBAL_IN_MESSAGE.findall(str(exc))))


def _unsafe_globals(path: Path, exc: Exception) -> list[str]:
    """The globals outside the allow-list that made a weights-only load fail (empty: another failure)."""
    if not isinstance(exc, Exception) or "weights only" not in str(exc).lower():
        return []
    names: list[str] = []
    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if finder is not None:  # torch >= 2.5: reads the pickle's opcodes, runs nothing
        try:
            allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS}
            names = sorted(n for n in finder(path) if n not in allowed)
        except Exception:  # noqa: BLE001 - e.g. a legacy (non-zip) file: fall back to the message
            names = []
    return names or _names_in_message(exc)


def _convert_hint(path: Path) -> str:
    return (
        f"an old file of numpy values, paths or snncost specs converts once with "
        f"`python -m snncost.checkpoint convert {path} NEW.pt` (weights-only; other classes only if you name them "
        "with --allow module.Class)"
    )


def safe_load(path: str | Path) -> Any:
    """Load a ``.pt`` file snncost wrote (checkpoint, ``eval_batch.pt``): the one ``torch.load`` of snncost.

    Always ``weights_only=True`` (plus :data:`SAFE_GLOBALS`), onto the CPU,
    so loading a file runs no code from it. Every failure is a one-line
    :class:`CheckpointError` that starts with the path: missing file,
    directory, truncated or foreign bytes, and objects outside the allow-list
    (with the command that converts an old file of numpy values, paths or specs).
    """
    path = require_file(path, "checkpoint file", CheckpointError)
    try:
        return _safe_load_raw(path)
    except Exception as exc:  # truncated zip, random bytes, pickle errors, disallowed globals...
        unsafe = _unsafe_globals(path, exc)
        if unsafe:
            shown = ", ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else "")
            raise CheckpointError(
                f"{path}: refused to load: it holds Python objects outside snncost's allow-list ({shown}), "
                "whose unpickling could run code; snncost reads only tensors and plain values "
                f"(weights_only=True); {_convert_hint(path)}"
            ) from None
        text = str(exc)
        if "weights only load failed" in text.lower():  # drop torch's advice to retry with weights_only=False
            text = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else "bad pickle data"
        detail = " ".join(f"{type(exc).__name__}: {text}".split())
        if len(detail) > 200:
            detail = detail[:197] + "..."
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not written by torch.save; {detail})"
        ) from None


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
    """Load (:func:`safe_load`, weights only) and validate a checkpoint dict; errors name the file."""
    path = Path(path)
    data = safe_load(path)
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
    from snncost.models import NeuronConfig, build_ann, build_snn, spec_from_dict

    try:
        spec = spec_from_dict(data["spec"])
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


# ---------------------------------------------------------------- explicit conversion of old files
def _convertible(name: str, allow: Sequence[str]) -> bool:
    return name in CONVERTIBLE_GLOBALS or name.startswith(_CONVERTIBLE_PREFIXES) or name in allow


def _resolve(name: str) -> Any:
    """The object a pickle's ``module.qualname`` names (imported only for an admitted name)."""
    module, _, attr = name.rpartition(".")
    while module:
        try:
            obj: Any = importlib.import_module(module)
        except ImportError:
            module, _, head = module.rpartition(".")
            attr = f"{head}.{attr}"
            continue
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    raise ImportError(name)


def _load_for_conversion(src: Path, allow: Sequence[str]) -> Any:
    """``src`` loaded weights-only, admitting the names it needs that are convertible or allowed.

    The names a file needs come from its pickle opcodes (or torch's refusal
    message, for a legacy file); each round admits the new ones and loads
    again, so nothing outside the lists is ever imported or called.
    """
    admitted: dict[str, Any] = {}
    while True:
        try:
            return _safe_load_raw(src, [(obj, name) for name, obj in admitted.items()])
        except Exception as exc:  # noqa: BLE001 - refusals name the file below
            # the file's globals first; once all are admitted, what the refusal still names
            # (a dtype class that only a BUILD of a numpy dtype reaches)
            needed = [n for n in _unsafe_globals(src, exc) if n not in admitted]
            needed = needed or [n for n in _names_in_message(exc) if n not in admitted]
            if not needed:
                detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
                raise CheckpointError(f"{src}: cannot be loaded for conversion ({detail})") from None
        refused = [n for n in needed if not _convertible(n, allow)]
        if refused:
            raise CheckpointError(
                f"{src}: holds {', '.join(refused)}, outside what conversion admits (numpy values, paths, snncost "
                "specs); name a class with --allow module.Class (allow=...) only if it is plain data whose "
                "construction runs no other code"
            )
        for name in needed:
            try:
                admitted[name] = _resolve(name)
            except (ImportError, AttributeError):
                raise CheckpointError(f"{src}: needs {name}, which cannot be imported here") from None


def convert_checkpoint(src: str | Path, dst: str | Path, *, allow: Sequence[str] = ()) -> Path:
    """Rewrite the checkpoint ``src`` as ``dst``, holding plain data only (see :func:`to_plain`).

    ``src`` is loaded weights-only like any checkpoint, also admitting the data
    types of :data:`CONVERTIBLE_GLOBALS` (numpy values, paths, snncost's spec
    dataclasses) and the classes named in ``allow`` (``"module.Class"``, e.g.
    an enum of the code that wrote the file); anything else is refused with a
    :class:`CheckpointError` naming it, and nothing from the file runs. ``dst``
    is written atomically and checked to load with :func:`safe_load` (and, if
    it carries the snncost format marker, with :func:`read_checkpoint`).
    Returns ``dst``.
    """
    src = require_file(src, "checkpoint file", CheckpointError)
    dst = Path(dst)
    data = _load_for_conversion(src, tuple(allow))
    try:
        plain = to_plain(data)
    except TypeError as exc:
        raise CheckpointError(f"{src}: cannot convert to plain data: {exc}") from None
    atomic_torch_save(plain, dst)
    if isinstance(plain, dict) and plain.get("format") == FORMAT:
        read_checkpoint(dst)
    else:
        safe_load(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    """``python -m snncost.checkpoint convert [--allow MODULE.CLASS ...] OLD NEW``: see :func:`convert_checkpoint`."""
    parser = argparse.ArgumentParser(
        prog="python -m snncost.checkpoint",
        description="Checkpoint tools. convert: rewrite an old checkpoint as plain data that loads with weights_only=True.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="rewrite OLD as NEW, holding plain data only")
    conv.add_argument("old", help="the checkpoint to convert")
    conv.add_argument("new", help="where to write the converted checkpoint")
    conv.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.CLASS",
        help="also admit this class (repeatable), e.g. an enum of the code that wrote OLD; only for plain-data "
        "classes whose construction runs no other code",
    )
    args = parser.parse_args(argv)
    try:
        out = convert_checkpoint(args.old, args.new, allow=args.allow)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} (loads with weights_only=True)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
