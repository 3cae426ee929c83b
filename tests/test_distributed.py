"""torchrun + DistributedDataParallel: 2 CPU processes (gloo) train what 1 process trains.

Same global batch (each rank gets half of every batch), no augmentation
and no dropout (their random draws are per process), so the two runs see
the same samples per optimiser step and DDP's averaged gradient equals
the single-process one up to float summation order.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snncost.checkpoint import safe_load

ROOT = Path(__file__).resolve().parents[1]

COMMON = [
    # 512 generated images, 64 for validation: 448 = 14 batches of 32 split evenly over 2 ranks (an
    # uneven last batch is padded by repeating an image, as DistributedSampler does, so it would differ)
    "data.name=synthetic", "data.val_fraction=0.125", "data.batch_size=32", "data.augment=false", "model.dropout=0",
    "model.arch=custom", "model.features=[8,P,8,P]", "model.classifier=[16]",
    "ann.epochs=2", "snn.epochs=1", "snn.timesteps=3", "convert.batches=2",
    "spatial.epochs=1", "spatial.batches=2", "stages=[ann,convert,snn,spatial]",
    "progress=false", "device=cpu",
]  # fmt: skip


def _run(cmd: list[str], runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*cmd, "-m", "trainers.run", *COMMON, f"runs_dir={runs}", "name=r"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _metrics(runs: Path) -> list[dict]:
    return [json.loads(line) for line in (runs / "r" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    single = _run([sys.executable], tmp_path / "single")
    assert single.returncode == 0, single.stderr
    double = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"], tmp_path / "ddp")
    assert double.returncode == 0, double.stderr[-3000:]
    assert "x2 processes" in double.stdout

    a, b = _metrics(tmp_path / "single"), _metrics(tmp_path / "ddp")
    assert [r["stage"] for r in a] == [r["stage"] for r in b]
    for ra, rb in zip(a, b, strict=False):
        for key in ("train_loss", "val_acc", "val_loss", "test_acc", "test_loss"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-3, abs=1e-3), (ra["stage"], key)
    # the PCA statistics were reduced over both ranks: same widths as one process
    plan_a = json.loads((tmp_path / "single" / "r" / "spatial_plan.json").read_text())
    plan_b = json.loads((tmp_path / "ddp" / "r" / "spatial_plan.json").read_text())
    assert [layer["new_width"] for layer in plan_a["layers"]] == [layer["new_width"] for layer in plan_b["layers"]]
    wa = safe_load(tmp_path / "single" / "r" / "checkpoints" / "snn.pt")["state_dict"]
    wb = safe_load(tmp_path / "ddp" / "r" / "checkpoints" / "snn.pt")["state_dict"]
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-3, atol=1e-4), k
    # only rank 0 wrote: one set of files, no stray temporaries
    assert not list((tmp_path / "ddp" / "r").rglob("*.tmp"))
