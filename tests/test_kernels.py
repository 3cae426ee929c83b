"""The event kernel's own choices must not change a single spike or count.

The replay's exactness against PyTorch is tested elsewhere (test_ground_truth,
test_quantize, test_dag_replay, ...). Here each performance choice of
:mod:`snncost.sim.kernels` is switched off or forced and the replay compared with
itself, bit for bit: integer codes at their width vs the same codes as float32,
output-channel blocks vs whole tiles, one thread vs several, and the per-graph
plan cache vs a fresh compile (and recompiled when a node changes).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

import snncost.nn as sn
from snncost.graph import build_graph
from snncost.graph.nodes import LinearNode
from snncost.models import NeuronConfig, VGGSpec, build_snn
from snncost.sim import kernels as K
from snncost.sim import plan as P
from snncost.sim import simulate

IMAGE = (2, 8, 8)


def small_snn(pool: str = "avg", bits: int | None = None, encoding: str = "poisson", seed: int = 0, timesteps: int = 5):
    """A VGG SNN (conv, pool, conv, linear, read-out) with biases and a leak; thresholds low
    enough that every layer fires."""
    torch.manual_seed(seed)
    spec = VGGSpec(
        features=[6, "P", 8], classifier=[16], in_channels=IMAGE[0], image_size=IMAGE[1],
        dropout=0.0, pool=pool, bias=True,
    )  # fmt: skip
    neurons = NeuronConfig(timesteps=timesteps, encoding=encoding, leak=0.9, learn_threshold=False, learn_leak=False)
    model = build_snn(spec, neurons)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, sn.LIF):
                m.threshold.fill_(0.05)
    if bits is not None:
        sn.quantize_model(model, bits, per_channel=True)
    return model.eval()


def inputs(encoding: str, n: int = 6, timesteps: int = 5) -> torch.Tensor | np.ndarray:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, *IMAGE, generator=gen)
    if encoding == "direct":
        return x
    return (torch.rand(timesteps, n, *IMAGE, generator=gen) < x).to(torch.int8).numpy()


def assert_same_run(a, b) -> None:
    assert np.array_equal(a.logits, b.logits)
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in ("input_events", "synaptic_ops", "synaptic_ops_nonzero", "output_spikes", "active_neurons"):
            assert np.array_equal(getattr(la, f), getattr(lb, f)), (la.name, f)
    for name, s in a.extra.get("spikes", {}).items():
        assert np.array_equal(s, b.extra["spikes"][name]), name


def test_event_weights_keep_codes_at_their_width():
    graph = build_graph(small_snn(bits=4))
    conv = graph.weight_layers()[1]
    wt = np.ascontiguousarray(conv.weight.transpose(1, 2, 3, 0), np.float32).reshape(-1)
    kwt, vtab, post = P.event_weights(conv, wt, 0.25, 1000)
    assert kwt.dtype == np.int8 and vtab.dtype == np.int32 and post == np.float32(0.25)
    assert np.array_equal(kwt.astype(np.float32), wt) and vtab[128 + 2] == 2
    assert P.event_weights(conv, wt * 300, 1.0, 1000)[0].dtype == np.int16  # codes past int8
    for fval, fan_in in ((1 / 9, 1000), (1.0, 2**31)):  # 1/9 is not a power of two; int32 could overflow
        kwt, vtab, post = P.event_weights(conv, wt, fval, fan_in)
        assert kwt.dtype == np.float32 and post == 1.0 and vtab[128 + 1] == np.float32(fval)
    float_conv = build_graph(small_snn()).weight_layers()[1]
    assert P.event_weights(float_conv, wt, 1.0, 1000)[0].dtype == np.float32


@pytest.mark.parametrize("bits", [4, 8, 12])
@pytest.mark.parametrize("encoding", ["poisson", "direct"])
def test_integer_codes_replay_as_float_codes(bits, encoding, monkeypatch):
    model = small_snn(bits=bits, encoding=encoding)
    x = inputs(encoding)
    graph = build_graph(model)
    as_int = simulate(graph, x, record_spikes=True)
    widths = {st.kwt.dtype for st in P.plan_for(graph).stages if st.kwt is not None}
    assert widths == {np.dtype(np.int8) if bits <= 8 else np.dtype(np.int16)}
    monkeypatch.setattr(P, "CODE_DTYPES", ())  # every layer on float32 codes
    graph = build_graph(model)
    as_float = simulate(graph, x, record_spikes=True)
    assert all(st.kwt.dtype == np.float32 for st in P.plan_for(graph).stages if st.kwt is not None)
    assert sum(int(lc.output_spikes.sum()) for lc in as_int.layers) > 0
    assert_same_run(as_int, as_float)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_output_blocks_and_threads_change_nothing(pool, monkeypatch):
    graph = build_graph(small_snn(pool=pool))
    x = inputs("poisson", n=1)  # one image: rows x samples are few, so linear layers get blocks
    whole = simulate(graph, x, record_spikes=True)
    monkeypatch.setattr(K, "output_block", lambda samples, rows, channels, threads: max(1, channels // 3))
    blocked = simulate(graph, x, record_spikes=True)
    assert_same_run(whole, blocked)
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = simulate(graph, x, record_spikes=True)
    finally:
        numba.set_num_threads(n)
    assert_same_run(whole, single)


def test_output_block_rule():
    assert K.output_block(8, 32, 64, 2) == 64  # enough tiles: whole rows
    assert K.output_block(1, 1, 1024, 2) == 256  # one image through a linear layer: 4 blocks
    assert K.output_block(1, 1, 10, 2) == 10  # too few channels to split


def test_plan_cache_follows_the_graph():
    graph = build_graph(small_snn())
    x = inputs("poisson")
    first = P.plan_for(graph)
    assert P.plan_for(graph) is first
    before = simulate(graph, x)
    fc = next(n for n in graph.weight_layers() if isinstance(n, LinearNode))
    fc.weight = fc.weight * 2  # a new array: seen, recompiled
    second = P.plan_for(graph)
    assert second is not first
    after = simulate(graph, x)
    assert not np.array_equal(before.logits, after.logits)
    fresh = P.compile_plan(graph)
    assert all(np.array_equal(a.wt, b.wt) for a, b in zip(second.stages, fresh.stages, strict=True))
    lif = next(n for n in graph if n.type_name == "lif")
    lif.threshold = lif.threshold * 4  # a scalar field: seen too
    assert P.plan_for(graph) is not second
    assert int(simulate(graph, x).layers[0].output_spikes.sum()) < int(after.layers[0].output_spikes.sum())


def test_a_graph_is_a_snapshot_of_its_model():
    """Training on after ``build_graph`` changes neither the graph nor its cached plan's replay:
    the graph copies the weights (a view of the parameters would go stale under the plan cache)."""
    model = small_snn()
    graph = build_graph(model)
    x = inputs("poisson")
    before = simulate(graph, x)
    weights = [n.weight.copy() for n in graph.weight_layers()]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # in place, as an optimiser step
    assert all(np.array_equal(w, n.weight) for w, n in zip(weights, graph.weight_layers(), strict=True))
    assert_same_run(before, simulate(graph, x))
    assert not np.array_equal(before.logits, simulate(build_graph(model), x).logits)


@pytest.mark.parametrize(
    "kind",
    [
        {"charge": "leak", "leak": 1.0},  # IF: membranes above threshold keep firing without input
        {"charge": "leak", "leak": 1.0, "reset": "hard", "reset_value": 0.0},
        {"charge": "leak", "leak": 0.5},  # leaky: decays step by step, never in closed form
        {"charge": "decay-input", "tau": 2.0},
        {"charge": "plif-no-decay-input", "decay": 0.25, "reset": "hard", "reset_value": -0.5},
    ],
)
def test_steps_without_input_match_the_dense_reference(kind):
    """Input in steps 0-1, none in 2-4, again in 5-7: in the gap most tiles get no events
    (where a kernel might be tempted to skip neuron updates). IF membranes above threshold
    must go on firing, leaky ones must decay step by step (it shows when the input comes
    back); spikes and logits must equal the dense torch executor's, step for step."""
    from dataclasses import replace

    from snncost.graph.executor import GraphModule

    graph = build_graph(small_snn(timesteps=8))
    for node in graph:  # weights on a 1/4 grid: every sum is exact in any order
        if node.type_name in ("conv", "linear"):
            node.weight = np.round(node.weight * 16) / 4
            node.bias = None
        if node.type_name == "lif":
            graph.nx.nodes[node.name]["spec"] = replace(node, threshold=0.25, **kind)
    x = inputs("poisson", timesteps=8)
    x[2:5] = 0
    run = simulate(graph, x, record_spikes=True)
    logits, spikes = GraphModule(graph)(torch.as_tensor(x), return_spikes=True)
    late = 0
    for name, want in spikes.items():
        got = run.extra["spikes"][name]
        assert np.array_equal(got, want.numpy().astype(np.uint8)), f"{name}: {(got != want.numpy()).sum()} mismatches"
        late += int(got[3:5].sum())
    assert np.array_equal(run.logits, logits.numpy())
    if kind.get("leak", 0) == 1.0 and kind.get("reset") != "hard":
        assert late > 0, "IF neurons above threshold must go on firing after the input stops"
