"""What a replay counts: the contract between the simulator and the cost model.

The simulator (event-driven SNN replay) and the ANN baseline both produce a
:class:`RunCounts`: one :class:`LayerCounts` per weight layer (conv or
linear) in forward order. Counts are per timestep (arrays of length ``T``)
and summed over the batch; divide by ``batch_size`` for "per inference".
The cost model (:mod:`snncost.report`) turns them into energy and latency
with a :class:`~snncost.hardware.HardwareProfile`; it never looks at
weights or spikes, only at these numbers.

Memory-traffic conventions (documented in docs/simulator.md):
- every synaptic accumulate (AC) or MAC reads one weight (``weight_bits``),
  and reads and writes one membrane value (``state_bits``): no on-chip reuse
  is assumed, which is the conservative, architecture-neutral choice;
- every neuron update reads and writes its membrane once;
- every output spike writes one address event (``ceil(log2(neurons))`` bits);
- the ANN reads its input activations and writes its output activations at
  ``activation_bits`` each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass
class LayerCounts:
    """Per-timestep operation and traffic counts of one weight layer.

    ``name`` is the module path of the conv/linear layer (e.g. ``features.0``);
    ``neuron`` says what integrates its output (``lif`` spiking layer,
    ``relu`` in an ANN, ``output`` for the non-spiking read-out).
    Every array has shape ``[T]`` (``T = 1`` for an ANN) and is summed over
    the batch.
    """

    name: str
    kind: Literal["conv", "linear"]
    neuron: Literal["lif", "relu", "output"]
    input_shape: tuple[int, ...]  # per sample, e.g. (C, H, W)
    output_shape: tuple[int, ...]
    weight_count: int
    weight_bits: int
    number_format: Literal["int", "float"]
    state_bits: int  # membrane (SNN) or activation (ANN) width
    input_events: np.ndarray  # nonzero inputs that arrived (spike events); dense analog input: 0
    synaptic_ops: np.ndarray  # accumulates actually performed (AC)
    macs: np.ndarray  # multiply-accumulates (dense analog input, or every op of an ANN)
    neuron_updates: np.ndarray  # membrane/activation updates
    output_spikes: np.ndarray  # spikes emitted (0 for ``output``/``relu``)
    weight_bits_read: np.ndarray
    state_bits_read: np.ndarray
    state_bits_written: np.ndarray
    spike_bits_written: np.ndarray
    leak: float = 1.0  # 1.0 = IF (no leak multiply needed)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def timesteps(self) -> int:
        return len(self.synaptic_ops)


@dataclass
class RunCounts:
    """Counts of one replay (SNN) or one dense pass (ANN) over ``batch_size`` inputs."""

    model: Literal["snn", "ann"]
    timesteps: int
    batch_size: int
    layers: list[LayerCounts]
    logits: np.ndarray | None = None  # [batch, classes] when produced by a replay
    labels: np.ndarray | None = None
    # spike disagreements with the PyTorch forward pass, when verified
    spike_mismatches: int | None = None
    spikes_compared: int | None = None
    extra: dict = field(default_factory=dict)

    def per_inference(self, attr: str) -> dict[str, float]:
        """Total of ``attr`` over time, per input, for every layer."""
        return {lc.name: float(getattr(lc, attr).sum()) / self.batch_size for lc in self.layers}
