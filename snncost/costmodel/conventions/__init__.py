"""Published SNN energy conventions as named cost models, priced on the same replay.

Papers disagree on SNN energy because each uses a different convention.
Each module here reproduces one source's convention on snncost's events
(and is tested against that source's own numbers); ``cost_model=`` in
:func:`snncost.evaluate` and :func:`snncost.compare_cost_models` picks one:

========================  ==============================================================
``snncost``               the dataflow-aware model (:mod:`snncost.costmodel.dataflows`)
``paper``                 Chowdhury, Garg & Roy 2021: MACs x 4.6 pJ + ACs x 0.9 pJ
``kerasspiking``          KerasSpiking ``ModelEnergy``: per-device synop / neuron energies
``spikingjelly``          SpikingJelly ``op_counter``: compute energy (MAC/AC presets)
``spikingjelly-lemaire``  SpikingJelly's Lemaire-style estimate: compute, memory, addressing
``lemaire2022``           Lemaire et al. ICONIP 2022 (Qualia's reference implementation)
``spikesim``              SpikeSim (Moitra et al. TCAD 2023): crossbar in-memory computing
========================  ==============================================================

:func:`convention_run` turns a convention's per-layer energies into the
same :class:`~snncost.costmodel.pricing.CostedRun` the dataflow model
produces, so one report type serves both (a convention gives no
per-tensor memory breakdown: its memory and addressing energy are in
``energy_memory_pj``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from snncost.costmodel.conventions import kerasspiking, lemaire2022, paper, spikesim, spikingjelly
from snncost.costmodel.conventions.base import LayerEnergy
from snncost.costmodel.options import CostOptions
from snncost.costmodel.pricing import CostedRun, _Pricer, assemble_run, event_fields, layer_work
from snncost.hardware.profile import HardwareProfile
from snncost.sim.counts import RunCounts

DEFAULT = "snncost"


def _spikingjelly(variant: str) -> Callable[..., list[LayerEnergy]]:
    def price(counts: RunCounts, **params: Any) -> list[LayerEnergy]:
        integer = all(lc.number_format == "int" for lc in counts.layers)
        params.setdefault("precision", "int8" if integer else "fp32")
        return spikingjelly.price(counts, variant=variant, **params)

    return price


def _kerasspiking(counts: RunCounts, ann_device: str = "cpu", **params: Any) -> list[LayerEnergy]:
    """KerasSpiking prices an ANN on a non-spiking device only: ``ann_device`` (cpu by default)
    when the SNN's device or profile is a spiking one, as its docs compare a GPU/CPU ANN with a
    Loihi SNN."""
    if counts.model == "ann":
        device = params.get("device")
        prof = params.get("profile")
        spiking = (device is not None and kerasspiking.DEVICES[device].spiking) or (
            prof is not None and kerasspiking.device_from_profile(prof).spiking
        )
        if spiking or (device is None and prof is None):
            params = {k: v for k, v in params.items() if k not in ("device", "profile", "spiking")}
            params["device"] = ann_device
    return kerasspiking.price(counts, **params)


#: name -> (pricing function, source citation, one-line description)
CONVENTIONS: dict[str, tuple[Callable[..., list[LayerEnergy]], str, str]] = {
    paper.NAME: (paper.price, paper.SOURCE, paper.DESCRIPTION),
    kerasspiking.NAME: (_kerasspiking, kerasspiking.SOURCE, kerasspiking.DESCRIPTION),
    "spikingjelly": (_spikingjelly("compute"), spikingjelly.SOURCE, spikingjelly.DESCRIPTION),
    "spikingjelly-lemaire": (
        _spikingjelly("lemaire"),
        spikingjelly.SOURCE,
        "SpikingJelly's Lemaire-style estimate: compute, memory (buffer-size cost) and addressing.",
    ),
    lemaire2022.NAME: (lemaire2022.price, lemaire2022.SOURCE, lemaire2022.DESCRIPTION),
    spikesim.NAME: (spikesim.price, spikesim.SOURCE, spikesim.DESCRIPTION),
}

#: conventions whose source has no model of an ANN (their reports carry no baseline)
WITHOUT_ANN_MODEL = frozenset({spikesim.NAME})

#: every name ``cost_model=`` accepts, the default first
COST_MODELS: tuple[str, ...] = (DEFAULT, *CONVENTIONS)


def check_cost_model(name: str) -> str:
    """``name`` if known, else a ValueError listing the valid names."""
    if name not in COST_MODELS:
        raise ValueError(f"unknown cost_model {name!r}; choose one of {', '.join(COST_MODELS)}")
    return name


def describe(name: str) -> tuple[str, str]:
    """``(source, description)`` of a cost model."""
    if check_cost_model(name) == DEFAULT:
        return (
            "this project's dataflow-aware model: Timeloop-style loop-nest reuse over the "
            "profile's memory hierarchy (docs/cost_model.md)",
            "events -> accesses per memory level per tensor under a dataflow, priced by the profile",
        )
    return CONVENTIONS[name][1], CONVENTIONS[name][2]


def setting(name: str, profile: HardwareProfile, params: dict | None = None) -> str:
    """The parameters a convention was priced with, in words (for tables and report headers)."""
    params = dict(params or {})
    if name == DEFAULT:
        return f"profile {profile.name}"
    if name == kerasspiking.NAME:
        prof = params.get("profile")
        device = params.get("device")
        if device is None:
            prof = prof or (profile.name if profile.name.startswith("kerasspiking-") else "kerasspiking-loihi")
            device = prof if isinstance(prof, str) else prof.name
        ann = params.get("ann_device", "cpu")
        return f"SNN on {device}, ANN on {ann if kerasspiking_spiking(device) else device}"
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    if name.startswith("spikingjelly") and "precision" not in params:
        shown = ", ".join(x for x in ("precision: fp32, or int8 for a quantized SNN", shown) if x)
    return shown or "the source's defaults"


def kerasspiking_spiking(device: str) -> bool:
    """Whether a KerasSpiking device (or kerasspiking-* profile name) is event-based."""
    key = device.removeprefix("kerasspiking-")
    return key in kerasspiking.DEVICES and kerasspiking.DEVICES[key].spiking


def convention_params(name: str, graph: Any) -> dict[str, Any]:
    """Parameters a convention reads from the network's structure rather than its events:
    SpikingJelly prices a layer fed by an average-pooled (non-binary) spike map with MACs,
    and charges biases."""
    if name.startswith("spikingjelly") and graph is not None:
        return spikingjelly.params_from_graph(graph)
    return {}


def _params_for(name: str, fn: Callable[..., Any], profile: HardwareProfile, params: dict) -> dict:
    """The keywords a convention accepts; KerasSpiking reads its device from a kerasspiking-* profile."""
    accepted = inspect.signature(getattr(fn, "__wrapped__", fn)).parameters
    out = dict(params)
    if name == kerasspiking.NAME and "profile" not in out and "device" not in out:
        # the device of a kerasspiking-* profile; on any other profile, Loihi (a spiking device)
        out["profile"] = profile if profile.name.startswith("kerasspiking-") else "kerasspiking-loihi"
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(out) - set(accepted))
        if unknown:
            raise ValueError(f"cost_model {name!r} takes no parameter(s) {', '.join(unknown)}")
    return out


def convention_run(
    counts: RunCounts,
    name: str,
    profile: HardwareProfile,
    options: CostOptions | None = None,
    **params: Any,
) -> CostedRun | None:
    """Price ``counts`` under convention ``name``; None for an ANN when the convention has no
    model of one (:data:`WITHOUT_ANN_MODEL`; KerasSpiking prices an ANN on ``ann_device``)."""
    options = options or CostOptions()
    fn = CONVENTIONS[check_cost_model(name)][0]
    if counts.model == "ann" and name in WITHOUT_ANN_MODEL:
        return None
    # published conventions price weight layers only: neuron and merge rows (graphs that are
    # not chains) appear with zero energy (docs/cost_models.md)
    weight_rows = [lc for lc in counts.layers if lc.is_weight_layer]
    priced = counts if len(weight_rows) == len(counts.layers) else dataclasses.replace(counts, layers=weight_rows)
    energies = fn(priced, **_params_for(name, fn, profile, params))
    by_name = {e.name: e for e in energies}
    works = [layer_work(lc, counts.batch_size, options) for lc in counts.layers]
    raw = []
    for w in works:
        lc = w.counts
        e = by_name.get(lc.name, LayerEnergy(lc.name))
        compute = e.synaptic_pj + e.neuron_pj
        memory = e.memory_pj + e.addressing_pj
        raw.append({
            **event_fields(w),
            "weight_bits": int(lc.weight_bits), "input_bits": 0, "state_bits": 0,
            "number_format": lc.number_format, "memory_bits": 0.0, "weight_memory": "-",
            "state_memory": "-", "accesses": [],
            "energy_ac_pj": e.synaptic_pj if not w.macs else 0.0,
            "energy_mac_pj": e.synaptic_pj if w.macs and not w.acs else 0.0,
            "energy_synaptic_pj": e.synaptic_pj, "energy_neuron_pj": e.neuron_pj,
            "energy_routing_pj": 0.0, "energy_compute_pj": compute,
            "energy_memory_weights_pj": 0.0, "energy_memory_inputs_pj": 0.0,
            "energy_memory_state_pj": 0.0, "energy_memory_outputs_pj": 0.0,
            "energy_memory_pj": memory, "energy_total_pj": compute + memory,
            "latency_share": 0.0,
        })  # fmt: skip
    return assemble_run(counts, works, raw, _Pricer(profile, "45nm"), f"cost model {name}")


__all__ = [
    "CONVENTIONS",
    "COST_MODELS",
    "DEFAULT",
    "LayerEnergy",
    "check_cost_model",
    "convention_params",
    "convention_run",
    "describe",
    "setting",
]
