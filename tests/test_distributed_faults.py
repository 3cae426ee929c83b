"""Distributed faults: a non-finite loss on one rank stops every rank, together, with one line.

Two gloo CPU processes under torchrun train a tiny config; the test-only
hook ``SNNCOST_NAN_AT=<stage>:<epoch>:<batch>:<rank>`` (:data:`trainers.engine.NAN_AT`)
makes rank 1's loss NaN at one batch of epoch 2. Every step the ranks'
losses are all-reduced before ``backward``, so both ranks stop at that batch
(neither waits in DDP's gradient all-reduce for the other), both exit with
status 2 and the same single ``error:`` line naming stage, epoch, batch and
rank, and the checkpoint of epoch 1 is kept whole. The hook and the
single-process path (no collective) are checked in-process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from snncost.checkpoint import read_checkpoint, safe_load
from trainers import engine

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "data.name=synthetic", "data.batch_size=32", "data.augment=false", "model.dropout=0",
    "model.arch=custom", "model.features=[8,P]", "model.classifier=[16]",
    "ann.epochs=2", "stages=[ann]", "progress=false", "device=cpu",
]  # fmt: skip


def _torchrun(runs: Path, logs: Path, nan_at: str, timeout: float = 150) -> str:
    """``torchrun --nproc_per_node=2 -m trainers.run`` (per-rank stderr under ``logs``); the launcher's output.

    Started in its own session so that, should it hang, the whole group (the
    launcher and both workers) is killed and the test fails instead of waiting.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("SNNCOST_CRASH_AT", "SNNCOST_NAN_AT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), MPLBACKEND="Agg", SNNCOST_NAN_AT=nan_at)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "--redirects=2", f"--log-dir={logs}",
        "-m", "trainers.run", *TINY, f"runs_dir={runs}", "name=r",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"torchrun still running after {timeout}s: some rank hangs in a collective")
    assert proc.returncode != 0, out[-3000:]
    return out


def _rank_stderr(logs: Path, rank: int) -> str:
    files = list(logs.rglob(f"attempt_0/{rank}/stderr.log"))
    assert len(files) == 1, sorted(map(str, logs.rglob("*")))
    return files[0].read_text()


def _error_lines(stderr: str) -> list[str]:
    # drop torch's own start-up notices, keep everything the trainer printed
    return [line for line in stderr.strip().splitlines() if not line.startswith(("[W", "[I"))]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_non_finite_loss_on_one_rank_stops_every_rank_with_the_same_line(tmp_path):
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    launcher = _torchrun(runs, logs, nan_at="ann:2:3:1")  # rank 1 only, epoch 2, batch 3

    lines = {rank: _error_lines(_rank_stderr(logs, rank)) for rank in (0, 1)}
    for rank, got in lines.items():
        assert len(got) == 1 and got[0].startswith("error: "), (rank, got)
        assert "Traceback" not in got[0]
    assert lines[0] == lines[1], lines  # the same message on both ranks
    line = lines[0][0]
    last = runs / "r" / "checkpoints" / "ann-last.pt"
    assert "stage 'ann'" in line and "ann 2/2" in line and "at batch 3" in line, line  # stage, epoch, batch
    assert "nan on rank 1 (of 2 ranks)" in line and "rank 0" not in line, line  # whose loss it was
    assert f"the last good checkpoint {last} (epoch 1) is kept" in line, line

    # the launcher's failure report: the first worker out exited with the CLI's error status 2; the
    # other one exited 2 as well or, already past its message, was terminated by the launcher (SIGTERM)
    report = re.findall(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)", launcher)
    codes = {int(r): int(c) for r, c in report}
    assert 2 in codes.values() and set(codes.values()) <= {2, -signal.SIGTERM}, (codes, launcher[-3000:])
    # the last good checkpoint: epoch 1, whole and loadable, nothing half-written
    run = runs / "r"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ann-last.pt"]
    assert read_checkpoint(last)["epoch"] == 1
    state = safe_load(last)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # epoch 1's record only
    assert not list(run.rglob("*.tmp"))


def _loader(batches: int = 4):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 6, generator=gen), torch.arange(8) % 3) for _ in range(batches)]


def test_nan_hook_and_the_single_process_check_without_collective(monkeypatch):
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monkeypatch.setattr(engine, "NAN_AT", "ann:2:3:0")
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def no_collective(*_a, **_k):
        raise AssertionError("single-process training must not all-reduce")

    monkeypatch.setattr(engine.dist, "losses_over_ranks", no_collective)
    engine.train_epoch(model, _loader(), opt, "ann 1/2", progress=False, nan_tag="ann:1")  # other epoch: untouched
    with pytest.raises(engine.NonFiniteLossError, match=r"^ann 2/2: loss became nan at batch 3 "):
        engine.train_epoch(model, _loader(), opt, "ann 2/2", progress=False, nan_tag="ann:2")
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it did train
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())  # the NaN batch never stepped


def test_the_reduced_flag_names_every_diverged_rank():
    engine._stop_if_any_rank_diverged([0.7, 1.2, 0.9], "snn 1/3", 5)  # all finite: no error
    with pytest.raises(engine.NonFiniteLossError) as err:
        engine._stop_if_any_rank_diverged([0.7, float("nan"), 0.9, float("inf")], "snn 1/3", 5)
    assert str(err.value) == (
        "snn 1/3: loss became nan on rank 1, inf on rank 3 (of 4 ranks) at batch 5 (lower the learning rate?)"
    )
