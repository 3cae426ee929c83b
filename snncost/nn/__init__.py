"""The spiking vocabulary shared by the trainer and the simulator.

Pure functions live in :mod:`snncost.nn.functional` and
:mod:`snncost.nn.surrogate`; modules (LIF, encoders, containers) wrap them.
"""

from snncost.nn.encoders import DirectEncoder, Encoder, PoissonEncoder
from snncost.nn.functional import lif_multistep, lif_step
from snncost.nn.layers import OutputIntegrator, SpikingSequential, TemporalDropout, TemporalModule
from snncost.nn.neurons import LIF
from snncost.nn.surrogate import SURROGATES, Surrogate, spike_fn

__all__ = [
    "LIF",
    "SURROGATES",
    "DirectEncoder",
    "Encoder",
    "OutputIntegrator",
    "PoissonEncoder",
    "SpikingSequential",
    "Surrogate",
    "TemporalDropout",
    "TemporalModule",
    "lif_multistep",
    "lif_step",
    "spike_fn",
]
