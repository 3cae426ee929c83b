"""What every network family of the zoo shares: neuron settings, weight transfer, pruning groups.

The VGG (:mod:`snncost.models.vgg`) and ResNet (:mod:`snncost.models.resnet`)
families build an ANN form and an SNN form with the *same module names*
for every conv, linear and BatchNorm, so ANN weights load into the SNN by
name (:func:`transfer_weights`) and one pruning plan fits both forms
(:class:`ChannelGroup`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

import snncost.nn as sn

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class NeuronConfig:
    """How the SNN form's neurons and input are set up."""

    timesteps: int = 25
    encoding: Literal["direct", "poisson"] = "direct"
    threshold: float = 1.0
    leak: float = 1.0
    learn_threshold: bool = True
    learn_leak: bool = True
    surrogate: str = "piecewise_linear"
    slope: float | None = None
    detach_reset: bool = True

    def make_neuron(self) -> sn.LIF:
        return sn.LIF(
            threshold=self.threshold,
            leak=self.leak,
            learn_threshold=self.learn_threshold,
            learn_leak=self.learn_leak,
            surrogate=self.surrogate,
            slope=self.slope,
            detach_reset=self.detach_reset,
        )

    def make_encoder(self) -> sn.Encoder:
        if self.encoding == "direct":
            return sn.DirectEncoder(self.timesteps)
        if self.encoding == "poisson":
            return sn.PoissonEncoder(self.timesteps)
        raise ValueError(f"encoding = {self.encoding!r}: choose 'direct' or 'poisson'")


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that spatial pruning must keep or drop together, and every layer they touch.

    In a chain (VGG) each spiking layer is its own group. In a residual
    network a shortcut adds two tensors channel by channel (SEW-ResNet:
    the block's output spikes and its input spikes; spiking ResNet-19: the
    second BatchNorm's output current and the shortcut's current), so
    channel ``c`` of both must survive or go together: every activation
    along a chain of identity shortcuts belongs to one group.

    ``sites``: the activation modules (LIF in the SNN, ReLU in the ANN, same
    names) whose *input* carries these channels: where the PCA statistics
    are taken. ``producers``: conv/linear layers whose output channels are
    the group's; ``norms``: BatchNorm layers over them; ``consumers``:
    conv/linear layers whose input channels are the group's (a linear
    consumer of a conv group reads ``in_features // width`` channel-major
    columns per channel, the flatten of ``[C, H, W]``). ``kind`` is ``conv``
    or ``linear``, by the producers.
    """

    sites: tuple[str, ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    width: int
    kind: Literal["conv", "linear"]
    norms: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The group's first site: how plans and overrides refer to it."""
        return self.sites[0]

    def members(self) -> tuple[str, ...]:
        """Every module name that identifies the group (sites, producers, norms)."""
        return (*self.sites, *self.producers, *self.norms)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every conv/linear layer, in module (registration) order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every BatchNorm layer, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _NORMS)]


def spiking_layers(model: nn.Module) -> list[tuple[str, sn.LIF]]:
    """``(name, LIF)`` of every spiking layer, in module order (a topological order in the zoo)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, sn.LIF)]


def transfer_weights(src: nn.Module, dst: nn.Module) -> list[str]:
    """Copy every conv/linear weight (and bias) and every BatchNorm from ``src`` into ``dst`` by name.

    Works ANN->SNN and SNN->ANN. BatchNorm layers bring their affine
    parameters and running statistics (what inference folds into the conv).
    Raises ``ValueError`` naming the first layer whose name or shape does
    not match. Returns the names copied.
    """
    copied: list[str] = []
    for lister, attrs in _TRANSFERRED:
        src_layers, dst_layers = dict(lister(src)), dict(lister(dst))
        if src_layers.keys() != dst_layers.keys():
            missing = sorted(set(src_layers) ^ set(dst_layers))
            raise ValueError(f"weight layers differ between models: {missing}")
        with torch.no_grad():
            for name, s in src_layers.items():
                for attr in attrs:
                    _copy_tensor(
                        name, attr, getattr(s, attr, None), getattr(dst_layers[name], attr, None)
                    )
        copied += list(src_layers)
    return copied


def _copy_tensor(name: str, attr: str, a: torch.Tensor | None, b: torch.Tensor | None) -> None:
    if (a is None) != (b is None):
        raise ValueError(f"{name}.{attr}: present in one model only")
    if a is None or b is None:
        return
    if a.shape != b.shape:
        raise ValueError(f"{name}.{attr}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
    b.copy_(a)


#: which layers move between forms, and which of their tensors
_TRANSFERRED = (
    (weight_layers, ("weight", "bias")),
    (norm_layers, ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")),
)
