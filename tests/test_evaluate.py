"""snncost.evaluate / compare_profiles and the CLI, on small real models."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import snncost
import snncost.nn as sn
from snncost.checkpoint import save_model
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn

ROOT = Path(__file__).resolve().parents[1]


def tiny_spec() -> VGGSpec:
    return VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return build_snn(tiny_spec(), NeuronConfig(timesteps=4, threshold=0.5))


@pytest.fixture(scope="module")
def digits_xy():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(12, 1, 8, 8, generator=gen), torch.randint(0, 10, (12,), generator=gen)


def hand_built(encoder: sn.Encoder | None = None) -> sn.SpikingSequential:
    torch.manual_seed(0)
    model = sn.SpikingSequential(
        OrderedDict(
            enc=encoder or sn.DirectEncoder(3),
            conv=nn.Conv2d(2, 3, 3, padding=1, bias=False),
            lif1=sn.LIF(threshold=0.3, learn_threshold=False, learn_leak=False),
            flat=nn.Flatten(),
            fc=nn.Linear(3 * 4 * 4, 5, bias=False),
            out=sn.OutputIntegrator(),
        )
    )
    model.input_shape = (2, 4, 4)
    return model.eval()


def test_lazy_exports():
    code = (
        "import sys, snncost.nn, snncost; "
        "assert 'numba' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'; "
        "assert snncost.__version__ == '0.1.0'; "
        "assert callable(snncost.evaluate) and callable(snncost.compare_profiles); "
        "import snncost.evaluation; assert callable(snncost.evaluate); "
        "print(sorted(snncost.available_profiles()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "45nm" in out.stdout
    for name in (
        "evaluate",
        "compare_profiles",
        "load_profile",
        "available_profiles",
        "CostReport",
        "build_graph",
        "simulate",
    ):
        assert hasattr(snncost, name)
    with pytest.raises(AttributeError):
        snncost.no_such_thing  # noqa: B018


def test_evaluate_hand_built_model():
    model = hand_built()
    x = torch.rand(5, 2, 4, 4)
    y = torch.tensor([0, 1, 2, 3, 4])
    rep = snncost.evaluate(model, data=(x, y), verify=True, name="hand")
    assert rep.model == "hand" and rep.profile == "45nm" and rep.timesteps == 3
    assert rep.batch_size == 5 and not rep.synthetic_data
    assert [r.name for r in rep.snn] == ["conv", "fc"]
    assert [r.name for r in rep.ann] == ["conv", "fc"]
    assert rep.accuracy is not None and 0 <= rep.accuracy <= 1
    assert rep.spike_mismatches == 0 and rep.spikes_compared > 0
    conv = rep.snn[0]
    # direct encoding: the first layer does MACs (every step), no ACs; paper figure exact
    assert conv.macs > 0 and conv.synaptic_ops == 0
    assert conv.energy_synaptic_pj == pytest.approx(conv.macs * 4.6)
    fc = rep.snn[1]
    assert fc.energy_synaptic_pj == pytest.approx(fc.synaptic_ops * 0.9)
    # the ANN baseline's MACs: real taps only by default (border-exact, like the SNN's ACs);
    # every tap, padding included, with count_padding: conv 3x(2x3x3)x16, fc 48x5
    real = sum(n.real_macs for n in snncost.build_graph(model, (2, 4, 4)).weight_layers())
    assert rep.ann_total.macs == real < 3 * 2 * 9 * 16 + 48 * 5
    padded = snncost.evaluate(model, data=(x, y), count_padding=True)
    assert padded.ann_total.macs == 3 * 2 * 9 * 16 + 48 * 5
    assert "padding included" in " ".join(padded.conventions)
    assert rep.ann_total.energy_synaptic_pj == pytest.approx(rep.ann_total.macs * 4.6)
    assert rep.ratios.compute_energy == pytest.approx(
        rep.ann_total.energy_compute_pj / rep.snn_total.energy_compute_pj
    )
    # timesteps override
    rep6 = snncost.evaluate(model, data=x, timesteps=6)
    assert rep6.timesteps == 6 and rep6.snn_total.timesteps == 6
    assert model.timesteps == 3  # restored


def test_evaluate_poisson_reproducible():
    model = hand_built(sn.PoissonEncoder(4))
    x = torch.rand(4, 2, 4, 4)
    a = snncost.evaluate(model, data=x, seed=3)
    b = snncost.evaluate(model, data=x, seed=3)
    assert a.snn_total == b.snn_total
    assert a.snn[0].macs == 0 and a.snn[0].synaptic_ops > 0  # Poisson: the first layer does ACs
    assert any("Poisson" in n for n in a.notes)
    v = snncost.evaluate(model, data=x, verify=True)
    assert v.spike_mismatches == 0


def test_evaluate_vgg_digits_shape(vgg, digits_xy):
    x, y = digits_xy
    rep = snncost.evaluate(vgg, data=(x, y), max_samples=8)
    assert rep.batch_size == 8 and rep.accuracy is not None
    assert rep.model == "vgg[4-P-8|16]"
    assert [r.name for r in rep.snn] == [r.name for r in rep.ann]
    for rows, total in ((rep.snn, rep.snn_total), (rep.ann, rep.ann_total)):
        assert total.energy_total_pj == pytest.approx(sum(r.energy_total_pj for r in rows))
        assert total.synaptic_ops == sum(r.synaptic_ops for r in rows)
    assert 0 < rep.snn_total.spike_rate < 1
    assert rep.snn_total.latency_s > 0 and rep.ann_total.latency_s > 0
    assert CostReportRoundTrip(rep)


def CostReportRoundTrip(rep) -> bool:
    return snncost.CostReport.model_validate_json(rep.to_json()) == rep


def test_evaluate_data_kinds(vgg, digits_xy):
    x, y = digits_xy
    ds = torch.utils.data.TensorDataset(x, y)
    r1 = snncost.evaluate(vgg, data=ds, max_samples=6)
    assert r1.batch_size == 6 and r1.accuracy is not None and "TensorDataset" in r1.data
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    r2 = snncost.evaluate(vgg, data=loader, max_samples=6)
    assert r2.batch_size == 6 and r2.snn_total == r1.snn_total
    r3 = snncost.evaluate(vgg, data=x.numpy()[:6])
    assert r3.accuracy is None and r3.snn_total == r1.snn_total
    syn = snncost.evaluate(vgg, max_samples=4)
    assert syn.synthetic_data and syn.batch_size == 4 and "synthetic" in syn.data
    assert "synthetic" in syn.to_markdown()


def test_evaluate_bad_inputs(vgg):
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\).*\[B, 1, 8, 8\]"):
        snncost.evaluate(vgg, data=torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="expected a batch"):
        snncost.evaluate(vgg, data=torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="available: 45nm.*loihi"):
        snncost.evaluate(vgg, profile="no_such_chip")
    with pytest.raises(ValueError, match="labels"):
        snncost.evaluate(vgg, data=(torch.zeros(3, 1, 8, 8), torch.zeros(2)))
    with pytest.raises(ValueError, match="no spiking"):
        snncost.evaluate(build_ann(tiny_spec()))
    with pytest.raises(TypeError):
        snncost.evaluate(42)


def test_evaluate_with_ann_baseline(vgg, digits_xy):
    x, y = digits_xy
    big = VGGSpec(features=[8, "P", 16], classifier=[32], in_channels=1, image_size=8, dropout=0.0)
    ann = build_ann(big).eval()
    rep = snncost.evaluate(vgg, data=(x, y), baseline=ann)
    assert rep.ann_accuracy is not None
    padded = snncost.evaluate(vgg, data=(x, y), baseline=ann, count_padding=True)
    assert padded.ann_total.macs == 8 * 9 * 64 + 16 * 8 * 9 * 16 + 256 * 32 + 32 * 10
    real = sum(n.real_macs for n in snncost.build_graph(ann, (1, 8, 8)).weight_layers())
    assert rep.ann_total.macs == real
    assert rep.baseline.startswith("ANN")
    with pytest.raises(ValueError, match="baseline must be an ANN"):
        snncost.evaluate(vgg, baseline=vgg)


def test_evaluate_checkpoint_path(vgg, tmp_path):
    path = tmp_path / "tiny_snn.pt"
    save_model(path, vgg, vgg.spec, "snn", NeuronConfig(timesteps=4, threshold=0.5))
    rep = snncost.evaluate(str(path), max_samples=3)
    assert rep.model == "tiny_snn"
    direct = snncost.evaluate(vgg, max_samples=3)
    assert rep.snn_total == direct.snn_total


def test_compare_profiles(vgg, digits_xy):
    x, y = digits_xy
    comp = snncost.compare_profiles(vgg, ["45nm", "loihi", "truenorth"], data=(x, y))
    assert [r.profile for r in comp.rows] == ["45nm", "loihi", "truenorth"]
    assert comp.report("45nm").snn_total.synaptic_ops == comp.report("loihi").snn_total.synaptic_ops
    loihi = comp.rows[1]
    assert loihi.ann_profile == "45nm"  # no MAC datapath on Loihi
    assert comp.rows[0].ratio_total == pytest.approx(
        comp.rows[0].ann_total_pj / comp.rows[0].snn_total_pj
    )
    md = comp.to_markdown()
    assert "| loihi |" in md and "Notes" in md
    tex = comp.to_latex()
    assert r"\toprule" in tex and r"\bottomrule" in tex and tex.count(r" \\") >= 4
    rows = comp.to_csv().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("profile,")
    assert json.loads(comp.to_json())["model"] == comp.model
    with pytest.raises(ValueError, match="available"):
        snncost.compare_profiles(vgg, ["45nm", "bogus"])
    # default: every built-in profile
    all_profiles = snncost.compare_profiles(vgg, max_samples=2)
    assert [r.profile for r in all_profiles.rows] == snncost.available_profiles()


# ---------------------------------------------------------------------- CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snncost", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vgg):
    path = tmp_path_factory.mktemp("ckpt") / "snn.pt"
    save_model(path, vgg, vgg.spec, "snn", NeuronConfig(timesteps=4, threshold=0.5))
    return path


def test_cli_in_process(checkpoint, tmp_path, capsys):
    from snncost.__main__ import main

    out = tmp_path / "r.json"
    png = tmp_path / "r.png"
    code = main(
        [
            "evaluate",
            str(checkpoint),
            "--data",
            "digits",
            "--samples",
            "10",
            "--format",
            "json",
            "--output",
            str(out),
            "--plot",
            str(png),
            "--timesteps",
            "3",
            "--verify",
        ]
    )
    assert code == 0
    rep = snncost.CostReport.model_validate_json(out.read_text())
    assert rep.batch_size == 10 and rep.timesteps == 3 and "digits" in rep.data
    assert rep.accuracy is not None and rep.spike_mismatches == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(checkpoint), "--samples", "2", "--format", "latex"]) == 0
    assert r"\bottomrule" in capsys.readouterr().out
    assert (
        main(
            [
                "compare",
                str(checkpoint),
                "--profiles",
                "45nm",
                "spinnaker2",
                "--samples",
                "2",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count("\n") == 3
    assert main(["profiles", "--format", "markdown"]) == 0
    assert "| loihi |" in capsys.readouterr().out


def test_cli_subprocess(checkpoint, tmp_path):
    prof = run_cli("profiles")
    assert prof.returncode == 0, prof.stderr
    for name in ("45nm", "loihi", "truenorth", "spinnaker2"):
        assert name in prof.stdout
    assert "4.6" in prof.stdout and "0.9" in prof.stdout

    ev = run_cli("evaluate", str(checkpoint), "--samples", "4", "--format", "markdown")
    assert ev.returncode == 0, ev.stderr
    assert ev.stdout.startswith("# Cost report: snn") and "Total energy" in ev.stdout

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(300))
    bad = run_cli("evaluate", str(garbage))
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and str(garbage) in bad.stderr


def test_cli_errors_in_process(checkpoint, capsys):
    from snncost.__main__ import main

    assert main(["evaluate", str(Path(checkpoint).with_name("nope.pt"))]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(checkpoint), "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "available: 45nm" in err
    ann_path = Path(checkpoint).with_name("ann.pt")
    ann_model = build_ann(tiny_spec())
    save_model(ann_path, ann_model, tiny_spec(), "ann")
    assert main(["evaluate", str(ann_path)]) == 2
    assert "no spiking" in capsys.readouterr().err
    big = VGGSpec.from_arch("vgg5", in_channels=3, image_size=32)
    big_path = Path(checkpoint).with_name("big.pt")
    save_model(
        big_path, build_snn(big, NeuronConfig(timesteps=2)), big, "snn", NeuronConfig(timesteps=2)
    )
    assert main(["evaluate", str(big_path), "--data", "digits"]) == 2
    assert "(1, 8, 8)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", str(checkpoint), "--samples", "0"])
