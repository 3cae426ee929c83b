"""The cost model and CostReport, on hand-built RunCounts (no simulator needed)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from snncost.hardware import load_profile
from snncost.report import CostReport, cost_run, latex_escape
from snncost.report.costing import SUMMED_FIELDS
from snncost.sim.counts import LayerCounts, RunCounts


def layer(
    name="conv_1",
    kind="conv",
    neuron="lif",
    T=2,
    batch=1,
    acs=0,
    macs=0,
    updates=0,
    spikes=0,
    events=0,
    weight_bits_read=0,
    state_bits_read=0,
    state_bits_written=0,
    spike_bits_written=0,
    weight_count=100,
    weight_bits=32,
    state_bits=32,
    number_format="float",
    output_shape=(4, 2, 2),
    input_shape=(1, 2, 2),
    leak=1.0,
) -> LayerCounts:
    """Counts spread evenly over T steps (totals are what is given)."""

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
        state_bits=state_bits,
        input_events=arr(events),
        synaptic_ops=arr(acs),
        macs=arr(macs),
        neuron_updates=arr(updates),
        output_spikes=arr(spikes),
        weight_bits_read=arr(weight_bits_read),
        state_bits_read=arr(state_bits_read),
        state_bits_written=arr(state_bits_written),
        spike_bits_written=arr(spike_bits_written),
        leak=leak,
    )


@pytest.fixture(scope="module")
def p45():
    return load_profile("45nm")


def test_paper_figure_exact(p45):
    # 1000 ACs + 10 MACs at fp32 on 45 nm: 1000 x 0.9 + 10 x 4.6 = 946 pJ synaptic compute
    counts = RunCounts("snn", 2, 1, [layer(acs=1000, macs=10)])
    run = cost_run(counts, p45)
    row = run.rows[0]
    assert row.energy_ac_pj == pytest.approx(900.0, rel=1e-12)
    assert row.energy_mac_pj == pytest.approx(46.0, rel=1e-12)
    assert row.energy_synaptic_pj == pytest.approx(946.0, rel=1e-12)
    assert row.energy_neuron_pj == 0.0
    assert row.energy_compute_pj == pytest.approx(946.0, rel=1e-12)
    assert row.energy_memory_pj == 0.0
    assert run.total.energy_total_pj == pytest.approx(946.0, rel=1e-12)


def test_per_inference_and_neuron_updates(p45):
    # batch of 4: counts are summed over the batch, reported per inference
    counts = RunCounts(
        "snn",
        2,
        4,
        [
            layer(acs=4000, updates=40, leak=1.0, spikes=8),
            layer(name="fc", kind="linear", acs=400, updates=8, leak=0.5, output_shape=(10,)),
        ],
    )
    run = cost_run(counts, p45)
    a, b = run.rows
    assert a.synaptic_ops == 1000 and a.neuron_updates == 10 and a.spikes == 2
    assert a.energy_neuron_pj == pytest.approx(10 * 1.8)  # IF: 2 adds
    assert b.energy_neuron_pj == pytest.approx(2 * 5.5)  # leaky: mult + 2 adds
    assert a.spike_rate == pytest.approx(2 / (16 * 2))
    assert run.total.spike_rate == pytest.approx(2 / ((16 + 10) * 2))


def test_memory_energy_levels(p45):
    # weights 100 x 32 bit = 400 B -> sram_8KB; membranes 16 x 32 bit -> sram_8KB
    sram8 = next(m for m in p45.memory if m.name == "sram_8KB")
    dram = next(m for m in p45.memory if m.kind == "dram")
    small = layer(
        weight_bits_read=320, state_bits_read=64, state_bits_written=64, spike_bits_written=8
    )
    # 10M weights x 32 bit = 40 MB -> DRAM
    big = layer(name="big", weight_count=10_000_000, weight_bits_read=3200)
    run = cost_run(RunCounts("snn", 2, 1, [small, big]), p45)
    r0, r1 = run.rows
    assert r0.weight_memory == "sram_8KB" and r1.weight_memory == "dram"
    assert r0.energy_memory_weights_pj == pytest.approx(320 * sram8.read_pj_per_bit)
    assert r0.energy_memory_state_pj == pytest.approx(
        64 * sram8.read_pj_per_bit + 64 * sram8.write_pj_per_bit
    )
    assert r0.energy_memory_spikes_pj == pytest.approx(8 * sram8.write_pj_per_bit)
    assert r0.memory_bits == 320 + 64 + 64 + 8
    assert r1.energy_memory_weights_pj == pytest.approx(3200 * dram.read_pj_per_bit)
    assert r0.energy_total_pj == pytest.approx(r0.energy_compute_pj + r0.energy_memory_pj)


def ann_counts_for(snn: RunCounts) -> RunCounts:
    layers = []
    for lc in snn.layers:
        n = lc.neurons
        layers.append(
            layer(
                name=lc.name,
                kind=lc.kind,
                neuron="output" if lc.neuron == "output" else "relu",
                T=1,
                macs=n * 9,
                updates=n,
                weight_bits_read=n * 9 * 32,
                state_bits_read=n * 9 * 32,
                state_bits_written=n * 32,
                output_shape=lc.output_shape,
                input_shape=lc.input_shape,
                weight_count=lc.weight_count,
            )
        )
    return RunCounts("ann", 1, 1, layers)


def example_counts() -> tuple[RunCounts, RunCounts]:
    snn = RunCounts(
        "snn",
        4,
        2,
        [
            layer(
                name="features.0",
                T=4,
                batch=2,
                macs=2 * 144,
                updates=2 * 64,
                spikes=20,
                weight_bits_read=2 * 144 * 32,
                state_bits_read=2 * 64 * 32,
                state_bits_written=2 * 64 * 32,
                spike_bits_written=20 * 4,
                output_shape=(4, 2, 2),
            ),
            layer(
                name="conv_2",
                T=4,
                batch=2,
                acs=2 * 300,
                updates=2 * 64,
                spikes=10,
                events=20,
                weight_bits_read=2 * 300 * 32,
                state_bits_read=2 * 300 * 32,
                state_bits_written=2 * 300 * 32,
                spike_bits_written=10 * 4,
                output_shape=(4, 2, 2),
                leak=0.9,
            ),
            layer(
                name="classifier.out",
                kind="linear",
                neuron="output",
                T=4,
                batch=2,
                acs=2 * 50,
                updates=2 * 40,
                events=10,
                output_shape=(10,),
                input_shape=(16,),
                weight_count=160,
            ),
        ],
    )
    return snn, ann_counts_for(snn)


@pytest.fixture(scope="module")
def report(p45) -> CostReport:
    snn, ann = example_counts()
    return CostReport.from_runs(
        cost_run(snn, p45),
        cost_run(ann, p45),
        model="toy_net",
        profile_description="45 nm",
        batch_size=2,
        data="hand-built counts",
        accuracy=0.5,
    )


def test_totals_are_sums_of_rows(report):
    for rows, total in ((report.snn, report.snn_total), (report.ann, report.ann_total)):
        for f in SUMMED_FIELDS:
            assert getattr(total, f) == sum(getattr(r, f) for r in rows), f
        assert sum(r.latency_share for r in rows) == pytest.approx(1.0)
        assert total.energy_total_pj == pytest.approx(
            total.energy_compute_pj + total.energy_memory_pj
        )


def test_ratios(report):
    s, a, r = report.snn_total, report.ann_total, report.ratios
    assert r.compute_energy == pytest.approx(a.energy_compute_pj / s.energy_compute_pj)
    assert r.total_energy == pytest.approx(a.energy_total_pj / s.energy_total_pj)
    assert r.memory_energy == pytest.approx(a.energy_memory_pj / s.energy_memory_pj)
    assert r.synaptic_energy == pytest.approx(a.energy_synaptic_pj / s.energy_synaptic_pj)
    assert r.ops == pytest.approx(a.macs / (s.synaptic_ops + s.macs))
    # ANN ReLU updates cost one add, its output layer none
    relu = report.ann[0]
    assert relu.energy_neuron_pj == pytest.approx(relu.neuron_updates * 0.9)
    assert report.ann[-1].energy_neuron_pj == 0.0


def test_ratio_none_when_snn_is_zero(p45):
    snn = RunCounts("snn", 1, 1, [layer(T=1)])
    ann = RunCounts("ann", 1, 1, [layer(T=1, neuron="relu", macs=10)])
    rep = CostReport.from_runs(
        cost_run(snn, p45), cost_run(ann, p45), model="m", batch_size=1, data="d"
    )
    assert rep.ratios.compute_energy is None
    assert "-" in rep.summary()


def test_latency(p45):
    # 45nm: 256 ops per cycle each, 1 GHz, no overlap: per step ceil(a/256)+ceil(m/256)+ceil(u/256)
    counts = RunCounts("snn", 2, 1, [layer(acs=2 * 512, macs=2 * 10, updates=2 * 300)])
    run = cost_run(counts, p45)
    assert run.total.latency_cycles == 2 * (2 + 1 + 2)
    assert run.total.latency_s == pytest.approx(10e-9)
    assert run.total.timesteps == 2


def test_loihi_falls_back_for_macs():
    loihi = load_profile("loihi")
    snn, ann = example_counts()
    s = cost_run(snn, loihi)
    assert s.rows[0].energy_mac_pj == pytest.approx(s.rows[0].macs * 4.6)  # 45 nm fallback
    assert s.rows[1].energy_ac_pj == pytest.approx(s.rows[1].synaptic_ops * 23.6)
    assert s.rows[1].energy_neuron_pj == pytest.approx(s.rows[1].neuron_updates * 81.0)
    assert any("45nm" in n for n in s.notes)
    assert s.total.latency_s > 0 and s.total.latency_cycles is None
    a = cost_run(ann, loihi)
    assert a.profile == "45nm" and "no MAC datapath" in a.notes[0]
    with pytest.raises(ValueError, match="cannot price"):
        cost_run(snn, loihi, fallback=None)


def test_all_builtin_profiles_cost():
    from snncost.hardware import available_profiles

    snn, ann = example_counts()
    for name in available_profiles():
        prof = load_profile(name)
        rep = CostReport.from_runs(
            cost_run(snn, prof), cost_run(ann, prof), model="m", batch_size=2, data="d"
        )
        assert rep.snn_total.energy_total_pj > 0
        assert rep.snn_total.latency_s > 0


def test_markdown(report):
    md = report.to_markdown()
    assert md.startswith("# Cost report: toy_net")
    assert "`conv_2`" in md and "**Total**" in md
    assert "ANN / SNN" in md and "50.00 %" in md
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
    snn_layers = [r for r in rows if r["network"] == "snn" and r["row_type"] == "layer"]
    assert [r["name"] for r in snn_layers] == [r.name for r in report.snn]
    total = next(r for r in rows if r["network"] == "snn" and r["row_type"] == "total")
    assert float(total["energy_total_pj"]) == pytest.approx(report.snn_total.energy_total_pj)
    assert sum(float(r["energy_total_pj"]) for r in snn_layers) == pytest.approx(
        float(total["energy_total_pj"])
    )


def test_json_round_trip(report):
    text = report.to_json()
    assert json.loads(text)["model"] == "toy_net"
    back = CostReport.model_validate_json(text)
    assert back == report
    assert back.to_markdown() == report.to_markdown()


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
