"""Several seeds: ``--seeds 2`` end to end on digits, and the aggregation rules.

The aggregate's means and sample standard deviations are checked against
numpy on the per-seed ``results.json`` files, row by row (variants by
stage, temporal steps by T, sweep rows by bits, noise levels by model).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from trainers.aggregate import aggregate, means, stat
from trainers.config import ConfigError, resolve_config
from trainers.results import claims_at_matched_accuracy, pareto_front
from trainers.run import main

#: digits with a tiny network and one epoch per stage: the seeds' numbers, not their quality, are checked
TINY_DIGITS = [
    "data.subset=256", "data.test_subset=64", "model.arch=custom", "model.features=[8,P,8,P]", "model.classifier=[16]",
    "ann.epochs=3", "snn.epochs=1", "snn.timesteps=3", "convert.batches=2", "spatial.init=warm",
    "spatial.threshold=0.99", "spatial.epochs=1", "spatial.batches=2", "temporal.schedule=[3,2]", "temporal.epochs=1",
    "quantize.sweep=[8,4]", "evaluate.samples=32", "evaluate.verify_samples=8", "evaluate.noise_stds=[0,0.2]",
    "evaluate.noise_samples=64", "progress=false", "device=cpu",
]  # fmt: skip

#: the numbers of each variant row checked against numpy: accuracy, spikes, energy and every ratio
ROW_FIELDS = (
    "val_acc", "test_acc", "params", "timesteps", "spikes_per_inference", "energy_synaptic_uj", "energy_compute_uj",
    "energy_total_uj", "vs_ann_synaptic_energy", "vs_ann_compute_energy", "vs_ann_total_energy",
    "vs_zero_skipping_ann_total_energy", "spikes_per_synapse", "break_even_spikes_per_synapse",
)  # fmt: skip


def check(aggregated: dict, values: list) -> None:
    """``aggregated`` is the stat of the non-missing ``values``: numpy's mean and sample std (ddof=1)."""
    values = [float(v) for v in values if v is not None]
    assert aggregated["n"] == len(values)
    assert aggregated["mean"] == pytest.approx(np.mean(values), rel=1e-12, abs=1e-15)
    assert aggregated["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-15)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    runs = tmp_path_factory.mktemp("seeds")
    argv = ["--seeds", "2", *TINY_DIGITS, f"runs_dir={runs}", "name=multi"]
    return runs / "multi", argv


def test_two_seeds_end_to_end_and_resumed(two_seeds, capsys):
    top, argv = two_seeds
    assert main(argv) == 0
    out = capsys.readouterr().out
    for seed in (0, 1):
        assert f"[seeds] seed {seed} ({seed + 1}/2): starting in {top / f'seed-{seed}'}" in out
        assert f"[seeds] seed {seed} ({seed + 1}/2): finished" in out
    assert sorted(p.name for p in top.iterdir()) == [
        "accuracy_energy.png", "results.json", "results.md", "robustness.png", "seed-0", "seed-1",
    ]  # fmt: skip
    per_seed = [json.loads((top / f"seed-{s}" / "results.json").read_text()) for s in (0, 1)]
    agg = json.loads((top / "results.json").read_text())
    assert agg["seeds"] == [0, 1] and agg["runs"] == {"0": "seed-0/results.json", "1": "seed-1/results.json"}

    for stage in ("ann", "snn", "spatial", "temporal", "quantize"):
        rows = [next(r for r in res["variants"] if r["stage"] == stage) for res in per_seed]
        row = next(r for r in agg["variants"] if r["stage"] == stage)
        for field in ROW_FIELDS:
            if all(r[field] is None for r in rows):
                assert row[field] is None, (stage, field)
            else:
                check(row[field], [r[field] for r in rows])
    steps = list(dict.fromkeys(r["timesteps"] for res in per_seed for r in res["temporal"]))  # schedule order
    assert [r["timesteps"]["mean"] for r in agg["temporal"]] == steps
    for t, row in zip(steps, agg["temporal"], strict=True):
        for field in ("val_acc", "test_acc", "spikes_per_inference", "energy_synaptic_uj", "vs_ann_synaptic_energy"):
            check(row[field], [r[field] for res in per_seed for r in res["temporal"] if r["timesteps"] == t])
    for row in agg["quantize_sweep"]:
        bits = row["bits"]["mean"]
        for field in ("val_acc", "test_acc"):
            check(row[field], [r[field] for res in per_seed for r in res["quantize_sweep"] if r["bits"] == bits])
    for model, accs in agg["robustness"].items():
        for std, acc in accs.items():
            check(acc, [res["robustness"][model][std] for res in per_seed])

    # the claims are judged on the means: the energy claim's best value is the largest mean ratio
    energy = next(c for c in agg["claims"] if "energy" in c["claim"])
    best = max((r for r in agg["variants"] if r["stage"] != "ann"), key=lambda r: r["vs_ann_synaptic_energy"]["mean"])
    assert energy["best_overall"]["value"] == pytest.approx(best["vs_ann_synaptic_energy"]["mean"])
    md = (top / "results.md").read_text()
    assert "mean ± sample std over 2 seeds: 0, 1" in md and "on the seeds' means" in md
    test_acc = next(r for r in agg["variants"] if r["stage"] == "ann")["test_acc"]
    shown = f"{100 * test_acc['mean']:.2f}" + (f" ± {100 * test_acc['std']:.2f}" if test_acc["std"] else "")
    assert "| ANN | 1 | 32 |" in md and f"{shown}%" in md

    # the same command again resumes every seed and rewrites the same aggregate
    before = (top / "results.json").read_bytes()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("[evaluate] already done") == 2 and "(resuming)" in out
    assert (top / "results.json").read_bytes() == before


def test_a_multi_seed_run_and_a_single_run_do_not_share_a_directory(tmp_path, capsys):
    (tmp_path / "multi" / "seed-0").mkdir(parents=True)
    (tmp_path / "multi" / "seed-0" / "config.yaml").write_text("name: seed-0\n")
    assert main([*TINY_DIGITS, f"runs_dir={tmp_path}", "name=multi"]) == 2  # a single run there
    assert "no config.yaml" in capsys.readouterr().err
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "config.yaml").write_text("name: single\n")
    assert main(["--seeds", "2", *TINY_DIGITS, f"runs_dir={tmp_path}", "name=single"]) == 2
    assert "holds a single-seed run" in capsys.readouterr().err


def test_seed_options_are_checked(capsys):
    assert main(["--seeds", "2", "seeds=[0,1]", "progress=false"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="distinct seeds"):
        resolve_config(overrides=["seeds=[1,1]"])
    with pytest.raises(SystemExit):
        main(["--seeds", "0"])
    assert "--seeds takes a number of seeds >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------- the aggregation rules
def test_stat_is_the_mean_and_sample_std():
    assert stat([1.0, 2.0, 4.0]) == {"mean": pytest.approx(7 / 3), "std": pytest.approx(np.std([1, 2, 4], ddof=1)), "n": 3}
    assert stat([0.1, 0.1, 0.1]) == {"mean": 0.1, "std": 0.0, "n": 3}
    assert stat([5]) == {"mean": 5.0, "std": None, "n": 1}


def test_rows_are_matched_by_what_identifies_them_not_by_position():
    a = {"variants": [{"stage": "ann", "acc": 0.9}, {"stage": "snn", "acc": 0.8}], "temporal": [{"timesteps": 4, "acc": 0.7}]}
    b = {"variants": [{"stage": "snn", "acc": 0.6}, {"stage": "ann", "acc": 0.7}],
         "temporal": [{"timesteps": 4, "acc": 0.5}, {"timesteps": 2, "acc": 0.3}]}  # fmt: skip
    out = aggregate([a, b])
    assert [r["stage"] for r in out["variants"]] == ["ann", "snn"]
    assert out["variants"][0]["acc"]["mean"] == pytest.approx(0.8) and out["variants"][1]["acc"]["mean"] == pytest.approx(0.7)
    assert out["temporal"][1] == {"timesteps": {"mean": 2.0, "std": None, "n": 1}, "acc": {"mean": 0.3, "std": None, "n": 1}}
    assert aggregate([{"name": "x"}, {"name": "y"}]) == {"name": "x / y"}
    assert means(out)["variants"][0]["acc"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match=r"results\.variants\[ann\]\.acc"):
        aggregate([{"variants": [{"stage": "ann", "acc": 0.9}]}, {"variants": [{"stage": "ann", "acc": [0.9]}]}])


def test_claims_on_aggregated_variants_use_the_means():
    rows = lambda acc, ratio: [  # noqa: E731
        {"variant": "ANN", "stage": "ann", "test_acc": 0.9, "params": 100, "timesteps": 1, "vs_ann_synaptic_energy": 1.0},
        {"variant": "SNN", "stage": "snn", "test_acc": acc, "params": 100, "timesteps": 8, "vs_ann_synaptic_energy": ratio},
    ]  # fmt: skip
    seeds = [rows(0.91, 6.0), rows(0.88, 12.0)]  # neither seed holds the 8x energy claim at matched accuracy
    assert not any(claims_at_matched_accuracy(s, 1.0)[2]["held"] for s in seeds)
    energy = claims_at_matched_accuracy(aggregate(seeds), 1.0)[2]  # the means do: -0.5 points, 9x
    assert energy["held"] and energy["best_matched"]["value"] == pytest.approx(9.0)
    assert energy["best_matched"]["gap_points"] == pytest.approx(-0.5)


def test_pareto_front_against_brute_force():
    rng = random.Random(0)
    for _ in range(50):
        points = [(rng.choice([1, 2, 3, 4]), rng.choice([50, 60, 70]), str(i)) for i in range(rng.randint(1, 8))]
        dominated = {
            p for p in points
            if any(q[0] <= p[0] and q[1] >= p[1] and (q[0], q[1]) != (p[0], p[1]) for q in points)
        }  # fmt: skip
        expected = {(p[0], p[1]) for p in points if p not in dominated}
        front = pareto_front(points)
        assert {(p[0], p[1]) for p in front} == expected
        assert [p[0] for p in front] == sorted(p[0] for p in front)
