"""A config-driven VGG family in ANN and SNN form with one weight layout.

Modelled on torchvision's ``models/vgg.py``: a network is a list of
conv widths and pooling markers (``"P"``) plus the hidden widths of the
classifier. Both forms are built by the same function, so ``features.N`` and
``classifier.N`` name the same conv/linear layer in the ANN (ReLU) and the
SNN (LIF), and weights move between them by key (:func:`transfer_weights`).

Spatial pruning shrinks a network by editing the widths in its
:class:`VGGSpec` and building it again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Literal

from torch import nn

import snncost.nn as sn
from snncost.models.common import (  # noqa: F401 - re-exported: vgg was their home
    ChannelGroup,
    NeuronConfig,
    spiking_layers,
    transfer_weights,
    weight_layers,
)

Width = int | Literal["P"]

# Conv widths and pools ("P") per architecture, and the classifier's hidden
# widths. vgg5/9/11 follow the CIFAR VGGs of the SNN literature (DIET-SNN,
# Chowdhury et al. 2021); vgg11/16 use torchvision's conv stacks.
CFGS: dict[str, tuple[list[Width], list[int]]] = {
    "vgg5": ([64, "P", 128, 128, "P"], [1024]),
    "vgg9": ([64, 64, "P", 128, 128, "P", 256, 256, 256, "P"], [1024]),
    "vgg11": ([64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"], [4096, 4096]),
    "vgg16": (
        [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"],
        [4096, 4096],
    ),
    # the small built-in default for 8x8 digits
    "vgg-tiny": ([16, 32, "P", 32, 32, "P"], [64]),
}


@dataclass(frozen=True)
class VGGSpec:
    """Everything needed to rebuild a VGG: saved in every checkpoint.

    ``features``: conv output widths with ``"P"`` for a 2x2 pooling;
    ``classifier``: hidden widths of the fully connected part (the output
    layer with ``num_classes`` units is added).
    """

    features: list[Width]
    classifier: list[int]
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    pool: Literal["avg", "max"] = "avg"
    bias: bool = False
    dropout: float = 0.2
    kernel_size: int = 3

    def __post_init__(self) -> None:
        for i, w in enumerate(self.features):
            if w != "P" and not (isinstance(w, int) and w > 0):
                raise ValueError(f"features[{i}] = {w!r}: must be a positive int or 'P'")
        for i, w in enumerate(self.classifier):
            if not (isinstance(w, int) and w > 0):
                raise ValueError(f"classifier[{i}] = {w!r}: must be a positive int")
        if self.pool not in ("avg", "max"):
            raise ValueError(f"pool = {self.pool!r}: choose 'avg' or 'max'")
        if self.feature_map_size() < 1:
            raise ValueError(
                f"{self.features.count('P')} poolings shrink a {self.image_size}px input below 1px"
            )

    @classmethod
    def from_arch(cls, arch: str, **kwargs) -> VGGSpec:
        if arch not in CFGS:
            raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(CFGS)} or give a custom cfg")
        features, classifier = CFGS[arch]
        return cls(features=list(features), classifier=list(classifier), **kwargs)

    def feature_map_size(self) -> int:
        return self.image_size // (2 ** self.features.count("P"))

    def widths(self) -> list[int]:
        """Output widths of every weight layer (convs, hidden linears, output)."""
        return [w for w in self.features if w != "P"] + list(self.classifier) + [self.num_classes]

    def with_widths(self, widths: list[int]) -> VGGSpec:
        """The same network with new conv/hidden widths (the output width is kept)."""
        n_conv = len([w for w in self.features if w != "P"])
        n_hidden = len(self.classifier)
        if len(widths) not in (n_conv + n_hidden, n_conv + n_hidden + 1):
            raise ValueError(f"expected {n_conv + n_hidden} widths, got {len(widths)}")
        it = iter(widths)
        features = [w if w == "P" else int(next(it)) for w in self.features]
        classifier = [int(next(it)) for _ in self.classifier]
        return replace(self, features=features, classifier=classifier)

    def channel_groups(self) -> list[ChannelGroup]:
        """One group per conv and hidden linear (a chain ties nothing), in :meth:`widths` order.

        Module names follow :func:`_layers`: ``features.i`` (conv), ``features.i+1``
        (its ReLU/LIF), ``classifier.0`` the flatten, then linear, activation
        and (with ``dropout > 0``) dropout per hidden width.
        """
        convs: list[tuple[str, str, int]] = []  # (weight layer, activation, width)
        index = 0
        for w in self.features:
            if w == "P":
                index += 1
            else:
                convs.append((f"features.{index}", f"features.{index + 1}", w))
                index += 2
        hidden: list[tuple[str, str, int]] = []
        index = 1
        for w in self.classifier:
            hidden.append((f"classifier.{index}", f"classifier.{index + 1}", w))
            index += 3 if self.dropout > 0 else 2
        layers = convs + hidden
        consumers = [layer for layer, _, _ in layers[1:]] + [f"classifier.{index}"]
        return [
            ChannelGroup((act,), (layer,), (consumer,), w, "conv" if i < len(convs) else "linear")
            for i, ((layer, act, w), consumer) in enumerate(zip(layers, consumers, strict=True))
        ]

    def cost(self) -> tuple[int, int]:
        """``(parameters, dense MACs per sample)`` of the conv/linear layers this spec builds.

        Stride-1 convs with ``k // 2`` padding and 2x2 pooling, as :func:`build_ann` builds.
        """
        k = self.kernel_size
        size = self.image_size
        channels = self.in_channels
        params = macs = 0
        for w in self.features:
            if w == "P":
                size //= 2
                continue
            size = size + 2 * (k // 2) - k + 1
            weights = channels * w * k * k
            params += weights + (w if self.bias else 0)
            macs += weights * size * size
            channels = w
        width = channels * self.feature_map_size() ** 2
        for w in [*self.classifier, self.num_classes]:
            params += width * w + (w if self.bias else 0)
            macs += width * w
            width = w
        return params, macs

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VGGSpec:
        return cls(**data)


def _layers(spec: VGGSpec, neurons: NeuronConfig | None) -> tuple[list[nn.Module], list[nn.Module]]:
    spiking = neurons is not None

    def act() -> nn.Module:
        return neurons.make_neuron() if spiking else nn.ReLU(inplace=False)

    def pool() -> nn.Module:
        return nn.AvgPool2d(2) if spec.pool == "avg" else nn.MaxPool2d(2)

    def drop() -> nn.Module:
        return sn.TemporalDropout(spec.dropout) if spiking else nn.Dropout(spec.dropout)

    features: list[nn.Module] = []
    channels = spec.in_channels
    for w in spec.features:
        if w == "P":
            features.append(pool())
        else:
            k = spec.kernel_size
            features += [nn.Conv2d(channels, w, k, padding=k // 2, bias=spec.bias), act()]
            channels = w
    classifier: list[nn.Module] = [nn.Flatten()]
    width = channels * spec.feature_map_size() ** 2
    for w in spec.classifier:
        classifier += [nn.Linear(width, w, bias=spec.bias), act()]
        if spec.dropout > 0:
            classifier.append(drop())
        width = w
    classifier.append(nn.Linear(width, spec.num_classes, bias=spec.bias))
    return features, classifier


def build_ann(spec: VGGSpec) -> nn.Sequential:
    """The ANN form: ``features`` (conv, ReLU, pool) then ``classifier``."""
    features, classifier = _layers(spec, None)
    model = nn.Sequential(
        OrderedDict(features=nn.Sequential(*features), classifier=nn.Sequential(*classifier))
    )
    _init_weights(model)
    _describe(model, spec)
    return model


def build_snn(spec: VGGSpec, neurons: NeuronConfig | None = None) -> sn.SpikingSequential:
    """The SNN form: ``encoder``, ``features``, ``classifier``, ``output``.

    Same keys for every conv/linear weight as :func:`build_ann`; ReLUs become
    :class:`~snncost.nn.LIF` layers and the output is the mean over ``T``.
    """
    neurons = neurons or NeuronConfig()
    features, classifier = _layers(spec, neurons)
    model = sn.SpikingSequential(
        OrderedDict(
            encoder=neurons.make_encoder(),
            features=sn.SpikingSequential(*features),
            classifier=sn.SpikingSequential(*classifier),
            output=sn.OutputIntegrator(),
        )
    )
    _init_weights(model)
    _describe(model, spec)
    model.neurons = neurons
    return model


def _describe(model: nn.Module, spec: VGGSpec) -> None:
    """Attach the spec and per-sample input shape, so tools need no side channel."""
    model.spec = spec
    model.input_shape = (spec.in_channels, spec.image_size, spec.image_size)


def _init_weights(model: nn.Module) -> None:
    """He init for convs (no batch norm here); PyTorch's default for linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
