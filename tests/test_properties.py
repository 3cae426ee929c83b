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

And for the cost model (:mod:`snncost.report.costing`): every energy is
non-negative; scaling every count up, or adding one to any single count,
never lowers any energy component (nor the latency); a report's totals are
the sums of its per-layer rows for every numeric column, on every shipped
profile.

The architecture is drawn by hypothesis; the numbers in it (weights,
inputs) come from a seeded generator, so a failing case is reproducible
from the printed spec.
"""

from __future__ import annotations

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
from snncost.graph import build_graph
from snncost.hardware import available_profiles, load_profile
from snncost.report.costing import SUMMED_FIELDS, cost_run
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
COUNT_FIELDS = (
    "input_events",
    "synaptic_ops",
    "macs",
    "neuron_updates",
    "output_spikes",
    "weight_bits_read",
    "state_bits_read",
    "state_bits_written",
    "spike_bits_written",
)


def replay_counts(spec: NetSpec) -> tuple[RunCounts, RunCounts]:
    """``(snn, ann)`` counts of the random model ``spec`` on its random inputs."""
    model = build(spec)
    graph = build_graph(model, model.input_shape)
    x = inputs(spec, integer=True)
    if spec.encoding == "poisson":
        model.enc.generator = torch.Generator().manual_seed(spec.seed)
        with torch.no_grad():
            x = model.enc(x)
    snn = simulate(graph, x)
    ann = ann_counts(graph, model.input_shape, batch_size=1, activation_bits=32, weight_bits=32)
    return snn, ann


def with_counts(counts: RunCounts, change) -> RunCounts:
    """A copy of ``counts`` whose count arrays are ``change(layer index, field, array)``."""
    layers = []
    for i, lc in enumerate(counts.layers):
        arrays = {f: change(i, f, np.asarray(getattr(lc, f)).copy()) for f in COUNT_FIELDS}
        layers.append(replace(lc, **arrays))
    return RunCounts(counts.model, counts.timesteps, counts.batch_size, layers)


def components(run) -> list[tuple[str, float]]:
    """Every energy of every row and of the total, and the latency, as ``(label, value)``."""
    out = [(f"{r.name}.{f}", getattr(r, f)) for r in run.rows for f in ENERGY_FIELDS]
    out += [(f"total.{f}", getattr(run.total, f)) for f in ENERGY_FIELDS]
    out.append(("total.latency_s", run.total.latency_s))
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
        for name in PROFILES:
            profile = load_profile(name)
            assert_not_lower(
                cost_run(counts, profile), cost_run(bigger, profile), f"{name} x{factor}"
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
    for name in PROFILES:
        profile = load_profile(name)
        what = f"{name}: {network} {counts.layers[layer].name}.{field}[{step}] += {amount}"
        assert_not_lower(cost_run(counts, profile), cost_run(bigger, profile), what)


def check_totals(rows, total, where: str) -> None:
    for f in SUMMED_FIELDS:
        assert getattr(total, f) == pytest.approx(
            sum(getattr(r, f) for r in rows), rel=1e-12, abs=1e-9
        ), (
            where,
            f,
        )
    for r in rows:
        label = f"{where} {r.name}"
        for f in [*SUMMED_FIELDS, "latency_share"]:
            assert getattr(r, f) >= 0, (label, f)
        assert r.energy_synaptic_pj == pytest.approx(r.energy_ac_pj + r.energy_mac_pj), label
        assert r.energy_compute_pj == pytest.approx(
            r.energy_synaptic_pj + r.energy_neuron_pj + r.energy_routing_pj
        ), label
        assert r.energy_memory_pj == pytest.approx(
            r.energy_memory_weights_pj + r.energy_memory_state_pj + r.energy_memory_spikes_pj
        ), label
        assert r.energy_total_pj == pytest.approx(r.energy_compute_pj + r.energy_memory_pj), label
        assert r.memory_bits == pytest.approx(
            r.weight_bits_read + r.state_bits_read + r.state_bits_written + r.spike_bits_written
        ), label
    shares = sum(r.latency_share for r in rows)
    assert shares == pytest.approx(1.0) or shares == 0.0, (where, shares)
    assert total.latency_s >= 0, where


@settings(PROPS, max_examples=25)
@given(spec=net_specs())
def test_report_totals_are_the_sums_of_the_rows_on_every_profile(spec):
    model = build(spec)
    if spec.encoding == "poisson":
        model.enc.generator = torch.Generator().manual_seed(spec.seed)
    comparison = snncost.compare_profiles(model, data=inputs(spec, integer=True), seed=spec.seed)
    assert [r.profile for r in comparison.reports] == PROFILES
    for report in comparison.reports:
        check_totals(report.snn, report.snn_total, f"{report.profile} snn")
        check_totals(report.ann, report.ann_total, f"{report.profile} ann")
        assert report.batch_size == spec.batch and report.timesteps == spec.timesteps


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
        state_bits=32,
        **{f: np.ones(2, np.int64) for f in COUNT_FIELDS},
    )
    counts = RunCounts("snn", 2, 1, [lc])
    doubled = with_counts(counts, lambda _i, _f, a: a * 2)
    for f in COUNT_FIELDS:
        assert np.array_equal(getattr(doubled.layers[0], f), [2, 2]), f
        assert np.array_equal(getattr(lc, f), [1, 1]), f  # the original is untouched
