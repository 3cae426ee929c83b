"""The run directory: resolved config, metrics, checkpoints; what makes runs resumable.

Layout of ``<runs_dir>/<name>/``::

    config.yaml              the resolved config (a re-run must match it)
    metrics.jsonl            one JSON record per epoch/stage (rewritten atomically)
    checkpoints/<stage>.pt   a finished stage: its model, metrics and history
    checkpoints/<stage>-last.pt   the latest epoch of a stage in progress
    report.*                 the cost report of the final model (evaluate stage)

Every file is written to a temporary name and renamed into place, so an
interrupted run leaves complete files only, and re-running the same command
continues from the newest checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from snncost.checkpoint import atomic_torch_save, atomic_write_text, read_checkpoint
from trainers.config import ConfigError, RunConfig

# keys that may differ between the first run and a resumed one
_RESUME_FREE = {"device", "progress"}


class RunDir:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.runs_dir) / cfg.name
        self.checkpoints = self.path / "checkpoints"
        self.histories: dict[str, list[dict]] = {}

    # ------------------------------------------------------------ config
    def open(self) -> bool:
        """Create the directory or check it holds the same run; True when resuming."""
        cfg_file = self.path / "config.yaml"
        current = self.cfg.model_dump(mode="json")
        if cfg_file.exists():
            try:
                previous = yaml.safe_load(cfg_file.read_text())
            except yaml.YAMLError as exc:
                raise ConfigError(f"{cfg_file}: unreadable ({exc}); move the run directory away") from None
            diff = _diff_keys(previous or {}, current)
            diff = [k for k in diff if k.split(".")[0] not in _RESUME_FREE]
            if diff:
                raise ConfigError(
                    f"{self.path} holds a run with a different config (differs at: {', '.join(diff)}); "
                    "use another name=... or remove that directory to start over"
                )
            return True
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg_file, self.cfg.to_yaml())
        return False

    # ------------------------------------------------------------ checkpoints
    def stage_file(self, stage: str) -> Path:
        return self.checkpoints / f"{stage}.pt"

    def progress_file(self, stage: str) -> Path:
        return self.checkpoints / f"{stage}-last.pt"

    def finished(self, stage: str) -> dict | None:
        """The finished stage's checkpoint, or None if the stage has not completed."""
        f = self.stage_file(stage)
        if not f.exists():
            return None
        data = read_checkpoint(f)
        self.histories[stage] = data.get("history", [])
        return data

    def in_progress(self, stage: str) -> dict | None:
        f = self.progress_file(stage)
        if not f.exists():
            return None
        return read_checkpoint(f)

    def save_progress(self, stage: str, record: dict[str, Any], history: list[dict]) -> None:
        atomic_torch_save({**record, "history": history}, self.progress_file(stage))
        self.histories[stage] = history
        self.write_metrics()

    def save_finished(self, stage: str, record: dict[str, Any], history: list[dict]) -> None:
        atomic_torch_save({**record, "history": history, "done": True}, self.stage_file(stage))
        self.histories[stage] = history
        self.write_metrics()
        self.progress_file(stage).unlink(missing_ok=True)

    # ------------------------------------------------------------ metrics
    def write_metrics(self) -> None:
        lines = [json.dumps(r) for stage in self.histories for r in self.histories[stage]]
        atomic_write_text(self.path / "metrics.jsonl", "\n".join(lines) + ("\n" if lines else ""))

    def read_metrics(self) -> list[dict]:
        f = self.path / "metrics.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.exists() else []


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
