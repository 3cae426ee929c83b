"""The validation split: carved from the training set, stratified, seeded; every choice reads it.

The split is checked on data whose images carry their own index (so
disjointness is exact) against counts computed here; the temporal stage's
stopping point is checked with a fake evaluator whose validation and test
accuracies disagree, so a choice made on the wrong split shows.
"""

from __future__ import annotations

import collections

import pytest
import torch
import yaml

from trainers import context as context_module
from trainers.config import DataConfig, resolve_config
from trainers.context import Context, model_spec, neuron_config
from trainers.data import (
    DataError,
    TensorData,
    _channel_stats,
    _digits,
    carve_validation,
    load_data,
)
from trainers.rundir import RunDir, fingerprints


def indexed(counts: list[int]) -> TensorData:
    """``counts[c]`` items of class c, shuffled; item i's image holds the number i."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(123))]
    images = torch.arange(len(labels), dtype=torch.float32).view(-1, 1, 1, 1)
    return TensorData(images, labels, [f"c{c}" for c in range(len(counts))])


def ids(d: TensorData) -> list[int]:
    return d.images.flatten().long().tolist()


COUNTS = [50, 30, 7, 100, 13]


def test_split_is_a_stratified_partition_of_the_training_set():
    data = indexed(COUNTS)
    val, train = carve_validation(data, 0.2, seed=0)
    assert set(ids(val)).isdisjoint(ids(train)) and sorted(ids(val) + ids(train)) == list(range(sum(COUNTS)))
    assert len(val) == round(0.2 * sum(COUNTS))
    per_class = collections.Counter(val.labels.tolist())
    for c, n in enumerate(COUNTS):  # each class in proportion, within one image
        assert abs(per_class[c] - 0.2 * n) <= 1, (c, per_class[c], n)
    # labels travel with their images
    for d in (val, train):
        assert all(int(data.labels[i]) == int(y) for i, y in zip(ids(d), d.labels.tolist(), strict=True))


def test_split_is_reproducible_by_seed_and_changes_with_it():
    data = indexed(COUNTS)
    a, b, c = (ids(carve_validation(data, 0.1, seed)[0]) for seed in (0, 0, 1))
    assert a == b and a != c


def test_every_class_has_a_validation_image_and_keeps_a_training_image():
    val, train = carve_validation(indexed(COUNTS), 0.001, seed=0)  # 0.2 images: still one of each class
    assert sorted(set(val.labels.tolist())) == list(range(len(COUNTS))) == sorted(set(train.labels.tolist()))
    with pytest.raises(DataError, match=r"val_fraction.*class\(es\) 'c1'"):
        carve_validation(indexed([5, 1, 5]), 0.1, seed=0)  # c1's one image cannot be in both splits
    with pytest.raises(DataError, match="would take every training image"):
        carve_validation(indexed([3, 3]), 0.9, seed=0)


def test_load_data_carves_validation_before_subset_and_normalises_with_training_images():
    cfg = DataConfig(name="digits", subset=300)
    d = load_data(cfg, seed=4)
    source, test = _digits(cfg, 4)
    assert (len(d.val), len(d.train), len(d.test)) == (144, 300, len(test))  # 10% of all 1,437; then 300

    def rows(t: TensorData) -> collections.Counter:
        return collections.Counter(tuple(x) for x in t.images.flatten(1).tolist())

    whole = rows(source)
    assert not (rows(d.val) - whole) and not (rows(d.train) - whole)  # both from the training source
    assert not (rows(d.val) + rows(d.train) - whole)  # and no image in both (as a multiset)
    assert torch.equal(d.test.images, test.images)
    assert (d.mean, d.std) == _channel_stats(d.train.images)
    assert [len(load_data(cfg, seed=s).val) for s in (4, 5)] == [144, 144]
    assert not torch.equal(load_data(cfg, seed=5).val.images, d.val.images)


# ---------------------------------------------------------------- run directories
def test_the_validation_fraction_is_in_the_data_fingerprint():
    def fp(*overrides: str) -> dict[str, str]:
        return fingerprints(resolve_config(overrides=list(overrides)).model_dump(mode="json"))

    assert fp("data.val_fraction=0.2")["ann"] != fp()["ann"]


def test_a_run_made_before_the_validation_split_is_not_resumed_with_one(tmp_path, capsys):
    """An old run's config.yaml has no data.val_fraction: it trained on the whole training set."""
    from trainers.run import main
    from trainers.rundir import PREDATING

    cfg = resolve_config(overrides=[f"runs_dir={tmp_path}", "name=old"])
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    stored = cfg.model_dump(mode="json")
    del stored["data"]["val_fraction"]
    (run / "config.yaml").write_text(yaml.safe_dump(stored))
    (run / "checkpoints" / "ann.pt").write_bytes(b"an ann stage's output")
    assert PREDATING["data.val_fraction"] is None
    assert main([f"runs_dir={tmp_path}", "name=old", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "data.val_fraction (null -> 0.1)" in err and "new run" in err, err


# ---------------------------------------------------------------- choices read validation accuracy
TINY = [
    "data.name=synthetic", "data.subset=128", "data.test_subset=64", "model.arch=custom", "model.features=[8,P,8,P]",
    "model.classifier=[16]", "snn.timesteps=4", "temporal.schedule=[4,3,2,1]", "temporal.epochs=0",
    "temporal.tolerance=0.05", "progress=false", "device=cpu",
]  # fmt: skip

#: accuracy by split and T: validation falls out of tolerance at T=2, test already at T=3 (and not at 2)
ACCURACY = {"val": {4: 0.90, 3: 0.88, 2: 0.70, 1: 0.95}, "test": {4: 0.90, 3: 0.60, 2: 0.90, 1: 0.90}}


def test_temporal_stopping_follows_validation_accuracy_and_reads_test_once_per_model(tmp_path, monkeypatch):
    cfg = resolve_config(overrides=[*TINY, f"runs_dir={tmp_path}", "name=t"])
    run = RunDir(cfg)
    run.open()
    data = load_data(cfg.data, cfg.seed)
    ctx = Context(cfg, run, data, torch.device("cpu"))
    from snncost.models import build_snn

    ctx.models["snn"], ctx.results["snn"] = build_snn(model_spec(cfg, data), neuron_config(cfg)), {}
    calls = []

    def fake_evaluate(model, loader, desc="eval", progress=True, split="test"):
        assert loader.data is {"val": data.val, "test": data.test}[split], "the loader is not that split's"
        calls.append((split, model.timesteps))
        acc = ACCURACY[split][model.timesteps]
        return {f"{split}_loss": 1 - acc, f"{split}_acc": acc, "spikes_per_inference": 10.0 * model.timesteps}

    monkeypatch.setattr(context_module, "evaluate", fake_evaluate)
    from trainers.stages.temporal import stage_temporal

    stage_temporal(ctx)
    schedule = ctx.results["temporal"]["schedule"]
    assert [(r["timesteps"], r["kept"]) for r in schedule] == [(4, True), (3, True), (2, False)]
    assert ctx.models["temporal"].timesteps == 3  # on test accuracy it would have been T=4 (or gone on to T=1)
    assert [(r["val_acc"], r["test_acc"]) for r in schedule] == [(0.90, 0.90), (0.88, 0.60), (0.70, 0.90)]
    assert collections.Counter(t for s, t in calls if s == "test") == {4: 1, 3: 1, 2: 1}  # once per finished model
