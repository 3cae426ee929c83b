"""The ``kerasspiking`` convention (KerasSpiking's ModelEnergy) and its six device profiles."""

from __future__ import annotations

import pytest
from torch import nn

from snncost.costmodel.conventions import kerasspiking as ks
from snncost.hardware import HardwareProfile, available_profiles, load_profile
from snncost.sim.counts import RunCounts

#: keras_spiking/model_energy.py, ModelEnergy.devices (J): (synop, neuron, spiking)
SOURCE_TABLE_J = {
    "cpu": (8.6e-9, 8.6e-9, False),
    "gpu": (0.3e-9, 0.3e-9, False),
    "arm": (0.9e-9, 0.9e-9, False),
    "loihi": ((23.6 + 3.5) * 1e-12, 81e-12, True),
    "spinnaker": (13.3e-9, 26e-9, True),
    "spinnaker2": (450e-12, 2.19e-9, True),
}
PJ_PER_J = 1e12


def total_pj(energies) -> float:
    return sum(e.total_pj for e in energies)


@pytest.fixture(scope="module")
def runs(tiny_vgg_runs):
    """A real replay of a tiny direct-coded VGG (T=4, 3 inputs) and its ANN (tests/conftest.py)."""
    return tiny_vgg_runs


def test_module_interface():
    assert ks.NAME == "kerasspiking"
    assert "keras-spiking" in ks.SOURCE and "model_energy.py" in ks.SOURCE
    assert ks.DESCRIPTION and "\n" not in ks.DESCRIPTION
    assert ks.DEFAULT_DT == 0.001


def test_device_table_matches_the_source():
    assert set(ks.DEVICES) == set(SOURCE_TABLE_J)
    for name, (synop_j, neuron_j, spiking) in SOURCE_TABLE_J.items():
        dev = ks.DEVICES[name]
        assert dev.synop_pj == pytest.approx(synop_j * PJ_PER_J, rel=1e-12), name
        assert dev.neuron_pj == pytest.approx(neuron_j * PJ_PER_J, rel=1e-12), name
        assert dev.spiking is spiking, name


def test_docstring_example_dense_784_128_relu_on_cpu():
    # keras_spiking.ModelEnergy docstring: Dense(784 -> 128, relu), 100352 connections,
    # 128 neurons, "Total energy per inference [Joules/inf] (cpu): 8.64e-04"
    counts = ks_dense_counts()
    (layer,) = counts.layers
    assert ks.layer_stats(layer) == (100352, 128)
    (e,) = ks.price(counts, device="cpu")
    joules = e.total_pj / PJ_PER_J
    assert f"{joules:.2e}" == "8.64e-04"  # the tool's total line
    assert f"{joules:.2g}" == "0.00086"  # the tool's per-layer column
    assert float(f"{joules:.4g}") == 8.641e-4
    assert e.total_pj == pytest.approx((100352 + 128) * 8600.0, rel=1e-12)
    assert e.synaptic_pj == pytest.approx(100352 * 8600.0, rel=1e-12)
    assert e.neuron_pj == pytest.approx(128 * 8600.0, rel=1e-12)
    assert e.memory_pj == e.addressing_pj == 0.0


def ks_dense_counts() -> RunCounts:
    from snncost.sim import ann_counts

    return ann_counts(nn.Sequential(nn.Linear(784, 128), nn.ReLU()), (784,))


def test_docstring_register_device_example_through_a_profile():
    # register_device("my-cpu", energy_per_synop=1e-10, energy_per_neuron=2e-9, spiking=False)
    # gives "Total energy per inference [Joules/inf] (my-cpu): 1.03e-05"
    base = load_profile("kerasspiking-cpu").to_dict()
    base.update(
        name="my-cpu",
        synaptic_op_pj={"value": 100.0, "source": "kerasspiking"},
        neuron_update_pj={"value": 2000.0, "source": "kerasspiking"},
    )
    my_cpu = HardwareProfile.model_validate(base)
    (e,) = ks.price(ks_dense_counts(), profile=my_cpu)
    assert f"{e.total_pj / PJ_PER_J:.2e}" == "1.03e-05"
    assert f"{e.total_pj / PJ_PER_J:.2g}" == "1e-05"


def test_non_spiking_device_ignores_timesteps_activity_batch_and_dt(linear_layer):
    # one pass as an ANN: the same layer replayed for 5 steps with spikes costs the same
    ann = RunCounts("ann", 1, 1, [linear_layer("fc", 784, 128, T=1, macs=[100352])])
    snn = RunCounts("snn", 5, 2, [linear_layer("fc", 784, 128, T=5, acs=[7, 0, 3, 9, 1], batch=2)])
    ref = total_pj(ks.price(ann, device="gpu"))
    assert ref == pytest.approx((100352 + 128) * 300.0, rel=1e-12)
    assert total_pj(ks.price(snn, device="gpu")) == pytest.approx(ref, rel=1e-12)
    assert total_pj(ks.price(ann, device="gpu", dt=0.02)) == pytest.approx(ref, rel=1e-12)
    # the linear read-out has no activation, so no neuron updates (Dense without activation)
    out = RunCounts("ann", 1, 1, [linear_layer("out", 16, 10, T=1, macs=[160], neuron="output")])
    (e,) = ks.price(out, device="cpu")
    assert (e.synaptic_pj, e.neuron_pj) == (160 * 8600.0, 0.0)


def test_spiking_device_by_hand(linear_layer):
    # direct-coded 4 -> 3 LIF layer, then 3 -> 2 read-out; T = 2, one input.
    # layer 1: 12 MACs per step -> 24 synops; 3 neurons x 2 steps = 6 updates
    # layer 2: 2 input spikes then 1, fan-out 2 -> 4 + 2 = 6 synops; read-out: no updates
    counts = RunCounts(
        "snn",
        2,
        1,
        [
            linear_layer("fc1", 4, 3, T=2, macs=[12, 12]),
            linear_layer("fc2", 3, 2, T=2, acs=[4, 2], neuron="output"),
        ],
    )
    e1, e2 = ks.price(counts, device="loihi")
    assert e1.synaptic_pj == pytest.approx(24 * 27.1)  # 650.4
    assert e1.neuron_pj == pytest.approx(6 * 81.0)  # 486
    assert e2.synaptic_pj == pytest.approx(6 * 27.1)  # 162.6
    assert e2.neuron_pj == 0.0
    assert total_pj([e1, e2]) == pytest.approx(1299.0)
    # dt cancels (the replay counts spikes per step); a batch of 2 with twice the events is equal
    assert total_pj(ks.price(counts, device="loihi", dt=0.01)) == pytest.approx(1299.0)
    doubled = RunCounts(
        "snn",
        2,
        2,
        [
            linear_layer("fc1", 4, 3, T=2, macs=[24, 24], batch=2),
            linear_layer("fc2", 3, 2, T=2, acs=[8, 4], neuron="output", batch=2),
        ],
    )
    assert total_pj(ks.price(doubled, device="loihi")) == pytest.approx(1299.0)
    # the same events on spinnaker2: 30 synops x 450 pJ + 6 updates x 2190 pJ
    assert total_pj(ks.price(counts, device="spinnaker2")) == pytest.approx(30 * 450 + 6 * 2190)


def test_spiking_device_on_a_real_replay(runs):
    snn, ann = runs
    B = snn.batch_size
    energies = ks.price(snn, device="loihi")
    for lc, e in zip(snn.layers, energies, strict=True):
        synops = (float(lc.synaptic_ops.sum()) + float(lc.macs.sum())) / B
        assert e.synaptic_pj == pytest.approx(synops * 27.1, rel=1e-12), lc.name
        updates = snn.timesteps * lc.neurons if lc.neuron == "lif" else 0
        assert e.neuron_pj == pytest.approx(updates * 81.0, rel=1e-12), lc.name
    # a dense layer fed by LIF spikes: the tool's connections x mean rate x dt x T, with
    # rate = spikes / (inputs x T x dt x B), is exactly the replay's ACs
    fc = next(i for i, lc in enumerate(snn.layers) if lc.kind == "linear" and lc.neuron == "lif")
    lc = snn.layers[fc]
    dt, T = 0.001, snn.timesteps
    rate_hz = float(lc.input_events.sum()) / (lc.inputs * T * dt * B)
    tool_synops = lc.padded_macs * rate_hz * dt * T
    assert 0 < tool_synops < T * lc.padded_macs  # activity-dependent
    assert energies[fc].synaptic_pj == pytest.approx(tool_synops * 27.1, rel=1e-12)
    # on a non-spiking device the SNN and its ANN cost the same (one ANN pass each)
    assert total_pj(ks.price(snn, device="cpu")) == pytest.approx(
        total_pj(ks.price(ann, device="cpu")), rel=1e-12
    )
    conn = sum(lc.padded_macs for lc in ann.layers)
    neurons = sum(lc.neurons for lc in ann.layers if lc.neuron != "output")
    assert total_pj(ks.price(ann, device="cpu")) == pytest.approx((conn + neurons) * 8600.0)


def test_errors(runs):
    snn, ann = runs
    with pytest.raises(ValueError, match="spiking device needs spike counts"):
        ks.price(ann, device="loihi")
    with pytest.raises(ValueError, match="Energy specs unknown for device"):
        ks.price(snn, device="tpu")
    for bad in (0, -0.001, float("inf"), "x"):
        with pytest.raises(ValueError, match="dt"):
            ks.price(snn, dt=bad)
    with pytest.raises(ValueError, match="synaptic_op_pj"):
        ks.price(snn, profile="45nm")
    # spiking= overrides the table, as register_device allows any combination
    forced = ks.price(snn, device="cpu", spiking=True)
    loihi = ks.price(snn, device="loihi")
    assert forced[1].synaptic_pj == pytest.approx(loihi[1].synaptic_pj / 27.1 * 8600.0)


@pytest.mark.parametrize("device", sorted(SOURCE_TABLE_J))
def test_profiles_load_and_match_the_table(device, runs):
    name = f"kerasspiking-{device}"
    assert name in available_profiles()
    prof = load_profile(name)
    dev = ks.DEVICES[device]
    assert prof.synaptic_op_pj.value == dev.synop_pj
    assert prof.neuron_update_pj.value == dev.neuron_pj
    assert (prof.default_dataflow == "neuromorphic") is dev.spiking
    assert all(level.read_pj_per_bit == level.write_pj_per_bit == 0.0 for level in prof.memory)
    assert prof.synaptic_op_pj.source in prof.references
    if not dev.spiking:  # the tool counts every synop as one MAC
        assert prof.mac_energy(32, "float") == dev.synop_pj
    assert ks.device_from_profile(prof) == dev
    snn, ann = runs
    for counts in (snn, ann) if not dev.spiking else (snn,):
        by_profile = ks.price(counts, profile=name, device="ignored-when-profile-given")
        by_device = ks.price(counts, device=device)
        assert by_profile == by_device
