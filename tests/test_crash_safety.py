"""Crash safety of ``python -m trainers.run``: SIGKILL anywhere, re-run, same result.

The real command runs as a subprocess on a tiny config. One run goes
straight through (the reference); another is killed with SIGKILL at a
series of deterministic points, chosen with the fault-injection hook
``SNNCOST_CRASH_AT`` (:mod:`snncost.checkpoint`): mid-epoch, mid-write of a
checkpoint / the metrics / a report (half the bytes in the temporary file,
before the rename) and between stages. After every kill each file of the
run directory must be complete (every ``.pt`` loads, every JSON file
parses, ``config.yaml`` parses, every PNG is whole), and re-running the
same command must end with the reference's metrics and weights, with the
temporary files of the killed writes removed.

Also here: a non-finite loss stops the run with one ``error:`` line and
keeps the last good checkpoint, and the run-directory / config / evaluate
argument defects found by review.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import snncost
from snncost.checkpoint import read_checkpoint, safe_load
from trainers.config import ConfigError, resolve_config
from trainers.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
KILLED = -signal.SIGKILL if hasattr(signal, "SIGKILL") else None

TINY = [
    "data.name=synthetic", "model.arch=custom", "model.features=[8,P,8,P]", "model.classifier=[16]",
    "ann.epochs=3", "snn.epochs=2", "snn.timesteps=3", "convert.batches=2", "spatial.init=scratch",
    "spatial.threshold=0.99", "spatial.ann_epochs=2", "spatial.epochs=1", "spatial.batches=2", "temporal.schedule=[3,2]", "temporal.epochs=1", "quantize.sweep=[8,4]",
    "evaluate.samples=32", "evaluate.noise_stds=[0,0.1]", "progress=false", "device=cpu",
]  # fmt: skip

pytestmark = pytest.mark.skipif(KILLED is None, reason="needs SIGKILL (POSIX)")


def cli(runs: Path, name: str, *extra: str, crash: str | None = None) -> subprocess.CompletedProcess:
    """``python -m trainers.run`` on the tiny config, optionally killed at ``crash``."""
    env = {k: v for k, v in os.environ.items() if k != "SNNCOST_CRASH_AT"}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    if crash is not None:
        env["SNNCOST_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "trainers.run", *TINY, *extra, f"runs_dir={runs}", f"name={name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def temporaries(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob(".*.tmp"))


def check_complete(run: Path) -> None:
    """Every file of the run directory is whole (temporary files of killed writes aside)."""
    for path in sorted(p for p in run.rglob("*") if p.is_file() and p not in temporaries(run)):
        raw = path.read_bytes()
        where = str(path.relative_to(run))
        if path.suffix == ".pt" and path.parent.name == "checkpoints":
            data = safe_load(path)
            assert read_checkpoint(path) and isinstance(data["state_dict"], dict), where
        elif path.suffix == ".pt":  # eval_batch.pt: the costed inputs
            data = torch.load(path, map_location="cpu", weights_only=True)
            assert set(data) == {"x", "y"} and len(data["x"]) == len(data["y"]), where
        elif path.suffix == ".json":
            json.loads(raw)
        elif path.suffix == ".jsonl":
            assert raw.endswith(b"\n"), where
            for line in raw.decode().splitlines():
                assert isinstance(json.loads(line), dict), where
        elif path.name == "config.yaml":
            assert isinstance(yaml.safe_load(raw), dict), where
        elif path.suffix == ".png":
            assert raw.startswith(b"\x89PNG\r\n\x1a\n") and raw.endswith(b"IEND\xaeB`\x82"), where
        else:
            raw.decode("utf-8")


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def checkpoints(run: Path) -> dict[str, dict]:
    return {p.name: safe_load(p) for p in sorted((run / "checkpoints").glob("*.pt"))}


def names(run: Path) -> set[str]:
    return {p.name for p in (run / "checkpoints").glob("*.pt")} if (run / "checkpoints").is_dir() else set()


def epoch_of(run: Path, file: str) -> int:
    return safe_load(run / "checkpoints" / file)["epoch"]


#: (SNNCOST_CRASH_AT, what the killed run left behind); the points follow the
#: pipeline, so each re-run resumes further and is killed at the next one.
KILLS = [
    # the very first write: the directory holds only the temporary config file
    ("write:config.yaml:1", lambda run: not (run / "config.yaml").exists() and names(run) == set()),
    # mid-epoch: ann epoch 2, batch 3 (its in-memory weights already moved on)
    ("batch:ann:2:3", lambda run: names(run) == {"ann-last.pt"} and epoch_of(run, "ann-last.pt") == 1),
    # mid-write of the epoch-2 checkpoint: the epoch-1 one stays, whole
    ("write:ann-last.pt:1", lambda run: names(run) == {"ann-last.pt"} and epoch_of(run, "ann-last.pt") == 1),
    # between stages: convert finished, snn not started
    ("after:convert", lambda run: names(run) == {"ann.pt", "convert.pt"}),
    ("batch:snn:2:3", lambda run: names(run) == {"ann.pt", "convert.pt", "snn-last.pt"} and epoch_of(run, "snn-last.pt") == 1),
    # between the sub-stages of spatial (init=scratch): its narrow ANN is done
    ("after:spatial-ann", lambda run: "spatial-ann.pt" in names(run) and not any(n.startswith("spatial.") or n.startswith("spatial-last") for n in names(run))),
    # mid-write of a finished stage checkpoint (its last epoch is saved)
    ("write:spatial.pt:1", lambda run: "spatial.pt" not in names(run) and epoch_of(run, "spatial-last.pt") == 1),
    # between two steps of the temporal schedule
    ("after:temporal-T3", lambda run: "temporal-T3.pt" in names(run) and not any(n.startswith("temporal-T2") for n in names(run))),
    # the metrics write that follows quantize.pt: that checkpoint exists, its metrics do not
    ("write:metrics.jsonl:4", lambda run: "quantize.pt" in names(run) and "quantize" not in {r["stage"] for r in metrics(run)}),
    # in the evaluate stage, after the reports, mid-write of results.json
    ("write:results.json:1", lambda run: (run / "report.md").exists() and not (run / "results.json").exists()),
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("reference")
    out = cli(runs, "straight")
    assert out.returncode == 0, out.stderr[-3000:]
    return runs / "straight"


def test_killed_anywhere_and_rerun_gives_the_uninterrupted_result(reference, tmp_path):
    runs, name = tmp_path / "runs", "killed"
    run = runs / name
    log, stdout = [], {}
    for point, left in KILLS:
        before = temporaries(run) if run.exists() else []
        out = cli(runs, name, crash=point)
        log.append((point, out.returncode, sorted(names(run))))
        stdout[point] = out.stdout
        assert out.returncode == KILLED, (point, out.returncode, out.stderr[-3000:])
        assert left(run), (point, sorted(names(run)), out.stdout[-2000:])
        check_complete(run)
        stale = temporaries(run)
        assert not set(before) & set(stale), f"{point}: the re-run did not remove {before}"
        if point.startswith("write:"):  # the killed write left half a temporary file, nothing else
            target = point.split(":")[1]
            assert len(stale) == 1 and stale[0].name.startswith(f".{target}.") and stale[0].stat().st_size > 0, stale
        else:
            assert stale == [], stale
    # the runs after a mid-epoch kill resumed from the epoch before it
    assert "[ann] resuming after epoch 1/3" in stdout["write:ann-last.pt:1"]
    assert "[snn] resuming after epoch 1/2" in stdout["after:spatial-ann"]

    out = cli(runs, name)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming" in out.stdout.splitlines()[0]
    check_complete(run)
    assert temporaries(run) == []

    assert metrics(run) == metrics(reference)
    mine, ref = checkpoints(run), checkpoints(reference)
    assert sorted(mine) == sorted(ref)  # no stale -last.pt either
    for file, data in ref.items():
        a, b = data["state_dict"], mine[file]["state_dict"]
        assert sorted(a) == sorted(b), file
        assert all(torch.equal(a[k], b[k]) for k in a), file
    assert json.loads((run / "results.json").read_text()) == json.loads((reference / "results.json").read_text())
    print("\n".join(f"{p:24s} rc={rc} checkpoints={c}" for p, rc, c in log))


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    # epoch 1 at lr 0.01, then the step schedule multiplies it by 1e38: the loss overflows in epoch 2
    out = cli(runs, "nan", "ann.epochs=2", "ann.schedule=step", "ann.milestones=[0.5]", "ann.gamma=1e38")
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    run = runs / "nan"
    last = run / "checkpoints" / "ann-last.pt"
    assert "stage 'ann'" in lines[0] and "ann 2/2" in lines[0] and str(last) in lines[0], lines[0]
    assert "loss became nan" in lines[0] or "loss became inf" in lines[0], lines[0]
    assert names(run) == {"ann-last.pt"} and read_checkpoint(last)["epoch"] == 1
    assert [(r["stage"], r["epoch"]) for r in metrics(run)] == [("ann", 1)]
    check_complete(run)
    assert temporaries(run) == []


# =========================================================================== run directory and config defects
def trainer(argv: list[str], capsys) -> tuple[int, str]:
    from trainers.run import main

    code = main(argv)
    return code, capsys.readouterr().err


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("below", [False, True], ids=["runs_dir", "runs_dir-parent"])
def test_runs_dir_that_is_a_file(tmp_path, capsys, below):
    file = tmp_path / "runs"
    file.write_text("not a directory\n")
    runs = file / "sub" if below else file
    code, err = trainer([f"runs_dir={runs}", "name=x", "data.name=synthetic"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert str(file) in err and "directory" in err, err
    assert file.read_text() == "not a directory\n"


def test_directory_with_files_but_no_config_is_not_adopted(tmp_path, capsys):
    run = tmp_path / "runs" / "exp"
    (run / "sub").mkdir(parents=True)
    (run / "report.md").write_text("# somebody's results\n")
    (run / "sub" / "notes.txt").write_text("keep\n")
    before = snapshot(run)
    code, err = trainer([f"runs_dir={tmp_path / 'runs'}", "name=exp", "data.name=synthetic"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert str(run) in err and "no config.yaml" in err, err
    assert snapshot(run) == before and sorted(p.name for p in run.iterdir()) == ["report.md", "sub"]


def test_empty_directory_or_leftover_temporaries_are_a_new_run(tmp_path):
    cfg = resolve_config(overrides=[f"runs_dir={tmp_path}", "name=exp", "data.name=synthetic"])
    run = RunDir(cfg)
    (run.path / "checkpoints").mkdir(parents=True)  # empty directories only
    (run.path / ".config.yaml.abc123.tmp").write_text("name: ha")  # a first run killed writing its config
    assert run.open() is False
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "config.yaml"]
    assert yaml.safe_load((run.path / "config.yaml").read_text())["name"] == "exp"

    # a resumed run removes the temporary files of killed writes, and only those
    (run.path / ".metrics.jsonl.x1.tmp").write_bytes(b'{"stage": "a')
    (run.checkpoints / ".snn.pt.x2.tmp").write_bytes(b"PK\x03")
    (run.path / "reports").mkdir()
    (run.path / "reports" / ".snn.md.x3.tmp").write_text("# half")
    (run.path / "notes.tmp").write_text("mine")
    assert RunDir(cfg).open() is True
    assert temporaries(run.path) == [] and (run.path / "notes.tmp").exists()


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"", b"- a\n- list\n", b"a: [unclosed\n"])
def test_unreadable_config_of_an_existing_run_names_the_file(tmp_path, capsys, content):
    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    (run / "config.yaml").write_bytes(content)
    code, err = trainer([f"runs_dir={tmp_path / 'runs'}", "name=exp", "data.name=synthetic"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(run / "config.yaml") in err, err
    assert (run / "config.yaml").read_bytes() == content


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "a\x00b", ".hidden", "", "x" * 256, "sp ace"])
def test_run_name_must_be_a_plain_directory_name(tmp_path, capsys, name):
    code, err = trainer([f"runs_dir={tmp_path / 'runs'}", f"name={name}"], capsys)
    assert code == 2 and err.count("\n") == 1 and "'name'" in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escape").exists()


def test_run_name_accepts_ordinary_names():
    for name in ("digits", "cifar10-vgg9", "run_2.b+c", "2020-13-45"):
        assert resolve_config(overrides=[f"name={name}"]).name == name


def test_seed_is_bounded():
    assert resolve_config(overrides=[f"seed={2**32 - 1}"]).seed == 2**32 - 1
    for seed in (-1, 2**32, 10**30):
        with pytest.raises(ConfigError, match="'seed'"):
            resolve_config(overrides=[f"seed={seed}"])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_evaluate_batch_size_must_be_positive(batch_size):
    from snncost.models import NeuronConfig, VGGSpec, build_snn

    snn = build_snn(VGGSpec(features=[4, "P"], classifier=[8], in_channels=1, image_size=8), NeuronConfig(timesteps=2))
    with pytest.raises(ValueError, match="batch_size") as info:
        snncost.evaluate(snn, batch_size=batch_size, max_samples=2)
    assert repr(batch_size) in str(info.value) and "\n" not in str(info.value)
