"""The scripts in examples/ run (fast settings) and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, f"{name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.mark.slow
def test_paper_energy_table(tmp_path):
    png = tmp_path / "energy.png"
    out = run_example(
        "paper_energy_table.py",
        "--epochs",
        "1",
        "--samples",
        "16",
        "--timesteps",
        "8",
        "--plot",
        str(png),
    )
    assert r"\toprule" in out and r"\bottomrule" in out and r"\caption{" in out
    assert "# Cost report: vgg-tiny (digits)" in out
    assert "SNN accuracy (replay)" in out and "Total energy" in out
    assert png.stat().st_size > 0


@pytest.mark.slow
def test_compare_profiles_example():
    out = run_example("compare_profiles.py", "--samples", "8", "--timesteps", "4")
    for name in ("45nm", "loihi", "truenorth", "spinnaker2"):
        assert f"| {name} |" in out
    assert "ANN/SNN total" in out


@pytest.mark.slow
def test_custom_profile_example():
    out = run_example("custom_profile.py")
    assert "## my_chip (from my_chip.yaml)" in out
    assert "## my_chip_v2" in out and "saves" in out
    assert "invalid profile rejected" in out and "synaptic_op_pj.value" in out


def test_my_chip_yaml_is_valid():
    from snncost.hardware import load_profile

    chip = load_profile(EXAMPLES / "my_chip.yaml")
    assert chip.name == "my_chip" and chip.ac_energy(16, "int") == 2.0


def test_dataflow_table_example(tmp_path):
    """examples/dataflow_table.py costs a run's checkpoints under every dataflow and baseline."""
    import torch

    from snncost.checkpoint import save_model
    from snncost.costmodel import DATAFLOWS
    from snncost.models import NeuronConfig, VGGSpec, build_snn

    torch.manual_seed(0)
    spec = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)
    neurons = NeuronConfig(timesteps=3)
    (tmp_path / "checkpoints").mkdir()
    save_model(tmp_path / "checkpoints" / "snn.pt", build_snn(spec, neurons), spec, "snn", neurons)
    torch.save({"x": torch.rand(4, 1, 8, 8), "y": torch.arange(4)}, tmp_path / "eval_batch.pt")
    out = run_example("dataflow_table.py", str(tmp_path))
    rows = [line for line in out.splitlines() if line.startswith("| unpruned SNN")]
    assert len(rows) == 2 * len(DATAFLOWS)  # the same-precision and the zero-skipping ANN each
    for dataflow in DATAFLOWS:
        assert sum(f"| {dataflow} |" in r for r in rows) == 2, dataflow


@pytest.mark.slow
def test_sew_resnet18_table():
    """examples/sew_resnet18_table.py costs SpikingJelly's SEW-ResNet-18 layer by layer, ADD rows included."""
    pytest.importorskip("spikingjelly")
    out = run_example("sew_resnet18_table.py", "--images", "2", "--timesteps", "2")
    assert "SEW-ResNet-18" in out and "layer4.1.conv2" in out
    assert out.count("| merge") >= 8 or out.count("merge") >= 8
