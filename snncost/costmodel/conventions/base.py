"""What a published energy convention returns: per-layer energies of one network, per inference.

Each convention is a module of :mod:`snncost.costmodel.conventions` with
``NAME`` (the ``cost_model=`` name), ``SOURCE`` (the citation) and
``price(counts: RunCounts, **params) -> list[LayerEnergy]``. It reads only
the replay's events and the layers' shapes (:class:`~snncost.sim.counts.RunCounts`),
exactly as the source's own tool would count them, and returns pJ per
inference (events summed over the batch, divided by ``batch_size``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerEnergy:
    """One layer's energy under a convention, pJ per inference, split the way the source splits it."""

    name: str
    synaptic_pj: float = 0.0  # ACs and MACs (the "compute" of op-count conventions)
    neuron_pj: float = 0.0  # neuron updates (leak, threshold, reset)
    memory_pj: float = 0.0  # data movement: parameters, potentials, inputs, outputs
    addressing_pj: float = 0.0  # address computation (Lemaire-style conventions)

    @property
    def total_pj(self) -> float:
        return self.synaptic_pj + self.neuron_pj + self.memory_pj + self.addressing_pj
