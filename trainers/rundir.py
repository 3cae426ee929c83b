"""The run directory: resolved config, metrics, checkpoints; what makes runs resumable and extensible.

Layout of ``<runs_dir>/<name>/``::

    config.yaml              the resolved config of the outputs present
    stages.json              per stage: its fingerprint, the stages it ran after, whether it is done
    metrics.jsonl            one JSON record per epoch/stage (rewritten atomically)
    checkpoints/<stage>.pt   a finished stage: its model, metrics and history
    checkpoints/<stage>-last.pt   the latest epoch of a stage in progress
    report.*, results.*, reports/, ...   the evaluate stage's outputs
    superseded/<UTC time>/   outputs of stages an extended run reran, kept (see below)

Every file is written to a temporary name (``.<name>.<random>.tmp``) and
renamed into place, so an interrupted run leaves complete files only, and
re-running the same command continues from the newest checkpoint; the
temporary file of a write cut short is removed when the directory is next
opened. A directory that holds files but no ``config.yaml`` is not taken
over.

**Extending a run.** Each stage has a *fingerprint*: a hash of the values
of the config keys it depends on (:data:`STAGE_KEYS`; a key left at its
default does not enter the hash, so adding a config key to the code does
not invalidate existing runs) and of the fingerprint of the stage before
it, so a stage's fingerprint changes when its own settings or those of any
earlier stage do. ``stages.json`` records, for every stage that has written
outputs, the fingerprint it ran with and the checkpointed stages that were
finished when it started (its inputs: e.g. ``temporal`` starts from
``spatial`` if that stage is done, else from ``snn``). ``config.yaml`` always
holds the config of the outputs present, so a re-run compares the
fingerprints of its config with those of ``config.yaml`` (both computed by
the same code) and the inputs with the recorded ones. Run-level keys
(:data:`RUN_KEYS`: ``name``, ``runs_dir``, ``device``, ``progress``,
``stages``, ``seeds``, ``data.download``, ``data.cache_dir``) are in no
fingerprint. A stored ``config.yaml`` that predates a key whose default
computes something new (:data:`PREDATING`: ``data.val_fraction``, the
validation split) is read with the key's old meaning, so such a run is not
resumed as if it had been made with the new default.

Re-running in a directory whose ``config.yaml`` differs:

1. The *restart stage* is the first stage, in pipeline order, that has
   outputs and whose fingerprint changed, or whose inputs will differ
   (a stage newly selected by ``stages=[...]`` finishes before it).
2. Stages before it are reused as they are. It and every later stage with
   outputs are rerun: their checkpoints, their lines of ``metrics.jsonl``
   and their files (``spatial_plan.*``, ``spatial_pca.png``; for evaluate
   ``report.*``, ``reports/``, ``results.*``, the plots, ``eval_batch.pt``)
   are moved to ``superseded/<YYYYMMDDTHHMMSSZ>/`` (same relative paths),
   next to copies of the old ``config.yaml``, ``stages.json`` and the full
   old ``metrics.jsonl``; nothing is overwritten or deleted. Then the new
   ``config.yaml`` is written.
3. Refused (:class:`ConfigError`, the directory untouched), naming the
   stages and the changed keys:

   - a settings change whose restart stage is the first stage with outputs,
     so nothing would be reused (e.g. ``ann.epochs``, ``data.*``, ``seed``
     on any run): that is a new run, not an extension; use another name;
   - a restart that would move aside stages which ``stages=[...]`` does not
     select (e.g. ``stages=[evaluate] temporal.epochs=3`` on a finished run):
     the directory would be left without them; select them too.

Changed settings of stages that have no outputs yet just replace
``config.yaml`` (the old one is kept under ``superseded/``). ``stages=[...]``
alone is not a change: unselected stages are neither run nor touched.
The evaluate stage (no checkpoint) is recorded as done in ``stages.json``
when it completes; a re-run skips it while its fingerprint and inputs are
unchanged and ``results.json`` is there (remove ``results.json`` to re-cost
in place, e.g. after upgrading snncost).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from snncost.checkpoint import atomic_torch_save, atomic_write_text, read_checkpoint
from snncost.models import NeuronConfig
from trainers.config import STAGES, ConfigError, RunConfig, SNNConfig, load_yaml_mapping

#: The config keys each stage depends on, as dotted prefixes ("data" is every
#: ``data.*`` key). A key matched by several stages belongs to the first: the
#: convert stage builds the SNN, so the neuron settings of ``snn.*`` are its.
#: Later stages need no earlier stage's keys (e.g. temporal fine-tunes with the
#: ``snn.*`` optimiser): the fingerprint chain already covers them.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "ann": ("seed", "data", "model", "ann"),
    "convert": ("convert", *(f"snn.{f.name}" for f in fields(NeuronConfig) if f.name in SNNConfig.model_fields)),
    "snn": ("snn",),
    "spatial": ("spatial",),
    "temporal": ("temporal",),
    "quantize": ("quantize",),
    "evaluate": ("evaluate",),
}
assert tuple(STAGE_KEYS) == STAGES

#: keys that change how or where a run goes, not what it computes: in no fingerprint. (``device``
#: and ``channels_last`` change the order floats are summed in, as the thread count does; a run
#: may be resumed on another device or layout.)
#: (``seeds`` makes several runs, each fingerprinted with its own ``seed``: :mod:`trainers.seeds`)
RUN_KEYS = ("name", "runs_dir", "device", "channels_last", "progress", "stages", "seeds", "data.download", "data.cache_dir")

#: Keys added after runs existed whose default computes something else than those runs did, with the
#: value that describes such a run. A stored ``config.yaml`` without the key is read with this value, so
#: the fingerprints tell the old run from a new one (a new default would hide the difference).
#: ``data.val_fraction``: runs before the validation split trained on the whole training set and chose
#: on the test split.
PREDATING: dict[str, Any] = {"data.val_fraction": None}

#: files of a stage outside ``checkpoints/`` (relative to the run directory)
STAGE_FILES: dict[str, tuple[str, ...]] = {
    "spatial": ("spatial_plan.md", "spatial_plan.json", "spatial_pca.png"),
    "evaluate": (
        "eval_batch.pt", "results.json", "results.md", "accuracy_energy.png", "robustness.png",
        "report.md", "report.tex", "report.json", "report.csv", "report.png", "reports",
    ),
}  # fmt: skip

SUPERSEDED = "superseded"
RECORDS = "stages.json"


class RunDir:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.runs_dir) / cfg.name
        self.checkpoints = self.path / "checkpoints"
        self.histories: dict[str, list[dict]] = {}
        self.fingerprints = fingerprints(cfg.model_dump(mode="json"))
        self.records: dict[str, dict] = {}
        #: what :meth:`open` decided, for the run log
        self.notices: list[str] = []
        self.extended = False

    # ------------------------------------------------------------ config
    def open(self) -> bool:
        """Create the directory, or check it holds this run or one it extends; True when resuming.

        Refuses (:class:`ConfigError`, naming the path) a ``runs_dir`` or run
        path that is not a directory, a config change that is not an
        extension (see the module docstring), an unreadable ``config.yaml``
        or ``stages.json``, and a non-empty directory without a config.
        Leftover temporary files of writes cut short are removed.
        """
        runs = Path(self.cfg.runs_dir)
        for where, what in ((runs, "runs_dir"), (self.path, "the run directory")):
            if where.exists() and not where.is_dir():
                raise ConfigError(f"{where}: {what} exists and is not a directory")
        cfg_file = self.path / "config.yaml"
        if cfg_file.exists() or cfg_file.is_symlink():
            try:
                previous = load_yaml_mapping(cfg_file)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (the config of the run in {self.path}); move that directory away or pick another name=..."
                ) from None
            records = self._read_records()
            plan = self._plan(_normalised(previous), records)  # raises before anything is written
            self.remove_stale_temporaries()
            self.records = records
            self.histories = self._recorded_histories()
            if plan is not None:
                self._extend(*plan)
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

    def _plan(self, previous: dict, records: dict[str, dict]) -> tuple[list[str], str] | None:
        """What re-running with this config does to the run: None (resume), or (stages to move aside, notice).

        Raises :class:`ConfigError` for the refused cases of the module docstring.
        """
        old_fp, new_fp = fingerprints(previous), self.fingerprints
        changes = changed_keys(previous, self.cfg.model_dump(mode="json"))
        has = {s: bool(self.outputs(s)) for s in STAGES}
        restart, reason, will_finish = None, "", {}
        for s in STAGES:
            if restart is None and has[s]:
                rec = records.get(s, {})
                inputs = [x for x in STAGES[: STAGES.index(s)] if will_finish.get(x)]
                if old_fp[s] != new_fp[s]:
                    restart, reason = s, "settings"
                elif rec.get("inputs") is not None and rec["inputs"] != inputs:
                    restart = s
                    reason = f"it ran after {_names(rec['inputs'])}, now it runs after {_names(inputs)}"
            kept = restart is None and s != "evaluate" and self.stage_file(s).exists()
            will_finish[s] = s != "evaluate" and (kept or s in self.cfg.stages)
        changed = _describe(changes) or "keys at their defaults"
        if restart is None and old_fp == new_fp:
            return None  # the same run (run-level keys aside): resume
        if restart is None:  # only stages without outputs changed
            firsts = [s for s in STAGES if any(c[0] == s for c in changes)]
            return [], (
                f"[extend] settings changed ({changed}); {_names(firsts)} {'has' if len(firsts) == 1 else 'have'} "
                "not run yet: the run goes on with the new config"
            )
        moved = [s for s in STAGES[STAGES.index(restart) :] if has[s]]
        reused = [s for s in STAGES[: STAGES.index(restart)] if has[s]]
        if reason == "settings":
            reason = f"settings changed: {changed}"
            if not reused:
                raise ConfigError(
                    f"{self.path} holds a run with a different config (differs at: {changed}); "
                    f"the run would restart at stage {restart}, its first stage with outputs, reusing nothing: "
                    "that is a new run, not an extension (only stages after a finished, unchanged one can change); "
                    "use another name=... or move that directory away to start over"
                )
        unselected = [s for s in moved if s not in self.cfg.stages]
        if unselected:
            raise ConfigError(
                f"{self.path}: stage {restart} of the run there would have to be rerun ({reason}), which moves aside "
                f"the outputs of {_names(moved)}, but stages={list(self.cfg.stages)} does not run "
                f"{_names(unselected)}; add {'it' if len(unselected) == 1 else 'them'} to stages=[...] "
                "(or leave stages unset), drop the change, or use another name=..."
            )
        notice = (
            f"[extend] stage {restart} reruns ({reason}): reusing {_names(reused) if reused else 'no stage'}, "
            f"rerunning {_names(moved)}"
        )
        return moved, notice

    def _extend(self, moved: list[str], notice: str) -> str:
        """Move the outputs of ``moved`` to ``superseded/<time>/`` with the old records, then write the new config."""
        dest = self._superseded_dir()
        old = {n: self.path / n for n in ("config.yaml", RECORDS, "metrics.jsonl")}
        for name, f in old.items():
            if f.is_file():
                atomic_write_text(dest / name, f.read_text(encoding="utf-8"))
        for stage in moved:
            for f in self.outputs(stage):
                target = dest / f.relative_to(self.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, target)
        if moved:
            atomic_write_text(
                dest / "superseded.json",
                json.dumps({"stages": moved, "why": notice, "time": dest.name}, indent=2) + "\n",
            )
        # only stages that still have outputs keep their metrics lines and records
        kept = {s for s in STAGES if self.outputs(s)}
        histories = {k: v for k, v in self.histories.items() if owner_stage(k) in kept or owner_stage(k) is None}
        if histories != self.histories or moved:
            self.histories = histories
            if histories:
                self.write_metrics()
            else:
                (self.path / "metrics.jsonl").unlink(missing_ok=True)  # its copy is in dest
        self.records = {s: r for s, r in self.records.items() if s in kept}
        self._write_records()
        atomic_write_text(self.path / "config.yaml", self.cfg.to_yaml())
        where = dest.relative_to(self.path)
        message = f"{notice}; their old outputs are in {where}/" if moved else f"{notice}; the old config.yaml is in {where}/"
        self.notices.append(message)
        self.extended = True
        return message

    def _superseded_dir(self) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = self.path / SUPERSEDED
        dest, n = base / stamp, 1
        while dest.exists():
            n += 1
            dest = base / f"{stamp}-{n}"
        dest.mkdir(parents=True)
        return dest

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the ``.<name>.<random>.tmp`` files that writes killed mid-way left behind."""
        stale = [p for p in self.path.rglob(".*.tmp") if _is_temporary(p)]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # ------------------------------------------------------------ stage records (stages.json)
    def outputs(self, stage: str) -> list[Path]:
        """The files (and ``reports/``) that ``stage`` wrote: checkpoints of it and its sub-stages, plus :data:`STAGE_FILES`."""
        found = []
        if self.checkpoints.is_dir():
            found = sorted(
                p for p in self.checkpoints.glob("*.pt") if owner_stage(p.stem) == stage and not _is_temporary(p)
            )
        return found + [self.path / n for n in STAGE_FILES.get(stage, ()) if (self.path / n).exists()]

    def inputs(self, stage: str) -> list[str]:
        """The checkpointed stages before ``stage`` that are finished now (what it starts from)."""
        return [s for s in STAGES[: STAGES.index(stage)] if s != "evaluate" and self.stage_file(s).exists()]

    def begin(self, stage: str) -> str | None:
        """Record in ``stages.json`` that ``stage`` runs (or is reused) with this config and these inputs.

        :meth:`open` has already moved aside every stage whose settings or inputs changed, so
        this records new stages (and refreshes older records, e.g. of a run directory older
        than ``stages.json``). An evaluate stage with outputs whose record differs has them
        moved to ``superseded/`` (returns that notice) rather than overwritten.
        """
        entry = {"fingerprint": self.fingerprints[stage], "inputs": self.inputs(stage)}
        rec = self.records.get(stage)
        if rec is not None and all(rec.get(k) == v for k, v in entry.items()):
            return None
        notice = None
        if stage == "evaluate" and rec is not None and self.outputs(stage):
            notice = self._extend(["evaluate"], "[extend] stage evaluate reruns: what it evaluates changed")
        done = stage != "evaluate" and self.stage_file(stage).exists()
        self.records[stage] = {**entry, "done": done}
        self._write_records()
        return notice

    def mark_done(self, stage: str) -> None:
        rec = self.records.get(stage) or {"fingerprint": self.fingerprints[stage], "inputs": self.inputs(stage)}
        self.records[stage] = {**rec, "done": True}
        self._write_records()

    def is_done(self, stage: str) -> bool:
        """True when ``stage`` completed with this config and these inputs (what decides skipping evaluate)."""
        rec = self.records.get(stage) or {}
        return bool(rec.get("done")) and rec.get("fingerprint") == self.fingerprints[stage] and rec.get("inputs") == self.inputs(stage)

    def _read_records(self) -> dict[str, dict]:
        f = self.path / RECORDS
        if not f.exists():
            return {}
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{f}: not a readable record of the run's stages ({exc}); move the run directory away") from None
        stages = data.get("stages") if isinstance(data, dict) else None
        if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
            raise ConfigError(f"{f}: not a record of the run's stages; move the run directory away")
        return {s: r for s, r in stages.items() if s in STAGES}

    def _write_records(self) -> None:
        stages = {s: self.records[s] for s in STAGES if s in self.records}
        atomic_write_text(self.path / RECORDS, json.dumps({"stages": stages}, indent=2) + "\n")

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
        if stage in STAGES:
            self.mark_done(stage)

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


# ---------------------------------------------------------------- fingerprints
def owner_stage(name: str) -> str | None:
    """The pipeline stage a checkpoint stem or metrics ``stage`` belongs to: ``temporal-T3-last`` -> ``temporal``."""
    base = name.split("-")[0]
    return base if base in STAGES else None


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a config mapping (a list or an empty mapping is one value)."""
    if isinstance(config, dict) and config:
        out: dict[str, Any] = {}
        for k, v in config.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): config}


def _matches(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def stage_of_key(key: str) -> str | None:
    """The stage a dotted config key belongs to (:data:`STAGE_KEYS`); None for :data:`RUN_KEYS`.

    A key no stage lists (none today: ``tests/test_extend_runs.py`` checks) counts as the ann
    stage's, the safe side.
    """
    if any(_matches(key, k) for k in RUN_KEYS):
        return None
    return next((s for s, keys in STAGE_KEYS.items() if any(_matches(key, k) for k in keys)), "ann")


_DEFAULTS = _flatten(RunConfig().model_dump(mode="json"))
_MISSING = object()


def fingerprints(config: dict) -> dict[str, str]:
    """``{stage: fingerprint}`` of a config (a ``RunConfig.model_dump(mode="json")``): each a hash of
    the stage's own non-default settings and the fingerprint of the stage before it."""
    settings: dict[str, dict[str, Any]] = {s: {} for s in STAGES}
    for key, value in _flatten(config).items():
        stage = stage_of_key(key)
        if stage is not None and _DEFAULTS.get(key, _MISSING) != value:
            settings[stage][key] = value
    out, previous = {}, ""
    for stage in STAGES:
        text = json.dumps({"stage": stage, "settings": settings[stage], "after": previous}, sort_keys=True, default=str)
        out[stage] = previous = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return out


def changed_keys(old: dict, new: dict) -> list[tuple[str, str, Any, Any]]:
    """``(stage, key, old value, new value)`` of every fingerprinted key that differs, in pipeline order."""
    a, b = _flatten(old), _flatten(new)
    rows = []
    for key in sorted(set(a) | set(b)):
        stage = stage_of_key(key)
        va, vb = a.get(key, _DEFAULTS.get(key)), b.get(key, _DEFAULTS.get(key))
        if stage is not None and va != vb:
            rows.append((stage, key, va, vb))
    return sorted(rows, key=lambda r: STAGES.index(r[0]))


def _describe(changes: list[tuple[str, str, Any, Any]]) -> str:
    """``stage ann: ann.epochs (3 -> 4); stage temporal: temporal.schedule ([3, 2] -> [2, 1])``."""
    parts = []
    for stage in STAGES:
        keys = [f"{k} ({_short(a)} -> {_short(b)})" for s, k, a, b in changes if s == stage]
        if keys:
            parts.append(f"stage {stage}: {', '.join(keys)}")
    return "; ".join(parts)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(stages: list[str]) -> str:
    return ", ".join(stages) if stages else "no stage"


def _normalised(config: dict) -> dict:
    """A stored config as this code's schema dumps it (defaults of newer keys filled, :data:`PREDATING`
    keys it lacks set to their old meaning), or as is if it no longer validates."""
    stored = _flatten(config)
    try:
        dumped = RunConfig.model_validate(config).model_dump(mode="json")
    except ValidationError:
        return config
    for key, value in PREDATING.items():
        if key not in stored:
            *sections, leaf = key.split(".")
            node = dumped
            for part in sections:
                node = node[part]
            node[leaf] = value
    return dumped


def _is_temporary(path: Path) -> bool:
    """A temporary file of :func:`snncost.checkpoint.atomic_write_bytes` (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file() and not path.is_symlink()
