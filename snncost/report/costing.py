"""The cost model: :class:`~snncost.sim.counts.RunCounts` + a hardware profile -> energy, latency.

This module never looks at weights or spikes, only at the counts a replay
(or the dense ANN pass) produced. Every figure it returns is **per inference**
(the counts are summed over the batch and divided by ``batch_size``); energies
are in picojoules (pJ), latency in seconds.

Rules, per weight layer (conv or linear) ``l`` (see ``docs/cost_model.md``):

Compute energy
    ``E_syn = ACs x ac_energy(state_bits, fmt) + MACs x mac_energy(max(weight_bits, state_bits), fmt)``
        The synaptic compute. An AC (a spike arriving at one synapse) is one
        accumulate at the width of the accumulator, i.e. the membrane
        (``state_bits``); a MAC (dense analog input, or any ANN op) multiplies
        a weight by an activation and accumulates, priced at the wider of the
        two widths. With the ``"45nm"`` profile at fp32 this is exactly
        ``ACs x 0.9 pJ + MACs x 4.6 pJ``, the figure of Chowdhury et al. 2021
        (arXiv:2104.12528) and of most SNN papers.
    ``E_neuron``
        SNN (``lif`` and the non-spiking ``output`` integrator):
        ``neuron_updates x neuron_update_energy(state_bits, fmt, leaky=leak < 1)``
        (45 nm fp32: 1.8 pJ for IF, 5.5 pJ for a leaky neuron).
        ANN ``relu``: one compare per activation, priced as one add
        ``add_energy(state_bits, fmt)``; the ANN ``output`` layer has no
        activation function, so its updates cost nothing beyond its MACs.
    ``E_route = output_spikes x spike_energy()``
        Spike routing, only for profiles that publish a per-spike energy
        (0 for the CMOS tables).
    ``E_compute = E_syn + E_neuron + E_route``

Memory energy (``E_memory``)
    * weights: ``weight_bits_read x read_pJ/bit`` of the level that holds the
      layer's weights (``weight_count x weight_bits / 8`` bytes);
    * state: ``state_bits_read x read_pJ/bit + state_bits_written x write_pJ/bit``
      of the level that holds the layer's state array: the membranes,
      ``neurons x state_bits / 8`` bytes, in an SNN; the larger of the input
      and output activation maps, ``max(inputs, neurons) x state_bits / 8``
      bytes, in an ANN;
    * spikes: ``spike_bits_written x write_pJ/bit`` of the level that holds the
      layer's spike map (``ceil(neurons / 8)`` bytes).

    The level is :meth:`HardwareProfile.memory_level_for` (smallest SRAM that
    holds the array, else DRAM).

``E_total = E_compute + E_memory``.

Latency
    ``profile.latency_seconds`` of the per-timestep totals over all layers,
    per inference (``T`` steps for an SNN, one for the ANN). The per-layer
    ``latency_share`` is the layer's fraction of the *work cycles*
    ``ACs / syn_per_cycle + MACs / macs_per_cycle + updates / updates_per_cycle``
    (before rounding, per-step overheads and real-time ticks).

Fallback
    A neuromorphic profile may not be able to price an operation (a MAC on a
    chip characterised only per synaptic event, an fp32 add on an integer
    chip). Such operations are priced (and, for MACs, timed) with the fallback
    profile (``"45nm"`` by default), and a note saying so is attached to the
    result, so the report never silently drops work.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from snncost.hardware.profile import HardwareProfile, ProfileError, UnsupportedOperationError
from snncost.sim.counts import LayerCounts, RunCounts

__all__ = ["CostedRun", "LayerRow", "Totals", "cost_run"]

DEFAULT_FALLBACK = "45nm"


class LayerRow(BaseModel):
    """Counts and cost of one weight layer, per inference (energies in pJ)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # conv / linear
    neuron: str  # lif / relu / output
    neurons: int
    weight_count: int
    weight_bits: int
    state_bits: int
    number_format: str
    leak: float
    input_events: float
    spikes: float
    spike_rate: float | None  # spikes / (neurons x T); None for non-spiking layers
    synaptic_ops: float  # ACs
    macs: float
    neuron_updates: float
    weight_bits_read: float
    state_bits_read: float
    state_bits_written: float
    spike_bits_written: float
    memory_bits: float
    weight_memory: str  # memory level holding the weights
    state_memory: str  # memory level holding membranes / activations
    energy_ac_pj: float
    energy_mac_pj: float
    energy_synaptic_pj: float  # ACs x E_AC + MACs x E_MAC (the paper's figure)
    energy_neuron_pj: float
    energy_routing_pj: float
    energy_compute_pj: float  # synaptic + neuron + routing
    energy_memory_weights_pj: float
    energy_memory_state_pj: float
    energy_memory_spikes_pj: float
    energy_memory_pj: float
    energy_total_pj: float
    latency_share: float  # fraction of the work cycles spent in this layer


#: Row fields that are summed into :class:`Totals`.
SUMMED_FIELDS = (
    "neurons",
    "weight_count",
    "input_events",
    "spikes",
    "synaptic_ops",
    "macs",
    "neuron_updates",
    "weight_bits_read",
    "state_bits_read",
    "state_bits_written",
    "spike_bits_written",
    "memory_bits",
    "energy_ac_pj",
    "energy_mac_pj",
    "energy_synaptic_pj",
    "energy_neuron_pj",
    "energy_routing_pj",
    "energy_compute_pj",
    "energy_memory_weights_pj",
    "energy_memory_state_pj",
    "energy_memory_spikes_pj",
    "energy_memory_pj",
    "energy_total_pj",
)


class Totals(BaseModel):
    """Sums over the layers of one network, per inference, plus its latency."""

    model_config = ConfigDict(extra="forbid")

    neurons: int
    weight_count: int
    input_events: float
    spikes: float
    spike_rate: float | None  # all spikes / (spiking neurons x T)
    synaptic_ops: float
    macs: float
    neuron_updates: float
    weight_bits_read: float
    state_bits_read: float
    state_bits_written: float
    spike_bits_written: float
    memory_bits: float
    energy_ac_pj: float
    energy_mac_pj: float
    energy_synaptic_pj: float
    energy_neuron_pj: float
    energy_routing_pj: float
    energy_compute_pj: float
    energy_memory_weights_pj: float
    energy_memory_state_pj: float
    energy_memory_spikes_pj: float
    energy_memory_pj: float
    energy_total_pj: float
    timesteps: int
    latency_s: float
    latency_cycles: float | None  # None when part of the work was timed on the fallback


class CostedRun(BaseModel):
    """One network (SNN replay or ANN baseline) costed on one profile."""

    model_config = ConfigDict(extra="forbid")

    network: str  # "snn" / "ann"
    profile: str
    timesteps: int
    batch_size: int
    rows: list[LayerRow]
    total: Totals
    notes: list[str] = []


class _Pricer:
    """Unit energies from ``profile``, falling back to another profile (with a note)."""

    def __init__(self, profile: HardwareProfile, fallback: HardwareProfile | str | None) -> None:
        self.profile = profile
        self._fallback_spec = fallback
        self._fallback: HardwareProfile | None = None
        self.notes: list[str] = []

    def fallback(self, why: str) -> HardwareProfile:
        if self._fallback is None:
            spec = self._fallback_spec
            if spec is None:
                raise UnsupportedOperationError(
                    f"profile {self.profile.name!r} cannot price {why} and no fallback profile is set"
                )
            if isinstance(spec, HardwareProfile):
                self._fallback = spec
            else:
                from snncost.hardware import load_profile

                self._fallback = load_profile(spec)
        return self._fallback

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def op(self, method: str, what: str, *args: Any, **kwargs: Any) -> float:
        try:
            return float(getattr(self.profile, method)(*args, **kwargs))
        except UnsupportedOperationError:
            fb = self.fallback(what)
            value = float(getattr(fb, method)(*args, **kwargs))
            self._note(
                f"{self.profile.name} cannot price {what}; priced with {fb.name} ({value:g} pJ each)"
            )
            return value

    def memory(self, size_bytes: int, what: str) -> tuple[str, float, float]:
        """``(level name, read pJ/bit, write pJ/bit)`` of the level holding ``size_bytes``."""
        try:
            level = self.profile.memory_level_for(size_bytes)
        except ProfileError:
            fb = self.fallback(what)
            level = fb.memory_level_for(size_bytes)
            self._note(
                f"{self.profile.name} has no memory level for {what} ({size_bytes} bytes); "
                f"priced with {fb.name}'s {level.name}"
            )
            return f"{fb.name}:{level.name}", level.read_pj_per_bit, level.write_pj_per_bit
        return level.name, level.read_pj_per_bit, level.write_pj_per_bit


def _per_inference(arr: np.ndarray, batch_size: int) -> float:
    return float(np.asarray(arr, dtype=np.float64).sum()) / batch_size


def _cost_layer(lc: LayerCounts, network: str, batch: int, pricer: _Pricer) -> dict[str, Any]:
    fmt = lc.number_format
    sb, wb = int(lc.state_bits), int(lc.weight_bits)
    mac_bits = max(wb, sb)
    n = lc.neurons
    T = lc.timesteps

    acs = _per_inference(lc.synaptic_ops, batch)
    macs = _per_inference(lc.macs, batch)
    updates = _per_inference(lc.neuron_updates, batch)
    spikes = _per_inference(lc.output_spikes, batch)

    e_ac_unit = pricer.op("ac_energy", f"an AC ({fmt}, {sb}-bit)", sb, fmt) if acs else 0.0
    e_mac_unit = (
        pricer.op("mac_energy", f"a MAC ({fmt}, {mac_bits}-bit)", mac_bits, fmt) if macs else 0.0
    )
    energy_ac = acs * e_ac_unit
    energy_mac = macs * e_mac_unit
    leaky = float(lc.leak) < 1.0
    if not updates:
        e_nu = 0.0
    elif network == "ann":
        if lc.neuron == "relu":  # one compare against zero, priced as one add
            e_nu = pricer.op("add_energy", f"a ReLU compare ({fmt}, {sb}-bit)", sb, fmt)
        else:  # no activation function on the ANN output layer
            e_nu = 0.0
    else:
        what = f"a {'leaky ' if leaky else ''}neuron update ({fmt}, {sb}-bit)"
        e_nu = pricer.op("neuron_update_energy", what, sb, fmt, leaky)
    energy_neuron = updates * e_nu
    energy_routing = spikes * float(pricer.profile.spike_energy()) if spikes else 0.0

    w_bytes = math.ceil(lc.weight_count * wb / 8)
    if network == "ann":
        state_elems = max(int(np.prod(lc.input_shape)), n)
    else:
        state_elems = n
    s_bytes = math.ceil(state_elems * sb / 8)
    spike_bytes = math.ceil(n / 8)
    w_level, w_read, _ = pricer.memory(w_bytes, f"the weights of {lc.name}")
    s_level, s_read, s_write = pricer.memory(s_bytes, f"the state of {lc.name}")

    wbr = _per_inference(lc.weight_bits_read, batch)
    sbr = _per_inference(lc.state_bits_read, batch)
    sbw = _per_inference(lc.state_bits_written, batch)
    spbw = _per_inference(lc.spike_bits_written, batch)
    e_mem_w = wbr * w_read
    e_mem_s = sbr * s_read + sbw * s_write
    if spbw:
        _, _, sp_write = pricer.memory(spike_bytes, f"the spikes of {lc.name}")
        e_mem_sp = spbw * sp_write
    else:
        e_mem_sp = 0.0

    energy_synaptic = energy_ac + energy_mac
    energy_compute = energy_synaptic + energy_neuron + energy_routing
    energy_memory = e_mem_w + e_mem_s + e_mem_sp
    spiking = lc.neuron == "lif"
    row = {
        "name": lc.name,
        "kind": lc.kind,
        "neuron": lc.neuron,
        "neurons": n,
        "weight_count": int(lc.weight_count),
        "weight_bits": wb,
        "state_bits": sb,
        "number_format": fmt,
        "leak": float(lc.leak),
        "input_events": _per_inference(lc.input_events, batch),
        "spikes": spikes,
        "spike_rate": (spikes / (n * T)) if spiking and n and T else None,
        "synaptic_ops": acs,
        "macs": macs,
        "neuron_updates": updates,
        "weight_bits_read": wbr,
        "state_bits_read": sbr,
        "state_bits_written": sbw,
        "spike_bits_written": spbw,
        "memory_bits": wbr + sbr + sbw + spbw,
        "weight_memory": w_level,
        "state_memory": s_level,
        "energy_ac_pj": energy_ac,
        "energy_mac_pj": energy_mac,
        "energy_synaptic_pj": energy_synaptic,
        "energy_neuron_pj": energy_neuron,
        "energy_routing_pj": energy_routing,
        "energy_compute_pj": energy_compute,
        "energy_memory_weights_pj": e_mem_w,
        "energy_memory_state_pj": e_mem_s,
        "energy_memory_spikes_pj": e_mem_sp,
        "energy_memory_pj": energy_memory,
        "energy_total_pj": energy_compute + energy_memory,
        "latency_share": 0.0,  # filled in by cost_run
    }
    return row


def _work_cycles(
    acs: float, macs: float, updates: float, profile: HardwareProfile, pricer: _Pricer
) -> float:
    t = profile.timing
    cycles = acs / t.synaptic_ops_per_cycle + updates / t.neuron_updates_per_cycle
    if macs:
        per = t.macs_per_cycle
        if per is None:
            fb = pricer.fallback("MACs")
            # express the fallback's MAC time in this profile's cycles
            per = (fb.timing.macs_per_cycle or 1.0) * profile.timing.clock_hz / fb.timing.clock_hz
        cycles += macs / per
    return cycles


def _latency(counts: RunCounts, pricer: _Pricer) -> tuple[float, float | None]:
    """``(seconds, cycles)`` of one inference; cycles is None if MACs ran on the fallback."""
    profile = pricer.profile
    batch = counts.batch_size
    T = counts.timesteps

    def per_step(attr: str) -> np.ndarray:
        total = np.zeros(T, dtype=np.float64)
        for lc in counts.layers:
            arr = np.asarray(getattr(lc, attr), dtype=np.float64)
            if arr.shape != (T,):
                raise ValueError(
                    f"layer {lc.name}: {attr} has shape {arr.shape}, expected ({T},) "
                    f"(one entry per timestep)"
                )
            total += arr
        return total / batch

    syn, macs, nu = per_step("synaptic_ops"), per_step("macs"), per_step("neuron_updates")
    try:
        cycles = profile.latency_cycles(syn, macs, nu)
        return cycles / profile.timing.clock_hz, cycles
    except UnsupportedOperationError:
        fb = pricer.fallback("MACs")
        seconds = profile.latency_seconds(syn, 0, nu) + fb.latency_seconds(0, macs, 0)
        pricer._note(
            f"{profile.name} performs no MACs; their time is taken from {fb.name} "
            f"and added to the latency"
        )
        return seconds, None


def _sum_rows(rows: list[LayerRow]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in SUMMED_FIELDS:
        total: Any = 0
        for r in rows:
            total = total + getattr(r, f)
        out[f] = total
    return out


def cost_run(
    counts: RunCounts,
    profile: HardwareProfile,
    fallback: HardwareProfile | str | None = DEFAULT_FALLBACK,
) -> CostedRun:
    """Cost a replay (``counts.model == "snn"``) or an ANN pass on ``profile``.

    Returns per-layer :class:`LayerRow` s and their :class:`Totals`, all per
    inference. ``fallback`` prices what ``profile`` cannot (see the module
    docstring); ``None`` makes such operations an error.
    """
    if counts.batch_size < 1:
        raise ValueError(f"RunCounts.batch_size must be >= 1, got {counts.batch_size}")
    network = counts.model
    if network == "ann" and fallback is not None:
        fmts = {lc.number_format for lc in counts.layers if np.asarray(lc.macs).sum() > 0}
        missing = [f for f in sorted(fmts) if not profile.supports("mac", f)]
        if missing:
            # A chip without a MAC datapath does not run ANNs: cost the baseline on the
            # fallback (a conventional accelerator) as a whole, memory and timing included.
            fb = _Pricer(profile, fallback).fallback("MACs")
            run = cost_run(counts, fb, fallback=None)
            note = (
                f"{profile.name} has no MAC datapath ({', '.join(missing)}); "
                f"the ANN baseline is costed on {fb.name}"
            )
            return run.model_copy(update={"notes": [note, *run.notes]})
    pricer = _Pricer(profile, fallback)
    batch = counts.batch_size
    raw = [_cost_layer(lc, network, batch, pricer) for lc in counts.layers]
    work = [
        _work_cycles(r["synaptic_ops"], r["macs"], r["neuron_updates"], profile, pricer)
        for r in raw
    ]
    total_work = sum(work)
    for r, w in zip(raw, work, strict=True):
        r["latency_share"] = (w / total_work) if total_work > 0 else 0.0
    rows = [LayerRow(**r) for r in raw]
    seconds, cycles = _latency(counts, pricer)
    summed = _sum_rows(rows)
    spiking = [r for r in rows if r.neuron == "lif"]
    spiking_slots = sum(r.neurons for r in spiking) * counts.timesteps
    spike_rate = (sum(r.spikes for r in spiking) / spiking_slots) if spiking_slots else None
    total = Totals(
        **summed,
        spike_rate=spike_rate,
        timesteps=counts.timesteps,
        latency_s=seconds,
        latency_cycles=cycles,
    )
    return CostedRun(
        network=network,
        profile=profile.name,
        timesteps=counts.timesteps,
        batch_size=batch,
        rows=rows,
        total=total,
        notes=list(pricer.notes),
    )
