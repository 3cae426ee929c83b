"""The spiking vocabulary shared by the trainer and the simulator.

Pure functions live in :mod:`snncost.nn.functional` and
:mod:`snncost.nn.surrogate`; modules (LIF, encoders, containers) wrap them.
:mod:`snncost.nn.quant` holds the k-bit weight quantizer and the quantized
conv/linear layers.
"""

from snncost.nn.encoders import DirectEncoder, Encoder, PoissonEncoder
from snncost.nn.functional import lif_multistep, lif_step
from snncost.nn.layers import OutputIntegrator, SpikingSequential, TemporalDropout, TemporalModule
from snncost.nn.neurons import LIF
from snncost.nn.quant import (
    QuantConv2d,
    QuantLinear,
    apply_quantization,
    dequantize_model,
    model_quantization,
    quantize_model,
    quantize_tensor,
)
from snncost.nn.surrogate import SURROGATES, Surrogate, spike_fn

__all__ = [
    "LIF",
    "SURROGATES",
    "DirectEncoder",
    "Encoder",
    "OutputIntegrator",
    "PoissonEncoder",
    "QuantConv2d",
    "QuantLinear",
    "SpikingSequential",
    "Surrogate",
    "TemporalDropout",
    "TemporalModule",
    "apply_quantization",
    "dequantize_model",
    "lif_multistep",
    "lif_step",
    "model_quantization",
    "quantize_model",
    "quantize_tensor",
    "spike_fn",
]
