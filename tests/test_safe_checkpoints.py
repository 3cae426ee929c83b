"""Safe checkpoints: snncost reads ``.pt`` files with ``weights_only=True`` only.

A checkpoint whose unpickling would run code is refused (naming the file)
and the code does not run; everything snncost writes (models via
``save_model``, every checkpoint of a trainer run, ``eval_batch.pt``) reads
back with the weights-only loader; an old file holding numpy values, paths
or specs is converted when asked (``convert_checkpoint`` or
``python -m snncost.checkpoint convert OLD NEW``), weights-only as well:
other classes only when named (``--allow module.Class``), code never.
"""

from __future__ import annotations

import enum
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import snncost.nn as sn
from snncost import checkpoint as ckpt
from snncost.checkpoint import (
    SAFE_GLOBALS,
    CheckpointError,
    atomic_torch_save,
    convert_checkpoint,
    load_model,
    model_record,
    read_checkpoint,
    safe_load,
    save_model,
    to_plain,
)
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn

ROOT = Path(__file__).resolve().parents[1]
SPEC = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)
NEURONS = NeuronConfig(timesteps=3, threshold=0.5)


class ShellPayload:
    """Unpickling this runs ``touch <marker>`` through the shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TouchPayload:
    """Unpickling this calls ``pathlib.Path.touch(<marker>)``: no shell, a plain library function."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class Colour(enum.Enum):
    RED = "red"


def message(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text, text
    return text


def plain_types(obj, where="") -> list[str]:
    """Places in ``obj`` holding something other than plain data (empty: all plain)."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in plain_types(k, where) + plain_types(v, f"{where}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in plain_types(v, f"{where}[{i}]")]
    if obj is None or isinstance(obj, (str, int, float, bool, torch.Tensor)):
        return []
    return [f"{where}: {type(obj).__name__}"]


def evil_checkpoint(path: Path, payload, legacy: bool = False) -> None:
    record = model_record(build_ann(SPEC), SPEC, "ann")
    record["metrics"] = {"note": payload}
    torch.save(record, path, _use_new_zipfile_serialization=not legacy)


# =========================================================================== refusing code
@pytest.mark.parametrize("payload", [ShellPayload, TouchPayload])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_checkpoint_that_would_run_code_is_refused(tmp_path, payload, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "paper-model.pt"
    evil_checkpoint(path, payload(marker), legacy)
    for loader in (read_checkpoint, load_model, safe_load):
        with pytest.raises(CheckpointError) as exc_info:
            loader(path)
        text = message(exc_info)
        assert text.startswith(f"{path}: refused to load"), text
        assert f"python -m snncost.checkpoint convert {path} NEW.pt" in text
    with pytest.raises(CheckpointError) as exc_info:  # conversion too: it admits data types only
        convert_checkpoint(path, tmp_path / "new.pt", allow=[f"{Colour.__module__}.Colour"])
    text = message(exc_info)
    assert text.startswith(f"{path}: holds ") and "outside what conversion admits" in text, text
    assert not (tmp_path / "new.pt").exists()
    assert not marker.exists(), "the pickled code ran"


def test_raw_pickle_with_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"format": "snncost-checkpoint", "x": TouchPayload(marker)}, protocol=2))
    with pytest.raises(CheckpointError) as exc_info:
        load_model(path)
    assert message(exc_info).startswith(str(path))
    assert not marker.exists()


def test_the_one_torch_load_is_weights_only():
    """snncost and trainers load ``.pt`` files only through :func:`snncost.checkpoint.safe_load`."""
    offenders = []
    for folder in ("snncost", "trainers"):
        for py in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(py.read_text(encoding="utf-8").splitlines(), 1):
                if "torch.load(" in line and "weights_only=True" not in line:
                    offenders.append(f"{py.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


# =========================================================================== round trips
def _models():
    torch.manual_seed(0)
    ann = build_ann(SPEC)
    snn = build_snn(SPEC, NEURONS)
    qsnn = sn.quantize_model(build_snn(SPEC, NEURONS), 4)
    mixed = build_snn(SPEC, NEURONS)
    sn.quantize_model(mixed, 4)
    mixed.classifier[-1] = sn.quantize_model(mixed.classifier[-1], 8, per_channel=False)
    return {"ann": (ann, "ann", None), "snn": (snn, "snn", NEURONS), "quant": (qsnn, "snn", NEURONS),
            "mixed": (mixed, "snn", NEURONS)}  # fmt: skip


@pytest.mark.parametrize("name", ["ann", "snn", "quant", "mixed"])
def test_saved_models_round_trip_weights_only(tmp_path, name):
    model, form, neurons = _models()[name]
    model.eval()
    path = tmp_path / f"{name}.pt"
    save_model(path, model, SPEC, form, neurons, metrics={"test_acc": np.float64(0.5)}, source=tmp_path)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no allow-list at all
    assert plain_types(raw) == []
    assert raw["metrics"] == {"test_acc": 0.5} and raw["source"] == str(tmp_path)
    again = load_model(path)
    assert sn.model_quantization(again) == sn.model_quantization(model)
    x = torch.rand(2, 1, 8, 8)
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = again(x)
    assert torch.equal(a, b)


@pytest.mark.slow
def test_every_file_of_a_trainer_run_loads_weights_only(tmp_path, monkeypatch):
    """The tiny pipeline (as in test_crash_safety), SGD+step for the ANN (a Counter in its scheduler)."""
    from test_crash_safety import TINY

    from trainers.run import main
    from trainers.rundir import RunDir

    kept = tmp_path / "kept"
    kept.mkdir()
    real = RunDir.save_progress

    def keep_progress(self, stage, record, history):  # keep every <stage>-last.pt (removed when a stage ends)
        real(self, stage, record, history)
        f = self.progress_file(stage)
        shutil.copy(f, kept / f"{len(list(kept.iterdir())):02d}-{f.name}")

    monkeypatch.setattr(RunDir, "save_progress", keep_progress)
    runs = tmp_path / "runs"
    assert main([*TINY, "ann.schedule=step", "ann.optimizer=sgd", f"runs_dir={runs}", "name=r"]) == 0
    run = runs / "r"
    finished = sorted((run / "checkpoints").glob("*.pt"))
    progress = sorted(kept.glob("*.pt"))
    assert {p.stem for p in finished} >= {"ann", "convert", "snn", "spatial", "temporal", "quantize"}
    assert any(p.name.endswith("ann-last.pt") for p in progress) and any("snn-last" in p.name for p in progress)
    for path in [*finished, *progress]:
        data = read_checkpoint(path)
        assert isinstance(data["state_dict"], dict), path
        load_model(path)
    ann_last = read_checkpoint(next(p for p in progress if p.name.endswith("ann-last.pt")))
    assert isinstance(ann_last["scheduler"]["milestones"], Counter)  # the SAFE_GLOBALS entry
    assert {"optimizer", "scheduler", "rng", "epoch"} <= set(ann_last)
    batch = safe_load(run / "eval_batch.pt")
    assert set(batch) == {"x", "y"} and len(batch["x"]) == len(batch["y"])
    for path in run.rglob("*.pt"):  # whatever else a run writes
        safe_load(path)


# =========================================================================== the writer
def test_writer_stores_plain_data(tmp_path):
    path = tmp_path / "c.pt"
    atomic_torch_save(
        {
            "np": np.float32(1.5), "arr": np.arange(3), "path": tmp_path, "enum": Colour.RED,
            "spec": SPEC, "od": OrderedDict(a=1), "tuple": (1, np.int64(2)), np.int64(3): "key",
        },
        path,
    )  # fmt: skip
    data = torch.load(path, weights_only=True)
    assert data["np"] == 1.5 and type(data["np"]) is float
    assert torch.equal(data["arr"], torch.arange(3))
    assert data["path"] == str(tmp_path) and data["enum"] == "red" and data["spec"] == SPEC.to_dict()
    assert data["od"] == OrderedDict(a=1) and data["tuple"] == (1, 2) and data[3] == "key"


def test_writer_refuses_objects_the_reader_would_refuse(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises(TypeError, match=r"\['metrics'\]\['model'\] is a torch.nn.modules.linear.Linear"):
        atomic_torch_save({"metrics": {"model": torch.nn.Linear(2, 2)}}, path)
    assert not path.exists()


def test_allow_list_is_small_and_explicit():
    assert SAFE_GLOBALS == (Counter,)
    assert to_plain(Counter({3: 1})) == Counter({3: 1})


# =========================================================================== old files
def old_style_checkpoint(path: Path) -> torch.nn.Module:
    """A checkpoint as other code might have written it: dataclass instances, numpy values, a path, an enum."""
    torch.manual_seed(2)
    model = build_snn(SPEC, NEURONS).eval()
    torch.save(
        {
            "format": ckpt.FORMAT, "version": 1, "form": "snn", "spec": SPEC, "neurons": NEURONS,
            "state_dict": model.state_dict(), "timesteps": 3,
            "metrics": {"test_acc": np.float64(0.75), "per_class": np.array([0.5, 1.0])},
            "data": pathlib.Path("/data/digits"), "colour": Colour.RED,
        },
        path,
    )  # fmt: skip
    return model


def test_old_checkpoint_with_other_types_fails_with_conversion_hint(tmp_path):
    path = tmp_path / "old.pt"
    old_style_checkpoint(path)
    with pytest.raises(CheckpointError) as exc_info:
        load_model(path)
    text = message(exc_info)
    assert text.startswith(f"{path}: refused to load") and "numpy." in text and "more" in text
    assert f"python -m snncost.checkpoint convert {path} NEW.pt" in text


def test_explicit_conversion_of_old_checkpoint(tmp_path):
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    model = old_style_checkpoint(old)
    colour = f"{Colour.__module__}.Colour"
    with pytest.raises(CheckpointError) as exc_info:  # numpy, paths and specs convert; the enum must be named
        convert_checkpoint(old, new)
    assert message(exc_info) == (
        f"{old}: holds {colour}, outside what conversion admits (numpy values, paths, snncost specs); name a "
        "class with --allow module.Class (allow=...) only if it is plain data whose construction runs no other code"
    )
    assert not new.exists()
    assert convert_checkpoint(old, new, allow=[colour]) == new
    data = torch.load(new, map_location="cpu", weights_only=True)
    assert plain_types(data) == []
    assert data["spec"] == SPEC.to_dict() and data["neurons"]["threshold"] == 0.5
    assert data["metrics"]["test_acc"] == 0.75 and torch.equal(data["metrics"]["per_class"], torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert data["data"] == "/data/digits" and data["colour"] == "red"
    again = load_model(new)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(model(x), again(x))


def test_old_checkpoint_of_allowed_types_just_loads(tmp_path):
    """Files of earlier snncost versions hold plain data: they load, and convert with nothing admitted."""
    path = tmp_path / "v1.pt"
    model = build_ann(SPEC).eval()
    torch.save({**model_record(model, SPEC, "ann"), "metrics": {"test_acc": 0.9}, "history": [{"epoch": 1}]}, path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(load_model(path)(x), model(x))
    convert_checkpoint(path, tmp_path / "copy.pt")
    assert torch.equal(load_model(tmp_path / "copy.pt")(x), model(x))


def test_conversion_cli(tmp_path, capsys):
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    old_style_checkpoint(old)
    assert ckpt.main(["convert", str(old), str(new)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {old}: holds") and "--allow" in err and not new.exists()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}  # Colour's module
    done = subprocess.run(
        [sys.executable, "-m", "snncost.checkpoint", "convert", "--allow", "test_safe_checkpoints.Colour", str(old), str(new)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {new}" in done.stdout
    assert load_model(new).timesteps == 3


def test_conversion_refuses_what_it_cannot_make_plain(tmp_path):
    old = tmp_path / "module.pt"
    torch.save({"format": ckpt.FORMAT, "model": torch.nn.Linear(2, 2)}, old)
    with pytest.raises(CheckpointError) as exc_info:
        convert_checkpoint(old, tmp_path / "new.pt", allow=["torch.nn.modules.linear.Linear"])
    assert message(exc_info).startswith(f"{old}: cannot convert to plain data") and "Linear" in str(exc_info.value)
