"""The compression stages of the pipeline: temporal steps reuse weights, noise tables are seeded."""

import torch

from trainers.config import resolve_config
from trainers.data import BatchLoader, make_synthetic
from trainers.pipeline import run_pipeline
from trainers.robustness import noisy_accuracy

TINY = [
    "data.name=synthetic", "model.arch=custom", "model.features=[8,P,8,P]", "model.classifier=[16]",
    "ann.epochs=2", "snn.epochs=1", "snn.timesteps=6", "convert.batches=2", "progress=false",
]  # fmt: skip


def test_temporal_steps_start_from_the_previous_step(runs_dir):
    """With no fine-tuning epochs every T step holds exactly its predecessor's weights at a smaller T."""
    cfg = resolve_config(
        overrides=[*TINY, f"runs_dir={runs_dir}", "stages=[ann,convert,snn,temporal]", "temporal.schedule=[8,6,3,1]", "temporal.epochs=0", "temporal.tolerance=null"]
    )
    ctx = run_pipeline(cfg)
    snn = ctx.models["snn"].state_dict()
    rows = ctx.results["temporal"]["schedule"]
    assert [r["timesteps"] for r in rows] == [6, 3, 1]  # 8 > the SNN's T=6 is skipped
    for t in (6, 3, 1):
        step = ctx.models[f"temporal-T{t}"]
        assert step.timesteps == t
        assert all(torch.equal(v, snn[k]) for k, v in step.state_dict().items())
    assert ctx.models["temporal"].timesteps == 1  # no tolerance set: the last step is kept


def test_temporal_steps_chain_trained_weights(runs_dir, monkeypatch):
    """With fine-tuning, step k+1 starts from step k's *trained* weights (not the original SNN's)."""
    import trainers.stages.temporal as temporal

    seen = {}
    real = temporal.train_stage

    def spy(ctx, name, model, ocfg, extra=None):
        seen[name] = {k: v.clone() for k, v in model.state_dict().items()}
        return real(ctx, name, model, ocfg, extra)

    monkeypatch.setattr(temporal, "train_stage", spy)
    cfg = resolve_config(
        overrides=[*TINY, f"runs_dir={runs_dir}", "stages=[ann,convert,snn,temporal]", "temporal.schedule=[6,3]", "temporal.epochs=1"]
    )
    ctx = run_pipeline(cfg)
    after_t6 = ctx.models["temporal-T6"].state_dict()
    assert all(torch.equal(seen["temporal-T3"][k], after_t6[k]) for k in after_t6)
    assert not all(torch.equal(seen["temporal-T6"][k], after_t6[k]) for k in after_t6)  # T6 did train


def test_noise_accuracy_is_seeded_and_reproducible():
    _, test = make_synthetic(n_train=8, n_test=64, classes=4)
    loader = BatchLoader(test, 16, (0.5,), (0.25,))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    a = noisy_accuracy(model, loader, [0.0, 0.5, 2.0], seed=3)
    torch.manual_seed(123)  # the global RNG must not matter
    b = noisy_accuracy(model, loader, [0.0, 0.5, 2.0], seed=3)
    c = noisy_accuracy(model, loader, [0.0, 0.5, 2.0], seed=4)
    assert a == b
    assert a[0.0] == c[0.0] and (a[0.5], a[2.0]) != (c[0.5], c[2.0])


def test_quantization_aware_training_finishes_cleanly(runs_dir):
    """QAT trains the int-k model in place: one set of metrics rows, no stray checkpoint."""
    import json
    from pathlib import Path

    from snncost.nn import model_quantization

    cfg = resolve_config(
        overrides=[*TINY, f"runs_dir={runs_dir}", "stages=[ann,convert,snn,quantize]", "quantize.sweep=[8,4]",
                   "quantize.bits=4", "quantize.qat_epochs=1"]  # fmt: skip
    )
    ctx = run_pipeline(cfg)
    assert model_quantization(ctx.models["quantize"])["bits"] == 4
    run = Path(runs_dir) / cfg.name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    quant_rows = [r for r in rows if r["stage"].startswith("quantize")]
    assert {r["stage"] for r in quant_rows} == {"quantize"}
    assert [r["epoch"] for r in quant_rows] == [0, 0, 0, 1]  # float, int8, int4, then one QAT epoch
    assert not (run / "checkpoints" / "quantize-last.pt").exists()
