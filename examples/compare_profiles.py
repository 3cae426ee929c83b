"""One SNN, every built-in hardware profile, one table.

Usage::

    python examples/compare_profiles.py               # a small digits-shaped SNN
    python examples/compare_profiles.py run/snn.pt    # or your checkpoint
    python examples/compare_profiles.py --format latex

The replay (spike counts) is done once; each profile then prices the same
counts. Chips that cannot do an operation (Loihi and TrueNorth have no MAC
datapath for the analog first layer, nor for the ANN baseline) get it priced
on the 45 nm fallback, and the table's notes say so. Without a checkpoint the
model is a randomly initialised VGG-like SNN: its spike counts are real
replay counts, but its accuracy is chance; pass a trained checkpoint for
meaningful accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits

try:
    import snncost
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncost
from snncost.models import NeuronConfig, VGGSpec, build_snn


def digits_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.images[-n:], dtype=torch.float32).unsqueeze(1) / 16.0
    return (x - 0.5) / 0.5, torch.tensor(d.target[-n:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="an SNN checkpoint (default: a small SNN)")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    args = parser.parse_args()

    if args.checkpoint:
        model = args.checkpoint
    else:
        torch.manual_seed(0)
        spec = VGGSpec.from_arch("vgg-tiny", in_channels=1, image_size=8)
        model = build_snn(spec, NeuronConfig(timesteps=16))

    comparison = snncost.compare_profiles(
        model,
        snncost.available_profiles(),
        data=digits_batch(args.samples),
        timesteps=args.timesteps,
        max_samples=args.samples,
        name=None if args.checkpoint else "vgg-tiny (untrained)",
    )
    if args.format == "latex":
        print(comparison.to_latex())
    elif args.format == "csv":
        print(comparison.to_csv(), end="")
    else:
        print(comparison.to_markdown())


if __name__ == "__main__":
    main()
