"""Bad input everywhere: every user-facing entry point fails with one clear, specific message.

One test per fault. Each checks the error type (the library's own
``ValueError`` subclasses, or ``TypeError`` for a wrong Python type) and that
the message names the file, the field or the shape at fault. The command
lines print one line and exit non-zero, without a traceback; nothing that
already exists on disk is overwritten by a refused or failed run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import snncost
from snncost.checkpoint import (
    CheckpointError,
    load_model,
    load_state_dict_checked,
    read_checkpoint,
    save_model,
)
from snncost.hardware import ProfileError, available_profiles, load_profile
from snncost.models import NeuronConfig, VGGSpec, build_snn
from trainers.config import DataConfig, RunConfig, resolve_config
from trainers.data import DataError, load_data

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "hwprofiles"


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


def raises(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return one_line(str(info.value))


def tiny_spec(width: int = 4) -> VGGSpec:
    return VGGSpec(
        features=[width, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0
    )


@pytest.fixture(scope="module")
def snn():
    torch.manual_seed(0)
    return build_snn(tiny_spec(), NeuronConfig(timesteps=2, threshold=0.5))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, snn) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "snn.pt"
    save_model(path, snn, snn.spec, "snn", NeuronConfig(timesteps=2, threshold=0.5))
    return path


def profile_data(name: str = "45nm") -> dict:
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# =========================================================================== hardware profiles
def test_unknown_profile_name_lists_the_available_ones():
    message = raises(ProfileError, load_profile, "no_such_chip")
    assert "'no_such_chip'" in message
    for name in available_profiles():
        assert name in message


def test_profile_name_too_long_for_a_path_is_an_unknown_name():
    message = raises(ProfileError, load_profile, "x" * 5000)
    assert "unknown hardware profile" in message and "45nm" in message


def test_profile_missing_an_energy(tmp_path):
    data = profile_data()
    del data["arithmetic"][0]["energy_pj"]
    path = write_yaml(tmp_path / "no_energy.yaml", data)
    message = raises(ProfileError, load_profile, path)
    assert (
        message.startswith(str(path))
        and "arithmetic[0].energy_pj: missing required field" in message
    )


def test_profile_negative_energy(tmp_path):
    data = profile_data("loihi")
    data["synaptic_op_pj"]["value"] = -23.6
    path = write_yaml(tmp_path / "negative.yaml", data)
    message = raises(ProfileError, load_profile, path)
    assert message.startswith(str(path))
    assert (
        "synaptic_op_pj.value" in message
        and "greater than or equal to 0" in message
        and "-23.6" in message
    )


def test_profile_wrong_type(tmp_path):
    data = profile_data()
    data["timing"]["clock_hz"] = "fast"
    data["memory"][0]["size_bytes"] = [8192]
    path = write_yaml(tmp_path / "wrong_type.yaml", data)
    message = raises(ProfileError, load_profile, path)
    assert message.startswith(str(path))
    assert (
        "timing.clock_hz" in message and "'fast'" in message and "memory[0].size_bytes" in message
    )


def test_profile_truncated_yaml(tmp_path):
    text = (PROFILE_DIR / "45nm.yaml").read_text(encoding="utf-8")
    cut = text.index("{op: mult") + len("{op: mu")  # inside a flow mapping
    path = tmp_path / "truncated.yaml"
    path.write_text(text[:cut], encoding="utf-8")
    message = raises(ProfileError, load_profile, path)
    assert message.startswith(str(path)) and "malformed YAML at line" in message


def test_profile_unconvertible_scalars(tmp_path):
    path = tmp_path / "date.yaml"
    path.write_text("name: x\ncreated: 2020-13-45\n", encoding="utf-8")
    message = raises(ProfileError, load_profile, path)
    assert message.startswith(str(path)) and "line 2" in message and "2020-13-45" in message
    path.write_text("default_bits: " + "9" * 5000 + "\n", encoding="utf-8")
    assert raises(ProfileError, load_profile, path).startswith(str(path))
    path.write_text("[" * 3000 + "]" * 3000, encoding="utf-8")
    assert "nested too deeply" in raises(ProfileError, load_profile, path)


def test_profile_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    message = raises(ProfileError, load_profile, path)
    assert message.startswith(str(path)) and "UTF-8" in message


def test_profile_merge_keys_are_valid_yaml(tmp_path):
    # YAML merge keys (<<) are valid in a profile; an explicit key overrides a merged one
    text = yaml.safe_dump(profile_data(), sort_keys=False)
    merged = "timing:\n  <<: {min_timestep_cycles: 7, timestep_overhead_cycles: 99}\n"
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace("timing:\n", merged, 1), encoding="utf-8")
    timing = load_profile(path).timing
    assert timing.min_timestep_cycles == 7 and timing.timestep_overhead_cycles == 0
    # while a key written twice is still an error
    path.write_text(text.replace("timing:\n", "timing:\n  clock_hz: 5\n", 1), encoding="utf-8")
    assert "duplicate key 'clock_hz'" in raises(ProfileError, load_profile, path)


def test_profile_path_problems(tmp_path):
    assert "file not found" in raises(ProfileError, load_profile, tmp_path / "missing.yaml")
    assert "is a directory" in raises(ProfileError, load_profile, tmp_path)
    long = tmp_path / ("y" * 300 + ".yaml")
    assert raises(ProfileError, load_profile, long).startswith(str(long))


# =========================================================================== checkpoints
def test_checkpoint_truncated(checkpoint, tmp_path):
    raw = checkpoint.read_bytes()
    half = tmp_path / "half.pt"
    half.write_bytes(raw[: len(raw) // 2])
    message = raises(CheckpointError, load_model, half)
    assert message.startswith(str(half)) and "truncated" in message


def test_checkpoint_of_another_architecture(checkpoint):
    wider = build_snn(tiny_spec(width=6), NeuronConfig(timesteps=2))
    message = raises(
        CheckpointError,
        load_state_dict_checked,
        wider,
        read_checkpoint(checkpoint)["state_dict"],
        str(checkpoint),
    )
    assert message.startswith(str(checkpoint))
    assert (
        "features.0.weight" in message and "(4, 1, 3, 3)" in message and "(6, 1, 3, 3)" in message
    )
    deeper = build_snn(
        VGGSpec(features=[4, "P", 8, 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0),
        NeuronConfig(timesteps=2),
    )
    message = raises(
        CheckpointError,
        load_state_dict_checked,
        deeper,
        read_checkpoint(checkpoint)["state_dict"],
        str(checkpoint),
    )
    assert "do not fit this architecture" in message and "missing: ['features.5.weight'" in message


def test_checkpoint_state_dict_of_wrong_types(snn):
    state = {k: v.numpy() for k, v in snn.state_dict().items()}
    assert "is of type ndarray, not a tensor" in raises(
        CheckpointError, load_state_dict_checked, snn, state, "here.pt"
    )
    state = {k: v.to(torch.complex64) for k, v in snn.state_dict().items()}
    assert "complex64" in raises(CheckpointError, load_state_dict_checked, snn, state, "here.pt")
    assert "not a mapping" in raises(
        CheckpointError, load_state_dict_checked, snn, [1, 2], "here.pt"
    )


def test_checkpoint_random_bytes(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    assert raises(CheckpointError, load_model, path).startswith(str(path))


def test_checkpoint_that_is_a_yaml_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(RunConfig().to_yaml(), encoding="utf-8")
    message = raises(CheckpointError, load_model, path)
    assert message.startswith(str(path)) and "not a readable checkpoint" in message


def test_checkpoint_that_is_another_torch_file(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    assert "not an snncost checkpoint" in raises(CheckpointError, load_model, path)
    torch.save({"format": "snncost-checkpoint", "spec": {}}, path)
    assert "lacks the field 'form'" in raises(CheckpointError, load_model, path)


def test_checkpoint_path_problems(tmp_path):
    message = raises(CheckpointError, load_model, tmp_path / "nope.pt")
    assert message.startswith(str(tmp_path / "nope.pt")) and "no such checkpoint" in message
    assert "is a directory" in raises(CheckpointError, load_model, tmp_path)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert raises(CheckpointError, load_model, empty).startswith(str(empty))
    long = tmp_path / ("c" * 300 + ".pt")
    assert raises(CheckpointError, load_model, long).startswith(str(long))


# =========================================================================== snncost.evaluate
def test_evaluate_wrong_shape(snn):
    message = raises(ValueError, snncost.evaluate, snn, data=torch.zeros(2, 3, 32, 32))
    assert "(2, 3, 32, 32)" in message and "[B, 1, 8, 8]" in message


def test_evaluate_strings(snn):
    message = raises(TypeError, snncost.evaluate, snn, data=np.full((2, 1, 8, 8), "a"))
    assert "dtype <U1 is not numeric" in message
    assert "not numeric" in raises(
        TypeError, snncost.evaluate, snn, data=(torch.zeros(2, 1, 8, 8), ["a", "b"])
    )
    assert "got a str" in raises(TypeError, snncost.evaluate, snn, data="digits")


def test_evaluate_complex(snn):
    message = raises(
        TypeError, snncost.evaluate, snn, data=torch.zeros(2, 1, 8, 8, dtype=torch.complex64)
    )
    assert "complex64" in message and "real numbers" in message


def test_evaluate_non_finite(snn):
    x = torch.zeros(3, 1, 8, 8)
    x[1, 0, 2, 2] = float("nan")
    message = raises(ValueError, snncost.evaluate, snn, data=x)
    assert "1 non-finite" in message and "sample 1" in message
    big = np.full((2, 1, 8, 8), 1e300)  # finite in float64, inf in float32
    assert "float32" in raises(ValueError, snncost.evaluate, snn, data=big)


def test_evaluate_empty_data(snn):
    assert "0 samples" in raises(ValueError, snncost.evaluate, snn, data=torch.zeros(0, 1, 8, 8))
    assert "0 samples" in raises(
        ValueError, snncost.evaluate, snn, data=(torch.zeros(0, 1, 8, 8), torch.zeros(0))
    )
    ds = torch.utils.data.TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0))
    assert "empty" in raises(ValueError, snncost.evaluate, snn, data=ds)
    assert "no batches" in raises(
        ValueError, snncost.evaluate, snn, data=torch.utils.data.DataLoader(ds)
    )


def test_evaluate_mismatched_labels(snn):
    x = torch.zeros(3, 1, 8, 8)
    assert "3 inputs but 2 labels" in raises(
        ValueError, snncost.evaluate, snn, data=(x, torch.tensor([0, 1]))
    )
    message = raises(ValueError, snncost.evaluate, snn, data=(x, torch.tensor([0.0, 1.5, 2.0])))
    assert "integer class indices" in message and "label 1 is 1.5" in message


def test_evaluate_other_containers(snn):
    message = raises(TypeError, snncost.evaluate, snn, data={"x": torch.zeros(2, 1, 8, 8)})
    assert "got a dict" in message
    ragged = [(torch.zeros(1, 8, 8), 0), (torch.zeros(1, 7, 8), 1), (torch.zeros(1, 8, 8), 2)]
    message = raises(ValueError, snncost.evaluate, snn, data=ragged)
    assert "dataset item 1 has shape (1, 7, 8)" in message
    assert "max_samples" in raises(ValueError, snncost.evaluate, snn, max_samples=2.5)


# =========================================================================== python -m snncost
def run_module(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_evaluate_bad_checkpoint_subprocess(checkpoint, tmp_path):
    raw = checkpoint.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(raw[: len(raw) // 3])
    out = run_module("snncost", "evaluate", str(bad))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snncost: error: ") and str(bad) in lines[0]


@pytest.mark.parametrize("kind", ["missing", "yaml", "directory"])
def test_cli_evaluate_not_a_checkpoint(kind, tmp_path, capsys):
    from snncost.__main__ import main

    path = {"missing": tmp_path / "missing.pt", "yaml": tmp_path / "c.yaml", "directory": tmp_path}[
        kind
    ]
    if kind == "yaml":
        path.write_text("a: 1\n")
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


def test_cli_report_output_is_written_atomically(checkpoint, tmp_path, monkeypatch, capsys):
    from snncost import checkpoint as ckpt
    from snncost.__main__ import main

    out = tmp_path / "report.md"
    out.write_text("previous report\n")
    args = ["evaluate", str(checkpoint), "--samples", "2", "--output", str(out)]

    # a failing evaluation leaves the existing report alone
    assert main([*args, "--profile", "no_such_chip"]) == 2
    assert out.read_text() == "previous report\n"

    # a crash at the rename leaves the old file complete and no temporary file behind
    def crash(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    assert main(args) == 2
    assert "disk full" in capsys.readouterr().err
    assert out.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    monkeypatch.undo()

    # success: replaced by a temp file in the same directory renamed over it
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(
        ckpt.os, "replace", lambda s, d: (renames.append((Path(s), Path(d))), real_replace(s, d))
    )
    assert main(args) == 0
    assert out.read_text().startswith("# Cost report")
    renames = [r for r in renames if r[1].parent == tmp_path]  # numba's cache also renames files
    assert len(renames) == 1 and renames[0][1] == out and renames[0][0].parent == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


# =========================================================================== python -m trainers.run
def trainer(argv: list[str], capsys) -> tuple[int, str]:
    from trainers.run import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_trainer_bad_key(capsys, runs_dir):
    code, err = trainer([f"runs_dir={runs_dir}", "snn.timestepz=3"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "unknown config key 'snn.timestepz'" in err and "timesteps" in err


def test_trainer_bad_value(capsys, runs_dir):
    code, err = trainer([f"runs_dir={runs_dir}", "snn.encoding=morse"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "'snn.encoding'" in err and "'direct'" in err and "'poisson'" in err and "'morse'" in err
    code, err = trainer([f"runs_dir={runs_dir}", "data.batch_size=-0x" + "f" * 4000], capsys)
    assert code == 2 and "'data.batch_size'" in err and len(err) < 1000


def test_trainer_bad_override_syntax(capsys, runs_dir):
    code, err = trainer([f"runs_dir={runs_dir}", "snn..timesteps=3"], capsys)
    assert code == 2 and "empty part" in err
    code, err = trainer([f"runs_dir={runs_dir}", "timesteps"], capsys)
    assert code == 2 and "key=value" in err


def test_trainer_bad_yaml_config_subprocess(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("snn:\n  timesteps: [8\nname: x\n")
    out = run_module("trainers.run", "--config", str(config))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and "not valid YAML at line" in lines[0]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("- ann\n- snn\n", "top level must be a mapping"),
        ("", "empty"),
        ("snn: {timesteps: 2020-13-45}\n", "line 1, column 18: cannot convert '2020-13-45'"),
        ("[" * 3000 + "]" * 3000, "nested too deeply"),
        (b"\xff\xfe\x00bad", "UTF-8"),
        ("snn: {timesteps: eight}\n", "'snn.timesteps'"),
    ],
    ids=["list", "empty", "bad-date", "deep", "binary", "wrong-type"],
)
def test_trainer_bad_config_files(content, fragment, tmp_path, capsys, runs_dir):
    config = tmp_path / "c.yaml"
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, err = trainer(["--config", str(config), f"runs_dir={runs_dir}"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert str(config) in err and fragment in err, err


def test_trainer_config_path_problems(tmp_path, capsys):
    code, err = trainer(["--config", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and "no such config file" in err
    code, err = trainer(["--config", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_trainer_never_overwrites_a_run_with_another_config(tmp_path, capsys, snn):
    from trainers.rundir import RunDir

    runs = tmp_path / "runs"
    base = [f"runs_dir={runs}", "name=exp", "data.name=synthetic", "progress=false"]
    run = RunDir(resolve_config(overrides=base))
    assert run.open() is False  # a new run: config.yaml written
    save_model(run.stage_file("snn"), snn, snn.spec, "snn", NeuronConfig(timesteps=2))
    (run.path / "metrics.jsonl").write_text('{"stage": "snn", "epoch": 1}\n')
    (run.path / "report.md").write_text("# the results of a week of training\n")
    before = snapshot(runs)

    code, err = trainer([*base, "snn.timesteps=3", "ann.lr=0.5"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert (
        "different config" in err
        and "snn.timesteps" in err
        and "ann.lr" in err
        and str(run.path) in err
    )
    assert snapshot(runs) == before  # byte-identical, nothing added or removed


# =========================================================================== data sets
def imagefolder(root: Path, **layout: list[str]) -> Path:
    """``root/<split>/<class>/<files>``; a file ending in .png is a real 2x2 image."""
    from PIL import Image

    for split_class, files in layout.items():
        split, cls = split_class.split("__")
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.endswith(".png"):
                Image.new("RGB", (2, 2), (10, 20, 30)).save(folder / name)
            else:
                (folder / name).write_text("not an image")
    return root


def load_folder(root: Path, tmp_path: Path):
    return load_data(
        DataConfig(name="imagefolder", root=str(root), cache_dir=str(tmp_path / "cache"))
    )


def test_imagefolder_with_no_images(tmp_path):
    root = tmp_path / "ds"
    (root / "train" / "cat").mkdir(parents=True)
    (root / "test" / "cat").mkdir(parents=True)
    message = raises(DataError, load_folder, root, tmp_path)
    assert str(root / "train") in message and "no image files" in message


def test_imagefolder_with_no_class_folders(tmp_path):
    root = tmp_path / "ds"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir(parents=True)
    message = raises(DataError, load_folder, root, tmp_path)
    assert str(root / "train") in message and "no class folders" in message


def test_imagefolder_without_splits(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    message = raises(DataError, load_folder, root, tmp_path)
    assert str(root) in message and "train/ and test/" in message
    assert "no such directory" in raises(DataError, load_folder, tmp_path / "absent", tmp_path)


def test_imagefolder_with_a_file_that_is_not_an_image(tmp_path):
    root = imagefolder(tmp_path / "ds", train__cat=["a.png", "notes.txt"], test__cat=["b.png"])
    message = raises(DataError, load_folder, root, tmp_path)
    assert (
        str(root / "train" / "cat" / "notes.txt") in message and "not a readable image" in message
    )


def test_imagefolder_ignores_hidden_files(tmp_path):
    root = imagefolder(tmp_path / "ds", train__cat=["a.png", "c.png", ".DS_Store"], test__cat=["b.png"])
    (root / "train" / ".ipynb_checkpoints").mkdir()
    bundle = load_folder(root, tmp_path)
    assert len(bundle.train) + len(bundle.val) == 2 and bundle.train.classes == ["cat"]


def test_trainer_on_an_empty_data_set(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "train" / "a").mkdir(parents=True)
    (root / "test" / "a").mkdir(parents=True)
    argv = [
        f"runs_dir={tmp_path / 'runs'}",
        "data.name=imagefolder",
        f"data.root={root}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "progress=false",
    ]
    code, err = trainer(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and str(root / "train") in err
