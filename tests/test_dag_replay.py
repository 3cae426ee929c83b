"""The replay on acyclic graphs (SEW / MS residual blocks, concat, downsampling, pools) and the
neuron kinds, against the dense torch executor (GraphModule) and brute-force counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snncost.graph import (
    ConvNode,
    FlattenNode,
    InputNode,
    LayerGraph,
    LIFNode,
    LinearNode,
    MergeNode,
    OutputNode,
    PoolNode,
)
from snncost.graph.executor import GraphModule, initial_membrane, neuron_step
from snncost.sim import kernels as K
from snncost.sim import simulate
from snncost.sim.plan import compile_plan, neuron_constants

NEURON_KINDS = [
    {"charge": "leak", "leak": 1.0},  # IF
    {"charge": "leak", "leak": 0.75},
    {"charge": "decay-input", "tau": 3.0},
    {"charge": "no-decay-input", "tau": 2.5},
    {"charge": "plif-decay-input", "decay": float(np.float32(torch.sigmoid(torch.tensor(0.3))))},
    {"charge": "plif-no-decay-input", "decay": float(np.float32(torch.sigmoid(torch.tensor(-0.7))))},
]
RESETS = [{"reset": "soft"}, {"reset": "hard", "reset_value": 0.0}, {"reset": "hard", "reset_value": -0.25}]


class Builder:
    """Builds a random-but-valid graph: integer weight codes, power-of-two scales, dyadic biases,
    so every current is exact in float32 and the replay must match torch spike for spike."""

    def __init__(self, rng: np.random.Generator, channels: int, size: int, encoding: str, T: int) -> None:
        self.rng = rng
        self.nodes: list = [InputNode("in", shape=(channels, size, size), encoding=encoding, timesteps=T)]
        self.edges: list[tuple[str, str]] = []
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def add(self, node, *inputs: str):
        self.nodes.append(node)
        self.edges += [(i, node.name) for i in inputs]
        return node

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(next(n for n in self.nodes if n.name == name).out_shape)

    def conv(self, src: str, out_c: int, k: int = 3, stride: int = 1, pad: int = 1) -> str:
        c, h, w = self.shape(src)
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        codes = self.rng.integers(-3, 4, (out_c, c, k, k)).astype(np.float32)
        scale = (2.0 ** -self.rng.integers(1, 3, out_c)).astype(np.float32)
        bias = (self.rng.integers(-4, 5, out_c) / 16).astype(np.float32)
        return self.add(ConvNode(self.name("conv"), weight=codes, bias=bias, in_shape=(c, h, w), out_shape=(out_c, ho, wo),
                                 weight_bits=3, weight_scale=scale, number_format="int", stride=(stride, stride),
                                 padding=(pad, pad)), src).name  # fmt: skip

    def linear(self, src: str, out_f: int) -> str:
        (f,) = self.shape(src)
        codes = self.rng.integers(-3, 4, (out_f, f)).astype(np.float32)
        bias = (self.rng.integers(-4, 5, out_f) / 16).astype(np.float32)
        return self.add(LinearNode(self.name("fc"), weight=codes, bias=bias, in_shape=(f,), out_shape=(out_f,),
                                   weight_bits=3, weight_scale=np.float32(0.5), number_format="int"), src).name  # fmt: skip

    def lif(self, src: str, kind: dict | None = None, reset: dict | None = None) -> str:
        kind = kind or NEURON_KINDS[self.rng.integers(len(NEURON_KINDS))]
        reset = reset or RESETS[self.rng.integers(len(RESETS))]
        theta = float(self.rng.choice([0.5, 0.75, 1.0]))
        return self.add(LIFNode(self.name("lif"), threshold=theta, shape=self.shape(src), **kind, **reset), src).name

    def merge(self, op: str, *inputs: str) -> str:
        shapes = [self.shape(i) for i in inputs]
        shape = (sum(s[0] for s in shapes), *shapes[0][1:]) if op == "concat" else shapes[0]
        return self.add(MergeNode(self.name(op), op=op, inputs=tuple(inputs), shape=shape), *inputs).name

    def pool(self, src: str, kind: str, k: int = 2) -> str:
        c, h, w = self.shape(src)
        return self.add(PoolNode(self.name(kind + "pool"), kind=kind, kernel=k, in_shape=(c, h, w),
                                 out_shape=(c, h // k, w // k)), src).name  # fmt: skip

    def head(self, src: str, classes: int = 3) -> LayerGraph:
        c, h, w = self.shape(src)
        if h == w and h > 1 and self.rng.random() < 0.5:
            src = self.add(PoolNode.global_average(self.name("gap"), (c, h, w)), src).name
        flat = self.add(FlattenNode(self.name("flat"), in_shape=self.shape(src), out_shape=(int(np.prod(self.shape(src))),)), src)
        fc = self.linear(flat.name, classes)
        self.add(OutputNode("out", shape=(classes,)), fc)
        return LayerGraph(self.nodes, self.edges, name="random-dag")


def random_graph(seed: int, blocks: list[str], encoding: str, T: int) -> LayerGraph:
    """A stem conv+LIF, then ``blocks`` (residual blocks of each style, concat, pools,
    downsampling), then a (global-average-pooled) linear read-out."""
    rng = np.random.default_rng(seed)
    b = Builder(rng, 2, 8, encoding, T)
    x = b.lif(b.conv("in", 3))
    counts = set()  # values that may hold spike counts > 1 (not valid for and/iand)
    for kind in blocks:
        c, h, w = b.shape(x)
        if kind in ("sew-and", "sew-iand") and x in counts:
            x = b.lif(b.conv(x, c))
        if kind in ("sew-add", "sew-and", "sew-iand"):
            a = b.lif(b.conv(x, c))
            x, was = b.merge(kind.removeprefix("sew-"), a, x), x
            if kind == "sew-add" or was in counts:
                counts.add(x)
        elif kind == "ms":  # membrane shortcut: current + current (or + spikes) -> LIF
            cur = b.conv(x, c)
            other = b.conv(x, c, k=1, pad=0) if rng.random() < 0.5 else x
            x = b.lif(b.merge("add", cur, other))
        elif kind == "down" and h >= 4:  # 1x1 stride-2 downsample shortcut beside a 3x3 stride-2 conv
            main = b.conv(x, c + 1, k=3, stride=2, pad=1)
            short = b.conv(x, c + 1, k=1, stride=2, pad=0)
            x = b.lif(b.merge("add", main, short))
        elif kind == "concat":
            y = b.lif(b.conv(x, 2))
            x, was = b.merge("concat", x, y), x
            if was in counts:
                counts.add(x)
        elif kind == "pool" and h >= 4:
            pooled = b.pool(x, str(rng.choice(["avg", "max"])))
            if "avg" in pooled:  # average-pooled spikes are graded: a weight layer reads them
                x = b.lif(b.conv(pooled, c))
            else:
                x = pooled if x not in counts else counts.add(pooled) or pooled
        elif kind == "current-pool" and h >= 4:
            x = b.lif(b.pool(b.conv(x, c), str(rng.choice(["avg", "max"]))))
        elif kind == "multi-add":  # three spike maps: counts up to 3 (or more)
            a = b.lif(b.conv(x, c))
            d = b.lif(b.conv(x, c))
            x = b.merge("add", a, d, x)
            counts.add(x)
    return b.head(x)


def _inputs(graph: LayerGraph, B: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    inp = graph.input
    if inp.encoding == "direct":  # on a 1/16 grid: products with integer codes are exact
        return (rng.integers(0, 17, (B, *inp.shape)) / 16).astype(np.float32)
    return rng.choice(np.array([-1, 0, 0, 1, 1], np.int8), (inp.timesteps, B, *inp.shape))


def _brute_force_synops(graph: LayerGraph, values: dict[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """Per weight layer ``(input events, ACs)`` over the run: |input| (multiplicities included;
    pre-pool spikes for average-pooled input) times the outputs each input position reaches."""
    out = {}
    for node in graph.weight_layers():
        (src,) = graph.nx.predecessors(node.name)
        x, pools = _event_source(graph, src, values)
        if x is None:
            continue
        a = x.abs().flatten(0, 1)  # [T*B, ...]
        for k in pools:  # a folded average pool: every pre-pool spike still arrives (sum pool)
            a = F.avg_pool2d(a, k) * (k * k)
        if isinstance(node, ConvNode):
            a = a.reshape(len(a), *node.in_shape)
            taps = F.conv2d(a.sum(1, keepdim=True), torch.ones(1, 1, *node.kernel_size), stride=node.stride,
                            padding=node.padding)  # per output position: input spikes in its window
            acs = taps.sum() * node.out_features
        else:
            acs = a.sum() * node.out_features
        out[node.name] = (int(a.sum()), int(acs))
    return out


def _event_source(graph: LayerGraph, name: str, values: dict) -> tuple[torch.Tensor | None, list[int]]:
    """Walk back through flatten/average pools to the spike map a weight layer reads."""
    pools = []
    node = graph[name]
    while isinstance(node, (FlattenNode, PoolNode)) and not (isinstance(node, PoolNode) and node.kind == "max"):
        if isinstance(node, PoolNode):
            pools.insert(0, node.kernel)
        (name,) = graph.nx.predecessors(name)
        node = graph[name]
    if isinstance(node, InputNode) and node.encoding == "direct":
        return None, []
    x = values[name]
    if pools and x.dim() == 3:
        x = x.reshape(*x.shape[:2], *graph[name].out_shape)
    return x, pools


def check_graph(graph: LayerGraph, x, B: int) -> None:
    run = simulate(graph, x, record_spikes=True, batch_size=2)
    ref = GraphModule(graph)
    logits, values = ref(torch.as_tensor(x), return_values=True)
    for lif in graph.lif_layers():
        want = values[lif.name].numpy().astype(np.uint8)
        got = run.extra["spikes"][lif.name]
        assert np.array_equal(got, want), f"{lif.name}: {(got != want).sum()} spike mismatches"
    assert np.array_equal(run.logits, logits.numpy()), "logits differ"
    rows = {lc.name: lc for lc in run.layers}
    for name, (events, acs) in _brute_force_synops(graph, values).items():
        assert int(rows[name].input_events.sum()) == events, name
        assert int(rows[name].synaptic_ops.sum()) == acs, name
    for node in graph:
        if isinstance(node, MergeNode):
            lc = rows[node.name]
            n_out = int(np.prod(node.shape)) * B * run.timesteps
            assert int(lc.elementwise_ops.sum()) == (0 if node.op == "concat" else n_out)
            arriving = sum(int(values[i].abs().sum()) for i in node.inputs if _is_events(graph, i))
            assert int(lc.input_events.sum()) == arriving
        if isinstance(node, LIFNode):
            spikes = int(values[node.name].sum())
            row = rows.get(node.name)
            if row is None:  # fused into its weight layer's row
                (row,) = [rows[p] for p in graph.nx.predecessors(node.name)]
            assert int(row.output_spikes.sum()) == spikes, node.name


def _is_events(graph: LayerGraph, name: str) -> bool:
    plan_values = compile_plan(graph).values
    return plan_values[name].kind == "events" and plan_values[name].fold is None


BLOCKS = ["sew-add", "sew-and", "sew-iand", "ms", "down", "concat", "pool", "current-pool", "multi-add"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=4),
    encoding=st.sampled_from(["direct", "poisson"]),
    T=st.integers(1, 4),
)
def test_random_dags_match_torch_and_brute_force(seed, blocks, encoding, T):
    graph = random_graph(seed, blocks, encoding, T)
    B = 3
    check_graph(graph, _inputs(graph, B, seed), B)


def _sew_block(op: str) -> LayerGraph:
    b = Builder(np.random.default_rng(7), 2, 8, "poisson", 4)
    s = b.lif(b.conv("in", 4), NEURON_KINDS[0], RESETS[1])
    a = b.lif(b.conv(b.lif(b.conv(s, 4)), 4))
    return b.head(b.merge(op, a, s))


@pytest.mark.parametrize("op", ["add", "and", "iand"])
def test_sew_resnet_block(op):
    graph = _sew_block(op)
    x = _inputs(graph, 4, 7)
    check_graph(graph, x, 4)
    (merge,) = [lc for lc in simulate(graph, x).layers if lc.kind == "merge"]
    assert merge.merge_op == op and merge.input_events.sum() > 0
    if op == "add":  # every arriving spike is handed on, with its multiplicity
        assert merge.output_spikes.sum() == merge.input_events.sum()


def test_ms_resnet_block_and_rows():
    b = Builder(np.random.default_rng(3), 2, 8, "direct", 3)
    s = b.lif(b.conv("in", 4))
    cur = b.conv(b.lif(b.conv(s, 4)), 4)
    x = b.lif(b.merge("add", cur, s))  # spikes enter the membrane path as 0/1 currents
    graph = b.head(x)
    inputs = _inputs(graph, 4, 3)
    check_graph(graph, inputs, 4)
    run = simulate(graph, inputs)
    kinds = [(lc.kind, lc.neuron) for lc in run.layers]
    assert ("merge", "none") in kinds and ("neuron", "lif") in kinds
    conv_row = next(lc for lc in run.layers if lc.name == cur)
    assert conv_row.neuron == "none" and conv_row.neuron_updates.sum() == 0


def _head_counts(doubled: bool, x) -> tuple[int, int]:
    b = Builder(np.random.default_rng(1), 2, 6, "poisson", 2)
    s = b.lif(b.conv("in", 3))
    graph = b.head(b.merge("add", s, s) if doubled else s)
    head = graph.weight_layers()[-1].name
    (row,) = [lc for lc in simulate(graph, x).layers if lc.name == head]
    return int(row.input_events.sum()), int(row.synaptic_ops.sum())


def test_sew_add_multiplicity_counts_every_spike():
    """A SEW ADD of a spike map with itself: every event is 2 spikes at one address, so the next
    layer receives twice the events and performs twice the ACs of one copy."""
    x = np.random.default_rng(2).choice(np.array([0, 1], np.int8), (2, 3, 2, 6, 6))
    once, twice = _head_counts(False, x), _head_counts(True, x)
    assert once[0] > 0
    assert twice == (2 * once[0], 2 * once[1])


def test_neuron_kernel_matches_reference_on_random_currents():
    rng = np.random.default_rng(0)
    cur = rng.normal(0.3, 0.8, (2, 16, 50)).astype(np.float32)
    for kind in NEURON_KINDS:
        for reset in RESETS:
            node = LIFNode("n", threshold=0.7, shape=(50,), **kind, **reset)
            charge, hard, nc = neuron_constants(node)
            spikes = np.zeros(cur.shape, np.int8)
            counts = np.zeros((2, 16, K.N_COUNTS), np.int64)
            K.neuron_layer(cur, charge, hard, nc, spikes, counts)
            c = torch.from_numpy(cur)
            u = initial_membrane(node, c[:, 0])
            ref = []
            for t in range(cur.shape[1]):
                s, u = neuron_step(node, u, c[:, t])
                ref.append(s)
            want = torch.stack(ref, 1).numpy().astype(np.int8)
            assert np.array_equal(spikes, want), (kind, reset)
            assert counts[..., K.SPIKES].sum() == want.sum()


def _spikingjelly_neuron(node: LIFNode):
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    v_reset = node.reset_value if node.reset == "hard" else None
    common = {"v_threshold": node.threshold, "v_reset": v_reset, "step_mode": "m"}
    if node.charge == "leak":
        assert node.leak == 1.0
        return neuron.IFNode(**common)
    if node.charge in ("decay-input", "no-decay-input"):
        return neuron.LIFNode(tau=node.tau, decay_input=node.charge == "decay-input", **common)
    w = float(torch.logit(torch.tensor(node.decay, dtype=torch.float64)))
    m = neuron.ParametricLIFNode(init_tau=2.0, decay_input=node.charge == "plif-decay-input", **common)
    with torch.no_grad():
        m.w.fill_(w)
    assert np.float32(m.w.sigmoid().item()) == np.float32(node.decay)
    return m


@pytest.mark.parametrize("kind", [k for k in NEURON_KINDS if k.get("leak", 1.0) == 1.0], ids=lambda k: k["charge"])
@pytest.mark.parametrize("reset", RESETS, ids=lambda r: f"{r['reset']}{r.get('reset_value', '')}")
def test_neuron_kinds_match_spikingjelly(kind, reset):
    node = LIFNode("n", threshold=0.6, shape=(40,), **kind, **reset)
    sj = _spikingjelly_neuron(node)
    rng = np.random.default_rng(5)
    cur = rng.normal(0.25, 0.7, (24, 3, 40)).astype(np.float32)  # [T, B, N]
    with torch.no_grad():
        want = sj(torch.from_numpy(cur)).numpy().astype(np.int8)
    charge, hard, nc = neuron_constants(node)
    spikes = np.zeros((3, 24, 40), np.int8)
    K.neuron_layer(np.ascontiguousarray(cur.transpose(1, 0, 2)), charge, hard, nc, spikes,
                   np.zeros((3, 24, K.N_COUNTS), np.int64))  # fmt: skip
    assert want.sum() > 0
    assert np.array_equal(spikes.transpose(1, 0, 2), want)


def test_refusals_name_the_node():
    with pytest.raises(ValueError, match="gap.*not square"):
        PoolNode.global_average("gap", (4, 8, 6))
    b = Builder(np.random.default_rng(0), 2, 8, "poisson", 2)
    s = b.lif(b.conv("in", 2))
    p = b.pool(s, "avg")
    q = b.pool(b.lif(b.conv(s, 2)), "avg")
    b.merge("add", p, q)
    graph = LayerGraph(b.nodes, b.edges)
    with pytest.raises(ValueError, match="add.*average-pooled"):
        compile_plan(graph)
    b = Builder(np.random.default_rng(0), 2, 8, "poisson", 2)
    s = b.lif(b.conv("in", 2))
    m = b.merge("add", s, s)
    b.merge("and", m, s)
    with pytest.raises(ValueError, match="and.*0/1 spikes"):
        compile_plan(LayerGraph(b.nodes, b.edges))
    b = Builder(np.random.default_rng(0), 2, 8, "poisson", 2)
    c = b.conv("in", 2)
    b.conv(b.merge("add", c, c), 2)
    with pytest.raises(ValueError, match="fed by a current"):
        compile_plan(LayerGraph(b.nodes, b.edges))


def test_cost_model_prices_neuron_and_merge_rows_once():
    from snncost.costmodel.accesses import Widths
    from snncost.costmodel.conventions import CONVENTIONS, convention_run
    from snncost.costmodel.dataflows import DATAFLOWS
    from snncost.costmodel.pricing import cost_run, neuron_update_ops
    from snncost.hardware import load_profile
    from snncost.sim import ann_counts

    b = Builder(np.random.default_rng(3), 2, 8, "poisson", 3)
    s = b.lif(b.conv("in", 4))
    a = b.lif(b.merge("add", b.conv(s, 4), s), {"charge": "decay-input", "tau": 2.0}, RESETS[2])
    graph = b.head(b.merge("iand", b.lif(b.conv(a, 4)), a))
    x = _inputs(graph, 2, 3)
    counts = simulate(graph, x)
    profile = load_profile("45nm")
    widths = Widths(weights=0, inputs=8, state=32, outputs=8, number_format="float")
    for dataflow in DATAFLOWS:
        run = cost_run(counts, profile, widths, dataflow)
        rows = {r.name: r for r in run.rows}
        neuron = next(r for r in run.rows if r.kind == "neuron")
        lc = next(lc for lc in counts.layers if lc.name == neuron.name)
        assert neuron_update_ops(lc) == (True, 2 + 1 + 1)  # multiply, 2 adds, u - vr (vr != 0), fire/reset
        unit = profile.neuron_update_energy(32, "float", True, adds=4)
        assert neuron.energy_neuron_pj == pytest.approx(neuron.neuron_updates * unit)
        for r in run.rows:
            if r.kind == "merge":
                ops = float(next(lc for lc in counts.layers if lc.name == r.name).elementwise_ops.sum()) / 2
                assert r.energy_elementwise_pj == pytest.approx(ops * profile.ac_energy(32, "float"))
        assert run.total.energy_total_pj == pytest.approx(sum(r.energy_total_pj for r in rows.values()))
    for name in CONVENTIONS:
        run = convention_run(counts, name, profile)
        assert all(r.energy_total_pj == 0 for r in run.rows if r.kind in ("neuron", "merge"))
    assert [lc.merge_op for lc in ann_counts(graph).layers if lc.kind == "merge"] == ["add", "iand"]
    # run as an ANN, the IAND joins its branches with an add (the ANN ResNet's shortcut)
    xa = np.random.default_rng(4).random((2, 2, 8, 8), np.float32)
    as_add = LayerGraph(
        [dataclasses.replace(n, op="add") if getattr(n, "op", None) == "iand" else n for n in graph],
        list(graph.nx.edges),
    )
    measured = [lc.nonzero_inputs for lc in ann_counts(graph, inputs=xa).layers if lc.nonzero_inputs is not None]
    expected = [lc.nonzero_inputs for lc in ann_counts(as_add, inputs=xa).layers if lc.nonzero_inputs is not None]
    assert len(measured) == 4 and all(np.array_equal(m, e) for m, e in zip(measured, expected, strict=True))


def test_neuron_update_ops_rule_table():
    from snncost.costmodel.pricing import neuron_update_ops
    from snncost.sim.counts import LayerCounts

    def lc(**kw):
        z = np.zeros(1, np.int64)
        return LayerCounts("n", "neuron", "lif", (1,), (1,), 0, 8, "int", z, z, z, z, z, z, **kw)

    assert neuron_update_ops(lc()) == (False, 2)  # IF: integrate, fire/reset
    assert neuron_update_ops(lc(leak=0.5)) == (True, 2)  # today's LIF: leak multiply
    assert neuron_update_ops(lc(charge="no-decay-input", reset="hard")) == (True, 3)
    assert neuron_update_ops(lc(charge="plif-decay-input", reset="hard", reset_value=-1.0)) == (True, 4)


def test_ann_counts_follow_the_dag():
    from snncost.sim import ann_counts

    b = Builder(np.random.default_rng(4), 2, 8, "direct", 2)
    s = b.lif(b.conv("in", 3))
    cur = b.conv(s, 3)
    x = b.lif(b.merge("add", cur, b.conv(s, 3, k=1, pad=0)))
    graph = b.head(b.merge("concat", x, s))
    counts = ann_counts(graph, inputs=_inputs(graph, 2, 4))
    rows = {lc.name: lc for lc in counts.layers}
    assert rows[cur].neuron == "none" and rows[cur].neuron_updates.sum() == 0
    merges = [lc for lc in counts.layers if lc.kind == "merge"]
    assert [m.merge_op for m in merges] == ["add", "concat"]
    assert merges[0].elementwise_ops.sum() == 3 * 8 * 8 * 2 and merges[1].elementwise_ops.sum() == 0
    (relu,) = [lc for lc in counts.layers if lc.kind == "neuron"]
    assert relu.name == x and relu.neuron == "relu" and relu.neuron_updates.sum() == 3 * 8 * 8 * 2
