"""Tracing models passed in directly (plain torch modules, SpikingJelly) into the LayerGraph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snncost
import snncost.nn as sn
from snncost.graph import build_graph, trace_graph
from snncost.graph.mapping import FoldedConvNode, UnsupportedModuleError
from snncost.graph.nodes import ConvNode, FlattenNode, LIFNode, MergeNode, OutputNode, PoolNode
from snncost.graph.trace import UnsupportedOperationError, static_input


def lif() -> sn.LIF:
    return sn.LIF(threshold=0.5, learn_threshold=False, learn_leak=False)


def seq(*mods: nn.Module) -> sn.SpikingSequential:
    """Time folded into the batch around stateless layers (what a [T, B, ...] forward needs)."""
    return sn.SpikingSequential(*mods)


class Residual(nn.Module):
    """SEW add (spikes), a membrane shortcut (currents), a concat, a 1x1 stride-2 downsample, a global mean."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = sn.DirectEncoder(3)
        self.stem = seq(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.lif0 = lif()
        self.a = seq(nn.Conv2d(4, 4, 3, padding=1))
        self.lif_a = lif()
        self.b = seq(nn.Conv2d(4, 4, 3, padding=1))  # current shortcut: b(x) + c(x), then a neuron
        self.c = seq(nn.Conv2d(4, 4, 1))
        self.lif_bc = lif()
        self.down = seq(nn.Conv2d(8, 6, 1, stride=2))
        self.main = seq(nn.Conv2d(8, 6, 3, stride=2, padding=1))
        self.lif_main = lif()
        self.lif_down = lif()
        self.fc = seq(nn.Linear(6, 5))
        self.out = sn.OutputIntegrator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.lif0(self.stem(self.enc(x)))
        sew = self.lif_a(self.a(s0)) + s0
        mem = self.lif_bc(self.b(sew) + self.c(sew))
        cat = torch.cat([sew, mem], dim=2)
        y = self.lif_main(self.main(cat)) + self.lif_down(self.down(cat))
        return self.out(self.fc(y.mean((3, 4))))


def test_residual_structure():
    torch.manual_seed(0)
    g = trace_graph(Residual().eval(), (2, 8, 8))
    edges = {
        ("enc", "stem.0"), ("stem.0", "lif0"), ("lif0", "a.0"), ("a.0", "lif_a"),
        ("lif_a", "add"), ("lif0", "add"), ("add", "b.0"), ("add", "c.0"), ("b.0", "add_1"),
        ("c.0", "add_1"), ("add_1", "lif_bc"), ("add", "cat"), ("lif_bc", "cat"),
        ("cat", "main.0"), ("cat", "down.0"), ("main.0", "lif_main"), ("down.0", "lif_down"),
        ("lif_main", "add_2"), ("lif_down", "add_2"), ("add_2", "mean"), ("mean", "mean.flatten"),
        ("mean.flatten", "fc.0"), ("fc.0", "out"),
    }  # fmt: skip
    assert set(g.nx.edges) == edges
    assert isinstance(g["stem.0"], FoldedConvNode) and g["stem.0"].folded_bn == "stem.1"
    assert g["add"].op == "add" and g["add"].inputs == ("lif_a", "lif0")
    assert g["add_1"].inputs == ("b.0", "c.0")
    assert g["cat"].op == "concat" and g["cat"].inputs == ("add", "lif_bc") and g["cat"].shape == (8, 8, 8)
    assert g["down.0"].stride == (2, 2) and g["down.0"].out_shape == (6, 4, 4)
    assert isinstance(g["mean"], PoolNode) and (g["mean"].kind, g["mean"].kernel) == ("avg", 4)
    assert g["mean"].out_shape == (6, 1, 1) and g["mean.flatten"].out_shape == (6,)
    assert isinstance(g["out"], OutputNode) and g.timesteps == 3


class Wrapped(nn.Module):
    """A chain model behind a plain forward: the tracer must give build_graph's graph."""

    def __init__(self, chain: nn.Module) -> None:
        super().__init__()
        self.net = chain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _chain(bn: bool = True) -> sn.SpikingSequential:
    torch.manual_seed(1)
    mods = [sn.DirectEncoder(4), nn.Conv2d(2, 4, 3, padding=1)] + ([nn.BatchNorm2d(4)] if bn else [])
    mods += [lif(), nn.AvgPool2d(2), nn.Dropout(0.1), nn.Flatten(), nn.Linear(64, 5), sn.OutputIntegrator()]
    model = sn.SpikingSequential(*mods)
    if bn:
        bnm = model[2]
        bnm.running_mean.uniform_(-0.5, 0.5)
        bnm.running_var.uniform_(0.5, 2.0)
    model.input_shape = (2, 8, 8)
    return model.eval()


def test_trace_of_a_chain_is_build_graph():
    chain = _chain()
    built = build_graph(chain)
    traced = trace_graph(Wrapped(chain), (2, 8, 8))
    assert [n.name.removeprefix("net.") for n in traced] == [n.name for n in built]
    assert traced.is_chain() and traced.skipped == [("net.5", "Dropout")]
    for a, b in zip(traced, built, strict=True):
        assert type(a) is type(b) and a.out_shape == b.out_shape
        if isinstance(a, ConvNode | LIFNode):
            for f in ("weight", "bias", "leak", "threshold"):
                if hasattr(a, f):
                    np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_evaluate_traced_plain_module_equals_chain():
    chain = _chain(bn=False)
    x = torch.rand(6, 2, 8, 8)
    direct = snncost.evaluate(chain, data=x)
    traced = snncost.evaluate(Wrapped(chain), data=x, input_shape=(2, 8, 8))
    assert traced.snn_total.energy_total_pj == direct.snn_total.energy_total_pj
    assert traced.ann_total.energy_total_pj == direct.ann_total.energy_total_pj


def test_static_input_rules():
    x = torch.rand(4, 2, 8, 8)
    rep = x.unsqueeze(0).expand(3, *x.shape)
    data, shape, T = static_input(rep, (2, 8, 8), None, encoder=False)
    assert torch.equal(data, x) and shape == (2, 8, 8) and T == 3
    assert static_input(x, None, 3, encoder=False)[1:] == ((2, 8, 8), 3)
    events = (torch.rand(3, 4, 2, 8, 8) > 0.5).float()
    with pytest.raises(ValueError, match="changes over T"):
        static_input(events, (2, 8, 8), None, encoder=False)
    with pytest.raises(ValueError, match="T = 3 steps, but timesteps=5"):
        static_input(rep, (2, 8, 8), 5, encoder=False)


class _Bad(nn.Module):
    """One unsupported thing in an otherwise fine SNN body."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what
        self.enc = sn.DirectEncoder(2)
        self.conv = seq(nn.Conv2d(2, 4, 3, padding=1))
        self.lif = lif()
        self.act = seq(nn.GELU())
        self.conv2 = seq(nn.Conv2d(4, 4, 3, padding=1))
        self.fc = seq(nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
        self.out = sn.OutputIntegrator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif(self.conv(self.enc(x)))
        if self.what == "gelu":
            s = self.act(s)
        elif self.what == "scale":
            s = s * 0.5
        elif self.what == "sigmoid":
            s = torch.sigmoid(s)
        elif self.what == "mul_currents":
            s = s * self.conv2(s)
        return self.out(self.fc(s))


@pytest.mark.parametrize(
    ("what", "error", "pattern"),
    [
        ("gelu", UnsupportedModuleError, r"unsupported module 'act\.0' of type GELU"),
        ("scale", UnsupportedOperationError, r"unsupported operation mul: arguments"),
        ("sigmoid", UnsupportedOperationError, r"unsupported operation sigmoid: no LayerGraph mapping"),
        ("mul_currents", UnsupportedOperationError, r"operation mul: 'lif' \* 'conv2\.0': only spike maps"),
    ],
)
def test_refusals_name_module_and_type(what, error, pattern):
    with pytest.raises((error, ValueError), match=pattern):
        trace_graph(_Bad(what).eval(), (2, 8, 8))


def test_refuses_timesteps_missing_and_training_bn():
    class NoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = seq(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ValueError, match="no encoder, so it does not fix T: pass timesteps="):
        trace_graph(NoEncoder(), (2, 8, 8))
    with pytest.raises(UnsupportedModuleError, match=r"'conv\.1' of type BatchNorm2d: in training mode"):
        trace_graph(NoEncoder().train(), (2, 8, 8), timesteps=2)


# ---------------------------------------------------------------------- SpikingJelly
@pytest.fixture
def sj():
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron

    return functional, layer, neuron


def _sj_sew(sj, cnf: str = "ADD"):
    functional, layer, neuron = sj

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = layer.SeqToANNContainer(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
            self.sn1 = neuron.IFNode(v_reset=None)
            self.conv2 = nn.Sequential(layer.Conv2d(c, c, 3, 1, 1, bias=False), layer.BatchNorm2d(c))
            self.sn2 = neuron.ParametricLIFNode(init_tau=3.0, decay_input=False, v_reset=0.0)

        def forward(self, x):
            out = self.sn2(self.conv2(self.sn1(self.conv1(x))))
            return {"ADD": lambda: out + x, "AND": lambda: out * x, "IAND": lambda: x * (1.0 - out)}[cnf]()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(2, 4, 3, padding=1)
            self.bn = layer.BatchNorm2d(4)
            self.sn = neuron.LIFNode(tau=2.0, v_reset=-0.1)
            self.block = Block(4)
            self.pool = layer.AdaptiveAvgPool2d(1)
            self.flat = layer.Flatten()
            self.fc = layer.Linear(4, 5)

        def forward(self, x):
            x = self.block(self.sn(self.bn(self.conv(x))))
            return self.fc(self.flat(self.pool(x))).mean(0)

    torch.manual_seed(0)
    net = Net()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    functional.set_step_mode(net, "m")
    return net.eval()


@pytest.mark.parametrize("cnf", ["ADD", "AND", "IAND"])
def test_spikingjelly_sew(sj, cnf):
    net = _sj_sew(sj, cnf)
    g = trace_graph(net, (2, 8, 8), timesteps=4)
    inp = g.input
    assert (inp.encoding, inp.timesteps, inp.shape) == ("direct", 4, (2, 8, 8))
    sn0, sn1, sn2 = g["sn"], g["block.sn1"], g["block.sn2"]
    assert (sn0.charge, sn0.tau, sn0.reset, sn0.reset_value) == ("decay-input", 2.0, "hard", -0.1)
    assert (sn1.charge, sn1.leak, sn1.reset) == ("leak", 1.0, "soft")
    assert sn2.charge == "plif-no-decay-input" and sn2.reset == "hard" and sn2.reset_value == 0.0
    w = net.block.sn2.w.detach()
    assert sn2.decay == float(np.float32(torch.sigmoid(w).item())) and abs(sn2.decay - 1 / 3) < 1e-6
    merge = [n for n in g if isinstance(n, MergeNode)]
    op = {"ADD": "add", "AND": "and", "IAND": "iand"}[cnf]
    assert len(merge) == 1 and merge[0].op == op and merge[0].inputs == ("block.sn2", "sn")
    assert [type(n).__name__ for n in g][-4:] == ["PoolNode", "FlattenNode", "LinearNode", "OutputNode"]
    assert isinstance(g["flat"], FlattenNode)
    # the folded BN reproduces SpikingJelly's conv -> bn on the same input (independent: torch)
    x = torch.rand(3, 2, 8, 8)
    for conv, bn, name in [(net.conv, net.bn, "conv"), (net.block.conv1[0], net.block.conv1[1], "block.conv1.0")]:
        node = g[name]
        assert isinstance(node, FoldedConvNode)
        xin = x if name == "conv" else torch.rand(3, 4, 8, 8)
        with torch.no_grad():
            ref = F.batch_norm(F.conv2d(xin, conv.weight, conv.bias, padding=1), bn.running_mean, bn.running_var,
                               bn.weight, bn.bias, False, 0.0, bn.eps)  # fmt: skip
        got = F.conv2d(xin, torch.from_numpy(node.weight), torch.from_numpy(node.bias), padding=1)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["single_step", "threshold_tensor", "neuron_subclass", "qif", "conv_groups"])
def test_spikingjelly_refusals(sj, case):
    functional, layer, neuron = sj

    class Sub(neuron.IFNode):
        pass

    node = {
        "single_step": lambda: neuron.IFNode(),
        "neuron_subclass": lambda: Sub(),
        "qif": lambda: neuron.QIFNode(),
    }

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(2, 4, 3, padding=1, groups=2 if case == "conv_groups" else 1)
            self.sn = node.get(case, neuron.IFNode)()
            self.fc = layer.Linear(4 * 8 * 8, 3)

        def forward(self, x):
            return self.fc(self.sn(self.conv(x)).flatten(2)).mean(0)

    net = Net()
    functional.set_step_mode(net, "m")
    if case == "single_step":
        net.sn.step_mode = "s"
    if case == "threshold_tensor":
        net.sn.v_threshold = torch.full((4, 8, 8), 1.0)
    where = "conv" if case == "conv_groups" else "sn"
    kind = "Conv2d" if case == "conv_groups" else type(net.sn).__name__
    with pytest.raises(UnsupportedModuleError, match=rf"unsupported module '{where}' of type {kind}"):
        trace_graph(net.eval(), (2, 8, 8), timesteps=2)


def _grid(t: torch.Tensor, step: float) -> None:
    """Weights on a coarse binary grid: every sum the forward and the replay form is exact."""
    with torch.no_grad():
        t.copy_(torch.round(t / step) * step)


def _sj_chain(sj):
    functional, layer, neuron = sj
    torch.manual_seed(3)
    net = nn.Sequential(
        layer.Conv2d(2, 6, 3, padding=1), neuron.IFNode(v_reset=None, v_threshold=0.5),
        layer.AvgPool2d(2), layer.Conv2d(6, 8, 3, padding=1), neuron.IFNode(v_reset=None, v_threshold=0.5),
        layer.Flatten(), layer.Linear(8 * 4 * 4, 5),
    )  # fmt: skip
    for p in net.parameters():
        _grid(p, 1 / 16)
    functional.set_step_mode(net, "m")
    return net.eval()


class _MeanT(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x).mean(0)


def test_spikingjelly_chain_costs_and_spikes(sj, sj_spike_counts):
    """A SpikingJelly chain (IF, soft reset) costs what the same snncost network costs, and the
    replay's spike counts per layer equal SpikingJelly's own forward's."""
    functional, layer, neuron = sj
    from snncost.sim import simulate

    net = _MeanT(_sj_chain(sj))
    x = torch.randint(0, 9, (6, 2, 8, 8)).float() / 8
    T = 4
    g = trace_graph(net, (2, 8, 8), timesteps=T)
    counts = sj_spike_counts(net, x, T)
    run = simulate(g, x, record_spikes=True)
    replayed = {k: int(v.sum()) for k, v in run.extra["spikes"].items()}
    assert replayed == counts and sum(counts.values()) > 0

    body = net.body
    ours = sn.SpikingSequential(
        sn.DirectEncoder(T), body[0], sn.LIF(0.5, 1.0, False, False), nn.AvgPool2d(2), body[3],
        sn.LIF(0.5, 1.0, False, False), nn.Flatten(), body[6], sn.OutputIntegrator(),
    )  # fmt: skip
    ours.input_shape = (2, 8, 8)
    functional.set_step_mode(body, "s")  # snncost's container folds time itself
    ref = snncost.evaluate(ours, data=x)
    functional.set_step_mode(body, "m")
    got = snncost.evaluate(net, data=x, timesteps=T)
    assert got.snn_total.energy_total_pj == ref.snn_total.energy_total_pj
    bare = snncost.evaluate(body, data=x, timesteps=T)  # an nn.Sequential returning [T, B, K]: traced too
    assert bare.snn_total.energy_total_pj == ref.snn_total.energy_total_pj
    assert got.ann_total.energy_total_pj == ref.ann_total.energy_total_pj


def test_docs_table_is_the_mapping_table(sj):
    from pathlib import Path

    from snncost.graph.mapping import table_markdown

    doc = (Path(__file__).parents[1] / "docs" / "simulator.md").read_text()
    assert table_markdown() in doc
