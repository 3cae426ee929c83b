"""Runs that extend: re-running a run directory with changed settings of later stages.

A finished run on a tiny synthetic config (as in ``tests/test_crash_safety.py``)
is extended with a new ``temporal.schedule``: the ann, convert, snn and
spatial stages are reused (their checkpoints untouched, the log says so),
temporal, quantize and evaluate rerun, and their old outputs are kept under
``superseded/<UTC time>/``. A change to ``ann.epochs`` is refused naming the
stage and the key, an unchanged re-run writes nothing, and ``stages=[...]``
alone is not a change (see the rule in :mod:`trainers.rundir`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from trainers.config import STAGES, RunConfig, resolve_config
from trainers.rundir import RUN_KEYS, STAGE_KEYS, fingerprints, stage_of_key

TINY = [
    "data.name=synthetic", "data.subset=128", "data.test_subset=64",
    "model.arch=custom", "model.features=[8,P,8,P]", "model.classifier=[16]", "ann.epochs=3", "snn.epochs=2", "snn.timesteps=3", "convert.batches=2", "spatial.init=scratch",
    "spatial.threshold=0.99", "spatial.ann_epochs=2", "spatial.epochs=1", "spatial.batches=2",
    "temporal.schedule=[3,2]", "temporal.epochs=1", "quantize.sweep=[8,4]",
    "evaluate.samples=32", "evaluate.verify_samples=8", "evaluate.noise_stds=[]", "progress=false", "device=cpu",
]  # fmt: skip

REUSED = ["ann.pt", "convert.pt", "snn.pt", "spatial-ann.pt", "spatial.pt"]


def trainer(runs: Path, *extra: str, capsys) -> tuple[int, str, str]:
    from trainers.run import main

    code = main([*TINY, *extra, f"runs_dir={runs}", "name=exp"])
    out = capsys.readouterr()
    return code, out.out, out.err


def state(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module", autouse=True)
def quick_plots():
    """Figures are saved as a stub PNG without drawing them: the plots are not what this module tests,
    and drawing them would be most of its time."""
    from matplotlib.figure import Figure

    def savefig(self, fname, *args, **kwargs):
        stub = b"\x89PNG\r\n\x1a\n(not drawn)IEND\xaeB`\x82"
        if hasattr(fname, "write"):
            fname.write(stub)
        else:
            Path(fname).write_bytes(stub)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", savefig)
        yield


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run of every stage (the module's tests work on copies of it)."""
    from trainers.pipeline import run_pipeline

    runs = tmp_path_factory.mktemp("finished")
    run_pipeline(resolve_config(overrides=[*TINY, f"runs_dir={runs}", "name=exp"]))
    return runs / "exp"


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A copy of the finished run (times kept; in another runs_dir, which is no config change)."""
    dest = tmp_path / "runs" / "exp"
    shutil.copytree(finished, dest, copy_function=shutil.copy2)
    return dest


# ---------------------------------------------------------------- the table of keys
def _leaf_keys(model=RunConfig, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):  # a config section
            keys += _leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_config_key_belongs_to_a_stage_or_to_the_run():
    def listed(key: str, prefixes) -> bool:
        return any(key == p or key.startswith(p + ".") for p in prefixes)

    keys = _leaf_keys()
    assert "temporal.schedule" in keys and "data.batch_size" in keys
    unlisted = [k for k in keys if not listed(k, RUN_KEYS) and not any(listed(k, v) for v in STAGE_KEYS.values())]
    assert unlisted == [], "add these keys to STAGE_KEYS or RUN_KEYS in trainers/rundir.py"
    assert tuple(STAGE_KEYS) == STAGES
    assert stage_of_key("snn.timesteps") == "convert" and stage_of_key("snn.lr") == "snn"
    assert stage_of_key("seed") == "ann" and stage_of_key("stages") is None and stage_of_key("data.cache_dir") is None


def test_fingerprints_change_from_the_first_changed_stage_on():
    def fp(*overrides: str) -> dict[str, str]:
        return fingerprints(resolve_config(overrides=[*TINY, *overrides]).model_dump(mode="json"))

    base = fp()

    def changed(*overrides: str) -> list[str]:
        return [s for s in STAGES if fp(*overrides)[s] != base[s]]

    assert changed("temporal.schedule=[3,1]") == ["temporal", "quantize", "evaluate"]
    assert changed("ann.epochs=4") == list(STAGES) == changed("seed=1") == changed("data.batch_size=16")
    assert changed("snn.timesteps=4") == list(STAGES[1:])  # the convert stage builds the SNN
    assert changed("evaluate.profile=loihi") == ["evaluate"]
    assert changed("device=auto", "progress=true", "stages=[evaluate]", "runs_dir=elsewhere", "name=x") == []
    # a key set to its default is the same setting as the key left out
    assert fp("quantize.bits=5") == fp()


# ---------------------------------------------------------------- extending a finished run
def test_new_temporal_schedule_reuses_the_earlier_stages(run, capsys):
    before = state(run)
    old_metrics = metrics(run)
    old_records = json.loads((run / "stages.json").read_text())["stages"]

    code, out, err = trainer(run.parent, "temporal.schedule=[2,1]", capsys=capsys)
    assert code == 0, err
    assert "(extending)" in out.splitlines()[0]
    assert "[extend] stage temporal reruns (settings changed: stage temporal: temporal.schedule ([3, 2] -> [2, 1]))" in out
    assert "reusing ann, convert, snn, spatial, rerunning temporal, quantize, evaluate" in out
    for stage in ("ann", "convert", "snn", "spatial"):
        assert f"[{stage}] already done" in out, stage
    assert "[temporal] T=2" in out and "[temporal] T=1" in out

    after = state(run)
    for name in REUSED:  # same bytes, same modification time: not rewritten
        assert after[f"checkpoints/{name}"] == before[f"checkpoints/{name}"], name
    for name in ("spatial_plan.md", "spatial_plan.json", "spatial_pca.png"):
        assert after[name] == before[name], name
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == sorted([*REUSED, "temporal-T2.pt", "temporal-T1.pt", "temporal.pt", "quantize.pt"])

    # the rerun stages' old outputs are kept, byte for byte, under one dated directory
    (old,) = (run / "superseded").iterdir()
    assert len(old.name) == len("20250101T000000Z") and old.name.endswith("Z")
    kept = state(old)
    for name in ("temporal-T3.pt", "temporal-T2.pt", "temporal.pt", "quantize.pt"):
        assert kept[f"checkpoints/{name}"] == before[f"checkpoints/{name}"], name
    for name in ("results.json", "results.md", "report.md", "reports/quantize.json", "eval_batch.pt", "accuracy_energy.png"):
        assert kept[name] == before[name], name
    for name in ("config.yaml", "metrics.jsonl", "stages.json"):  # the old run's records, whole
        assert kept[name][0] == before[name][0], name
    assert yaml.safe_load(kept["config.yaml"][0])["temporal"]["schedule"] == [3, 2]
    assert json.loads(kept["superseded.json"][0])["stages"] == ["temporal", "quantize", "evaluate"]
    assert not any(k.startswith(("checkpoints/ann", "checkpoints/snn", "checkpoints/spatial")) for k in kept)

    # metrics.jsonl: the reused stages' lines as they were, then the new ones
    new = metrics(run)
    reused = [r for r in old_metrics if r["stage"] in ("ann", "convert", "snn", "spatial-ann", "spatial")]
    assert new[: len(reused)] == reused
    assert list(dict.fromkeys(r["stage"] for r in new[len(reused) :])) == ["temporal-T2", "temporal-T1", "temporal", "quantize"]
    assert yaml.safe_load((run / "config.yaml").read_text())["temporal"]["schedule"] == [2, 1]
    records = json.loads((run / "stages.json").read_text())["stages"]
    for stage in STAGES:
        same = records[stage]["fingerprint"] == old_records[stage]["fingerprint"]
        assert same == (stage in ("ann", "convert", "snn", "spatial")), stage
        assert records[stage]["done"] is True
    results = json.loads((run / "results.json").read_text())
    assert [r["timesteps"] for r in results["temporal"]] == [2, 1]

    # an unchanged re-run does nothing new: every file as it was, evaluate skipped too
    settled = state(run)
    code, out, err = trainer(run.parent, "temporal.schedule=[2,1]", capsys=capsys)
    assert code == 0, err
    assert "(resuming)" in out.splitlines()[0] and "[extend]" not in out
    assert "[evaluate] already done" in out and "[temporal] already done" in out
    (row,) = [line for line in out.splitlines() if line.startswith("quantize ")]
    assert row.rstrip().endswith("x"), row  # the table's ANN/SNN energy, from the recorded results
    assert state(run) == settled


def test_changed_ann_epochs_is_refused_naming_the_stage_and_key(run, capsys):
    before = state(run)
    code, out, err = trainer(run.parent, "ann.epochs=4", "temporal.schedule=[2,1]", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "stage ann: ann.epochs (3 -> 4)" in err and "stage temporal: temporal.schedule" in err, err
    assert "restart at stage ann" in err and str(run) in err and "another name=" in err, err
    assert state(run) == before  # untouched


def test_stages_selection_alone_is_no_change_but_may_not_strand_stages(run, capsys):
    before = state(run)
    # evaluate only, same settings: done already, nothing is rerun or written
    code, out, err = trainer(run.parent, "stages=[evaluate]", capsys=capsys)
    assert code == 0, err
    assert "[evaluate] already done" in out and state(run) == before

    # a change to temporal would move temporal and quantize aside without rerunning them: refused
    code, out, err = trainer(run.parent, "stages=[evaluate]", "temporal.epochs=2", capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert "stage temporal" in err and "temporal.epochs (1 -> 2)" in err and "does not run temporal, quantize" in err, err
    assert state(run) == before

    # a change to evaluate's own settings re-evaluates only, keeping the old results
    code, out, err = trainer(run.parent, "stages=[evaluate]", "evaluate.samples=16", capsys=capsys)
    assert code == 0, err
    assert "[extend] stage evaluate reruns" in out and "reusing ann, convert, snn, spatial, temporal, quantize" in out
    after = state(run)
    assert all(after[k] == v for k, v in before.items() if k.startswith("checkpoints/"))
    assert json.loads((run / "results.json").read_text())["samples_costed"] == 16
    (old,) = (run / "superseded").iterdir()
    assert json.loads((old / "results.json").read_text())["samples_costed"] == 32
    assert sorted(p.name for p in old.iterdir() if p.is_dir()) == ["reports"]  # no checkpoint was moved
    assert metrics(run) == [json.loads(x) for x in before["metrics.jsonl"][0].decode().splitlines()]


def test_a_stage_added_before_finished_ones_reruns_them(tmp_path, capsys):
    runs = tmp_path / "runs"
    code, out, err = trainer(runs, "stages=[ann,convert,snn,temporal]", capsys=capsys)
    assert code == 0, err
    run = runs / "exp"
    first = state(run)

    # spatial alone would leave temporal and quantize built on the unpruned SNN: refused
    code, out, err = trainer(runs, "stages=[spatial,quantize]", capsys=capsys)
    assert code == 2 and "stage temporal" in err and "now it runs after ann, convert, snn, spatial" in err, err
    assert "does not run temporal;" in err, err
    assert state(run) == first

    code, out, err = trainer(runs, "stages=[spatial,temporal]", capsys=capsys)
    assert code == 0, err
    assert "[extend] stage temporal reruns (it ran after ann, convert, snn, now it runs after ann, convert, snn, spatial)" in out
    assert json.loads((run / "stages.json").read_text())["stages"]["temporal"]["inputs"] == ["ann", "convert", "snn", "spatial"]
    (old,) = (run / "superseded").iterdir()
    assert sorted(p.name for p in (old / "checkpoints").iterdir()) == ["temporal-T2.pt", "temporal-T3.pt", "temporal.pt"]
    for name in ("ann.pt", "convert.pt", "snn.pt"):
        assert state(run)[f"checkpoints/{name}"] == first[f"checkpoints/{name}"]
