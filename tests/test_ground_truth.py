"""Ground truth for the event counts: every count checked against an independent PyTorch computation.

The energy figures are counts times prices, so a wrong count is a wrong
figure that no cost-model test can notice. Here each count the simulator
(:func:`snncost.sim.simulate`), the graph nodes and the ANN baseline
(:func:`snncost.sim.ann_counts`) report is recomputed with plain
``torch.nn.functional`` calls that share no code with them:

* accumulates (ACs) of a layer fed by events: put the number of events at
  each input position in a map, convolve it with ones; each output position
  then holds the events that reach it, and every event that reaches it costs
  one AC per output channel (``conv2d(events, ones(1, C, kh, kw)).sum() * O``);
  with ``(W != 0)`` as the kernel, the ACs whose weight is nonzero;
* an average pool folded into the events: each pre-pool spike stays one
  event whose fan-out is the pooled position's, so the event map is the
  pool's window *sum* of spike counts (``avg_pool2d * k * k``); a max pool
  is materialised: the events are the max-pooled spikes;
* a linear layer: every input event reaches every output (``events * out``);
* dense passes: ``conv2d(ones input, ones kernel)`` summed is the number of
  real (border-exact) taps; with ``(W != 0)`` or ``(a != 0)`` in place of the
  ones, the taps a weight- or activation-skipping datapath performs;
* spikes: the LIF outputs of the PyTorch forward pass (weights are small
  integers times 1/4, so the replay is exact and must match spike for spike).

Networks are drawn by hypothesis (a conv, an optional average/max pool, an
optional second conv, a hidden linear layer, the read-out); the numbers in
them come from a seeded generator, so a failure is reproducible from the
printed spec. The last test is a mutation test: a helper that cannot fail
proves nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import snncost.nn as sn
from snncost.graph import (
    ConvNode,
    FlattenNode,
    LIFNode,
    LinearNode,
    OutputNode,
    PoolNode,
    build_graph,
)
from snncost.graph.nodes import WeightNode
from snncost.sim import ann_counts, simulate
from snncost.sim.counts import RunCounts

GROUND = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- random networks
@dataclass(frozen=True)
class ConvSpec:
    out: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class NetSpec:
    channels: int
    height: int
    width: int
    conv0: ConvSpec
    pool: str  # none / avg / max, after the first LIF
    conv1: ConvSpec | None
    hidden: int
    classes: int
    timesteps: int
    batch: int
    leak: float
    bias: bool
    zero_fraction: float  # weights set exactly to 0
    fire_prob: float  # Poisson input: probability of a (signed) spike
    seed: int


@st.composite
def conv_specs(draw) -> ConvSpec:
    return ConvSpec(
        out=draw(st.integers(1, 6)),
        kernel=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        padding=(draw(st.integers(0, 1)), draw(st.integers(0, 1))),
    )


@st.composite
def net_specs(draw, zero_weights: bool = False, pool: str | None = None) -> NetSpec:
    return NetSpec(
        channels=draw(st.integers(1, 3)),
        height=draw(st.integers(4, 9)),
        width=draw(st.integers(4, 9)),
        conv0=draw(conv_specs()),
        pool=pool or draw(st.sampled_from(["none", "avg", "max"])),
        conv1=draw(conv_specs()) if draw(st.booleans()) else None,
        hidden=draw(st.integers(1, 6)),
        classes=draw(st.integers(2, 4)),
        timesteps=draw(st.integers(1, 4)),
        batch=draw(st.integers(1, 3)),
        leak=draw(st.sampled_from([1.0, 0.5])),
        bias=draw(st.booleans()),
        zero_fraction=draw(st.sampled_from([0.3, 0.6, 0.9])) if zero_weights else 0.0,
        fire_prob=draw(st.sampled_from([0.2, 0.5, 0.9])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def conv_output_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def build(spec: NetSpec, encoding: str = "poisson") -> sn.SpikingSequential:
    """The SNN of ``spec``: weights are integers in -2..3 times 1/4 (exact sums), some set to 0."""
    rng = np.random.default_rng(spec.seed)

    def fill(layer: nn.Module) -> nn.Module:
        with torch.no_grad():
            w = rng.integers(-2, 4, size=tuple(layer.weight.shape)) * 0.25
            if spec.zero_fraction > 0:
                w[rng.random(w.shape) < spec.zero_fraction] = 0.0
                w.flat[0] = 0.0  # at least one zero in every layer
            layer.weight.copy_(torch.tensor(w, dtype=torch.float32))
            if layer.bias is not None:
                layer.bias.copy_(torch.tensor(rng.integers(0, 3, size=layer.bias.shape) * 0.25))
        return layer

    def lif() -> sn.LIF:
        return sn.LIF(threshold=1.0, leak=spec.leak, learn_threshold=False, learn_leak=False)

    def conv(cs: ConvSpec, c: int, h: int, w: int) -> tuple[nn.Conv2d, tuple[int, int, int]]:
        (ph, pw), (sh, sw) = cs.padding, cs.stride
        kh, kw = min(cs.kernel[0], h + 2 * ph), min(cs.kernel[1], w + 2 * pw)
        m = nn.Conv2d(c, cs.out, (kh, kw), stride=(sh, sw), padding=(ph, pw), bias=spec.bias)
        shape = (cs.out, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))
        return fill(m), shape

    enc = (
        sn.PoissonEncoder(spec.timesteps)
        if encoding == "poisson"
        else sn.DirectEncoder(spec.timesteps)
    )
    mods: OrderedDict[str, nn.Module] = OrderedDict(enc=enc)
    mods["conv0"], (c, h, w) = conv(spec.conv0, spec.channels, spec.height, spec.width)
    mods["lif0"] = lif()
    if spec.pool != "none" and h >= 2 and w >= 2:
        mods["pool"] = nn.AvgPool2d(2) if spec.pool == "avg" else nn.MaxPool2d(2)
        h, w = h // 2, w // 2
    if spec.conv1 is not None:
        mods["conv1"], (c, h, w) = conv(spec.conv1, c, h, w)
        mods["lif1"] = lif()
    mods["flat"] = nn.Flatten()
    mods["fc"] = fill(nn.Linear(c * h * w, spec.hidden, bias=spec.bias))
    mods["fc_lif"] = lif()
    mods["out"] = fill(nn.Linear(spec.hidden, spec.classes, bias=spec.bias))
    mods["integrate"] = sn.OutputIntegrator()
    model = sn.SpikingSequential(mods)
    model.input_shape = (spec.channels, spec.height, spec.width)
    return model.eval()


def poisson_spikes(spec: NetSpec) -> np.ndarray:
    """Signed input spikes ``int8 [T, B, C, H, W]`` in {-1, 0, 1}, as a Poisson encoder emits them."""
    rng = np.random.default_rng(spec.seed + 1)
    shape = (spec.timesteps, spec.batch, spec.channels, spec.height, spec.width)
    fired = rng.random(shape) < spec.fire_prob
    sign = rng.choice(np.array([-1, 1], np.int8), size=shape)
    return (fired * sign).astype(np.int8)


def replay(spec: NetSpec, encoding: str = "poisson"):
    """``(model, graph, inputs, counts)`` of ``spec``, replayed with ``record_spikes=True``."""
    model = build(spec, encoding)
    graph = build_graph(model, model.input_shape)
    if encoding == "poisson":
        x = poisson_spikes(spec)
    else:
        rng = np.random.default_rng(spec.seed + 1)
        shape = (spec.batch, spec.channels, spec.height, spec.width)
        x = rng.uniform(-1.0, 2.0, size=shape).astype(np.float32)
    return model, graph, x, simulate(graph, x, record_spikes=True)


# --------------------------------------------------------------------------- independent counts
def event_count_maps(
    graph, inputs, spikes: dict
) -> dict[str, tuple[WeightNode, torch.Tensor | None]]:
    """Per weight layer, the number of events at each of its input positions, ``[T, B, *in_shape]``
    (float64), or ``None`` for an analog (direct-coded) input.

    The events of the first layer are the encoded input spikes (an event has
    ``|value| = 1``); after a LIF they are its recorded spikes; an average pool
    sums the spike counts of its window (each pre-pool spike is one event
    reaching through the pooled position); a max pool keeps the max-pooled spikes.
    """
    cur = None
    if graph.input.encoding != "direct":
        cur = torch.as_tensor(np.asarray(inputs), dtype=torch.float64).abs()
    maps: dict[str, tuple[WeightNode, torch.Tensor | None]] = {}
    for node in list(graph)[1:]:
        if isinstance(node, WeightNode):
            maps[node.name] = (node, cur)
        elif isinstance(node, LIFNode):
            cur = torch.as_tensor(spikes[node.name], dtype=torch.float64)
        elif cur is None:
            continue
        elif isinstance(node, PoolNode):
            t, b = cur.shape[:2]
            flat = cur.reshape(t * b, *cur.shape[2:])
            k = node.kernel
            pooled = (
                F.avg_pool2d(flat, k) * (k * k) if node.kind == "avg" else F.max_pool2d(flat, k)
            )
            cur = pooled.reshape(t, b, *pooled.shape[1:])
        elif isinstance(node, FlattenNode):
            cur = cur.reshape(*cur.shape[:2], -1)
        elif isinstance(node, OutputNode):
            break
    return maps


def per_step(x: torch.Tensor, steps: int) -> np.ndarray:
    """Sum of ``x`` per timestep (first axis), as exact integers."""
    return np.rint(x.reshape(steps, -1).sum(1).numpy()).astype(np.int64)


def conv_reach(events: torch.Tensor, kernel: torch.Tensor, node: ConvNode) -> torch.Tensor:
    """``conv2d`` of the event map ``[T, B, C, H, W]`` with ``kernel``, time folded into the batch."""
    t, b = events.shape[:2]
    out = F.conv2d(
        events.reshape(t * b, *events.shape[2:]), kernel, stride=node.stride, padding=node.padding
    )
    return out.reshape(t, b, *out.shape[1:])


def events_per_step(events: torch.Tensor) -> np.ndarray:
    return per_step(events, events.shape[0])


def conv_acs_per_step(events: torch.Tensor, node: ConvNode) -> np.ndarray:
    """ACs: events reaching each output position (``conv2d(events, ones)``) times the output channels."""
    o, c = node.weight.shape[:2]
    reach = conv_reach(events, torch.ones(1, c, *node.kernel_size, dtype=torch.float64), node)
    return per_step(reach, events.shape[0]) * o


def conv_nonzero_acs_per_step(
    events: torch.Tensor, weight: torch.Tensor, node: ConvNode
) -> np.ndarray:
    """ACs whose weight is nonzero: ``conv2d(events, W != 0)`` summed."""
    return per_step(conv_reach(events, (weight != 0).double(), node), events.shape[0])


def linear_acs_per_step(events: torch.Tensor, out_features: int) -> np.ndarray:
    """Every input event of a linear layer reaches every output."""
    return events_per_step(events) * out_features


def linear_nonzero_acs_per_step(events: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    return per_step(F.linear(events, (weight != 0).double()), events.shape[0])


def mismatch(name: str, field: str, got, expected) -> list[str]:
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape == expected.shape and np.array_equal(got, expected):
        return []
    return [f"{name}: {field} {got.tolist()} != expected {expected.tolist()}"]


def check_conv_acs(graph, inputs, counts: RunCounts) -> list[str]:
    """Mismatches of every event-fed conv layer's ``input_events`` and ``synaptic_ops`` (per step)
    against the independent event-map computation; ``[]`` when every count is right."""
    layers = {lc.name: lc for lc in counts.layers}
    errors: list[str] = []
    for name, (node, events) in event_count_maps(graph, inputs, counts.extra["spikes"]).items():
        if not isinstance(node, ConvNode) or events is None:
            continue
        lc = layers[name]
        errors += mismatch(name, "input_events", lc.input_events, events_per_step(events))
        errors += mismatch(name, "synaptic_ops", lc.synaptic_ops, conv_acs_per_step(events, node))
    return errors


def check_linear_acs(graph, inputs, counts: RunCounts) -> list[str]:
    """Mismatches of every event-fed linear layer's ``input_events`` and ``synaptic_ops``."""
    layers = {lc.name: lc for lc in counts.layers}
    errors: list[str] = []
    for name, (node, events) in event_count_maps(graph, inputs, counts.extra["spikes"]).items():
        if not isinstance(node, LinearNode) or events is None:
            continue
        lc = layers[name]
        errors += mismatch(name, "input_events", lc.input_events, events_per_step(events))
        errors += mismatch(
            name, "synaptic_ops", lc.synaptic_ops, linear_acs_per_step(events, node.out_features)
        )
    return errors


def check_nonzero_weight_acs(model: nn.Module, graph, inputs, counts: RunCounts) -> list[str]:
    """Mismatches of every event-fed layer's ``synaptic_ops_nonzero``, zeros read from the torch weights."""
    modules = dict(model.named_modules())
    layers = {lc.name: lc for lc in counts.layers}
    errors: list[str] = []
    for name, (node, events) in event_count_maps(graph, inputs, counts.extra["spikes"]).items():
        if events is None:
            continue
        weight = modules[name].weight.detach().double()
        if isinstance(node, ConvNode):
            expected = conv_nonzero_acs_per_step(events, weight, node)
        else:
            expected = linear_nonzero_acs_per_step(events, weight)
        errors += mismatch(
            name, "synaptic_ops_nonzero", layers[name].synaptic_ops_nonzero, expected
        )
    return errors


def torch_forward(
    model: sn.SpikingSequential, x
) -> tuple[dict[str, torch.Tensor], dict[str, tuple]]:
    """PyTorch forward pass after the encoder: ``(LIF spikes by name, weight-layer output shapes)``."""
    spikes: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, sn.LIF):
            handles.append(
                m.register_forward_hook(lambda _m, _i, out, n=name: spikes.__setitem__(n, out))
            )
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(
                m.register_forward_hook(
                    lambda _m, _i, out, n=name: shapes.__setitem__(n, tuple(out.shape))
                )
            )
    try:
        with torch.no_grad():
            model[1:](torch.as_tensor(np.asarray(x), dtype=torch.float32))
    finally:
        for h in handles:
            h.remove()
    return spikes, shapes


def dense_taps(shape: tuple[int, int, int], kernel: torch.Tensor, m: nn.Conv2d) -> int:
    """``conv2d(ones input, kernel)`` summed: the real (border-exact) taps a dense pass performs."""
    ones = torch.ones(1, *shape, dtype=torch.float64)
    return int(F.conv2d(ones, kernel, stride=m.stride, padding=m.padding).sum())


def ann_of(model: sn.SpikingSequential) -> nn.Sequential:
    """The equivalent ANN: same weight modules (shared), ReLU for every LIF, no encoder/read-out."""
    layers = [
        nn.ReLU() if isinstance(m, sn.LIF) else m
        for m in model.children()
        if not isinstance(m, (sn.Encoder, sn.OutputIntegrator))
    ]
    return nn.Sequential(*layers).eval()


# --------------------------------------------------------------------------- 1-3: event-fed layers
@pytest.mark.parametrize("pool", ["none", "avg", "max"])
@settings(GROUND, max_examples=20)
@given(data=st.data())
def test_conv_acs_and_input_events_equal_conv2d_of_event_map(pool, data):
    spec = data.draw(net_specs(pool=pool), label="spec")
    _, graph, x, counts = replay(spec)
    assert check_conv_acs(graph, x, counts) == []


@GROUND
@given(spec=net_specs(zero_weights=True))
def test_nonzero_weight_acs_equal_conv2d_with_weight_mask(spec):
    model, graph, x, counts = replay(spec)
    assert check_nonzero_weight_acs(model, graph, x, counts) == []
    modules = dict(model.named_modules())
    for lc in counts.layers:  # every layer has zeros, and says how many
        zeros = int((modules[lc.name].weight == 0).sum())
        assert zeros > 0 and lc.zero_weights == zeros, (lc.name, lc.zero_weights, zeros)


@GROUND
@given(spec=net_specs())
def test_linear_acs_equal_input_spikes_times_out_features(spec):
    _, graph, x, counts = replay(spec)
    assert check_linear_acs(graph, x, counts) == []


@GROUND
@given(spec=net_specs())
def test_spikes_spike_counts_and_neuron_updates_equal_torch_forward(spec):
    """The spikes the event maps are built from, and the spike/update counts, match PyTorch."""
    model, graph, x, counts = replay(spec)
    ref_spikes, out_shapes = torch_forward(model, x)
    recorded = counts.extra["spikes"]
    assert set(recorded) == set(ref_spikes)
    for name, ref in ref_spikes.items():
        assert np.array_equal(recorded[name], ref.numpy().astype(np.uint8)), name
    lif_after = {}
    nodes = list(graph)
    for a, b in zip(nodes, nodes[1:], strict=False):
        if isinstance(a, WeightNode) and isinstance(b, LIFNode):
            lif_after[a.name] = b.name
    for lc in counts.layers:
        t_b, *per_sample = out_shapes[lc.name]
        assert t_b == spec.timesteps * spec.batch
        updates = np.full(spec.timesteps, int(np.prod(per_sample)) * spec.batch)
        assert mismatch(lc.name, "neuron_updates", lc.neuron_updates, updates) == []
        fired = (
            per_step(ref_spikes[lif_after[lc.name]].double(), spec.timesteps)
            if lc.name in lif_after
            else np.zeros(spec.timesteps, np.int64)
        )
        assert mismatch(lc.name, "output_spikes", lc.output_spikes, fired) == []


# --------------------------------------------------------------------------- 4: dense (ANN) MACs
@GROUND
@given(spec=net_specs(zero_weights=True))
def test_ann_macs_equal_conv2d_of_ones_and_of_nonzero_activations(spec):
    model = build(spec, encoding="direct")
    graph = build_graph(model, model.input_shape)
    rng = np.random.default_rng(spec.seed + 2)
    x = torch.tensor(
        rng.integers(-1, 3, size=(spec.batch, *model.input_shape)), dtype=torch.float32
    )
    ann = ann_of(model)
    acts: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_pre_hook(lambda _m, inp, n=name: acts.__setitem__(n, inp[0]))
        for name, m in modules.items()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            ann(x)
    finally:
        for h in handles:
            h.remove()
    counts = {lc.name: lc for lc in ann_counts(graph, inputs=x).layers}
    nodes = {n.name: n for n in graph if isinstance(n, WeightNode)}
    assert set(counts) == set(nodes) == set(acts)
    for name, node in nodes.items():
        m, a, lc = modules[name], acts[name].double(), counts[name]
        nz = (a != 0).double()
        w = m.weight.detach().double()
        if isinstance(m, nn.Conv2d):
            o, c, kh, kw = m.weight.shape
            shape = tuple(a.shape[1:])
            real = dense_taps(shape, torch.ones(o, c, kh, kw, dtype=torch.float64), m)
            ho, wo = F.conv2d(a, w, stride=m.stride, padding=m.padding).shape[2:]
            padded = o * ho * wo * c * kh * kw
            nonzero_w = dense_taps(shape, (w != 0).double(), m)
            nonzero_in = F.conv2d(
                nz,
                torch.ones(o, c, kh, kw, dtype=torch.float64),
                stride=m.stride,
                padding=m.padding,
            )
            nonzero_in_macs = int(nonzero_in.sum())
        else:
            real = padded = m.weight.numel()
            nonzero_w = int((w != 0).sum())
            nonzero_in_macs = int(nz.sum()) * m.out_features
        assert node.real_macs == real and lc.real_macs == real, (name, node.real_macs, real)
        assert node.dense_macs == padded and lc.padded_macs == padded, (
            name,
            node.dense_macs,
            padded,
        )
        assert node.nonzero_weight_macs == nonzero_w, (name, node.nonzero_weight_macs, nonzero_w)
        assert lc.nonzero_weight_macs == nonzero_w, (name, lc.nonzero_weight_macs, nonzero_w)
        assert mismatch(name, "macs", lc.macs, [real * spec.batch]) == []
        assert mismatch(name, "nonzero_inputs", lc.nonzero_inputs, [int(nz.sum())]) == []
        assert mismatch(name, "nonzero_input_macs", lc.nonzero_input_macs, [nonzero_in_macs]) == []


# --------------------------------------------------------------------------- 5: direct first layer
@GROUND
@given(spec=net_specs())
def test_direct_first_layer_does_real_tap_macs_every_step_and_no_acs(spec):
    model, graph, x, counts = replay(spec, encoding="direct")
    first = counts.layers[0]
    conv0 = model.conv0
    o, c, kh, kw = conv0.weight.shape
    real = dense_taps(tuple(x.shape[1:]), torch.ones(o, c, kh, kw, dtype=torch.float64), conv0)
    zeros = np.zeros(spec.timesteps, np.int64)
    assert first.analog
    assert (
        mismatch(first.name, "macs", first.macs, np.full(spec.timesteps, real * spec.batch)) == []
    )
    for field in ("synaptic_ops", "synaptic_ops_nonzero", "input_events"):
        assert mismatch(first.name, field, getattr(first, field), zeros) == []
    # the layers after it are event-fed and exact as with Poisson input
    assert check_conv_acs(graph, x, counts) == []
    assert check_linear_acs(graph, x, counts) == []


# --------------------------------------------------------------------------- 6: mutation test
MUTATION_SPEC = NetSpec(
    channels=1,
    height=5,
    width=5,
    conv0=ConvSpec(out=2, kernel=(3, 3), stride=(2, 2), padding=(1, 1)),
    pool="none",
    conv1=None,
    hidden=3,
    classes=2,
    timesteps=2,
    batch=1,
    leak=1.0,
    bias=False,
    zero_fraction=0.0,
    fire_prob=1.0,
    seed=7,
)


def naive_fan_out(counts: RunCounts) -> RunCounts:
    """The counts with every conv's ACs replaced by ``input_events * kh * kw * O``: the fan-out
    that ignores borders and stride (each event as if it reached every kernel tap)."""
    layers = []
    for lc in counts.layers:
        if lc.kind == "conv":
            kh, kw = lc.kernel
            lc = replace(lc, synaptic_ops=lc.input_events * kh * kw * lc.output_shape[0])
        layers.append(lc)
    return replace(counts, layers=layers)


def test_check_conv_acs_catches_a_fan_out_that_ignores_borders_and_stride():
    """A test must be able to fail: an earlier review replaced the border-exact fan-out with
    ``kh * kw * O`` and 140 tests stayed green. On a 5x5 input with a 3x3 kernel, stride 2 and
    padding 1, every input spike (all pixels fire) reaches fewer than 9 output positions, so
    the naive count (25 * 9 * 2 = 450 per step) is far above the true one, conv2d of ones:
    7 x 7 taps reach the 3 x 3 outputs, times 2 channels = 98 per step."""
    _, graph, x, counts = replay(MUTATION_SPEC)
    conv = counts.layers[0]
    assert conv.name == "conv0" and conv.padding == (1, 1) and conv.stride == (2, 2)
    assert conv.synaptic_ops.tolist() == [98, 98]  # hand-checked anchor for this shape
    assert check_conv_acs(graph, x, counts) == []

    broken = naive_fan_out(counts)
    assert broken.layers[0].synaptic_ops.tolist() == [450, 450]
    errors = check_conv_acs(graph, x, broken)
    assert errors and all(e.startswith("conv0: synaptic_ops") for e in errors), errors
