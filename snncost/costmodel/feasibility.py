"""Does the network fit the chip? Cores, chips and precision against a profile's ``limits``.

A neuromorphic chip holds every neuron and every synapse of the network at
once (weights resident in core SRAM), so capacity, not only energy, decides
whether a model can run on it. For each weight layer, with ``fan_in`` the
inputs of one neuron (``C x kh x kw`` for a conv, ``in_features`` for a
linear layer) and ``bits`` its weight width:

- cores by neurons: ``ceil(neurons / neurons_per_core)``;
- cores by synapse memory: ``ceil(neurons x fan_in x bits / 8 / synapse_memory_bytes_per_core)``
  (every neuron's synapses stored; no convolutional weight sharing, an upper estimate);
- the layer's cores are the larger of the two; chips ``ceil(cores / cores_per_chip)``.

Problems (the report lists them, the CLI prints them as warnings): float
weights on an integer-only chip, weights wider than ``max_weight_bits``, a
neuron whose fan-in exceeds ``fan_in_per_core``. The message says what the
model would need (e.g. quantize to the chip's width) and how many cores and
chips it would then take.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from snncost.hardware.profile import HardwareProfile
from snncost.sim.counts import LayerCounts, RunCounts


class LayerFit(BaseModel):
    """One layer's footprint on the chip."""

    model_config = ConfigDict(extra="forbid")

    name: str
    neurons: int
    fan_in: int
    synapse_bytes: int
    cores: int


class Feasibility(BaseModel):
    """Whether a network fits a chip, and what it needs."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    fits: bool
    cores: int
    chips: int | None  # None: the profile publishes no cores-per-chip limit
    weight_bits: int  # the widest weight the layers would store (after any requantization)
    layers: list[LayerFit]
    problems: list[str]

    def summary(self) -> str:
        """One line for a report header or a CLI warning."""
        chips = "" if self.chips is None else f" on {self.chips} chip{'s' * (self.chips != 1)}"
        if self.fits:
            return f"fits {self.profile}: {self.cores} cores{chips}"
        return f"does not fit {self.profile} as it is: " + "; ".join(self.problems)


def _fan_in(lc: LayerCounts) -> int:
    if lc.kind == "conv":
        return int(lc.input_shape[0]) * int(lc.kernel[0]) * int(lc.kernel[1])
    return lc.inputs


def check(counts: RunCounts, profile: HardwareProfile) -> Feasibility | None:
    """The network's fit on ``profile``; None when the profile publishes no limits."""
    limits = profile.limits
    if limits is None:
        return None
    problems: list[str] = []
    floats = [lc.name for lc in counts.layers if lc.number_format == "float"]
    widest = max(int(lc.weight_bits) for lc in counts.layers)
    bits = widest
    if limits.max_weight_bits is not None and (floats and limits.integer_weights_only or widest > limits.max_weight_bits):
        what = "fp32 weights" if floats else f"{widest}-bit weights"
        bits = limits.max_weight_bits
        problems.append(
            f"{what}, but {profile.name} stores at most {limits.max_weight_bits}-bit integer weights: "
            f"quantize first (snncost.nn.quantize_model(model, {limits.max_weight_bits}))"
        )
    elif floats and limits.integer_weights_only:
        problems.append(f"fp32 weights, but {profile.name} stores integer weights only: quantize first")
    layers = []
    for lc in counts.layers:
        fan_in = _fan_in(lc)
        n = lc.neurons
        layer_bits = min(int(lc.weight_bits), bits) if bits else int(lc.weight_bits)
        syn_bytes = math.ceil(n * fan_in * layer_bits / 8)
        cores = 1
        if limits.neurons_per_core:
            cores = max(cores, math.ceil(n / limits.neurons_per_core))
        if limits.synapse_memory_bytes_per_core:
            cores = max(cores, math.ceil(syn_bytes / limits.synapse_memory_bytes_per_core))
        if limits.fan_in_per_core and fan_in > limits.fan_in_per_core:
            problems.append(
                f"{lc.name}: a neuron has {fan_in} inputs, a {profile.name} core accepts "
                f"{limits.fan_in_per_core}: split its fan-in over several neurons"
            )
        layers.append(LayerFit(name=lc.name, neurons=n, fan_in=fan_in, synapse_bytes=syn_bytes, cores=cores))
    total = sum(f.cores for f in layers)
    chips = math.ceil(total / limits.cores_per_chip) if limits.cores_per_chip else None
    if problems:
        need = f"{total} cores" + ("" if chips is None else f" on {chips} chip{'s' * (chips != 1)}")
        problems.append(f"it would then need {need}")
    return Feasibility(profile=profile.name, fits=not problems, cores=total, chips=chips,
                       weight_bits=bits, layers=layers, problems=problems)  # fmt: skip


__all__ = ["Feasibility", "LayerFit", "check"]
