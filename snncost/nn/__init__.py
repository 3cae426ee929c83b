"""The spiking vocabulary shared by the trainer and the simulator.

Pure functions live in :mod:`snncost.nn.functional` (the neuron kinds: charge
and reset rules, one step, the fused multi-step BPTT) and
:mod:`snncost.nn.surrogate`; modules (LIF, IF, TauLIF, ParametricLIF,
encoders, containers) wrap them.
:mod:`snncost.nn.quant` holds the k-bit weight quantizer and the quantized
conv/linear layers.
"""

from snncost.nn.encoders import DirectEncoder, Encoder, PoissonEncoder
from snncost.nn.functional import (
    CHARGES,
    RESETS,
    NeuronKind,
    lif_multistep,
    lif_step,
    neuron_backend,
    neuron_forward,
    neuron_multistep,
    neuron_step,
    set_neuron_backend,
)
from snncost.nn.layers import OutputIntegrator, SpikingSequential, TemporalDropout, TemporalModule
from snncost.nn.neurons import IF, LIF, ParametricLIF, TauLIF
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
    "CHARGES",
    "IF",
    "LIF",
    "RESETS",
    "SURROGATES",
    "DirectEncoder",
    "Encoder",
    "NeuronKind",
    "OutputIntegrator",
    "ParametricLIF",
    "PoissonEncoder",
    "QuantConv2d",
    "QuantLinear",
    "SpikingSequential",
    "Surrogate",
    "TauLIF",
    "TemporalDropout",
    "TemporalModule",
    "apply_quantization",
    "dequantize_model",
    "lif_multistep",
    "lif_step",
    "model_quantization",
    "neuron_forward",
    "neuron_backend",
    "neuron_multistep",
    "neuron_step",
    "set_neuron_backend",
    "quantize_model",
    "quantize_tensor",
    "spike_fn",
]
