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


def small_snn(pool: str = "avg", bits: int | None = None, encoding: str = "poisson", seed: int = 0):
    """A VGG SNN (conv, pool, conv, linear, read-out) with biases and a leak; thresholds low
    enough that every layer fires."""
    torch.manual_seed(seed)
    spec = VGGSpec(
        features=[6, "P", 8], classifier=[16], in_channels=IMAGE[0], image_size=IMAGE[1],
        dropout=0.0, pool=pool, bias=True,
    )  # fmt: skip
    neurons = NeuronConfig(timesteps=5, encoding=encoding, leak=0.9, learn_threshold=False, learn_leak=False)
    model = build_snn(spec, neurons)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, sn.LIF):
                m.threshold.fill_(0.05)
    if bits is not None:
        sn.quantize_model(model, bits, per_channel=True)
    return model.eval()


def inputs(encoding: str, n: int = 6) -> torch.Tensor | np.ndarray:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, *IMAGE, generator=gen)
    if encoding == "direct":
        return x
    return (torch.rand(5, n, *IMAGE, generator=gen) < x).to(torch.int8).numpy()


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
