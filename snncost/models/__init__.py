"""Network definitions shared by the trainer, the simulator and checkpoint loading."""

from snncost.models.vgg import (
    CFGS,
    NeuronConfig,
    VGGSpec,
    build_ann,
    build_snn,
    spiking_layers,
    transfer_weights,
    weight_layers,
)

__all__ = [
    "CFGS",
    "NeuronConfig",
    "VGGSpec",
    "build_ann",
    "build_snn",
    "spiking_layers",
    "transfer_weights",
    "weight_layers",
]
