"""Break-even activity: the spike rate at which the SNN costs as much as its baseline.

An SNN's energy under any dataflow here is affine in its activity: ACs,
input events and output spikes scale together, while neuron updates, weight
and membrane tiles and the analog first layer do not. Pricing the same run
twice, once as measured (``E1``) and once with every event removed
(``E0``, the fixed cost), gives ``E(m) = E0 + m (E1 - E0)`` for activity
scaled by ``m``; the break-even multiplier is ``m* = (E_base - E0) / (E1 - E0)``.

It is reported on the scale of Dampfhoffer et al. (IEEE TETCI 2023), who
find SNNs competitive only below 0.15-1.38 **spikes per synapse per
inference**: ACs / synapses, where a layer's synapses are its real-tap
connections (the MACs of one dense pass), so a fully active input at every
step of ``T`` gives ``T`` spikes per synapse.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, ConfigDict

from snncost.sim.counts import RunCounts

REFERENCE = (
    "Dampfhoffer et al., IEEE TETCI 2023: SNNs compete with ANNs only below "
    "0.15-1.38 spikes per synapse per inference"
)


class BreakEvenRow(BaseModel):
    """Observed and break-even activity of one layer (or the network, ``name="network"``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    snn_energy_pj: float
    fixed_energy_pj: float  # the SNN's energy with no events at all
    baseline_energy_pj: float
    spikes_per_synapse: float | None  # ACs / synapses per inference (None: no event input)
    input_spike_rate: float | None  # input events / (inputs x T)
    break_even_multiplier: float | None  # activity scale at which SNN == baseline
    break_even_spikes_per_synapse: float | None
    break_even_spike_rate: float | None


class BreakEven(BaseModel):
    """Break-even activity against one baseline, per layer and for the whole network."""

    model_config = ConfigDict(extra="forbid")

    baseline: str
    energy: str = "total"  # which energy is compared (compute + memory)
    reference: str = REFERENCE
    network: BreakEvenRow
    layers: list[BreakEvenRow]

    def network_sentence(self) -> str:
        """One line: observed vs break-even spikes per synapse for the whole network."""
        n = self.network
        if n.spikes_per_synapse is None:
            return f"No event-driven layer: no break-even activity against {self.baseline}."
        if n.break_even_spikes_per_synapse is None:
            return f"The SNN's energy does not depend on its activity; no break-even against {self.baseline}."
        verdict = "below" if n.spikes_per_synapse < n.break_even_spikes_per_synapse else "above"
        return (
            f"The SNN runs at {n.spikes_per_synapse:.4g} spikes per synapse per inference; it matches "
            f"the {self.baseline} baseline's {self.energy} energy at {n.break_even_spikes_per_synapse:.4g} "
            f"(activity x{n.break_even_multiplier:.3g}), so it is {verdict} break-even. "
            f"For scale: {self.reference}."
        )


def silent(counts: RunCounts) -> RunCounts:
    """The same run with every event removed (no input events, ACs or spikes)."""
    layers = []
    for lc in counts.layers:
        zero = {f: np.zeros_like(getattr(lc, f)) for f in
                ("input_events", "synaptic_ops", "synaptic_ops_nonzero", "output_spikes")}  # fmt: skip
        if lc.active_neurons is not None and not lc.analog:
            zero["active_neurons"] = np.zeros_like(lc.active_neurons)
        layers.append(dataclasses.replace(lc, **zero))
    return dataclasses.replace(counts, layers=layers)


def _row(name, e1, e0, base, acs, synapses, events, inputs_x_t) -> BreakEvenRow:
    m = None
    if e1 > e0:
        m = max(0.0, (base - e0) / (e1 - e0))
    sps = acs / synapses if synapses and events else None
    rate = events / inputs_x_t if inputs_x_t and events else None
    return BreakEvenRow(
        name=name,
        snn_energy_pj=e1,
        fixed_energy_pj=e0,
        baseline_energy_pj=base,
        spikes_per_synapse=sps,
        input_spike_rate=rate,
        break_even_multiplier=m,
        break_even_spikes_per_synapse=None if m is None or sps is None else m * sps,
        break_even_spike_rate=None if m is None or rate is None else m * rate,
    )


def break_even(snn_rows, silent_rows, baseline_rows, baseline: str, timesteps: int) -> BreakEven:
    """Rows of the measured run, of :func:`silent` of it, and of the baseline, all priced alike."""
    base_by_name = {r.name: r for r in baseline_rows}
    layers = []
    for r1, r0 in zip(snn_rows, silent_rows, strict=True):
        b = base_by_name.get(r1.name)
        if b is None:
            continue
        layers.append(
            _row(r1.name, r1.energy_total_pj, r0.energy_total_pj, b.energy_total_pj,
                 r1.synaptic_ops + r1.synaptic_ops_skipped, r1.synapses, r1.input_events,
                 r1.inputs * timesteps)  # fmt: skip
        )
    event_rows = [r for r in snn_rows if r.input_events]
    network = _row(
        "network",
        sum(r.energy_total_pj for r in snn_rows),
        sum(r.energy_total_pj for r in silent_rows),
        sum(r.energy_total_pj for r in baseline_rows),
        sum(r.synaptic_ops + r.synaptic_ops_skipped for r in event_rows),
        sum(r.synapses for r in event_rows),
        sum(r.input_events for r in event_rows),
        sum(r.inputs for r in event_rows) * timesteps,
    )
    return BreakEven(baseline=baseline, network=network, layers=layers)


__all__ = ["REFERENCE", "BreakEven", "BreakEvenRow", "break_even", "silent"]
