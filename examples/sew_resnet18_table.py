"""Per-layer cost table of SpikingJelly's SEW-ResNet-18 (CIFAR stem) on the 45nm profile.

The network is SpikingJelly's own ``sew_resnet18`` (ADD connections, IF
neurons with soft reset, multi-step), with the CIFAR stem (3x3 conv, no max
pool), passed to ``snncost.evaluate`` as it is: snncost traces it into a
LayerGraph DAG and replays it event by event. Weights are SpikingJelly's
default initialisation (untrained) and every neuron threshold is set by
snncost's threshold balancing (``trainers.convert``'s rule: the 99.9th
percentile of each layer's input current on a few images), so the activity
is that of a converted network, not a trained one.

    python examples/sew_resnet18_table.py [--images 16] [--timesteps 4]

Inputs: the first images of the CIFAR-10 test split when ``../shared/data``
(or ``SNNCOST_DATA``) holds it, else generated CIFAR-shaped images.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import snncost


def sew_resnet18_cifar(timesteps: int) -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.model import sew_resnet

    torch.manual_seed(0)
    net = sew_resnet.sew_resnet18(cnf="ADD", spiking_neuron=neuron.IFNode, num_classes=10, v_reset=None)
    net.conv1 = layer.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    functional.set_step_mode(net, "m")
    return net.eval()


def balance_thresholds(net: nn.Module, x: torch.Tensor, timesteps: int, q: float = 99.9) -> None:
    """Each neuron's threshold: the ``q``-th percentile of its input current, in forward order."""
    from spikingjelly.activation_based import functional, neuron

    nodes = [m for m in net.modules() if isinstance(m, neuron.BaseNode)]
    for node in nodes:
        seen: list[torch.Tensor] = []
        hook = node.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0].detach().flatten()))
        functional.reset_net(net)
        with torch.no_grad():
            net(x.unsqueeze(0).repeat(timesteps, *([1] * x.dim())))
        hook.remove()
        values = torch.cat(seen)
        node.v_threshold = max(float(torch.quantile(values[values > 0][:2_000_000], q / 100)), 1e-3)
    functional.reset_net(net)


def cifar_images(n: int) -> torch.Tensor:
    try:
        from trainers.config import DataConfig
        from trainers.data import load_data

        data = load_data(DataConfig(name="cifar10", test_subset=n))
        x = data.test.images[:n].float() / 255.0
        mean = torch.tensor(data.mean).view(1, 3, 1, 1)
        std = torch.tensor(data.std).view(1, 3, 1, 1)
        return (x - mean) / std
    except Exception as exc:  # no CIFAR-10 here: generated images of the same shape
        print(f"(CIFAR-10 not available: {exc}; using generated images)")
        return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--timesteps", type=int, default=4)
    args = ap.parse_args()
    x = cifar_images(args.images)
    net = sew_resnet18_cifar(args.timesteps)
    balance_thresholds(net, x[:4], args.timesteps)
    report = snncost.evaluate(net, "45nm", data=x, timesteps=args.timesteps, name="SEW-ResNet-18 (SpikingJelly)")
    print(report.to_markdown())


if __name__ == "__main__":
    main()
