"""Print the paper-style energy table (LaTeX + Markdown) of an SNN.

Usage::

    python examples/paper_energy_table.py                 # trains a tiny digits SNN (seconds)
    python examples/paper_energy_table.py run/snn.pt      # or costs your checkpoint
    python examples/paper_energy_table.py --samples 128 --timesteps 16 --plot energy.png

Without a checkpoint the script trains a small VGG-like ANN on scikit-learn's
8x8 digits for a few epochs, converts it to an IF-neuron SNN (weights copied,
each layer's threshold set to a high percentile of its ANN activations), and
costs the SNN on the held-out digits with the 45 nm profile: ACs x 0.9 pJ +
MACs x 4.6 pJ, as in Chowdhury et al. (2021), plus neuron updates and memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

try:
    import snncost
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncost
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn, transfer_weights
from snncost.nn import LIF


def digits(seed: int = 0):
    """Digits as [N, 1, 8, 8] tensors, x/16 then standardised with the train statistics."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    tr, te = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=d.target, random_state=seed
    )
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return (x[tr], y[tr]), (x[te], y[te])


def train_ann(spec: VGGSpec, train, epochs: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    ann = build_ann(spec)
    opt = torch.optim.Adam(ann.parameters(), lr=3e-3)
    x, y = train
    for _ in range(epochs):
        ann.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(ann(x[idx]), y[idx]).backward()
            opt.step()
    return ann.eval()


@torch.no_grad()
def convert(ann: nn.Module, spec: VGGSpec, x: torch.Tensor, timesteps: int) -> nn.Module:
    """ANN -> IF SNN: copy weights, thresholds from the 99.9th percentile of each ReLU's output."""
    snn = build_snn(spec, NeuronConfig(timesteps=timesteps, leak=1.0))
    transfer_weights(ann, snn)
    acts = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: acts.append(out.flatten()))
        for m in ann.modules()
        if isinstance(m, nn.ReLU)
    ]
    ann(x)
    for h in hooks:
        h.remove()
    # Spikes carry 1, not the previous layer's scale lambda_{l-1}, so layer l
    # fires at lambda_l / lambda_{l-1} (Rueckauer et al. 2017, threshold form).
    lifs = [m for m in snn.modules() if isinstance(m, LIF)]
    previous = 1.0  # direct encoding: the first layer sees the analog image
    for lif, a in zip(lifs, acts, strict=True):
        a = a[a > 0]
        scale = float(torch.quantile(a[:100_000], 0.999)) if a.numel() else 1.0
        lif.threshold.fill_(max(scale / previous, 1e-3))
        previous = scale
    return snn.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="an SNN checkpoint (default: train one)")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--profile", default="45nm")
    parser.add_argument("--epochs", type=int, default=5, help="ANN training epochs (no checkpoint)")
    parser.add_argument("--plot", default=None, help="save the per-layer energy figure here")
    args = parser.parse_args()

    train, test = digits()
    if args.checkpoint:
        model, name = args.checkpoint, None
    else:
        t0 = time.time()
        spec = VGGSpec.from_arch("vgg-tiny", in_channels=1, image_size=8, dropout=0.0)
        ann = train_ann(spec, train, epochs=args.epochs)
        ann_acc = (ann(test[0]).argmax(1) == test[1]).float().mean().item()
        model = convert(ann, spec, train[0], timesteps=args.timesteps or 24)
        name = "vgg-tiny (digits)"
        print(f"% trained + converted in {time.time() - t0:.1f} s, ANN test accuracy {ann_acc:.3f}")

    report = snncost.evaluate(
        model,
        profile=args.profile,
        data=test,
        timesteps=args.timesteps,
        max_samples=args.samples,
        name=name,
    )
    print(report.to_latex())
    print(report.to_markdown())
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
