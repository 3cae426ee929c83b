"""The VGG9 CIFAR-10 SNN checkpoint of the full-test-set benchmark (docs/benchmarks.md).

An untrained network with random thresholds fires unrealistically (nearly
everywhere or nowhere), which would make a cost benchmark meaningless. Training
VGG9 takes hours on the CPU, so this builds the closest cheap stand-in: the
He-initialised (untrained) ANN's weights, converted to an SNN by layer-wise
threshold balancing on a few training batches (``trainers.convert``, the
99.9th-percentile rule of the trainer's ``convert`` stage). Each layer then
fires at the rate a converted network fires at; the predictions are chance.
The training split's channel mean/std are stored in the checkpoint, so
``python -m snncost evaluate CKPT --data <folder>`` standardises the images
as the trainer does.

    python bench/vgg9_balanced_checkpoint.py --out .cache/vgg9_t5_balanced.pt

prints the checkpoint path, the test image folder it unpacked (under
``data.cache_dir``, which git ignores) and the spike rate of each layer.
"""

from __future__ import annotations

import argparse

import torch

from snncost.checkpoint import save_model
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn, spiking_layers
from trainers.config import DataConfig
from trainers.convert import convert
from trainers.data import BatchLoader, load_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".cache/vgg9_t5_balanced.pt")
    parser.add_argument("--root", default=None, help="where cifar10-jpeg.tar.gz is (default: the usual places)")
    parser.add_argument("--timesteps", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4, help="training batches of 64 for balancing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_data(DataConfig(name="cifar10", root=args.root))
    spec = VGGSpec.from_arch("vgg9", in_channels=3, image_size=32, num_classes=10, dropout=0.0)
    torch.manual_seed(args.seed)
    ann = build_ann(spec).eval()
    neurons = NeuronConfig(timesteps=args.timesteps, encoding="direct")
    snn = build_snn(spec, neurons).eval()
    loader = BatchLoader(data.train, 64, data.mean, data.std, seed=args.seed)
    thresholds = convert(ann, snn, loader, batches=args.batches)
    save_model(args.out, snn, spec, "snn", neurons, mean=list(data.mean), std=list(data.std))
    print(f"wrote {args.out}: thresholds {[round(t, 4) for t in thresholds]}")

    # spike rate of each LIF layer on 256 test images (spikes per neuron per step)
    x, _ = next(iter(BatchLoader(data.test, 256, data.mean, data.std)))
    counts: dict[str, float] = {}
    hooks = [
        lif.register_forward_hook(lambda _m, _i, out, n=name: counts.__setitem__(n, float(out.mean())))
        for name, lif in spiking_layers(snn)
    ]
    with torch.no_grad():
        snn(x)
    for h in hooks:
        h.remove()
    print("spike rate per layer:", {n: round(r, 4) for n, r in counts.items()})


if __name__ == "__main__":
    main()
