"""Pricing: events -> operations and accesses (a dataflow) -> energy and latency on a profile.

This module never looks at weights or spikes, only at a run's events
(:class:`~snncost.sim.counts.RunCounts`). Every figure it returns is **per
inference** (events summed over the batch and divided by ``batch_size``);
energies in picojoules (pJ), latency in seconds. The rules (docs/cost_model.md):

Compute energy
    ``E_syn = ACs x ac_energy(state_bits, fmt) + MACs x mac_energy(max(weight_bits, input_bits), fmt)``
        An AC (a spike arriving at one synapse) is one accumulate at the
        membrane width; a MAC is priced at the wider of its two operands.
        With ``"45nm"`` at fp32 this is ``ACs x 0.9 pJ + MACs x 4.6 pJ``, the
        figure of Chowdhury et al. 2021 and of most SNN papers.
    ``E_neuron``: SNN ``neuron_updates x neuron_update_energy(state_bits, fmt, leaky)``;
        ANN ``relu``: one compare per activation, priced as one add; the ANN
        output layer has no activation function.
    ``E_route = output_spikes x spike_energy()`` (profiles that publish one).
    The neuron kind sets the update's arithmetic (:data:`CHARGE_OPS`): a
    multiply for a leak (``leak < 1``) or a ``tau``/PLIF decay (a divide by
    ``tau`` is a multiply by ``1/tau``), its additions, plus one addition
    for fire and reset (a soft reset's subtract is the compare; a hard
    reset is a select, no arithmetic). IF needs no multiply.
    ``E_elementwise``: merge rows (``add``/``and``/``iand``): one AC per
    output element and step (the profile lists no logic gate, so an AND is
    priced as an accumulate: an upper bound); ``concat`` is free, its data
    movement is counted by the layer that reads it.

Memory energy
    The dataflow (:data:`snncost.costmodel.dataflows.DATAFLOWS`) turns the
    layer's events into :class:`~snncost.costmodel.accesses.Access` es per
    level and tensor; each costs ``(reads x read_pJ/bit + writes x
    write_pJ/bit) x bits`` of its level.

Latency
    ``profile.latency_seconds`` of the per-timestep totals over all layers.

Fallback
    Operations a neuromorphic profile cannot price (a MAC on a chip
    characterised per synaptic event) are priced and timed on the fallback
    profile (``"45nm"`` by default) with a note, so no work is silently dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from snncost.costmodel.accesses import TENSORS, Access, Widths, address_bits, hierarchy, home_level
from snncost.costmodel.dataflows import DATAFLOWS, LayerWork, NetworkContext, check_dataflow
from snncost.costmodel.options import CostOptions
from snncost.hardware.profile import HardwareProfile, UnsupportedOperationError
from snncost.sim.counts import LayerCounts, RunCounts

__all__ = ["AccessRow", "CostedRun", "LayerRow", "Totals", "cost_run"]

DEFAULT_FALLBACK = "45nm"


class AccessRow(BaseModel):
    """Words of one tensor moved at one memory level, per inference, and their energy (pJ)."""

    model_config = ConfigDict(extra="forbid")

    level: str
    tensor: str  # weights / inputs / state / outputs
    reads: float
    writes: float
    bits: int
    energy_pj: float


class LayerRow(BaseModel):
    """Counts and cost of one weight layer, per inference (energies in pJ)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # conv / linear
    neuron: str  # lif / relu / output
    neurons: int
    inputs: int  # input positions (per step, per sample)
    weight_count: int
    weight_bits: int
    input_bits: int
    state_bits: int
    number_format: str
    leak: float
    synapses: int  # real-tap connections of one dense pass (ACs per fully active pass)
    input_events: float
    spikes: float
    spike_rate: float | None  # spikes / (neurons x T); None for non-spiking layers
    synaptic_ops: float  # ACs performed
    synaptic_ops_skipped: float  # ACs on zero weights that skip_zero_weights removed
    macs: float
    neuron_updates: float
    active_neuron_updates: float  # of those, neurons that received synaptic input
    memory_bits: float
    weight_memory: str  # memory level where the weights are read
    state_memory: str  # memory level where membranes / partial sums are kept
    accesses: list[AccessRow]
    energy_ac_pj: float
    energy_mac_pj: float
    energy_synaptic_pj: float  # ACs x E_AC + MACs x E_MAC (the paper's figure)
    energy_neuron_pj: float
    energy_routing_pj: float
    energy_elementwise_pj: float = 0.0  # merge rows: element-wise adds / ANDs
    energy_compute_pj: float  # synaptic + neuron + routing + element-wise
    energy_memory_weights_pj: float
    energy_memory_inputs_pj: float
    energy_memory_state_pj: float
    energy_memory_outputs_pj: float
    energy_memory_pj: float
    energy_total_pj: float
    latency_share: float  # fraction of the work cycles spent in this layer


#: Row fields that are summed into :class:`Totals`.
SUMMED_FIELDS = (
    "neurons",
    "weight_count",
    "synapses",
    "input_events",
    "spikes",
    "synaptic_ops",
    "synaptic_ops_skipped",
    "macs",
    "neuron_updates",
    "active_neuron_updates",
    "memory_bits",
    "energy_ac_pj",
    "energy_mac_pj",
    "energy_synaptic_pj",
    "energy_neuron_pj",
    "energy_routing_pj",
    "energy_elementwise_pj",
    "energy_compute_pj",
    "energy_memory_weights_pj",
    "energy_memory_inputs_pj",
    "energy_memory_state_pj",
    "energy_memory_outputs_pj",
    "energy_memory_pj",
    "energy_total_pj",
)


class Totals(BaseModel):
    """Sums over the layers of one network, per inference, plus its latency."""

    model_config = ConfigDict(extra="forbid")

    neurons: int
    weight_count: int
    synapses: int
    input_events: float
    spikes: float
    spike_rate: float | None  # all spikes / (spiking neurons x T)
    synaptic_ops: float
    synaptic_ops_skipped: float
    macs: float
    neuron_updates: float
    active_neuron_updates: float
    memory_bits: float
    energy_ac_pj: float
    energy_mac_pj: float
    energy_synaptic_pj: float
    energy_neuron_pj: float
    energy_routing_pj: float
    energy_elementwise_pj: float = 0.0
    energy_compute_pj: float
    energy_memory_weights_pj: float
    energy_memory_inputs_pj: float
    energy_memory_state_pj: float
    energy_memory_outputs_pj: float
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
    dataflow: str
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


def _per_inference(arr: np.ndarray, batch_size: int) -> float:
    return float(np.asarray(arr, dtype=np.float64).sum()) / batch_size


def layer_work(lc: LayerCounts, batch: int, options: CostOptions, zero_skipping: bool = False) -> LayerWork:
    """The layer's events per inference after the options (padding taps, zero weights, first layer)."""
    T = lc.timesteps
    acs_all = _per_inference(lc.synaptic_ops, batch)
    acs = _per_inference(lc.synaptic_ops_nonzero, batch) if options.skip_zero_weights else acs_all
    macs_per_step = np.asarray(lc.macs, dtype=np.float64) / batch
    passes = float(np.count_nonzero(macs_per_step)) if macs_per_step.any() else 0.0
    if lc.analog and T > 1 and options.analog_input == "once" and passes:
        passes = 1.0
    macs = passes * lc.real_macs if passes else 0.0
    if zero_skipping and macs:  # an ANN that performs no MAC on a zero activation
        if lc.nonzero_input_macs is None:
            raise ValueError(f"{lc.name}: a zero-skipping baseline needs the ANN counted on inputs")
        macs *= _per_inference(lc.nonzero_input_macs, batch) / lc.real_macs
    if options.count_padding and macs:
        macs *= lc.padded_macs / lc.real_macs
    if options.skip_zero_weights and macs:
        macs *= lc.nonzero_weight_macs / lc.real_macs
    stored = 1.0 - lc.zero_weights / lc.weight_count if options.skip_zero_weights and lc.weight_count else 1.0
    return LayerWork(
        counts=lc,
        steps=T,
        acs=acs,
        acs_all=acs_all,
        macs=macs,
        mac_passes=passes,
        updates=_per_inference(lc.neuron_updates, batch),
        active=_per_inference(
            lc.neuron_updates if lc.active_neurons is None else lc.active_neurons, batch
        ),
        spikes=_per_inference(lc.output_spikes, batch),
        events=_per_inference(lc.input_events, batch),
        weight_fraction=stored,
        elementwise=0.0 if lc.elementwise_ops is None else _per_inference(lc.elementwise_ops, batch),
    )


def _price_accesses(accesses: list[Access], levels: dict) -> list[AccessRow]:
    """Each access at its level's pJ/bit: ``(reads x read + writes x write) x bits``."""
    rows = []
    for a in accesses:
        level = levels[a.level]
        energy = (a.reads * level.read_pj_per_bit + a.writes * level.write_pj_per_bit) * a.bits
        rows.append(AccessRow(level=a.level, tensor=a.tensor, reads=a.reads, writes=a.writes,
                              bits=int(a.bits), energy_pj=energy))  # fmt: skip
    return rows


#: LIFNode.charge -> (has a multiply, additions) of the charge ``h = ...``; the charge's
#: ``u - vr`` costs one more addition when ``vr != 0``, fire and reset one more.
CHARGE_OPS: dict[str, tuple[bool, int]] = {
    "leak": (True, 1),  # leak * u + I (the multiply only when leak < 1)
    "decay-input": (True, 2),  # u + (I - (u - vr)) / tau
    "no-decay-input": (True, 2),  # u - (u - vr) / tau + I
    "plif-decay-input": (True, 2),  # u + (I - (u - vr)) * decay
    "plif-no-decay-input": (True, 2),  # u - (u - vr) * decay + I
}


def neuron_update_ops(lc: LayerCounts) -> tuple[bool, int]:
    """``(leaky, additions)`` of one update of ``lc``'s neurons (snncost's LIF: ``(leak < 1, 2)``)."""
    if lc.charge not in CHARGE_OPS:
        raise ValueError(f"{lc.name}: unknown neuron charge {lc.charge!r}; choose one of {', '.join(CHARGE_OPS)}")
    mult, adds = CHARGE_OPS[lc.charge]
    leaky = float(lc.leak) < 1.0 if lc.charge == "leak" else mult
    vr = lc.reset_value if lc.reset == "hard" else 0.0
    extra = 1 if (lc.charge != "leak" and vr != 0.0) else 0
    return leaky, adds + extra + 1


def _neuron_unit(lc: LayerCounts, net: NetworkContext, pricer: _Pricer, fmt: str, active: bool = True) -> float:
    """Energy of one update of ``lc``'s neurons (an ANN ReLU: one compare, priced as an add)."""
    if net.network == "ann":
        ob = net.widths.outputs
        if lc.neuron == "relu":  # one compare against zero, priced as one add
            return pricer.op("add_energy", f"a ReLU compare ({fmt}, {ob}-bit)", ob, fmt)
        return 0.0  # no activation function on the ANN output layer
    sb = net.widths.state
    leaky, adds = neuron_update_ops(lc)
    what = f"a {'leaky ' if leaky else ''}neuron update ({fmt}, {sb}-bit)"
    return pricer.op("neuron_update_energy", what, sb, fmt, leaky, active=active, adds=adds)


def _cost_elementwise(work: LayerWork, net: NetworkContext, pricer: _Pricer) -> dict[str, Any]:
    """A ``neuron`` row (updates, membranes at the state home, spikes out) or a ``merge`` row
    (element-wise ops; no traffic of its own). One rule for every dataflow."""
    lc = work.counts
    fmt = net.widths.number_format or lc.number_format
    sb = net.widths.state
    energy_neuron = energy_elementwise = 0.0
    accesses: list[Access] = []
    if lc.kind == "merge":
        ops = work.elementwise
        if ops:
            energy_elementwise = ops * pricer.op("ac_energy", f"an element-wise {lc.merge_op} ({fmt}, {sb}-bit)", sb, fmt)
    elif work.updates:
        energy_neuron = work.updates * _neuron_unit(lc, net, pricer, fmt)
        home = net.level(net.state_home)
        bits = sb if net.network == "snn" else net.widths.outputs
        accesses.append(Access(home, "state", work.updates, work.updates, bits))
        if work.spikes:
            accesses.append(Access(home, "outputs", 0.0, work.spikes, address_bits(lc.neurons)))
    priced = _price_accesses(accesses, {m.name: m for m in net.levels})
    by_tensor = {t: sum(a.energy_pj for a in priced if a.tensor == t) for t in TENSORS}
    energy_routing = work.spikes * float(pricer.profile.spike_energy()) if work.spikes else 0.0
    compute = energy_neuron + energy_elementwise + energy_routing
    memory = sum(by_tensor.values())
    return {
        **event_fields(work), "weight_bits": net.weight_bits(lc), "input_bits": net.widths.inputs,
        "state_bits": sb, "number_format": fmt,
        "memory_bits": float(sum((a.reads + a.writes) * a.bits for a in priced)),
        "weight_memory": "-", "state_memory": _home_of(priced, "state"), "accesses": priced,
        "energy_ac_pj": 0.0, "energy_mac_pj": 0.0, "energy_synaptic_pj": 0.0,
        "energy_neuron_pj": energy_neuron, "energy_routing_pj": energy_routing,
        "energy_elementwise_pj": energy_elementwise, "energy_compute_pj": compute,
        "energy_memory_weights_pj": 0.0, "energy_memory_inputs_pj": by_tensor["inputs"],
        "energy_memory_state_pj": by_tensor["state"], "energy_memory_outputs_pj": by_tensor["outputs"],
        "energy_memory_pj": memory, "energy_total_pj": compute + memory, "latency_share": 0.0,
    }  # fmt: skip


def _cost_layer(work: LayerWork, net: NetworkContext, pricer: _Pricer, dataflow: str) -> dict[str, Any]:
    lc = work.counts
    if not lc.is_weight_layer:
        return _cost_elementwise(work, net, pricer)
    fmt = net.widths.number_format or lc.number_format
    sb, ib = net.widths.state, net.widths.inputs
    wb = net.weight_bits(lc)
    mac_bits = max(wb, ib)
    acs, macs, updates, spikes = work.acs, work.macs, work.updates, work.spikes

    e_ac_unit = pricer.op("ac_energy", f"an AC ({fmt}, {sb}-bit)", sb, fmt) if acs else 0.0
    e_mac_unit = (
        pricer.op("mac_energy", f"a MAC ({fmt}, {mac_bits}-bit)", mac_bits, fmt) if macs else 0.0
    )
    e_nu = _neuron_unit(lc, net, pricer, fmt) if updates else 0.0
    energy_ac, energy_mac = acs * e_ac_unit, macs * e_mac_unit
    energy_neuron = updates * e_nu
    if net.network == "snn" and updates and pricer.profile.neuron_update_inactive_pj is not None:
        # a chip that publishes it: a neuron that received no input this step costs less
        e_idle = _neuron_unit(lc, net, pricer, fmt, active=False)
        energy_neuron = work.active * e_nu + (updates - work.active) * e_idle
    energy_routing = spikes * float(pricer.profile.spike_energy()) if spikes else 0.0

    accesses = _price_accesses(DATAFLOWS[dataflow](work, net), {m.name: m for m in net.levels})
    by_tensor = {t: sum(a.energy_pj for a in accesses if a.tensor == t) for t in TENSORS}
    energy_memory = sum(by_tensor.values())
    energy_synaptic = energy_ac + energy_mac
    energy_compute = energy_synaptic + energy_neuron + energy_routing
    return {
        **event_fields(work),
        "weight_bits": wb,
        "input_bits": ib,
        "state_bits": sb,
        "number_format": fmt,
        "memory_bits": float(sum((a.reads + a.writes) * a.bits for a in accesses)),
        "weight_memory": _home_of(accesses, "weights"),
        "state_memory": _home_of(accesses, "state"),
        "accesses": accesses,
        "energy_ac_pj": energy_ac,
        "energy_mac_pj": energy_mac,
        "energy_synaptic_pj": energy_synaptic,
        "energy_neuron_pj": energy_neuron,
        "energy_routing_pj": energy_routing,
        "energy_compute_pj": energy_compute,
        "energy_memory_weights_pj": by_tensor["weights"],
        "energy_memory_inputs_pj": by_tensor["inputs"],
        "energy_memory_state_pj": by_tensor["state"],
        "energy_memory_outputs_pj": by_tensor["outputs"],
        "energy_memory_pj": energy_memory,
        "energy_total_pj": energy_compute + energy_memory,
        "latency_share": 0.0,  # filled in by assemble_run
    }


def event_fields(work: LayerWork) -> dict[str, Any]:
    """The :class:`LayerRow` fields that come from the events, whatever prices them."""
    lc = work.counts
    n, T = lc.neurons, lc.timesteps
    spiking = lc.neuron == "lif"
    return {
        "name": lc.name,
        "kind": lc.kind,
        "neuron": lc.neuron,
        "neurons": 0 if lc.neuron == "none" else n,  # a current handed on: integrated by a neuron row
        "inputs": lc.inputs,
        "weight_count": int(lc.weight_count),
        "leak": float(lc.leak),
        "synapses": int(lc.real_macs),
        "input_events": work.events,
        "spikes": work.spikes,
        "spike_rate": (work.spikes / (n * T)) if spiking and n and T else None,
        "synaptic_ops": work.acs,
        "synaptic_ops_skipped": work.acs_all - work.acs,
        "macs": work.macs,
        "neuron_updates": work.updates,
        "active_neuron_updates": work.active,
    }


def _home_of(accesses: list[AccessRow], tensor: str) -> str:
    """The outermost level a tensor is accessed at (where it lives), or '-'."""
    levels = [a.level for a in accesses if a.tensor == tensor]
    return levels[-1] if levels else "-"


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


def _per_step(work: LayerWork, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ACs, MACs and neuron updates per step, per inference, as the options priced them."""
    lc = work.counts

    def scaled(arr: np.ndarray, total: float) -> np.ndarray:
        a = np.asarray(arr, dtype=np.float64) / batch
        s = a.sum()
        return a * (total / s) if s > 0 else np.zeros_like(a)

    syn = scaled(lc.synaptic_ops, work.acs)
    macs = np.asarray(lc.macs, dtype=np.float64) / batch
    if work.macs and macs.any():
        if work.mac_passes == 1.0 and len(macs) > 1:  # charged once: at the first step
            macs = np.where(np.arange(len(macs)) == 0, macs, 0.0)
        macs = scaled(macs, work.macs)
    nu = np.asarray(lc.neuron_updates, dtype=np.float64) / batch
    return syn, macs, nu


def _latency(works: list[LayerWork], batch: int, T: int, pricer: _Pricer) -> tuple[float, float | None]:
    """``(seconds, cycles)`` of one inference; cycles is None if MACs ran on the fallback."""
    profile = pricer.profile
    syn, macs, nu = (np.zeros(T, dtype=np.float64) for _ in range(3))
    for w in works:
        steps = _per_step(w, batch)
        for total, arr, attr in zip((syn, macs, nu), steps, ("synaptic_ops", "macs", "neuron_updates"), strict=True):
            if arr.shape != (T,):
                raise ValueError(
                    f"layer {w.counts.name}: {attr} has shape {arr.shape}, expected ({T},) "
                    f"(one entry per timestep)"
                )
            total += arr
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


def network_context(
    counts: RunCounts, profile: HardwareProfile, widths: Widths, options: CostOptions
) -> NetworkContext:
    """Where the network's arrays live on ``profile``'s shared hierarchy (see :mod:`.dataflows`)."""
    levels = hierarchy(profile)
    weight_bits = 0.0
    for lc in counts.layers:
        stored = lc.weight_count - (lc.zero_weights if options.skip_zero_weights else 0)
        weight_bits += stored * int(widths.weights or lc.weight_bits)
    membranes = sum(lc.neurons for lc in counts.layers if lc.neuron != "none") * widths.state
    return NetworkContext(
        network=counts.model,
        profile=profile,
        levels=levels,
        widths=widths,
        weights_home=home_level(levels, weight_bits),
        state_home=home_level(levels, membranes),
        options=options,
    )


def cost_run(
    counts: RunCounts,
    profile: HardwareProfile,
    widths: Widths,
    dataflow: str,
    options: CostOptions | None = None,
    fallback: HardwareProfile | str | None = DEFAULT_FALLBACK,
    zero_skipping: bool = False,
) -> CostedRun:
    """Cost a replay (``counts.model == "snn"``) or an ANN pass on ``profile``.

    ``widths`` are the network's word widths (:mod:`snncost.costmodel.baselines`
    derives them), ``dataflow`` a name of :data:`~snncost.costmodel.dataflows.DATAFLOWS`.
    Returns per-layer :class:`LayerRow` s and their :class:`Totals`, all per
    inference. ``fallback`` prices what ``profile`` cannot (see the module
    docstring); ``None`` makes such operations an error. ``zero_skipping``
    (ANN counted on inputs): MACs only where the input activation is nonzero.
    """
    options = options or CostOptions()
    if counts.batch_size < 1:
        raise ValueError(f"RunCounts.batch_size must be >= 1, got {counts.batch_size}")
    network = counts.model
    check_dataflow(dataflow, network)
    if network == "ann" and fallback is not None:
        fmt = widths.number_format
        fmts = {fmt or lc.number_format for lc in counts.layers if np.asarray(lc.macs).sum() > 0}
        missing = [f for f in sorted(fmts) if not profile.supports("mac", f)]
        if missing:
            # A chip without a MAC datapath does not run ANNs: cost the baseline on the
            # fallback (a conventional accelerator) as a whole, memory and timing included.
            fb = _Pricer(profile, fallback).fallback("MACs")
            run = cost_run(counts, fb, widths, dataflow, options, None, zero_skipping)
            note = (
                f"{profile.name} has no MAC datapath ({', '.join(missing)}); "
                f"the ANN baseline is costed on {fb.name}"
            )
            return run.model_copy(update={"notes": [note, *run.notes]})
    pricer = _Pricer(profile, fallback)
    batch = counts.batch_size
    net = network_context(counts, profile, widths, options)
    works = [layer_work(lc, batch, options, zero_skipping) for lc in counts.layers]
    raw = [_cost_layer(w, net, pricer, dataflow) for w in works]
    return assemble_run(counts, works, raw, pricer, dataflow)


def assemble_run(
    counts: RunCounts, works: list[LayerWork], raw: list[dict[str, Any]], pricer: _Pricer, dataflow: str
) -> CostedRun:
    """Rows (field dicts) -> :class:`CostedRun`: latency shares, totals, latency, notes.

    Shared by the dataflow model (:func:`cost_run`) and the published
    conventions (:func:`snncost.costmodel.conventions.convention_run`).
    """
    profile = pricer.profile
    cycles_per_layer = [
        _work_cycles(r["synaptic_ops"], r["macs"], r["neuron_updates"], profile, pricer)
        for r in raw
    ]
    total_work = sum(cycles_per_layer)
    for r, w in zip(raw, cycles_per_layer, strict=True):
        r["latency_share"] = (w / total_work) if total_work > 0 else 0.0
    rows = [LayerRow(**r) for r in raw]
    seconds, cycles = _latency(works, counts.batch_size, counts.timesteps, pricer)
    spiking = [r for r in rows if r.neuron == "lif"]
    spiking_slots = sum(r.neurons for r in spiking) * counts.timesteps
    spike_rate = (sum(r.spikes for r in spiking) / spiking_slots) if spiking_slots else None
    total = Totals(
        **_sum_rows(rows),
        spike_rate=spike_rate,
        timesteps=counts.timesteps,
        latency_s=seconds,
        latency_cycles=cycles,
    )
    return CostedRun(
        network=counts.model,
        profile=profile.name,
        dataflow=dataflow,
        timesteps=counts.timesteps,
        batch_size=counts.batch_size,
        rows=rows,
        total=total,
        notes=list(pricer.notes),
    )
