"""Named cost models: every published convention priced on the same replay, side by side.

Each convention's own numbers are reproduced in tests/test_convention_*.py;
this file checks the plumbing a user touches: ``evaluate(cost_model=...)``,
``compare_cost_models``, the CLI, and chip feasibility warnings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import snncost
import snncost.nn as sn
from snncost.checkpoint import save_model
from snncost.costmodel.conventions import COST_MODELS
from snncost.models import NeuronConfig, VGGSpec, build_snn

ROOT = Path(__file__).resolve().parents[1]
SPEC = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)


@pytest.fixture(scope="module")
def snn_and_data():
    torch.manual_seed(0)
    model = build_snn(SPEC, NeuronConfig(timesteps=3))
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, (x, torch.arange(6) % 10)


@pytest.mark.parametrize("name", COST_MODELS)
def test_every_cost_model_prices_the_replay(snn_and_data, name):
    model, data = snn_and_data
    rep = snncost.evaluate(model, data=data, cost_model=name)
    assert rep.snn_total.energy_total_pj > 0
    assert rep.snn_total.energy_total_pj == pytest.approx(sum(r.energy_total_pj for r in rep.snn))
    assert any(name in c for c in rep.conventions) or name == "snncost"
    if name == "spikesim":  # no ANN model in SpikeSim's released code: no baseline, no ratios
        assert rep.ann == [] and rep.ratios.total_energy is None and rep.baselines == []
    else:
        assert rep.ann_total.energy_total_pj > 0 and rep.ratios.total_energy is not None
    json.loads(rep.to_json())
    assert "Cost report" in rep.to_markdown() and r"\begin{table}" in rep.to_latex()


def test_paper_convention_is_the_synaptic_energy_of_the_45nm_fp32_report(snn_and_data):
    """Two implementations of ACs x 0.9 + MACs x 4.6 agree: the convention and the profile's pricing."""
    model, data = snn_and_data
    paper = snncost.evaluate(model, data=data, cost_model="paper")
    full = snncost.evaluate(model, data=data)
    assert paper.snn_total.energy_total_pj == pytest.approx(full.snn_total.energy_synaptic_pj, rel=1e-12)
    assert paper.ann_total.energy_total_pj == pytest.approx(full.ann_total.energy_synaptic_pj, rel=1e-12)


def test_kerasspiking_reads_its_device_from_the_profile(snn_and_data):
    model, data = snn_and_data
    cpu = snncost.evaluate(model, data=data, cost_model="kerasspiking", profile="kerasspiking-cpu")
    # a non-spiking device runs every connection once: the SNN costs what its ANN costs
    assert cpu.snn_total.energy_total_pj == pytest.approx(cpu.ann_total.energy_total_pj)
    loihi = snncost.evaluate(model, data=data, cost_model="kerasspiking", profile="kerasspiking-loihi")
    assert loihi.snn_total.energy_total_pj < cpu.snn_total.energy_total_pj
    assert "SNN on kerasspiking-loihi, ANN on cpu" in " ".join(loihi.conventions)


def test_compare_cost_models_renders_one_row_per_convention(snn_and_data):
    model, data = snn_and_data
    cmp = snncost.compare_cost_models(model, data=data)
    assert [r.cost_model for r in cmp.rows] == list(COST_MODELS)
    md = cmp.to_markdown()
    assert all(f"| {name} |" in md for name in COST_MODELS)
    assert cmp.to_latex().count(r"\\") == len(COST_MODELS) + 1  # header + one line per row
    assert len(cmp.to_csv().strip().splitlines()) == len(COST_MODELS) + 1
    back = type(cmp).model_validate_json(cmp.to_json())
    assert back.rows == cmp.rows
    assert cmp.report("paper").snn_total == cmp.reports[1].snn_total
    with pytest.raises(ValueError, match="unknown cost_model 'nope'"):
        snncost.compare_cost_models(model, ["nope"], data=data)


def test_fp32_model_on_a_chip_is_flagged_with_what_it_needs(snn_and_data):
    model, data = snn_and_data
    rep = snncost.evaluate(model, data=data, profile="truenorth")
    fit = rep.feasibility
    assert fit is not None and not fit.fits
    assert any("fp32 weights" in p and "quantize" in p for p in fit.problems)
    assert "would then need" in fit.problems[-1] and "Warning" in rep.to_markdown()
    quant = snncost.evaluate(sn.quantize_model(build_snn(SPEC, NeuronConfig(timesteps=3)), 8), data=data,
                             profile="loihi")  # fmt: skip
    assert quant.feasibility.fits and quant.feasibility.cores >= 1 and quant.feasibility.chips == 1
    # cores: neurons per core, or the synapse memory, whichever binds (no weight sharing)
    for lf in quant.feasibility.layers:
        assert lf.cores == max(-(-lf.neurons // 1024), -(-lf.synapse_bytes // 131072), 1)
    assert snncost.evaluate(model, data=data).feasibility is None  # 45nm: no chip limits


def test_inactive_neuron_updates_are_priced_at_loihis_inactive_figure(snn_and_data):
    model, data = snn_and_data
    rep = snncost.evaluate(model, data=data, profile="loihi", cost_model="snncost")
    for r in rep.snn:
        assert 0 <= r.active_neuron_updates <= r.neuron_updates
        idle = r.neuron_updates - r.active_neuron_updates
        assert r.energy_neuron_pj == pytest.approx(r.active_neuron_updates * 81.0 + idle * 52.0)
    assert any(r.active_neuron_updates < r.neuron_updates for r in rep.snn)


def test_cli_cost_models_and_chip_warning(snn_and_data, tmp_path):
    model, (x, y) = snn_and_data
    ckpt = tmp_path / "snn.pt"
    save_model(ckpt, model, SPEC, "snn", NeuronConfig(timesteps=3))
    torch.save({"x": x, "y": y}, tmp_path / "batch.pt")
    common = [sys.executable, "-m", "snncost"]
    out = subprocess.run([*common, "cost-models", str(ckpt), "--data", str(tmp_path / "batch.pt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert all(f"| {name} |" in out.stdout for name in COST_MODELS)
    out = subprocess.run([*common, "evaluate", str(ckpt), "--profile", "loihi", "--format", "summary",
                          "--cost-model", "paper"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warning: the SNN does not fit loihi" in out.stderr and "quantize" in out.stderr
