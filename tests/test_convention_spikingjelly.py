"""The ``spikingjelly`` convention: SpikingJelly's op_counter compute and Lemaire-style energy."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snncost.nn as sn
from snncost.costmodel.conventions import spikingjelly as sj
from snncost.graph import build_graph
from snncost.models import NeuronConfig, VGGSpec, build_snn
from snncost.sim import ann_counts, simulate
from snncost.sim.counts import LayerCounts, RunCounts


def layer(name="fc", kind="linear", neuron="output", input_shape=(4,), output_shape=(3,), **kw):
    """A hand-built layer; event arrays are per step, summed over the batch."""
    steps = len(kw.get("synaptic_ops", kw.get("macs", [0])))
    zeros = np.zeros(steps)
    inputs, neurons = int(np.prod(input_shape)), int(np.prod(output_shape))
    if kind == "linear":
        weights, kernel, real = inputs * neurons, (1, 1), inputs * neurons
    else:
        kernel = kw.pop("kernel", (3, 3))
        weights = output_shape[0] * input_shape[0] * kernel[0] * kernel[1]
        real = weights * output_shape[1] * output_shape[2]
    fields = dict(
        input_events=zeros,
        synaptic_ops=zeros,
        synaptic_ops_nonzero=zeros,
        macs=zeros,
        neuron_updates=zeros,
        output_spikes=zeros,
        real_macs=real,
        padded_macs=real,
    )
    fields.update(
        {k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in kw.items()}
    )
    return LayerCounts(
        name=name,
        kind=kind,
        neuron=neuron,
        input_shape=input_shape,
        output_shape=output_shape,
        weight_count=weights,
        weight_bits=32,
        number_format="float",
        kernel=kernel,
        **fields,
    )


def run(*layers, batch=1, model="snn"):
    return RunCounts(
        model=model, timesteps=layers[0].timesteps, batch_size=batch, layers=list(layers)
    )


def total(counts, **kw):
    return sum(e.total_pj for e in sj.price(counts, **kw))


# -- SpikingJelly's own test numbers ----------------------------------------------------


def test_module_contract():
    assert sj.NAME == "spikingjelly"
    assert "fangwei123456/spikingjelly" in sj.SOURCE and "op_counter" in sj.SOURCE
    assert sj.DESCRIPTION and "\n" not in sj.DESCRIPTION


def test_memory_cost_per_byte_reproduces_lemaire_cost_config():
    # test_lemaire_energy_cost_config_converts_access_costs_to_pj_per_byte
    assert sj.memory_cost_per_byte(8 * 1024) == pytest.approx(2.5, rel=1e-4)
    assert sj.memory_cost_per_byte(32 * 1024) == pytest.approx(5.0, rel=1e-4)
    assert sj.memory_cost_per_byte(1024 * 1024) == pytest.approx(25.0, rel=1e-4)
    # piecewise linear between the breakpoints, clamped outside them
    assert sj.memory_cost_per_byte(4 * 1024) == pytest.approx(1.25)
    assert sj.memory_cost_per_byte(20 * 1024) == pytest.approx(3.75)
    assert sj.memory_cost_per_byte(8 * 1024 * 1024) == pytest.approx(25.0)
    assert sj.memory_cost_per_byte(0) == 0.0


def test_compute_presets_reproduce_horowitz_table():
    # test_compute_energy_cost_config_presets_match_horowitz_reference_table
    assert sj.COMPUTE_PRESETS == {"fp32": (4.6, 0.9), "fp16": (1.5, 0.4), "int8": (0.23, 0.03)}


def test_spike_linear_counts_acs():
    # test_compute_energy_spike_linear_counts_synop_as_auxiliary_only:
    # Linear(4, 3) on [1, 0, 1, 0] = 6 ACs = 5.4 pJ at fp32
    fc = layer(input_events=[2], synaptic_ops=[6])
    counts = run(fc)
    assert sj.compute_energy_pj(0, 6) == pytest.approx(5.4, rel=1e-4)
    assert total(counts) == pytest.approx(5.4, rel=1e-4)
    # test_compute_energy_fp16_preset_changes_only_comparison_regime: Linear(4, 2), 4 ACs
    fc2 = layer(output_shape=(2,), input_events=[2], synaptic_ops=[4])
    assert total(run(fc2), precision="fp16") == pytest.approx(1.6, rel=1e-4)


def test_dense_linear_counts_macs():
    # test_compute_energy_dense_linear_counts_mac: a [2, 4] input into Linear(4, 3)
    # = 24 MACs = 110.4 pJ for the batch of 2
    fc = layer(analog=True, macs=[24])
    counts = run(fc, batch=2, model="ann")
    assert sj.compute_energy_pj(24, 0) == pytest.approx(110.4, rel=1e-4)
    assert total(counts) * counts.batch_size == pytest.approx(110.4, rel=1e-4)


def test_lemaire_addressing_reproduces_counter_tests():
    # test_lemaire_addressing_counter_linear_counts_dense_and_binary: Linear(8, 4)
    assert sj.linear_addressing(3 * 8, 3 * 4, 4) == {"acc_addr": 24 + 12, "mac_addr": 0}
    assert sj.linear_addressing(24, 12, 4, spike_nnz=11) == {"acc_addr": 11 * 4, "mac_addr": 0}
    # test_lemaire_addressing_counter_conv_counts_dense_binary_and_grouped:
    # dense [1, 2, 5, 5] into Conv2d(2, 4, 3): 50 inputs + 36 outputs + 4 x 9
    assert sj.conv_addressing(50, 36, 4, 9) == {"acc_addr": 50 + 36 + 36, "mac_addr": 0}
    # two spikes into Conv2d(4, 8, 3, groups=2)
    assert sj.conv_addressing(100, 72, 8, 9, spike_nnz=2, groups=2) == {
        "acc_addr": 2 * 4 * 9,
        "mac_addr": 4,
    }


def test_lemaire_linear_bytes_use_element_size():
    # test_lemaire_energy_linear_inout_uses_runtime_dtype_bytes: fp16 Linear(8, 4), x [3, 8]
    assert sj.layer_call_bytes(3 * 8, 3 * 4, 32, 2) == (48, 24, 64)
    # a sparse input reads nnz inputs and nnz x fan-out weights
    assert sj.layer_call_bytes(24, 12, 32, 4, in_nnz=5, fan_out=4) == (20, 48, 80)


def test_neuron_potential_bytes_reproduce_traced_spikingjelly():
    # NeuronStateCounter totals of SpikingJelly IFNode / LIFNode(tau=2, decay_input=False),
    # soft reset, v_th = 0.7, eval, 40 neurons, 4 single steps (run on its code at the commit)
    nnz = [15, 15, 40, 15]  # nonzero input currents per step (40 = dense)
    for leaky, spikes, reads, writes in [
        (False, [11, 12, 32, 27], 2032, 1392),
        (True, [10, 14, 31, 28], 4596, 3316),
    ]:
        rd = wr = 0.0
        for a, s in zip(nnz, spikes, strict=True):
            r, w = sj.neuron_potential_bytes(
                40,
                4,
                leaky=leaky,
                sparse_input_nnz=a if a <= 20 else None,
                sparse_spikes=s if s <= 20 else None,
            )
            rd, wr = rd + r, wr + w
        assert (rd, wr) == (reads, writes)


# -- pricing rules on hand-built counts ---------------------------------------------------


def test_neuron_acs_and_readout():
    # a LIF layer: 4 per neuron at the first step, 5 after; IF 3; read-out T - 1 per output
    lif = layer(
        "c",
        "conv",
        "lif",
        (1, 2, 2),
        (2, 2, 2),
        kernel=(1, 1),
        input_events=[1, 1, 1],
        synaptic_ops=[2, 2, 2],
        active_neurons=[2, 2, 2],
        leak=0.5,
    )
    out = layer(
        output_shape=(3,),
        input_shape=(8,),
        input_events=[0, 0, 0],
        synaptic_ops=[0, 0, 0],
        active_neurons=[0, 0, 0],
    )
    e = sj.price(run(lif, out))
    assert e[0].neuron_pj == pytest.approx(8 * (4 + 5 + 5) * 0.9)
    assert e[1].neuron_pj == pytest.approx(2 * 3 * 0.9)
    lif.leak = 1.0
    assert sj.price(run(lif, out))[0].neuron_pj == pytest.approx(8 * 3 * 3 * 0.9)
    # silent steps (all-zero input current and potential): IF 1, LIF 2 per neuron
    lif.active_neurons = np.array([0.0, 2, 2])
    assert sj.price(run(lif, out))[0].neuron_pj == pytest.approx(8 * (1 + 3 + 3) * 0.9)
    lif.leak = 0.5
    assert sj.price(run(lif, out))[0].neuron_pj == pytest.approx(8 * (2 + 4 + 5) * 0.9)
    # a bias makes the current dense: never silent
    assert sj.price(run(lif, out), bias=["c"])[0].neuron_pj == pytest.approx(8 * 14 * 0.9)


def test_nonbinary_inputs_price_dense_macs_on_nonzero_steps():
    conv = layer(
        "c",
        "conv",
        "lif",
        (1, 4, 4),
        (2, 4, 4),
        input_events=[0, 3],
        synaptic_ops=[0, 20],
        active_neurons=[0, 10],
        padded_macs=288,
    )
    counts = run(conv)
    spike = sj.price(counts)[0]
    assert spike.synaptic_pj == pytest.approx(20 * 0.9)
    # per step: the all-zero pooled map at step 0 is binary (no ops), step 1 costs 288 MACs
    assert sj.price(counts, nonbinary_inputs=["c"])[0].synaptic_pj == pytest.approx(288 * 4.6)
    # one multi-step call sees a non-binary sequence: both steps' MACs
    multi = sj.price(counts, nonbinary_inputs=["c"], step_mode="m")[0]
    assert multi.synaptic_pj == pytest.approx(2 * 288 * 4.6)
    with pytest.raises(ValueError, match="unknown layers"):
        sj.price(counts, nonbinary_inputs=["nope"])


def test_bad_parameters_rejected():
    counts = run(layer(input_events=[2], synaptic_ops=[6]))
    for kw in (
        {"precision": "bf16"},
        {"variant": "dense"},
        {"step_mode": "x"},
        {"state_tracking": "all"},
    ):
        with pytest.raises(ValueError):
            sj.price(counts, **kw)


# -- real replay counts --------------------------------------------------------------------


def two_lif_snn(T=3):
    torch.manual_seed(0)
    model = sn.SpikingSequential(
        OrderedDict(
            enc=sn.DirectEncoder(T),
            conv=nn.Conv2d(2, 3, 3, padding=1, bias=False),
            lif1=sn.LIF(threshold=0.3, learn_threshold=False, learn_leak=False),
            conv2=nn.Conv2d(3, 4, 3, padding=1, bias=False),
            lif2=sn.LIF(threshold=0.3, leak=0.5, learn_threshold=False, learn_leak=False),
            flat=nn.Flatten(),
            fc=nn.Linear(4 * 4 * 4, 5, bias=False),
            out=sn.OutputIntegrator(),
        )
    )
    return model.eval()


@pytest.fixture(scope="module")
def replay():
    T, B = 3, 2
    model = two_lif_snn(T)
    graph = build_graph(model, (2, 4, 4))
    x = torch.rand(B, 2, 4, 4, generator=torch.Generator().manual_seed(1)) + 0.5
    counts = simulate(graph, x, record_spikes=True)
    return counts, graph, x


def test_compute_variant_on_replay_matches_hand_count(replay):
    counts, _, _ = replay
    T, B = counts.timesteps, counts.batch_size
    s1 = torch.as_tensor(counts.extra["spikes"]["lif1"], dtype=torch.float64)  # [T, B, 3, 4, 4]
    s2 = torch.as_tensor(counts.extra["spikes"]["lif2"], dtype=torch.float64)
    assert all(s1[t].sum() > 0 for t in range(T))  # conv2's input current is never all-zero
    # SpikingJelly: conv over all padded taps each step; ACs = conv(spikes, ones).sum()
    conv_macs = T * (2 * 3 * 3) * (4 * 4) * 3
    conv2_acs = (
        sum(
            F.conv2d(s1[t], torch.ones(4, 3, 3, 3, dtype=torch.float64), padding=1).sum()
            for t in range(T)
        ).item()
        / B
    )
    fc_acs = s2.sum().item() * 5 / B
    lif1_acs = 3 * 48 * T  # IF: charge, v - v_th, reset
    lif2_acs = 64 * (4 + 5 * (T - 1))  # LIF: 5, 4 while v is still all-zero
    readout = (T - 1) * 5
    e = sj.price(counts, "fp32", "compute")
    assert [x.name for x in e] == ["conv", "conv2", "fc"]
    assert e[0].synaptic_pj == pytest.approx(conv_macs * 4.6, rel=1e-12)
    assert e[1].synaptic_pj == pytest.approx(conv2_acs * 0.9, rel=1e-12)
    assert e[2].synaptic_pj == pytest.approx(fc_acs * 0.9, rel=1e-12)
    assert [x.neuron_pj for x in e] == pytest.approx(
        [lif1_acs * 0.9, lif2_acs * 0.9, readout * 0.9], rel=1e-12
    )
    assert all(x.memory_pj == 0 and x.addressing_pj == 0 for x in e)
    int8 = sj.price(counts, "int8", "compute")
    expected = conv_macs * 0.23 + (conv2_acs + fc_acs + lif1_acs + lif2_acs + readout) * 0.03
    assert sum(x.total_pj for x in int8) == pytest.approx(expected, rel=1e-12)


def test_per_inference_does_not_depend_on_batch(replay):
    counts, graph, x = replay
    twice = simulate(graph, torch.cat([x, x]))
    for kw in ({}, {"variant": "lemaire"}, {"variant": "lemaire", "step_mode": "m"}):
        assert total(twice, **kw) == pytest.approx(total(counts, **kw), rel=1e-12)


def test_state_tracking_gap(replay):
    counts, _, _ = replay
    T, N2 = counts.timesteps, 64
    gap = sj.price(counts, variant="lemaire")
    full = sj.price(counts, variant="lemaire", state_tracking="complete")
    assert gap[0].neuron_pj == full[0].neuron_pj  # the first neuron layer is fully tracked
    # the second misses its first step: LIF 6 adds/compares + 1 divide per neuron
    step_ops = N2 * (6 * 0.1 + 1 * 3.2)
    assert full[1].neuron_pj - gap[1].neuron_pj == pytest.approx(step_ops)
    multi = sj.price(counts, variant="lemaire", step_mode="m")
    assert multi[1].neuron_pj == 0.0  # never tracked within a multi-step call
    multi_full = sj.price(counts, variant="lemaire", step_mode="m", state_tracking="complete")
    assert multi_full[1].neuron_pj == pytest.approx(T * step_ops)


def test_lemaire_variant_on_poisson_replay_matches_hand_count():
    T = 3
    torch.manual_seed(2)
    model = sn.SpikingSequential(
        OrderedDict(
            enc=sn.PoissonEncoder(T),
            fc1=nn.Linear(8, 6, bias=False),
            lif1=sn.LIF(threshold=0.3, learn_threshold=False, learn_leak=False),
            fc2=nn.Linear(6, 3, bias=False),
            out=sn.OutputIntegrator(),
        )
    ).eval()
    graph = build_graph(model, (8,))
    x = (torch.rand(T, 1, 8, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    counts = simulate(graph, x, record_spikes=True)
    n0 = x.reshape(T, -1).sum(1).numpy()  # input spikes per step
    n1 = counts.extra["spikes"]["lif1"].reshape(T, -1).sum(1)  # hidden spikes per step
    assert n0.min() > 0 and 0 < n1.sum()
    e_add, e = 0.1, 4
    acs = 6 * n0.sum() + 3 * n1.sum()
    ops = 2 * acs * e_add + 4 * 6 * T * e_add + (T - 1) * 3 * e_add  # SynOps + ACs, IF, read-out
    addressing = acs * e_add
    # per step and layer: (read_in, write_out, read_params); outputs are dense when any input is
    calls = [(e * k, e * 6, e * 6 * k) for k in n0]
    calls += [(e * k, e * 3 * (k > 0), e * 3 * k) for k in n1]
    reads, writes, params = (np.array(c, dtype=float) for c in zip(*calls, strict=True))
    pot = sum((6 + 12 + (k if k <= 3 else 6)) * e + (6 + 6 + (k if k <= 3 else 6)) * e for k in n1)
    memory = (
        reads.sum() * sj.memory_cost_per_byte(reads.max())
        + writes.sum() * sj.memory_cost_per_byte(writes.max())
        + params.sum() * sj.memory_cost_per_byte(params.max())
        + pot * sj.memory_cost_per_byte(6 * e)
    )
    got = sj.price(counts, "fp32", "lemaire")
    assert sum(x.synaptic_pj + x.neuron_pj for x in got) == pytest.approx(ops, rel=1e-12)
    assert sum(x.addressing_pj for x in got) == pytest.approx(addressing, rel=1e-12)
    assert sum(x.memory_pj for x in got) == pytest.approx(memory, rel=1e-12)
    # fp16 tensors: half the bytes in every buffer
    half = sj.price(counts, "fp16", "lemaire")
    assert sum(x.memory_pj for x in half) < sum(x.memory_pj for x in got)
    assert sum(x.addressing_pj for x in half) == pytest.approx(addressing, rel=1e-12)


def test_params_from_graph_and_ann():
    spec = VGGSpec(features=[4, "P", 8], classifier=[], in_channels=1, image_size=8, dropout=0.0)
    torch.manual_seed(0)
    avg = build_graph(build_snn(spec, NeuronConfig(timesteps=2, encoding="direct")))
    params = sj.params_from_graph(avg)
    names = [n.name for n in avg.weight_layers()]
    assert params["nonbinary_inputs"] == [names[1]]
    assert set(params["bias"]) <= set(names)
    spec_max = VGGSpec(**{**spec.to_dict(), "pool": "max"})
    assert (
        sj.params_from_graph(build_graph(build_snn(spec_max, NeuronConfig(timesteps=2))))[
            "nonbinary_inputs"
        ]
        == []
    )
    # the ANN: every layer dense (MACs over padded taps), no neurons, no read-out ACs
    x = torch.rand(3, 1, 8, 8)
    ann = ann_counts(avg, inputs=x)
    e = sj.price(ann, **params)
    padded = [lc.padded_macs for lc in ann.layers]
    assert [v.synaptic_pj for v in e] == pytest.approx([m * 4.6 for m in padded])
    assert all(v.neuron_pj == 0 for v in e)
    lem = sj.price(ann, variant="lemaire", **params)
    assert all(v.memory_pj > 0 and v.addressing_pj > 0 for v in lem)
