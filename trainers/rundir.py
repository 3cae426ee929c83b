"""The run directory: resolved config, metrics, checkpoints; what makes runs resumable.

Layout of ``<runs_dir>/<name>/``::

    config.yaml              the resolved config (a re-run must match it)
    metrics.jsonl            one JSON record per epoch/stage (rewritten atomically)
    checkpoints/<stage>.pt   a finished stage: its model, metrics and history
    checkpoints/<stage>-last.pt   the latest epoch of a stage in progress
    report.*                 the cost report of the final model (evaluate stage)

Every file is written to a temporary name (``.<name>.<random>.tmp``) and
renamed into place, so an interrupted run leaves complete files only, and
re-running the same command continues from the newest checkpoint; the
temporary file of a write cut short is removed when the directory is next
opened. A directory that holds files but no ``config.yaml`` is not taken
over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snncost.checkpoint import atomic_torch_save, atomic_write_text, read_checkpoint
from trainers.config import ConfigError, RunConfig, load_yaml_mapping

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
        """Create the directory or check it holds the same run; True when resuming.

        Refuses (:class:`ConfigError`, naming the path) a ``runs_dir`` or run
        path that is not a directory, a run of a different config, an
        unreadable ``config.yaml``, and a non-empty directory without one.
        Leftover temporary files of writes cut short are removed.
        """
        runs = Path(self.cfg.runs_dir)
        for where, what in ((runs, "runs_dir"), (self.path, "the run directory")):
            if where.exists() and not where.is_dir():
                raise ConfigError(f"{where}: {what} exists and is not a directory")
        cfg_file = self.path / "config.yaml"
        current = self.cfg.model_dump(mode="json")
        if cfg_file.exists() or cfg_file.is_symlink():
            try:
                previous = load_yaml_mapping(cfg_file)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (the config of the run in {self.path}); move that directory away or pick another name=..."
                ) from None
            diff = _diff_keys(previous, current)
            diff = [k for k in diff if k.split(".")[0] not in _RESUME_FREE]
            if diff:
                raise ConfigError(
                    f"{self.path} holds a run with a different config (differs at: {', '.join(diff)}); "
                    "use another name=... or remove that directory to start over"
                )
            self.remove_stale_temporaries()
            self.histories = self._recorded_histories()
            return True
        if self.path.is_dir():
            files = [p for p in self.path.rglob("*") if not p.is_dir() and not _is_temporary(p)]
            if files:
                raise ConfigError(
                    f"{self.path} holds files ({len(files)}, e.g. {files[0].relative_to(self.path)}) but no "
                    "config.yaml, so it is not a run to resume; use another name=... or runs_dir=..., "
                    "or move that directory away"
                )
            self.remove_stale_temporaries()
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg_file, self.cfg.to_yaml())
        self.checkpoints.mkdir(exist_ok=True)
        return False

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the ``.<name>.<random>.tmp`` files that writes killed mid-way left behind."""
        stale = [p for p in self.path.rglob(".*.tmp") if _is_temporary(p)]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # ------------------------------------------------------------ checkpoints
    def stage_file(self, stage: str) -> Path:
        return self.checkpoints / f"{stage}.pt"

    def progress_file(self, stage: str) -> Path:
        return self.checkpoints / f"{stage}-last.pt"

    def finished(self, stage: str) -> dict | None:
        """The finished stage's checkpoint, or None if the stage has not completed.

        A ``-last`` checkpoint of a finished stage (left by a run killed
        between the two writes) is removed.
        """
        f = self.stage_file(stage)
        if not f.exists():
            return None
        data = read_checkpoint(f)
        self.histories[stage] = data.get("history", [])
        self.progress_file(stage).unlink(missing_ok=True)
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
        self.progress_file(stage).unlink(missing_ok=True)
        self.histories[stage] = history
        self.write_metrics()

    # ------------------------------------------------------------ metrics
    def _metrics_text(self) -> str:
        lines = [json.dumps(r) for stage in self.histories for r in self.histories[stage]]
        return "\n".join(lines) + ("\n" if lines else "")

    def write_metrics(self) -> None:
        atomic_write_text(self.path / "metrics.jsonl", self._metrics_text())

    def sync_metrics(self) -> None:
        """Rewrite ``metrics.jsonl`` if it lags the checkpoints (a run killed between the two writes)."""
        f = self.path / "metrics.jsonl"
        if self.histories and (not f.exists() or f.read_text(encoding="utf-8") != self._metrics_text()):
            self.write_metrics()

    def read_metrics(self) -> list[dict]:
        f = self.path / "metrics.jsonl"
        if not f.exists():
            return []
        records = []
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{f}: line {i} is not a JSON record ({exc}); move the run directory away") from None
            if not isinstance(record, dict):
                raise ConfigError(f"{f}: line {i} is not a JSON object; move the run directory away")
            records.append(record)
        return records

    def _recorded_histories(self) -> dict[str, list[dict]]:
        """The stages' histories in ``metrics.jsonl``, in its order (kept when a resumed run rewrites it)."""
        histories: dict[str, list[dict]] = {}
        for record in self.read_metrics():
            histories.setdefault(str(record.get("stage")), []).append(record)
        return histories


def _is_temporary(path: Path) -> bool:
    """A temporary file of :func:`snncost.checkpoint.atomic_write_bytes` (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file() and not path.is_symlink()


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
