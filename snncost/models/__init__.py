"""Network definitions shared by the trainer, the simulator and checkpoint loading.

Two families, each a spec (networks as data) built into an ANN and an SNN
form with one weight layout: the VGGs (:mod:`snncost.models.vgg`) and the
residual networks, spiking ResNet-19 and SEW-ResNet-18
(:mod:`snncost.models.resnet`). :func:`build_ann`/:func:`build_snn` take
either spec (:mod:`snncost.models.zoo`).
"""

from snncost.models.common import (
    ChannelGroup,
    NeuronConfig,
    norm_layers,
    spiking_layers,
    transfer_weights,
    weight_layers,
)
from snncost.models.resnet import ResNetSpec
from snncost.models.vgg import CFGS, VGGSpec
from snncost.models.zoo import ARCHS, Spec, build_ann, build_snn, spec_from_arch, spec_from_dict

__all__ = [
    "ARCHS",
    "CFGS",
    "ChannelGroup",
    "NeuronConfig",
    "ResNetSpec",
    "Spec",
    "VGGSpec",
    "build_ann",
    "build_snn",
    "norm_layers",
    "spec_from_arch",
    "spec_from_dict",
    "spiking_layers",
    "transfer_weights",
    "weight_layers",
]
