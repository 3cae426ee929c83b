"""Property tests: random small SNNs replayed by the simulator, and the cost model's invariants.

Random architectures (widths 1-8, kernels 1/3/5, strides 1/2, paddings
0..k//2, average/max/no pooling with kernel == stride, direct or Poisson
input, leaky or IF neurons, with or without bias) are built from
:mod:`snncost.nn` modules and replayed with
:func:`snncost.sim.verify_against_torch`:

* integer-valued weights (small integers times a power of two, so every
  partial sum is exact in float32) and Poisson input: the replay matches the
  PyTorch forward pass spike for spike and logit for logit;
* the same with direct input whose pixels are small integers: exact too;
* float weights or float direct input: predictions agree (up to near-ties
  within the logit rounding error) and the spike mismatch fraction is tiny.

And for the cost model (:mod:`snncost.costmodel`): every energy is
non-negative; scaling every event count up, or adding one to any single
count, never lowers any energy component (nor the latency), on every
shipped profile at its default dataflow, on ``45nm`` under every dataflow
and with the non-default conventions; a report's totals are the sums of its
per-layer rows for every summed column, each row's memory energy is the sum
of its per-tensor energies and of its priced accesses, every baseline's
ratios are ANN / SNN, and the report renders and round-trips through JSON,
on every shipped profile. :func:`snncost.evaluate` prices a random SNN under
every dataflow of :data:`snncost.costmodel.DATAFLOWS` with finite,
non-negative energies and dataflow-independent compute. (``no-reuse`` is
not an upper bound of the loop-nest dataflows and no test claims it:
docs/cost_model.md, section 3.) Last, the worked
example of docs/cost_model.md (section 5) is reproduced under the
pre-refactor conventions (``no-reuse``, padding taps counted).

The architecture is drawn by hypothesis; the numbers in it (weights,
inputs) come from a seeded generator, so a failing case is reproducible
from the printed spec.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import snncost
import snncost.nn as sn
from snncost.costmodel import (
    DATAFLOWS,
    CostOptions,
    ann_baselines,
    cost_run,
    resolve_dataflows,
    snn_widths,
)
from snncost.costmodel.accesses import TENSORS
from snncost.costmodel.pricing import SUMMED_FIELDS
from snncost.graph import build_graph
from snncost.hardware import available_profiles, load_profile
from snncost.sim import ann_counts, simulate, verify_against_torch
from snncost.sim.counts import LayerCounts, RunCounts

PROPS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILES = available_profiles()


# --------------------------------------------------------------------------- random networks
@dataclass(frozen=True)
class Block:
    """A weight layer and what follows it (LIF, optional pool)."""

    out: int
    kernel: int = 1  # conv only
    stride: int = 1
    padding: int = 0
    bias: bool = False
    pool: str = "none"  # none / avg / max (after the LIF; conv only)
    pool_kernel: int = 2
    threshold: float = 1.0  # in units of the weight scale
    leak: float = 1.0


@dataclass(frozen=True)
class NetSpec:
    channels: int
    size: int
    timesteps: int
    encoding: str  # direct / poisson
    integer_weights: bool
    weight_exponent: int  # integer weights are k * 2**-weight_exponent
    pre_pool: str  # a pool right after the encoder (on the analog input / input spikes)
    convs: tuple[Block, ...]
    fcs: tuple[Block, ...]
    classes: int
    out_bias: bool
    batch: int
    seed: int


@st.composite
def blocks(draw, conv: bool) -> Block:
    kernel = draw(st.sampled_from([1, 3, 5])) if conv else 1
    pool = draw(st.sampled_from(["none", "avg", "max"])) if conv else "none"
    return Block(
        out=draw(st.integers(1, 8)),
        kernel=kernel,
        stride=draw(st.sampled_from([1, 2])) if conv else 1,
        padding=draw(st.integers(0, kernel // 2)),
        bias=draw(st.booleans()),
        pool=pool,
        # average pools of 2 or 4 (1/k^2 is exact); max pools of 2 or 3
        pool_kernel=draw(st.sampled_from([2, 4] if pool == "avg" else [2, 3])),
        threshold=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])),
        leak=draw(st.sampled_from([1.0, 1.0, 0.5, 0.75, 0.9])),
    )


@st.composite
def net_specs(draw, encoding: str | None = None, integer_weights: bool | None = None) -> NetSpec:
    convs = tuple(draw(st.lists(blocks(True), max_size=2)))
    fcs = tuple(
        draw(st.lists(blocks(False), min_size=0 if convs else 1, max_size=2))
    )  # >= 1 LIF layer
    return NetSpec(
        channels=draw(st.integers(1, 3)),
        size=draw(st.integers(3, 10)),
        timesteps=draw(st.integers(1, 5)),
        encoding=encoding or draw(st.sampled_from(["direct", "poisson"])),
        integer_weights=draw(st.booleans()) if integer_weights is None else integer_weights,
        weight_exponent=draw(st.integers(0, 3)),
        pre_pool=draw(st.sampled_from(["none", "none", "avg", "max"])),
        convs=convs,
        fcs=fcs,
        classes=draw(st.integers(2, 5)),
        out_bias=draw(st.booleans()),
        batch=draw(st.integers(1, 5)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def build(spec: NetSpec) -> sn.SpikingSequential:
    """The torch model of ``spec`` (weights from ``spec.seed``), in eval mode."""
    rng = np.random.default_rng(spec.seed)
    scale = 2.0**-spec.weight_exponent if spec.integer_weights else 1.0

    def values(shape) -> torch.Tensor:
        if spec.integer_weights:
            w = rng.integers(-3, 4, size=shape) * scale
        else:
            w = rng.normal(0.0, 0.6, size=shape)
        return torch.tensor(w, dtype=torch.float32)

    def fill(layer: nn.Module) -> nn.Module:
        with torch.no_grad():
            layer.weight.copy_(values(layer.weight.shape))
            if layer.bias is not None:
                layer.bias.copy_(values(layer.bias.shape))
        return layer

    def lif(b: Block) -> sn.LIF:
        return sn.LIF(
            threshold=b.threshold * scale, leak=b.leak, learn_threshold=False, learn_leak=False
        )

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["enc"] = (
        sn.DirectEncoder(spec.timesteps)
        if spec.encoding == "direct"
        else sn.PoissonEncoder(spec.timesteps)
    )
    ch, size = spec.channels, spec.size
    if spec.pre_pool != "none" and size >= 2:
        mods["pre_pool"] = nn.AvgPool2d(2) if spec.pre_pool == "avg" else nn.MaxPool2d(2)
        size //= 2
    for i, b in enumerate(spec.convs):
        k = b.kernel if size + 2 * b.padding >= b.kernel else 1
        p = min(b.padding, k // 2)
        mods[f"conv{i}"] = fill(nn.Conv2d(ch, b.out, k, stride=b.stride, padding=p, bias=b.bias))
        mods[f"lif{i}"] = lif(b)
        ch, size = b.out, (size + 2 * p - k) // b.stride + 1
        if b.pool != "none" and size >= b.pool_kernel:
            pool_cls = nn.AvgPool2d if b.pool == "avg" else nn.MaxPool2d
            mods[f"pool{i}"] = pool_cls(b.pool_kernel)
            size //= b.pool_kernel
    mods["flat"] = nn.Flatten()
    width = ch * size * size
    for j, b in enumerate(spec.fcs):
        mods[f"fc{j}"] = fill(nn.Linear(width, b.out, bias=b.bias))
        mods[f"fc_lif{j}"] = lif(b)
        width = b.out
    mods["out"] = fill(nn.Linear(width, spec.classes, bias=spec.out_bias))
    mods["integrate"] = sn.OutputIntegrator()
    model = sn.SpikingSequential(mods)
    model.input_shape = (spec.channels, spec.size, spec.size)
    return model.eval()


def inputs(spec: NetSpec, integer: bool) -> torch.Tensor:
    rng = np.random.default_rng(spec.seed + 1)
    shape = (spec.batch, spec.channels, spec.size, spec.size)
    if spec.encoding == "poisson":
        x = rng.uniform(-1.0, 1.0, size=shape)  # spike probability |x|, sign of x
    elif integer:
        x = rng.integers(-2, 4, size=shape)  # small integer pixels: exact first-layer sums
    else:
        x = rng.uniform(-1.0, 2.0, size=shape)
    return torch.tensor(x, dtype=torch.float32)


def verify(spec: NetSpec, integer_inputs: bool) -> dict:
    model = build(spec)
    if spec.encoding == "poisson":
        model.enc.generator = torch.Generator().manual_seed(spec.seed)
    return verify_against_torch(model, None, inputs(spec, integer_inputs))


def assert_exact(result: dict) -> None:
    assert result["spike_mismatches"] == 0, result["per_layer"]
    assert result["logits_equal"], result["max_logit_abs_diff"]
    counts = result["counts"]
    recorded = counts.extra["spikes"]  # the spikes counted are the spikes emitted
    lif_counts = [lc for lc in counts.layers if lc.neuron == "lif"]
    assert len(lif_counts) == len(recorded)
    for lc, (name, spikes) in zip(lif_counts, recorded.items(), strict=True):
        assert int(lc.output_spikes.sum()) == int(spikes.sum()), name


# --------------------------------------------------------------------------- replay == PyTorch
@PROPS
@given(spec=net_specs(encoding="poisson", integer_weights=True))
def test_replay_exact_integer_weights_poisson(spec):
    assert_exact(verify(spec, integer_inputs=False))


@PROPS
@given(spec=net_specs(encoding="direct", integer_weights=True))
def test_replay_exact_integer_weights_integer_direct_input(spec):
    assert_exact(verify(spec, integer_inputs=True))


@PROPS
@given(spec=net_specs())
def test_replay_float_predictions_agree(spec):
    """Float weights or float pixels: only float rounding at the threshold may differ."""
    result = verify(replace(spec, integer_weights=False), integer_inputs=False)
    assert result["mismatch_fraction"] <= 0.01, (
        result["spike_mismatches"],
        result["spikes_compared"],
    )
    sim = result["counts"].logits.reshape(spec.batch, -1)
    ref = result["torch_logits"].reshape(spec.batch, -1)
    tol = 4 * result["max_logit_abs_diff"] + 1e-6
    for i in range(spec.batch):
        if sim[i].argmax() != ref[i].argmax():  # allowed only at a near-tie of the top two logits
            top2 = np.sort(ref[i])[-2:]
            assert top2[1] - top2[0] <= tol, (i, ref[i], sim[i])


# --------------------------------------------------------------------------- cost-model invariants
ENERGY_FIELDS = [f for f in SUMMED_FIELDS if f.startswith("energy_")]
#: the event arrays of a LayerCounts (the last two: ANN counted on inputs only, else None)
COUNT_FIELDS = (
    "input_events",
    "synaptic_ops",
    "synaptic_ops_nonzero",
    "macs",
    "neuron_updates",
    "output_spikes",
    "nonzero_inputs",
    "nonzero_input_macs",
)
_ALL_BUT_DEFAULT = CostOptions(
    count_padding=True, analog_input="once", skip_zero_weights=True, baseline_precision="fp32"
)
#: (profile, options): every profile at its default dataflows (the ANN beside a neuromorphic
#: SNN runs weight-stationary), 45nm under every other dataflow, and 45nm with every
#: non-default convention.
PRICINGS = [(name, CostOptions()) for name in PROFILES]
PRICINGS += [
    ("45nm", CostOptions(dataflow=df))
    for df in DATAFLOWS
    if df not in {load_profile(name).default_dataflow for name in PROFILES}
]
PRICINGS += [
    ("45nm", _ALL_BUT_DEFAULT.model_copy(update={"dataflow": df}))
    for df in ("no-reuse", "weight-stationary")
]


def replay_counts(spec: NetSpec) -> tuple[RunCounts, RunCounts]:
    """``(snn, ann)`` events of the random model ``spec`` on its random inputs.

    The ANN is counted on the same analog inputs, so it has the zero-skipping counts.
    """
    model = build(spec)
    graph = build_graph(model, model.input_shape)
    x = inputs(spec, integer=True)
    analog = x
    if spec.encoding == "poisson":
        model.enc.generator = torch.Generator().manual_seed(spec.seed)
        with torch.no_grad():
            x = model.enc(x)
    snn = simulate(graph, x)
    ann = ann_counts(graph, model.input_shape, inputs=analog)
    return snn, ann


def cost_all(counts: RunCounts, profile, options: CostOptions) -> list:
    """``counts`` priced as :func:`snncost.evaluate` does: the SNN, or every ANN baseline."""
    snn_df, ann_df = resolve_dataflows(profile, options)
    if counts.model == "snn":
        return [cost_run(counts, profile, snn_widths(counts, profile), snn_df, options)]
    return [
        cost_run(counts, profile, b.widths, ann_df, options, zero_skipping=b.zero_skipping)
        for b in ann_baselines(counts, profile, options.baseline_precision)
    ]


def with_counts(counts: RunCounts, change) -> RunCounts:
    """A copy of ``counts`` whose event arrays are ``change(layer index, field, array)``
    (an optional array that is None stays None)."""
    layers = []
    for i, lc in enumerate(counts.layers):
        arrays = {
            f: change(i, f, np.asarray(getattr(lc, f)).copy())
            for f in COUNT_FIELDS
            if getattr(lc, f) is not None
        }
        layers.append(replace(lc, **arrays))
    return RunCounts(counts.model, counts.timesteps, counts.batch_size, layers)


def components(runs) -> list[tuple[str, float]]:
    """Every energy of every row and total of every run, and the latencies, as ``(label, value)``."""
    out = []
    for k, run in enumerate(runs):
        out += [(f"{k}.{r.name}.{f}", getattr(r, f)) for r in run.rows for f in ENERGY_FIELDS]
        out += [(f"{k}.total.{f}", getattr(run.total, f)) for f in ENERGY_FIELDS]
        out.append((f"{k}.total.latency_s", run.total.latency_s))
    return out


def assert_not_lower(before, after, what: str) -> None:
    for (label, a), (_, b) in zip(components(before), components(after), strict=True):
        assert a >= 0 and b >= 0, (what, label, a, b)
        assert b >= a, (what, label, a, b)


@PROPS
@given(spec=net_specs(), factor=st.one_of(st.integers(1, 5), st.floats(1.0, 3.0)))
def test_energy_monotone_when_every_count_scales_up(spec, factor):
    snn, ann = replay_counts(spec)
    for counts in (snn, ann):
        bigger = with_counts(counts, lambda _i, _f, a: a * factor)
        for name, options in PRICINGS:
            profile = load_profile(name)
            what = f"{name} {options.dataflow} x{factor}"
            assert_not_lower(
                cost_all(counts, profile, options), cost_all(bigger, profile, options), what
            )


@PROPS
@given(
    spec=net_specs(),
    network=st.sampled_from(["snn", "ann"]),
    layer=st.integers(0, 10),
    field=st.sampled_from(COUNT_FIELDS),
    step=st.integers(0, 10),
    amount=st.sampled_from([1, 7, 1000]),
)
def test_energy_monotone_when_one_count_grows(spec, network, layer, field, step, amount):
    snn, ann = replay_counts(spec)
    counts = snn if network == "snn" else ann
    layer %= len(counts.layers)
    step %= counts.timesteps

    def bump(i, f, a):
        if i == layer and f == field:
            a = a.astype(np.float64)
            a[step] += amount
        return a

    bigger = with_counts(counts, bump)
    for name, options in PRICINGS:
        profile = load_profile(name)
        what = (
            f"{name} {options}: {network} {counts.layers[layer].name}.{field}[{step}] += {amount}"
        )
        assert_not_lower(
            cost_all(counts, profile, options), cost_all(bigger, profile, options), what
        )


def close(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


def check_totals(rows, total, profile, where: str) -> None:
    """Totals = sums of rows; energies >= 0; compute + memory; memory = tensors = accesses."""
    levels = {m.name: m for m in profile.memory}
    for f in SUMMED_FIELDS:
        assert getattr(total, f) == pytest.approx(
            sum(getattr(r, f) for r in rows), rel=1e-12, abs=1e-9
        ), (where, f)
        assert getattr(total, f) >= 0, (where, f)
    assert total.energy_total_pj == pytest.approx(total.energy_compute_pj + total.energy_memory_pj)
    for r in rows:
        label = f"{where} {r.name}"
        for f in [*SUMMED_FIELDS, "latency_share"]:
            assert getattr(r, f) >= 0, (label, f)
        assert close(r.energy_synaptic_pj, r.energy_ac_pj + r.energy_mac_pj), label
        assert close(
            r.energy_compute_pj, r.energy_synaptic_pj + r.energy_neuron_pj + r.energy_routing_pj
        ), label
        per_tensor = {t: getattr(r, f"energy_memory_{t}_pj") for t in TENSORS}
        assert close(r.energy_memory_pj, sum(per_tensor.values())), label
        assert close(r.energy_memory_pj, sum(a.energy_pj for a in r.accesses)), label
        for t in TENSORS:
            assert close(per_tensor[t], sum(a.energy_pj for a in r.accesses if a.tensor == t)), (
                label,
                t,
            )
        assert close(r.energy_total_pj, r.energy_compute_pj + r.energy_memory_pj), label
        assert close(r.memory_bits, sum((a.reads + a.writes) * a.bits for a in r.accesses)), label
        for a in r.accesses:
            assert a.tensor in TENSORS and a.level in levels, (label, a)
            assert a.reads >= 0 and a.writes >= 0 and a.bits >= 1, (label, a)
            m = levels[a.level]
            assert close(
                a.energy_pj, (a.reads * m.read_pj_per_bit + a.writes * m.write_pj_per_bit) * a.bits
            ), (label, a)
    shares = sum(r.latency_share for r in rows)
    assert shares == pytest.approx(1.0) or shares == 0.0, (where, shares)
    assert total.latency_s >= 0, where


def ratio(ann: float, snn: float) -> float | None:
    return ann / snn if snn else None


def check_ratios(r, snn, ann, where: str) -> None:
    """Every ratio is ANN / SNN (None where the SNN figure is 0)."""
    pairs = {
        "synaptic_energy": (ann.energy_synaptic_pj, snn.energy_synaptic_pj),
        "compute_energy": (ann.energy_compute_pj, snn.energy_compute_pj),
        "memory_energy": (ann.energy_memory_pj, snn.energy_memory_pj),
        "total_energy": (ann.energy_total_pj, snn.energy_total_pj),
        "ops": (ann.macs + ann.synaptic_ops, snn.synaptic_ops + snn.macs),
        "memory_bits": (ann.memory_bits, snn.memory_bits),
        "latency": (ann.latency_s, snn.latency_s),
    }
    for f, (a, s) in pairs.items():
        expected, got = ratio(a, s), getattr(r, f)
        assert (got is None) == (expected is None), (where, f, got, expected)
        if expected is not None:
            assert got == pytest.approx(expected, rel=1e-12), (where, f)


def check_report(report) -> None:
    """Totals, baselines, break-even, the renderers and the JSON round trip of one report."""
    where = report.profile
    check_totals(report.snn, report.snn_total, load_profile(report.profile), f"{where} snn")
    check_totals(report.ann, report.ann_total, load_profile(report.ann_profile), f"{where} ann")
    check_ratios(report.ratios, report.snn_total, report.ann_total, where)
    assert report.baselines and report.baselines[0].key == "ann"
    assert report.baselines[0].total == report.ann_total
    for b in report.baselines:
        check_ratios(b.ratios, report.snn_total, b.total, f"{where} {b.key}")
        assert all(getattr(b.total, f) >= 0 for f in ENERGY_FIELDS), (where, b.key)
    be = report.break_even
    assert be is not None and be.baseline == "ann"
    assert [r.name for r in be.layers] == [r.name for r in report.snn]
    assert be.network.snn_energy_pj == pytest.approx(report.snn_total.energy_total_pj)
    assert be.network.baseline_energy_pj == pytest.approx(report.ann_total.energy_total_pj)
    assert 0 <= be.network.fixed_energy_pj <= be.network.snn_energy_pj * (1 + 1e-12)
    events = any(r.input_events for r in report.snn)
    assert (be.network.spikes_per_synapse is not None) == events, where

    md = report.to_markdown()
    assert "## Baselines" in md and "## Break-even activity" in md, where
    assert all(f"{b.key}: " in md for b in report.baselines), where
    tex = report.to_latex()
    assert tex.count(r"\begin{tabular}") == 1 and r"\bottomrule" in tex
    assert ("Spikes per synapse" in tex) == events, where
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.snn) + len(report.ann) + 2, where
    back = type(report).model_validate_json(report.to_json())
    assert back == report, where
    assert json.loads(report.to_json())["baselines"][0]["key"] == "ann"


@settings(PROPS, max_examples=25)
@given(spec=net_specs())
def test_report_totals_are_the_sums_of_the_rows_on_every_profile(spec):
    model = build(spec)
    if spec.encoding == "poisson":
        model.enc.generator = torch.Generator().manual_seed(spec.seed)
    comparison = snncost.compare_profiles(model, data=inputs(spec, integer=True), seed=spec.seed)
    assert [r.profile for r in comparison.reports] == PROFILES
    for report in comparison.reports:
        check_report(report)
        assert report.batch_size == spec.batch and report.timesteps == spec.timesteps
        assert report.dataflow == load_profile(report.profile).default_dataflow


# --------------------------------------------------------------------------- every dataflow
def energies(report) -> list[tuple[str, float]]:
    """Every energy of a report: rows, totals, baselines, accesses, break-even."""
    out = []
    for net, rows, total in (
        ("snn", report.snn, report.snn_total),
        ("ann", report.ann, report.ann_total),
    ):
        for r in rows:
            out += [(f"{net} {r.name} {f}", getattr(r, f)) for f in ENERGY_FIELDS]
            out += [(f"{net} {r.name} {a.level}/{a.tensor}", a.energy_pj) for a in r.accesses]
        out += [(f"{net} total {f}", getattr(total, f)) for f in ENERGY_FIELDS]
    for b in report.baselines:
        out += [(f"{b.key} {f}", getattr(b.total, f)) for f in ENERGY_FIELDS]
    for r in [*report.break_even.layers, report.break_even.network]:
        out += [(f"break-even {r.name} {f}", getattr(r, f))
                for f in ("snn_energy_pj", "fixed_energy_pj", "baseline_energy_pj")]  # fmt: skip
    return out


def evaluate_every_dataflow(spec: NetSpec, dataflows=tuple(DATAFLOWS)) -> dict:
    """``{dataflow: report}`` of :func:`snncost.evaluate` on 45nm (the same seeded inputs)."""
    model, x = build(spec), inputs(spec, integer=True)
    return {
        df: snncost.evaluate(model, profile="45nm", data=x, dataflow=df, seed=spec.seed)
        for df in dataflows
    }


@settings(PROPS, max_examples=20)
@given(spec=net_specs())
def test_every_dataflow_prices_a_random_snn(spec):
    reports = evaluate_every_dataflow(spec)
    nr = reports["no-reuse"]
    for df, report in reports.items():
        assert report.dataflow == df
        assert report.ann_dataflow == (df if df != "neuromorphic" else "weight-stationary")
        assert f"dataflow: SNN {df}, ANN {report.ann_dataflow}" in report.conventions
        for label, e in energies(report):
            assert math.isfinite(e) and e >= 0, (df, label, e)
        check_report(report)
        # the same replay: the events and the compute energy do not depend on the dataflow
        for f in ("synaptic_ops", "macs", "neuron_updates", "spikes", "input_events"):
            assert getattr(report.snn_total, f) == getattr(nr.snn_total, f), (df, f)
        assert report.snn_total.energy_compute_pj == pytest.approx(nr.snn_total.energy_compute_pj)
        assert report.ann_total.energy_compute_pj == pytest.approx(nr.ann_total.energy_compute_pj)


# --------------------------------------------------------------------------- worked example
def test_worked_example_of_the_docs_under_the_old_conventions():
    """docs/cost_model.md section 5 (pre-refactor figures): no reuse, padding taps counted."""
    from sklearn.datasets import load_digits

    from snncost.models import NeuronConfig, VGGSpec, build_snn

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images[:32], dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target[:32])
    model = build_snn(
        VGGSpec.from_arch("vgg-tiny", in_channels=1, image_size=8, num_classes=10),
        NeuronConfig(timesteps=8),
    )
    report = snncost.evaluate(
        model, profile="45nm", data=(x, y), dataflow="no-reuse", count_padding=True
    )
    s, a = report.snn_total, report.ann_total

    def sig4(v: float) -> float:
        return float(f"{v:.4g}")

    assert sig4(s.energy_total_pj / 1e6) == 7.253  # µJ
    assert sig4(a.energy_total_pj / 1e6) == 26.78
    assert sig4(s.energy_synaptic_pj / 1e3) == 473.7  # nJ
    assert sig4(a.energy_synaptic_pj / 1e6) == 2.796
    assert sig4(s.energy_memory_pj / 1e6) == 6.72 and sig4(a.energy_memory_pj / 1e6) == 23.98
    assert sig4(s.memory_bits / 1e6) == 23.58 and sig4(a.memory_bits / 1e6) == 58.83
    assert report.snn[0].macs == 73_728 and s.synaptic_ops == pytest.approx(149_448, abs=1)
    assert a.macs == 607_872 and s.neuron_updates == 33_360
    assert s.latency_cycles == 1_012 and a.latency_cycles == 2_392
    assert report.accuracy == 0.125
    assert f"{report.ratios.synaptic_energy:.2f}" == "5.90"
    assert f"{report.ratios.total_energy:.2f}" == "3.69"
    # first layer: weights (576 B) in the 8 KB SRAM, 73,728 x 32 bits x 0.15625 pJ/bit
    w = [acc for acc in report.snn[0].accesses if acc.tensor == "weights"]
    assert [(acc.level, acc.reads, acc.bits) for acc in w] == [("sram_8KB", 73_728, 32)]
    assert w[0].energy_pj == pytest.approx(73_728 * 32 * 0.15625)
    # the SNN's first layer counts real taps: without count_padding only its MACs change
    real = snncost.evaluate(model, profile="45nm", data=(x, y), dataflow="no-reuse")
    # 16 output channels x (7 + 8 + 7)^2 real taps of a 3x3 kernel, padding 1, on 8x8; 8 steps
    assert real.snn[0].macs == 8 * 16 * 22 * 22 < report.snn[0].macs == 8 * 16 * 64 * 9
    assert [r.energy_total_pj for r in real.snn[1:]] == [r.energy_total_pj for r in report.snn[1:]]


# --------------------------------------------------------------------------- the RunCounts copy helper
def test_with_counts_copies_every_count_field():
    lc = LayerCounts(
        name="fc",
        kind="linear",
        neuron="output",
        input_shape=(4,),
        output_shape=(2,),
        weight_count=8,
        weight_bits=32,
        number_format="float",
        real_macs=8,
        padded_macs=8,
        **{f: np.ones(2, np.int64) for f in COUNT_FIELDS},
    )
    counts = RunCounts("snn", 2, 1, [lc])
    doubled = with_counts(counts, lambda _i, _f, a: a * 2)
    for f in COUNT_FIELDS:
        assert np.array_equal(getattr(doubled.layers[0], f), [2, 2]), f
        assert np.array_equal(getattr(lc, f), [1, 1]), f  # the original is untouched
    no_activity = replace(lc, nonzero_inputs=None, nonzero_input_macs=None)
    copied = with_counts(RunCounts("snn", 2, 1, [no_activity]), lambda _i, _f, a: a * 2)
    assert copied.layers[0].nonzero_inputs is None and copied.layers[0].nonzero_input_macs is None
