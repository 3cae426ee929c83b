"""One entry point for every network family: build, rebuild from a checkpoint, name by arch.

A rule table (:data:`FAMILIES`) maps each spec class to its family's
builders, so the trainer, checkpoints and tools call
``build_ann(spec)``/``build_snn(spec, neurons)`` without knowing whether the
spec is a VGG or a ResNet; a new family is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

import snncost.nn as sn
from snncost.models import resnet, vgg
from snncost.models.common import NeuronConfig, transfer_weights
from snncost.models.resnet import ResNetSpec
from snncost.models.vgg import VGGSpec

Spec = VGGSpec | ResNetSpec

#: spec class -> (family name in checkpoints, build_ann, build_snn)
FAMILIES: dict[type, tuple[str, Callable[..., nn.Module], Callable[..., nn.Module]]] = {
    VGGSpec: ("vgg", vgg.build_ann, vgg.build_snn),
    ResNetSpec: (resnet.FAMILY, resnet.build_ann, resnet.build_snn),
}

#: every named architecture, to its spec class
ARCHS: dict[str, type] = {
    **dict.fromkeys(vgg.CFGS, VGGSpec),
    **dict.fromkeys(resnet.ARCHS, ResNetSpec),
}


def _family(spec: Any) -> tuple[str, Callable[..., nn.Module], Callable[..., nn.Module]]:
    try:
        return FAMILIES[type(spec)]
    except KeyError:
        raise TypeError(
            f"spec of type {type(spec).__name__} is not a network family; use one of "
            f"{', '.join(c.__name__ for c in FAMILIES)}"
        ) from None


def build_ann(spec: Spec) -> nn.Module:
    """The ANN form (ReLU) of ``spec``: the conversion source and the cost baseline."""
    return _family(spec)[1](spec)


def build_snn(spec: Spec, neurons: NeuronConfig | None = None) -> sn.SpikingSequential:
    """The SNN form (LIF, encoder, mean-over-T read-out) of ``spec``, same weight names as the ANN."""
    return _family(spec)[2](spec, neurons)


def spec_from_arch(arch: str, **kwargs: Any) -> Spec:
    """The spec of a named architecture (``vgg9``, ``resnet19``, ``sew-resnet18`` ...)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch].from_arch(arch, **kwargs)


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a spec from ``spec.to_dict()``; a dict without ``family`` is a VGG (older checkpoints)."""
    family = data.get("family", "vgg")
    for cls, (name, _, _) in FAMILIES.items():
        if name == family:
            return cls.from_dict(data)
    raise ValueError(
        f"unknown network family {family!r}; known: {', '.join(f[0] for f in FAMILIES.values())}"
    )


def spiking_twin(ann: nn.Module) -> sn.SpikingSequential:
    """The SNN form of a zoo ANN (its ``.spec``) holding the ANN's weights, at ``T = 1``.

    What costing an ANN that is not a chain needs: the tracer reads spiking
    networks, and :func:`snncost.sim.ann_counts` runs a graph as an ANN
    (ReLU for every LIF), so the twin's graph is the ANN's graph. Raises
    ``ValueError`` for a model that the zoo did not build.
    """
    spec = getattr(ann, "spec", None)
    if spec is None or type(spec) not in FAMILIES:
        raise ValueError(
            f"{type(ann).__name__} carries no snncost.models spec (.spec): only a zoo network's "
            "spiking twin can be built"
        )
    twin = build_snn(spec, NeuronConfig(timesteps=1))
    transfer_weights(ann, twin)
    return twin.eval()
