"""The cost model (snncost.costmodel) and CostReport, on hand-built RunCounts (no simulator needed)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from snncost.costmodel import (
    DATAFLOWS,
    CostOptions,
    Widths,
    address_bits,
    ann_baselines,
    break_even,
    cost_run,
    resolve_dataflows,
    silent,
    snn_widths,
)
from snncost.costmodel.pricing import SUMMED_FIELDS
from snncost.hardware import load_profile
from snncost.report import CostReport, latex_escape
from snncost.sim.counts import LayerCounts, RunCounts

#: an fp32 SNN (each layer's own weight width, fp32 analog input and membranes, 1-bit spikes)
SNN_FP32 = Widths("float", None, 32, 32, 1)
#: an fp32 ANN (weights, activations, partial sums)
ANN_FP32 = Widths("float", 32, 32, 32, 32)
TENSORS = ("weights", "inputs", "state", "outputs")


def dense_pass(kind, input_shape, output_shape, kernel, stride, padding) -> tuple[int, int]:
    """``(real, padded)`` MACs of one dense pass of a layer (one sample, one step)."""
    if kind == "linear":
        n = int(np.prod(input_shape)) * int(np.prod(output_shape))
        return n, n
    c, h, w = input_shape
    k, p, q = output_shape

    def taps(kk: int, n_out: int, n_in: int, s: int, pad: int) -> int:
        pos = np.arange(n_out)[None, :] * s - pad + np.arange(kk)[:, None]
        return int(((pos >= 0) & (pos < n_in)).sum())

    real = (
        k
        * c
        * taps(kernel[0], p, h, stride[0], padding[0])
        * taps(kernel[1], q, w, stride[1], padding[1])
    )
    return real, k * p * q * c * kernel[0] * kernel[1]


def layer(
    name="conv_1",
    kind="conv",
    neuron="lif",
    T=2,
    batch=1,
    acs=0,
    acs_nonzero=None,
    macs=0,
    updates=0,
    spikes=0,
    events=0,
    weight_count=None,
    weight_bits=32,
    number_format="float",
    output_shape=(4, 2, 2),
    input_shape=(1, 2, 2),
    kernel=(3, 3),
    stride=(1, 1),
    padding=(1, 1),
    leak=1.0,
    analog=None,
    zero_weights=0,
    nonzero_input_macs=None,
) -> LayerCounts:
    """Events spread evenly over T steps (totals over the batch are what is given).

    A layer with MACs is analog (dense input): its ``real_macs`` are the MACs
    of one step of one sample (``macs / (T x batch)``); otherwise they are
    the real taps of the layer's geometry.
    """
    if kind == "linear":
        kernel, stride, padding = (1, 1), (1, 1), (0, 0)
    real, padded = dense_pass(kind, input_shape, output_shape, kernel, stride, padding)
    analog = bool(macs) if analog is None else analog
    if analog and macs:
        per_pass = macs / (T * batch)
        assert per_pass == int(per_pass), "MACs must be a whole number of dense passes"
        if int(per_pass) != real:
            real = padded = int(per_pass)
    if weight_count is None:
        weight_count = (
            real if kind == "linear" else output_shape[0] * input_shape[0] * kernel[0] * kernel[1]
        )

    def arr(total):
        return np.full(T, total / T, dtype=np.float64)

    return LayerCounts(
        name=name,
        kind=kind,
        neuron=neuron,
        input_shape=input_shape,
        output_shape=output_shape,
        weight_count=weight_count,
        weight_bits=weight_bits,
        number_format=number_format,
        input_events=arr(events),
        synaptic_ops=arr(acs),
        synaptic_ops_nonzero=arr(acs if acs_nonzero is None else acs_nonzero),
        macs=arr(macs),
        neuron_updates=arr(updates),
        output_spikes=arr(spikes),
        leak=leak,
        analog=analog,
        kernel=kernel,
        stride=stride,
        padding=padding,
        real_macs=real,
        padded_macs=padded,
        nonzero_weight_macs=real,
        zero_weights=zero_weights,
        nonzero_inputs=None
        if nonzero_input_macs is None
        else arr(int(np.prod(input_shape)) * batch / 2),
        nonzero_input_macs=None if nonzero_input_macs is None else arr(nonzero_input_macs),
    )


@pytest.fixture(scope="module")
def p45():
    return load_profile("45nm")


def level(profile, name):
    return next(m for m in profile.memory if m.name == name)


def memory_checks(row) -> None:
    """A row's memory energy is the sum of its per-tensor energies and of its accesses."""
    per_tensor = [getattr(row, f"energy_memory_{t}_pj") for t in TENSORS]
    assert row.energy_memory_pj == pytest.approx(sum(per_tensor))
    assert row.energy_memory_pj == pytest.approx(sum(a.energy_pj for a in row.accesses))
    assert row.energy_total_pj == pytest.approx(row.energy_compute_pj + row.energy_memory_pj)


def test_paper_figure_exact(p45):
    # 1000 ACs + 10 MACs at fp32 on 45 nm: 1000 x 0.9 + 10 x 4.6 = 946 pJ synaptic compute,
    # whatever the dataflow (a dataflow only moves memory traffic)
    counts = RunCounts("snn", 2, 1, [layer(acs=1000, macs=10)])
    for dataflow in DATAFLOWS:
        run = cost_run(counts, p45, SNN_FP32, dataflow)
        row = run.rows[0]
        assert run.dataflow == dataflow
        assert row.energy_ac_pj == pytest.approx(900.0, rel=1e-12)
        assert row.energy_mac_pj == pytest.approx(46.0, rel=1e-12)
        assert row.energy_synaptic_pj == pytest.approx(946.0, rel=1e-12)
        assert row.energy_neuron_pj == 0.0
        assert row.energy_compute_pj == pytest.approx(946.0, rel=1e-12)
        assert row.energy_memory_pj > 0  # memory comes from the events, under every dataflow
        memory_checks(row)
        assert run.total.energy_total_pj == pytest.approx(946.0 + row.energy_memory_pj, rel=1e-12)


def test_per_inference_and_neuron_updates(p45):
    # batch of 4: counts are summed over the batch, reported per inference
    counts = RunCounts(
        "snn",
        2,
        4,
        [
            layer(acs=4000, updates=40, leak=1.0, spikes=8),
            layer(
                name="fc",
                kind="linear",
                acs=400,
                updates=8,
                leak=0.5,
                output_shape=(10,),
                input_shape=(16,),
            ),  # fmt: skip
        ],
    )
    run = cost_run(counts, p45, SNN_FP32, "no-reuse")
    a, b = run.rows
    assert a.synaptic_ops == 1000 and a.neuron_updates == 10 and a.spikes == 2
    assert a.energy_neuron_pj == pytest.approx(10 * 1.8)  # IF: 2 adds
    assert b.energy_neuron_pj == pytest.approx(2 * 5.5)  # leaky: mult + 2 adds
    assert a.spike_rate == pytest.approx(2 / (16 * 2))
    assert run.total.spike_rate == pytest.approx(2 / ((16 + 10) * 2))
    # per inference under every dataflow too: a batch of 4 identical inputs costs as one
    one = RunCounts("snn", 2, 1, [layer(acs=1000, updates=10, spikes=2)])
    four = RunCounts("snn", 2, 4, [layer(acs=4000, updates=40, spikes=8)])
    for dataflow in DATAFLOWS:
        r1, r4 = (cost_run(c, p45, SNN_FP32, dataflow).total for c in (one, four))
        assert r4.energy_total_pj == pytest.approx(r1.energy_total_pj), dataflow


def test_memory_energy_levels_no_reuse(p45):
    """``no-reuse`` keeps the old rules: every AC/MAC reads one weight and reads and writes one
    membrane, every update reads and writes its membrane, every spike writes one address event,
    each array in the smallest SRAM that holds it alone, else DRAM."""
    sram8, sram32, sram1m = (level(p45, n) for n in ("sram_8KB", "sram_32KB", "sram_1MB"))
    dram = next(m for m in p45.memory if m.kind == "dram")
    # 100 x 32-bit weights = 400 B -> sram_8KB; 16 membranes x 32 bit = 64 B -> sram_8KB
    small = layer(acs=64, updates=32, spikes=8, weight_count=100)
    # 5,000 weights = 20 kB -> sram_32KB; 100,000 = 400 kB -> sram_1MB; 10M = 40 MB -> DRAM
    mid = layer(name="mid", acs=10, weight_count=5_000)
    large = layer(name="large", acs=10, weight_count=100_000)
    big = layer(name="big", acs=100, weight_count=10_000_000)
    # 2 analog steps of 64 MACs: the input pixels are read at the membranes' level, once a pass
    first = layer(name="first", macs=2 * 64, updates=32)
    run = cost_run(
        RunCounts("snn", 2, 1, [small, mid, large, big, first]), p45, SNN_FP32, "no-reuse"
    )
    r0, r_mid, r_large, r_big, r_first = run.rows

    def accesses(row):
        return {a.tensor: (a.level, a.reads, a.writes, a.bits) for a in row.accesses}

    assert accesses(r0) == {
        "weights": ("sram_8KB", 64, 0, 32),
        "state": ("sram_8KB", 64 + 32, 64 + 32, 32),
        "outputs": ("sram_8KB", 0, 8, address_bits(16)),  # 4-bit address events
    }
    assert address_bits(16) == 4 and address_bits(2) == 1 and address_bits(17) == 5
    assert r0.weight_memory == "sram_8KB" and r0.state_memory == "sram_8KB"
    assert r0.energy_memory_weights_pj == pytest.approx(64 * 32 * sram8.read_pj_per_bit)
    assert r0.energy_memory_state_pj == pytest.approx(
        96 * 32 * (sram8.read_pj_per_bit + sram8.write_pj_per_bit)
    )
    assert r0.energy_memory_outputs_pj == pytest.approx(8 * 4 * sram8.write_pj_per_bit)
    assert r0.energy_memory_inputs_pj == 0.0  # spikes in: the consumer's read is not charged
    assert r0.memory_bits == 64 * 32 + 2 * 96 * 32 + 8 * 4
    for a in r0.accesses:
        m = level(p45, a.level)
        assert a.energy_pj == pytest.approx(
            (a.reads * m.read_pj_per_bit + a.writes * m.write_pj_per_bit) * a.bits
        )
    assert (r_mid.weight_memory, r_large.weight_memory, r_big.weight_memory) == (
        "sram_32KB",
        "sram_1MB",
        "dram",
    )
    assert r_mid.energy_memory_weights_pj == pytest.approx(10 * 32 * sram32.read_pj_per_bit)
    assert r_large.energy_memory_weights_pj == pytest.approx(10 * 32 * sram1m.read_pj_per_bit)
    assert r_big.energy_memory_weights_pj == pytest.approx(100 * 32 * dram.read_pj_per_bit)
    assert accesses(r_first) == {
        "weights": ("sram_8KB", 128, 0, 32),
        "state": ("sram_8KB", 128 + 32, 128 + 32, 32),
        "inputs": ("sram_8KB", 4 * 2, 0, 32),  # 4 input pixels x 2 passes at 32 bits
    }
    for r in run.rows:
        memory_checks(r)


def test_ann_memory_no_reuse(p45):
    """The ANN under ``no-reuse``: the old rules (MAC reads + writes of the accumulator, the
    input activations read once, the output activations written once)."""
    sram8 = level(p45, "sram_8KB")
    ann = RunCounts("ann", 1, 1, [layer(T=1, neuron="relu", macs=64, updates=16)])
    row = cost_run(ann, p45, ANN_FP32, "no-reuse").rows[0]
    got = {a.tensor: (a.level, a.reads, a.writes, a.bits) for a in row.accesses}
    assert got == {
        "weights": ("sram_8KB", 64, 0, 32),
        "state": ("sram_8KB", 64 + 16, 64 + 16, 32),
        "inputs": ("sram_8KB", 4, 0, 32),
        "outputs": ("sram_8KB", 0, 16, 32),
    }
    # = the old weight_bits_read + state_bits_read + state_bits_written + spike_bits_written
    assert row.memory_bits == 64 * 32 + (64 + 16 + 4) * 32 + (64 + 16) * 32 + 16 * 32
    assert row.energy_memory_pj == pytest.approx(row.memory_bits * sram8.read_pj_per_bit)
    memory_checks(row)


def test_widths_set_the_word_widths(p45):
    # a 4-bit integer layer: its own weight width when Widths.weights is None, else the override
    lc = layer(acs=64, updates=32, weight_bits=4, number_format="int")
    counts = RunCounts("snn", 2, 1, [lc])
    own = cost_run(counts, p45, Widths("int", None, 8, 16, 1), "no-reuse").rows[0]
    wide = cost_run(counts, p45, Widths("int", 8, 8, 16, 1), "no-reuse").rows[0]
    assert {a.tensor: a.bits for a in own.accesses}["weights"] == 4 and own.weight_bits == 4
    assert {a.tensor: a.bits for a in wide.accesses}["weights"] == 8 and wide.weight_bits == 8
    assert {a.tensor: a.bits for a in own.accesses}["state"] == 16 and own.state_bits == 16
    assert wide.energy_memory_weights_pj == pytest.approx(2 * own.energy_memory_weights_pj)
    assert own.energy_ac_pj == pytest.approx(64 * p45.ac_energy(16, "int"))
    # snn_widths: an integer SNN has the profile's integer membranes; a float one fp32
    assert snn_widths(counts, p45) == Widths("int", None, 8, p45.state_bits, 1)
    assert snn_widths(RunCounts("snn", 2, 1, [layer()]), p45).state == 32


def ann_counts_for(snn: RunCounts) -> RunCounts:
    """The ANN of the same layers: one dense pass, half of the input activations nonzero."""
    layers = []
    for lc in snn.layers:
        layers.append(
            layer(
                name=lc.name,
                kind=lc.kind,
                neuron="output" if lc.neuron == "output" else "relu",
                T=1,
                macs=lc.real_macs,
                updates=lc.neurons,
                output_shape=lc.output_shape,
                input_shape=lc.input_shape,
                weight_count=lc.weight_count,
                kernel=lc.kernel,
                padding=lc.padding,
                nonzero_input_macs=lc.real_macs // 2,
            )
        )
    return RunCounts("ann", 1, 1, layers)


def example_counts() -> tuple[RunCounts, RunCounts]:
    """A 3-layer SNN (T=4, batch 2) whose events are consistent with its shapes, and its ANN."""
    snn = RunCounts(
        "snn",
        4,
        2,
        [
            layer(  # direct-coded: 64 real-tap MACs per step per sample
                name="features.0",
                T=4,
                batch=2,
                macs=2 * 4 * 64,
                updates=2 * 4 * 16,
                spikes=20,
            ),  # fmt: skip
            layer(  # each of the 20 input spikes reaches 4 channels x 4 positions
                name="conv_2",
                T=4,
                batch=2,
                acs=20 * 16,
                updates=2 * 4 * 16,
                spikes=10,
                events=20,
                input_shape=(4, 2, 2),
                leak=0.9,
            ),  # fmt: skip
            layer(  # each of the 10 input spikes reaches 10 outputs
                name="classifier.out",
                kind="linear",
                neuron="output",
                T=4,
                batch=2,
                acs=10 * 10,
                updates=2 * 4 * 10,
                events=10,
                output_shape=(10,),
                input_shape=(16,),
            ),  # fmt: skip
        ],
    )
    return snn, ann_counts_for(snn)


@pytest.fixture(scope="module")
def runs(p45):
    snn, ann = example_counts()
    return {
        "snn": cost_run(snn, p45, SNN_FP32, "no-reuse"),
        "silent": cost_run(silent(snn), p45, SNN_FP32, "no-reuse"),
        "ann": cost_run(ann, p45, ANN_FP32, "no-reuse"),
        "ann-zero-skipping": cost_run(ann, p45, ANN_FP32, "no-reuse", zero_skipping=True),
    }


@pytest.fixture(scope="module")
def report(runs) -> CostReport:
    options = CostOptions(dataflow="no-reuse")
    return CostReport.from_runs(
        runs["snn"],
        runs["ann"],
        extra_baselines=[
            (
                "ann-zero-skipping",
                "fp32, MACs only on nonzero activations",
                runs["ann-zero-skipping"],
            )
        ],
        model="toy_net",
        profile_description="45 nm",
        baseline="equivalent ANN, fp32 weights and activations",
        batch_size=2,
        data="hand-built counts",
        accuracy=0.5,
        conventions=options.conventions("no-reuse", "no-reuse"),
        break_even=break_even(runs["snn"].rows, runs["silent"].rows, runs["ann"].rows, "ann", 4),
    )


def test_totals_are_sums_of_rows(report):
    for rows, total in ((report.snn, report.snn_total), (report.ann, report.ann_total)):
        for f in SUMMED_FIELDS:
            assert getattr(total, f) == sum(getattr(r, f) for r in rows), f
        assert sum(r.latency_share for r in rows) == pytest.approx(1.0)
        assert total.energy_total_pj == pytest.approx(
            total.energy_compute_pj + total.energy_memory_pj
        )
        assert total.energy_memory_pj == pytest.approx(
            sum(getattr(total, f"energy_memory_{t}_pj") for t in TENSORS)
        )
        for r in rows:
            memory_checks(r)
            assert all(getattr(r, f) >= 0 for f in SUMMED_FIELDS if f.startswith("energy_"))


def test_ratios(report):
    s, a, r = report.snn_total, report.ann_total, report.ratios
    assert r.compute_energy == pytest.approx(a.energy_compute_pj / s.energy_compute_pj)
    assert r.total_energy == pytest.approx(a.energy_total_pj / s.energy_total_pj)
    assert r.memory_energy == pytest.approx(a.energy_memory_pj / s.energy_memory_pj)
    assert r.synaptic_energy == pytest.approx(a.energy_synaptic_pj / s.energy_synaptic_pj)
    assert r.ops == pytest.approx(a.macs / (s.synaptic_ops + s.macs))
    assert r.memory_bits == pytest.approx(a.memory_bits / s.memory_bits)
    assert r.latency == pytest.approx(a.latency_s / s.latency_s)
    # ANN ReLU updates cost one add, its output layer none
    relu = report.ann[0]
    assert relu.energy_neuron_pj == pytest.approx(relu.neuron_updates * 0.9)
    assert report.ann[-1].energy_neuron_pj == 0.0
    # every baseline's ratios are ANN / SNN; the main one is the report's
    assert [b.key for b in report.baselines] == ["ann", "ann-zero-skipping"]
    assert report.baselines[0].ratios == r and report.baselines[0].total == a
    zs = report.baselines[1]
    assert zs.total.macs == pytest.approx(a.macs / 2)  # half the activations are zero
    assert zs.ratios.total_energy == pytest.approx(zs.total.energy_total_pj / s.energy_total_pj)
    assert zs.ratios.compute_energy < r.compute_energy


def test_break_even(report, runs):
    be = report.break_even
    assert be.baseline == "ann" and [x.name for x in be.layers] == [x.name for x in report.snn]
    n = be.network
    e1, e0 = report.snn_total.energy_total_pj, runs["silent"].total.energy_total_pj
    base = report.ann_total.energy_total_pj
    assert (n.snn_energy_pj, n.fixed_energy_pj, n.baseline_energy_pj) == pytest.approx(
        (e1, e0, base)
    )
    assert 0 < e0 < e1
    # ACs per real-tap synapse of the event-driven layers (conv_2 and classifier.out)
    sps = (320 + 100) / 2 / (256 + 160)
    assert n.spikes_per_synapse == pytest.approx(sps)
    assert n.break_even_multiplier == pytest.approx(max(0.0, (base - e0) / (e1 - e0)))
    assert n.break_even_spikes_per_synapse == pytest.approx(n.break_even_multiplier * sps)
    assert be.layers[0].spikes_per_synapse is None  # the analog layer has no event input


def test_ratio_none_when_snn_is_zero(p45):
    snn = RunCounts("snn", 1, 1, [layer(T=1)])
    ann = RunCounts("ann", 1, 1, [layer(T=1, neuron="relu", macs=64)])
    rep = CostReport.from_runs(
        cost_run(snn, p45, SNN_FP32, "no-reuse"),
        cost_run(ann, p45, ANN_FP32, "no-reuse"),
        model="m",
        batch_size=1,
        data="d",
    )
    assert rep.ratios.compute_energy is None and rep.ratios.total_energy is None
    assert rep.baselines[0].ratios.total_energy is None
    assert "-" in rep.summary()


def test_latency(p45):
    # 45nm: 256 ops per cycle each, 1 GHz, no overlap: per step ceil(a/256)+ceil(m/256)+ceil(u/256)
    counts = RunCounts("snn", 2, 1, [layer(acs=2 * 512, macs=2 * 10, updates=2 * 300)])
    for dataflow in DATAFLOWS:  # latency does not depend on the dataflow
        run = cost_run(counts, p45, SNN_FP32, dataflow)
        assert run.total.latency_cycles == 2 * (2 + 1 + 2)
        assert run.total.latency_s == pytest.approx(10e-9)
        assert run.total.timesteps == 2


def test_loihi_falls_back_for_macs():
    loihi = load_profile("loihi")
    snn, ann = example_counts()
    snn_df, ann_df = resolve_dataflows(loihi, CostOptions())
    assert (snn_df, ann_df) == ("neuromorphic", "weight-stationary")
    s = cost_run(snn, loihi, snn_widths(snn, loihi), snn_df)
    assert s.rows[0].energy_mac_pj == pytest.approx(s.rows[0].macs * 4.6)  # 45 nm fallback
    assert s.rows[1].energy_ac_pj == pytest.approx(s.rows[1].synaptic_ops * 23.6)
    assert s.rows[1].energy_neuron_pj == pytest.approx(s.rows[1].neuron_updates * 81.0)
    assert any("45nm" in n for n in s.notes)
    assert s.total.latency_s > 0 and s.total.latency_cycles is None
    a = cost_run(ann, loihi, ANN_FP32, ann_df)
    assert a.profile == "45nm" and "no MAC datapath" in a.notes[0]
    with pytest.raises(ValueError, match="cannot price"):
        cost_run(snn, loihi, snn_widths(snn, loihi), snn_df, fallback=None)
    with pytest.raises(ValueError, match="neuromorphic"):
        cost_run(ann, loihi, ANN_FP32, "neuromorphic")


def test_all_builtin_profiles_cost():
    from snncost.hardware import available_profiles

    snn, ann = example_counts()
    for name in available_profiles():
        prof = load_profile(name)
        snn_df, ann_df = resolve_dataflows(prof, CostOptions())
        assert snn_df == prof.default_dataflow
        s = cost_run(snn, prof, snn_widths(snn, prof), snn_df)
        runs = [
            (b, cost_run(ann, prof, b.widths, ann_df, zero_skipping=b.zero_skipping))
            for b in ann_baselines(snn, prof)
        ]
        rep = CostReport.from_runs(
            s,
            runs[0][1],
            extra_baselines=[(b.key, b.description, r) for b, r in runs[1:]],
            model="m",
            batch_size=2,
            data="d",
        )
        assert rep.snn_total.energy_total_pj > 0
        assert rep.snn_total.latency_s > 0
        assert [b.key for b in rep.baselines] == ["ann", "ann-zero-skipping"]
        # and under every dataflow: non-negative energies, compute + memory
        for df in DATAFLOWS:
            t = cost_run(snn, prof, snn_widths(snn, prof), df).total
            assert all(getattr(t, f) >= 0 for f in SUMMED_FIELDS), (name, df)
            assert t.energy_total_pj == pytest.approx(t.energy_compute_pj + t.energy_memory_pj)


def test_markdown(report):
    md = report.to_markdown()
    assert md.startswith("# Cost report: toy_net")
    assert "`conv_2`" in md and "**Total**" in md
    assert "ANN / SNN" in md and "50.00 %" in md
    assert "- Conventions: dataflow: SNN no-reuse, ANN no-reuse" in md
    assert "## Baselines" in md and "ann-zero-skipping: fp32, MACs only" in md
    assert "## Break-even activity" in md and "spikes per synapse" in md
    # every table row has the same number of cells as its header
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            assert (
                len(
                    {ln.count(" | ") for ln in lines if not ln.startswith("|:") and "---" not in ln}
                )
                == 1
            )


def test_latex(report):
    tex = report.to_latex(caption="Energy of my_net (50% spikes)")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{table}"):
        assert rule in tex
    assert r"conv\_2" in tex and "conv_2" not in tex.replace(r"conv\_2", "")
    assert r"\caption{Energy of my\_net (50\% spikes)}" in tex
    assert tex.count(r"\begin{tabular}{lrrrrrrrr}") == 1
    body = tex.split(r"\midrule")[1]
    assert all(ln.count("&") == 8 for ln in body.strip().splitlines())
    assert "Spikes per synapse" in tex  # the break-even line (there are event layers)
    assert "dataflow: SNN no-reuse, ANN no-reuse" in report.to_latex()
    assert r"$\mu$J" in report.to_latex(energy_unit="µJ")
    with pytest.raises(ValueError, match="energy_unit"):
        report.to_latex(energy_unit="kJ")


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} ~ ^ \\") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )


def test_csv_parses_back(report):
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.snn) + len(report.ann) + 2
    assert "accesses" not in rows[0] and "energy_memory_weights_pj" in rows[0]
    snn_layers = [r for r in rows if r["network"] == "snn" and r["row_type"] == "layer"]
    assert [r["name"] for r in snn_layers] == [r.name for r in report.snn]
    total = next(r for r in rows if r["network"] == "snn" and r["row_type"] == "total")
    assert float(total["energy_total_pj"]) == pytest.approx(report.snn_total.energy_total_pj)
    assert sum(float(r["energy_total_pj"]) for r in snn_layers) == pytest.approx(
        float(total["energy_total_pj"])
    )


def test_json_round_trip(report):
    text = report.to_json()
    data = json.loads(text)
    assert data["model"] == "toy_net"
    assert data["snn"][0]["accesses"] and data["break_even"]["baseline"] == "ann"
    assert [b["key"] for b in data["baselines"]] == ["ann", "ann-zero-skipping"]
    back = CostReport.model_validate_json(text)
    assert back == report
    assert back.to_markdown() == report.to_markdown()
    assert all(math.isfinite(r.energy_total_pj) for r in back.snn)


def test_summary(report):
    text = report.summary()
    assert "toy_net on 45nm" in text and "total" in text and "latency" in text
    assert str(report) == text


def test_plot_writes_png(report, tmp_path):
    out = tmp_path / "sub" / "report.png"
    fig = report.plot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) >= 2


def test_pareto_plot(report, tmp_path):
    from snncost.report.plots import plot_pareto

    out = tmp_path / "pareto.png"
    fig = plot_pareto([(0.9, 1e6, 25), (0.85, 5e5, 10), (0.8, 8e5, 5)], out, labels=["a", "b", "c"])
    assert out.stat().st_size > 0 and fig.axes
    plot_pareto([report])
    with pytest.raises(ValueError, match="energy"):
        plot_pareto([report], energy="bogus")
