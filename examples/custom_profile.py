"""Cost an SNN on your own hardware: a profile from YAML, and one built in Python.

Usage::

    python examples/custom_profile.py                       # examples/my_chip.yaml
    python examples/custom_profile.py path/to/chip.yaml     # your file

A profile is a validated pydantic object
(:class:`snncost.hardware.HardwareProfile`): every energy carries a citation
key, unknown fields and bad values fail with the field at fault. This script
(1) loads ``my_chip.yaml`` and costs a small digits SNN on it, (2) derives a
variant in Python (cheaper synaptic ops), writes it to YAML, loads it back
and costs the same model, and (3) shows the one-line error of an invalid
profile.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import yaml

try:
    import snncost
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncost
from snncost.hardware import Energy, HardwareProfile, ProfileError, load_profile
from snncost.models import NeuronConfig, VGGSpec, build_snn

HERE = Path(__file__).resolve().parent


def main() -> None:
    yaml_path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "my_chip.yaml"

    torch.manual_seed(0)
    spec = VGGSpec.from_arch("vgg-tiny", in_channels=1, image_size=8)
    model = build_snn(spec, NeuronConfig(timesteps=8))
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    # 1. a YAML profile
    chip = load_profile(yaml_path)
    report = snncost.evaluate(model, profile=chip, data=x, name="vgg-tiny")
    print(f"## {chip.name} (from {yaml_path.name})\n")
    print(report.summary())

    # 2. a variant built in Python: halve the per-event energy, then YAML round trip
    cheaper = chip.model_copy(
        update={
            "name": "my_chip_v2",
            "synaptic_op_pj": Energy(value=1.0, source="assumption", notes="half of my_chip"),
        }
    )
    cheaper = HardwareProfile.model_validate(cheaper.model_dump())  # re-validate
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "my_chip_v2.yaml"
        cheaper.to_yaml(path)
        loaded = load_profile(path)
    assert loaded == cheaper
    report2 = snncost.evaluate(model, profile=loaded, data=x, name="vgg-tiny")
    print(f"## {loaded.name} (built in Python, written to YAML and read back)\n")
    print(report2.summary())
    saving = 1 - report2.snn_total.energy_total_pj / report.snn_total.energy_total_pj
    print(f"halving the synaptic-op energy saves {100 * saving:.1f} % of the SNN's energy\n")

    # 3. invalid profiles fail with the field at fault
    broken = chip.to_dict()
    broken["synaptic_op_pj"]["value"] = -1.0
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "broken.yaml"
        bad.write_text(yaml.safe_dump(broken), encoding="utf-8")
        try:
            load_profile(bad)
        except ProfileError as exc:
            print(f"invalid profile rejected: {exc}")


if __name__ == "__main__":
    main()
