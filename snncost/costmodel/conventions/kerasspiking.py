"""KerasSpiking's ``ModelEnergy``: one energy per synaptic op and one per neuron update, per device.

Rules (``keras_spiking.ModelEnergy.layer_energy``). Each layer has
``connections`` (every input element times every output unit it reaches:
``H_out*W_out*C_out * kh*kw*C_in`` for a conv, ``in*out`` for a dense
layer) and ``neurons`` (output units, counted only when the layer has a
nonlinear activation). Per inference::

    synop energy  = E_synop  * connections * rate * dt * timesteps
    neuron energy = E_neuron * neurons * timesteps

``rate`` is the layer's mean absolute input, in Hz, measured on
``example_data``. On a *non-spiking* device (cpu, gpu, arm) the tool sets
``rate = 1/dt`` and ``timesteps = 1``: the model runs once as an ANN,
every connection once, and ``dt`` cancels. On a *spiking* device (loihi,
spinnaker, spinnaker2) a synaptic op happens only when an input spikes, and
neurons update every timestep. Device table, J per synop / per neuron update:
cpu 8.6e-9 / 8.6e-9, gpu 0.3e-9 / 0.3e-9, arm 0.9e-9 / 0.9e-9 (each "one
MAC", Degnan et al., IEEE TVLSI 2016); loihi (23.6 + 3.5)e-12 / 81e-12
(Davies et al. 2018); spinnaker 13.3e-9 / 26e-9 and spinnaker2 450e-12 /
2.19e-9 (Hoppner et al. 2019). The docstring example Dense(784 -> 128, relu)
costs (100352 + 128) * 8.6e-9 J = 8.64e-4 J per inference on cpu.

The loihi synop figure adds 3.5 to Davies et al.'s 23.6 pJ minimum energy
per synaptic spike op. Davies et al.'s Table 2 gives 3.5 as the maximum
*time* per synaptic op, in ns (see ``hwprofiles/loihi.yaml``). The tool
does not say what its 3.5 pJ is. It is reproduced as is (27.1 pJ).

Source: KerasSpiking 0.3.1 (Applied Brain Research),
https://github.com/nengo/keras-spiking, file ``keras_spiking/model_energy.py``
(class ``ModelEnergy``), tests ``keras_spiking/tests/test_model_energy.py``,
and ``docs/examples/model-energy.ipynb``, commit
b28875ae840ff6517fca3e69244d37bd20f29b5c.

What it leaves out (as the tool states): all overhead, that is data
movement on and off the device, memory, spike routing, and static power.
Only synaptic ops and neuron updates are priced, and they land in
``synaptic_pj`` and ``neuron_pj``.

How snncost maps its events onto the tool's counts:

* Non-spiking device: ``connections`` is the layer's ``padded_macs`` (the
  tool counts padding taps too), ``neurons`` is its output size for a
  ``lif``/``relu`` layer and 0 for the non-spiking read-out (a Keras
  ``Dense`` with no activation). It is one step, whatever
  ``counts.timesteps`` is, and does not depend on activity or
  ``batch_size``. That is the tool's "traditional non-spiking ANN".
* Spiking device: ``connections * rate * dt * timesteps`` is the number of
  synaptic ops actually triggered by input spikes. snncost takes it from
  the replay as ``synaptic_ops`` (input spikes times their real fan-out),
  so ``dt`` cancels, because the replay counts spikes per step, not per
  second. For a dense layer fed by binary spikes this equals the tool's
  mean-rate product exactly. For a conv layer the tool's mean rate times
  ``connections`` also counts padding taps. After a ``k x k`` average pool
  the tool reads the mean of the pooled (non-binary) values, while the
  replay delivers every pre-pool spike as its own event. The replay's count
  is then about ``k*k`` times the tool's. Neuron updates are the replay's ``neuron_updates`` (every
  neuron, every step) of the ``lif`` layers, and 0 for the read-out.
* The direct-coded (analog) first layer on a spiking device: the tool
  would read the input's mean absolute value as a rate in Hz. Pixel
  intensities are not spike rates, so snncost instead charges one synop
  per real-tap MAC per step (``LayerCounts.macs``). That means the analog
  input is delivered to every connection every step.
* An ANN's counts (``counts.model == "ann"``) on a spiking device raise
  ``ValueError``, because that needs spike rates, which only a replay
  gives. On a non-spiking device an ANN and its SNN cost the same, as in
  the tool.
* ``profile=`` (a :class:`~snncost.hardware.HardwareProfile`, or a name
  such as ``"kerasspiking-loihi"``) reads ``synaptic_op_pj`` and
  ``neuron_update_pj`` from the profile. The profile is spiking when its
  ``default_dataflow`` is ``neuromorphic``. ``spiking=`` overrides either
  source, as ``ModelEnergy.register_device`` allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import LayerCounts, RunCounts

if TYPE_CHECKING:
    from snncost.hardware.profile import HardwareProfile

NAME = "kerasspiking"
SOURCE = (
    "KerasSpiking 0.3.1 (Applied Brain Research), keras_spiking.ModelEnergy: "
    "https://github.com/nengo/keras-spiking, keras_spiking/model_energy.py, "
    "keras_spiking/tests/test_model_energy.py, docs/examples/model-energy.ipynb "
    "(commit b28875ae840ff6517fca3e69244d37bd20f29b5c). Device figures as tabulated there, "
    "from B. Degnan, B. Marr, J. Hasler, 'Assessing trends in performance per watt for signal "
    "processing applications', IEEE Trans. VLSI Systems 24(1), pp. 58-66, 2016 (cpu, gpu, "
    "arm); M. Davies et al., 'Loihi: A neuromorphic manycore processor with on-chip "
    "learning', IEEE Micro 38(1), 2018, pp. 82-99 (loihi); S. Hoppner et al., 'Dynamic power "
    "management for neuromorphic many-core systems', IEEE Trans. Circuits and Systems I "
    "66(8), 2019, pp. 2973-2986, arXiv:1903.08941 (spinnaker, spinnaker2)."
)
DESCRIPTION = (
    "KerasSpiking ModelEnergy: synops x E_synop + neuron updates x E_neuron per device; "
    "non-spiking devices run every connection once, spiking devices only on input spikes."
)


@dataclass(frozen=True)
class Device:
    """One row of KerasSpiking's device table, in pJ (the tool's joules x 1e12)."""

    synop_pj: float  # energy per synaptic operation
    neuron_pj: float  # energy per neuron update
    spiking: bool  # event-based: synops only for incoming spikes, for every timestep


#: KerasSpiking's ``ModelEnergy.devices`` (model_energy.py), converted from J to pJ.
DEVICES: dict[str, Device] = {
    "cpu": Device(synop_pj=8600.0, neuron_pj=8600.0, spiking=False),  # 8.6e-9 J, Intel i7-4960X
    "gpu": Device(synop_pj=300.0, neuron_pj=300.0, spiking=False),  # 0.3e-9 J, GTX Titan Black
    "arm": Device(synop_pj=900.0, neuron_pj=900.0, spiking=False),  # 0.9e-9 J, ARM Cortex-A
    "loihi": Device(synop_pj=27.1, neuron_pj=81.0, spiking=True),  # (23.6 + 3.5)e-12 J, 81e-12 J
    "spinnaker": Device(synop_pj=13300.0, neuron_pj=26000.0, spiking=True),  # 13.3e-9, 26e-9 J
    "spinnaker2": Device(synop_pj=450.0, neuron_pj=2190.0, spiking=True),  # 450e-12, 2.19e-9 J
}

#: KerasSpiking's default ``dt`` (``keras_spiking.default.dt``), seconds.
DEFAULT_DT = 0.001


def layer_stats(lc: LayerCounts) -> tuple[int, int]:
    """KerasSpiking's ``(connections, neurons)`` of one layer, per sample and per timestep.

    ``connections`` = output size x (kernel taps x input channels), padding
    taps included (``padded_macs``); ``neurons`` = output size when an
    activation follows (``lif``/``relu``), 0 for the linear read-out.
    """
    neurons = lc.neurons if lc.neuron in ("lif", "relu") else 0
    return int(lc.padded_macs), int(neurons)


def device_from_profile(profile: HardwareProfile | str, spiking: bool | None = None) -> Device:
    """A :class:`Device` from a hardware profile's ``synaptic_op_pj`` and ``neuron_update_pj``.

    Spiking when the profile's ``default_dataflow`` is ``neuromorphic``,
    unless ``spiking`` says otherwise.
    """
    from snncost.hardware import load_profile

    prof = load_profile(profile)
    missing = [f for f in ("synaptic_op_pj", "neuron_update_pj") if getattr(prof, f) is None]
    if missing:
        raise ValueError(
            f"profile {prof.name!r} has no {' / '.join(missing)}: the kerasspiking convention "
            "needs a per-event energy for synaptic ops and for neuron updates"
        )
    is_spiking = prof.default_dataflow == "neuromorphic" if spiking is None else bool(spiking)
    return Device(
        synop_pj=float(prof.synaptic_op_pj.value),
        neuron_pj=float(prof.neuron_update_pj.value),
        spiking=is_spiking,
    )


def _resolve(device: str, profile, spiking: bool | None) -> Device:
    if profile is not None:
        return device_from_profile(profile, spiking)
    key = str(device).lower()
    if key not in DEVICES:
        raise ValueError(
            f"Energy specs unknown for device {device!r}; choose one of "
            f"{', '.join(DEVICES)} or pass profile="
        )
    dev = DEVICES[key]
    if spiking is not None and bool(spiking) != dev.spiking:
        dev = Device(dev.synop_pj, dev.neuron_pj, bool(spiking))
    return dev


def price(
    counts: RunCounts,
    device: str = "cpu",
    dt: float = DEFAULT_DT,
    profile: HardwareProfile | str | None = None,
    spiking: bool | None = None,
) -> list[LayerEnergy]:
    """KerasSpiking's energy per inference of each weight layer, in pJ.

    ``device`` is a row of :data:`DEVICES`. ``profile`` (a profile or its
    name, e.g. ``"kerasspiking-loihi"``) replaces it when given. ``spiking``
    overrides whether the device is event-based. ``dt`` (s) is the device
    timestep. It must be positive, but it cancels out: a non-spiking device
    runs at rate ``1/dt`` for one ``dt``, and the replay counts spikes per
    step, not per second.

    Non-spiking device: ``connections * E_synop + neurons * E_neuron``, one
    step. Spiking device (needs an SNN replay): ``(synaptic_ops + macs) *
    E_synop + neuron_updates * E_neuron`` summed over steps and divided by
    ``batch_size``. See the module docstring for the mapping.
    """
    try:
        dt_ok = math.isfinite(float(dt)) and float(dt) > 0
    except (TypeError, ValueError):
        dt_ok = False
    if not dt_ok:
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    dev = _resolve(device, profile, spiking)
    if dev.spiking and counts.model != "snn":
        raise ValueError(
            "a spiking device needs spike counts from an SNN replay (counts.model == 'snn'); "
            f"got counts.model == {counts.model!r}. KerasSpiking reads firing rates from "
            "example data, which an ANN's counts do not hold"
        )
    if counts.batch_size <= 0:
        raise ValueError(f"counts.batch_size must be positive, got {counts.batch_size}")
    out = []
    for lc in counts.layers:
        if dev.spiking:
            synops = float(lc.synaptic_ops.sum() + lc.macs.sum()) / counts.batch_size
            updates = 0.0
            if lc.neuron != "output":
                updates = float(lc.neuron_updates.sum()) / counts.batch_size
        else:
            connections, neurons = layer_stats(lc)
            synops, updates = float(connections), float(neurons)
        out.append(
            LayerEnergy(
                name=lc.name,
                synaptic_pj=synops * dev.synop_pj,
                neuron_pj=updates * dev.neuron_pj,
            )
        )
    return out


__all__ = [
    "DEFAULT_DT",
    "DESCRIPTION",
    "DEVICES",
    "NAME",
    "SOURCE",
    "Device",
    "device_from_profile",
    "layer_stats",
    "price",
]
