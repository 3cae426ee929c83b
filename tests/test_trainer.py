"""The trainer: conversion quality, end-to-end runs, resume, and config errors."""

import json
import os

import pytest
import torch

from snncost.checkpoint import safe_load
from snncost.models import NeuronConfig, build_ann, build_snn
from trainers import engine
from trainers.config import ConfigError, resolve_config
from trainers.convert import convert
from trainers.data import BatchLoader, load_data
from trainers.engine import evaluate, make_optimizer, train_epoch
from trainers.pipeline import model_spec, run_pipeline
from trainers.run import main

FAST = [
    "ann.epochs=2", "snn.epochs=2", "snn.timesteps=4", "convert.batches=2", "progress=false",
    "spatial.epochs=1", "spatial.ann_epochs=2", "temporal.schedule=[4,2]", "temporal.epochs=1", "quantize.sweep=[8,4]",
    "evaluate.samples=64", "evaluate.noise_stds=[0,0.2]",
]  # fmt: skip


@pytest.fixture(scope="module")
def digits_ann():
    cfg = resolve_config("digits", overrides=["progress=false"])
    data = load_data(cfg.data)
    torch.manual_seed(0)
    ann = build_ann(model_spec(cfg, data))
    opt = make_optimizer(ann, cfg.ann)
    loader = BatchLoader(data.train, 32, data.mean, data.std, shuffle=True)
    for epoch in range(20):
        loader.set_epoch(epoch)
        train_epoch(ann, loader, opt, progress=False)
    return cfg, data, ann


def test_conversion_within_two_points_at_t32(digits_ann):
    cfg, data, ann = digits_ann
    test = BatchLoader(data.test, 128, data.mean, data.std)
    ann_acc = evaluate(ann, test, progress=False)["test_acc"]
    snn = build_snn(model_spec(cfg, data), NeuronConfig(timesteps=32))
    thresholds = convert(ann, snn, BatchLoader(data.train, 64, data.mean, data.std, shuffle=True), 99.9, 4)
    snn_acc = evaluate(snn, test, progress=False)["test_acc"]
    assert ann_acc > 0.93
    assert all(t > 0 for t in thresholds)
    assert snn_acc >= ann_acc - 0.02, (ann_acc, snn_acc)


def test_default_run_end_to_end(runs_dir, capsys):
    assert main([*FAST, f"runs_dir={runs_dir}", "name=e2e"]) == 0
    out = capsys.readouterr().out
    assert "test acc" in out and "snn" in out
    records = [json.loads(x) for x in open(f"{runs_dir}/e2e/metrics.jsonl")]
    stages = list(dict.fromkeys(r["stage"] for r in records))
    assert stages == ["ann", "convert", "snn", "spatial-ann", "spatial", "temporal-T4", "temporal-T2", "temporal", "quantize"]
    for name in ("ann", "convert", "snn", "spatial", "temporal", "quantize"):
        assert open(f"{runs_dir}/e2e/checkpoints/{name}.pt", "rb").read(2) == b"PK"
    run = f"{runs_dir}/e2e"
    for name in ("config.yaml", "results.md", "results.json", "report.md", "report.tex", "spatial_plan.md",
                 "accuracy_energy.png", "robustness.png", "reports/snn.json", "reports/quantize.json"):  # fmt: skip
        assert os.path.getsize(f"{run}/{name}") > 0, name
    results = json.load(open(f"{run}/results.json"))
    assert [v["stage"] for v in results["variants"]] == ["ann", "snn", "spatial", "temporal", "quantize"]
    # selection reads the validation split only: every epoch is monitored on it, the test split is
    # evaluated once per finished model (its metrics) and reported
    epochs = [r for r in records if r.get("epoch", 0) >= 1]
    assert epochs and all("val_acc" in r and "test_acc" not in r for r in epochs)
    assert all(v["val_acc"] is not None and v["test_acc"] is not None for v in results["variants"])
    assert results["splits"] == {"train": 1437 - 144, "val": 144, "test": 360, "val_fraction": 0.1}
    assert "never used for a choice" in open(f"{run}/results.md").read()
    assert results["variants"][-1]["weight_bits"] == 5  # quantize.bits default
    assert set(results["robustness"]) == {"ANN", "SNN (unpruned)", "quantized"}

    # the CLI on the final checkpoint and the run's own eval batch reproduces the run's report
    from snncost.__main__ import main as cli

    out = f"{run}/again.json"
    assert cli(["evaluate", f"{run}/checkpoints/quantize.pt", "--data", f"{run}/eval_batch.pt",
                "--baseline", f"{run}/checkpoints/ann.pt", "--format", "json", "--output", out]) == 0  # fmt: skip
    again, report = json.load(open(out)), json.load(open(f"{run}/reports/quantize.json"))
    assert again["snn_total"] == report["snn_total"] and again["accuracy"] == report["accuracy"]


def test_resume_after_interruption_gives_same_metrics(runs_dir, monkeypatch):
    overrides = [*FAST, "ann.epochs=3", "snn.epochs=3", f"runs_dir={runs_dir}"]
    run_pipeline(resolve_config("digits", overrides=[*overrides, "name=straight", "stages=[ann,convert,snn]"]))

    calls = {"n": 0}
    real = engine.train_epoch

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # ann epochs 1-3, snn epoch 1, then die in snn epoch 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cfg = resolve_config("digits", overrides=[*overrides, "name=killed", "stages=[ann,convert,snn]"])
    monkeypatch.setattr("trainers.context.train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg)
    monkeypatch.setattr("trainers.context.train_epoch", real)
    run_pipeline(cfg)

    def metrics(name):
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in open(f"{runs_dir}/{name}/metrics.jsonl")]

    assert metrics("killed") == metrics("straight")
    a = safe_load(f"{runs_dir}/straight/checkpoints/snn.pt")["state_dict"]
    b = safe_load(f"{runs_dir}/killed/checkpoints/snn.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rerun_of_finished_run_skips_stages(runs_dir, capsys):
    args = [*FAST, f"runs_dir={runs_dir}", "name=again", "stages=[ann,convert]"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "already done" in capsys.readouterr().out


def test_changed_config_refuses_to_mix_runs(runs_dir, capsys):
    base = [*FAST, f"runs_dir={runs_dir}", "name=mix", "stages=[ann]"]
    assert main(base) == 0
    assert main([*base, "ann.lr=0.5"]) == 2
    assert "ann.lr" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, expected",
    [
        ("snn.encoding=spikes", "'direct' or 'poisson'"),
        ("data.batchsize=3", "allowed keys: name, root"),
        ("model.arch=vgg7", "choose one of vgg5"),
        ("snn.timesteps=0", "snn.timesteps"),
        ("nonsense", "key=value"),
    ],
)
def test_bad_config_fails_at_once_with_clear_message(override, expected, capsys):
    assert main([override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and expected in err


def test_bad_yaml_config_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        resolve_config(config_file=bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(config_file=bad)


def test_yaml_config_with_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: mine\nsnn:\n  timesteps: 7\n")
    cfg = resolve_config(config_file=f, overrides=["snn.leak=0.9"])
    assert (cfg.name, cfg.snn.timesteps, cfg.snn.leak) == ("mine", 7, 0.9)


def test_help_lists_keys(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "snn.timesteps" in out and "cifar10-vgg9" in out


def test_claims_hold_only_at_matched_accuracy():
    """A ratio reached far below the ANN's accuracy is not the paper's claim (issue: matched accuracy)."""
    from trainers.results import claims_at_matched_accuracy, results_markdown

    def row(variant, stage, acc, params, t, synaptic):
        return {"variant": variant, "stage": stage, "test_acc": acc, "params": params, "timesteps": t,
                "vs_ann_synaptic_energy": synaptic}  # fmt: skip

    variants = [
        row("ANN", "ann", 0.90, 1000, 1, 1.0),
        row("SNN", "snn", 0.895, 1000, 24, 2.0),
        row("pruned", "spatial", 0.893, 80, 24, 9.0),  # -0.7 points: matched
        row("small", "temporal", 0.80, 50, 4, 30.0),  # -10 points: not matched
    ]
    claims = {c["claim"].split(":")[0]: c for c in claims_at_matched_accuracy(variants, 1.0)}
    params, timesteps, energy = claims["spatial pruning"], claims["temporal pruning"], claims["8-14x less compute energy than the unpruned ANN"]
    assert params["held"] and params["best_matched"]["variant"] == "pruned"
    assert params["best_matched"]["value"] == pytest.approx(12.5)
    assert not timesteps["held"] and timesteps["best_overall"]["value"] == pytest.approx(6.0)
    assert timesteps["best_overall"]["gap_points"] == pytest.approx(-10.0)
    assert energy["held"] and energy["best_matched"]["value"] == pytest.approx(9.0)
    assert not claims_at_matched_accuracy(variants, 0.5)[0]["held"]  # -0.7 points is outside 0.5
    md = results_markdown({"profile": "45nm", "samples_costed": 1, "variants": [
        {**v, "weight_bits": 32, "spikes_per_inference": None, "energy_synaptic_uj": 1.0, "energy_compute_uj": 1.0,
         "energy_total_uj": 1.0, "vs_ann_compute_energy": 1.0, "vs_ann_total_energy": 1.0} for v in variants],
        "claims": claims_at_matched_accuracy(variants, 1.0), "accuracy_tolerance": 1.0,
        "temporal": [], "robustness": {}})  # fmt: skip
    assert "| small | 4 | 32 | 50 | - | 80.00% | -10.00 |" in md  # no val acc in these rows
    assert "| temporal pruning: 3-30x fewer timesteps | no | 1.00x (" in md
    assert "| 6.00x (small, -10.00 pts) |" in md


def test_channels_last_trains_the_same_network(runs_dir, monkeypatch):
    """``channels_last=true`` changes the memory layout, not the computation: the same run's
    metrics agree to float rounding, the layout reaches the convs, and a run may be resumed
    with the other layout (it is a run key, in no fingerprint)."""
    layouts = []
    real = engine.train_epoch

    def spy(model, loader, *args, **kwargs):
        conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][
            1
        ]  # C_in > 1: the layouts differ
        layouts.append(conv.weight.stride(1) == 1)  # channels-last: the channels of a tap adjacent
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr("trainers.context.train_epoch", spy)
    base = [*FAST, f"runs_dir={runs_dir}", "stages=[ann,convert,snn]"]
    first = run_pipeline(resolve_config("digits", overrides=[*base, "name=nchw"]))
    assert set(layouts) == {False}
    layouts.clear()
    last = run_pipeline(
        resolve_config("digits", overrides=[*base, "name=nhwc", "channels_last=true"])
    )
    assert set(layouts) == {True}
    for stage in ("ann", "snn"):
        a, b = first.results[stage], last.results[stage]
        assert (
            abs(a["val_acc"] - b["val_acc"]) <= 0.02 and abs(a["test_acc"] - b["test_acc"]) <= 0.02
        ), (stage, a, b)
    resumed = run_pipeline(
        resolve_config("digits", overrides=[*base, "name=nchw", "channels_last=true"])
    )
    assert resumed.results["snn"] == first.results["snn"], (
        "a finished run is resumed, not retrained"
    )
