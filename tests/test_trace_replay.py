"""Traced residual models replayed: SpikingJelly's own spike counts and the snncost-module twin's costs.

These need the DAG replay (``snncost.graph.executor`` and the merge-aware
``snncost.sim``); they are skipped until it is merged.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snncost
import snncost.nn as sn
from snncost.graph import trace_graph

pytest.importorskip("snncost.graph.executor", reason="needs the DAG replay")
sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

from snncost.sim import simulate  # noqa: E402

T = 4


_IF = [lambda: neuron.IFNode(v_threshold=0.5, v_reset=None)]
_MIXED = [
    lambda: neuron.LIFNode(tau=2.0, v_threshold=0.25),
    lambda: neuron.ParametricLIFNode(init_tau=2.0, decay_input=False, v_threshold=0.25, v_reset=None),
    lambda: neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=0.25, v_reset=None),
    lambda: neuron.IFNode(v_threshold=0.25, v_reset=0.0),
    lambda: neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.25),
]


class SJSew(nn.Module):
    """SEW-ResNet-style: stem, one SEW block (ADD/AND/IAND), a stride-2 downsample block, mean read-out."""

    def __init__(self, cnf: str, neurons: str) -> None:
        super().__init__()
        kinds = _IF * 5 if neurons == "if" else _MIXED
        self.cnf = cnf
        self.stem = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4))
        self.sn0 = kinds[0]()
        self.c1 = layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.sn1 = kinds[1]()
        self.c2 = nn.Sequential(layer.Conv2d(4, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4))
        self.sn2 = kinds[2]()
        self.d1 = nn.Sequential(layer.Conv2d(4, 6, 3, stride=2, padding=1), layer.BatchNorm2d(6))
        self.sn3 = kinds[3]()
        self.down = nn.Sequential(layer.Conv2d(4, 6, 1, stride=2), layer.BatchNorm2d(6))
        self.sn4 = kinds[4]()
        self.pool = layer.AdaptiveAvgPool2d(1)
        self.fc = layer.Linear(6, 5)

    def forward(self, x):
        s = self.sn0(self.stem(x))
        out = self.sn2(self.c2(self.sn1(self.c1(s))))
        s = {"ADD": lambda: out + s, "AND": lambda: out * s, "IAND": lambda: s * (1.0 - out)}[self.cnf]()
        s = self.sn3(self.d1(s)) + self.sn4(self.down(s))
        return self.fc(self.pool(s).flatten(2)).mean(0)


def _model(cnf: str, neurons: str, exact_grid) -> SJSew:
    net = SJSew(cnf, neurons)
    exact_grid(net, seed=5)
    functional.set_step_mode(net, "m")
    return net.eval()


@pytest.mark.parametrize("cnf", ["ADD", "AND", "IAND"])
@pytest.mark.parametrize("neurons", ["if", "mixed"])
def test_spikingjelly_spike_counts_equal_replay(cnf, neurons, exact_grid, sj_spike_counts):
    net = _model(cnf, neurons, exact_grid)
    x = torch.randint(0, 9, (5, 2, 8, 8)).float() / 8
    g = trace_graph(net, (2, 8, 8), timesteps=T)
    counts = sj_spike_counts(net, x, T)
    run = simulate(g, x, record_spikes=True)
    replayed = {k: int(v.sum()) for k, v in run.extra["spikes"].items()}
    assert replayed == counts
    assert sum(counts.values()) > 0


class OursSew(nn.Module):
    """The same network from snncost modules (IF, soft reset): what SJSew(neurons="if") must cost."""

    def __init__(self, sj_net: SJSew) -> None:
        super().__init__()
        self.cnf = sj_net.cnf
        self.enc = sn.DirectEncoder(T)

        def seq(*mods):
            return sn.SpikingSequential(*mods)

        def conv(c: nn.Conv2d) -> nn.Conv2d:
            new = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=c.bias is not None)
            new.load_state_dict(c.state_dict())
            return new

        def bn(b: nn.BatchNorm2d) -> nn.BatchNorm2d:
            new = nn.BatchNorm2d(b.num_features, eps=b.eps)
            new.load_state_dict(b.state_dict())
            return new.eval()

        def lif() -> sn.LIF:
            return sn.LIF(threshold=0.5, leak=1.0, learn_threshold=False, learn_leak=False)

        self.stem = seq(conv(sj_net.stem[0]), bn(sj_net.stem[1]))
        self.sn0, self.sn1, self.sn2, self.sn3, self.sn4 = (lif() for _ in range(5))
        self.c1 = seq(conv(sj_net.c1[0]), bn(sj_net.c1[1]))
        self.c2 = seq(conv(sj_net.c2[0]), bn(sj_net.c2[1]))
        self.d1 = seq(conv(sj_net.d1[0]), bn(sj_net.d1[1]))
        self.down = seq(conv(sj_net.down[0]), bn(sj_net.down[1]))
        self.fc = seq(nn.Linear(6, 5))
        self.fc[0].load_state_dict(sj_net.fc.state_dict())
        self.out = sn.OutputIntegrator()

    def forward(self, x):
        s = self.sn0(self.stem(self.enc(x)))
        out = self.sn2(self.c2(self.sn1(self.c1(s))))
        s = {"ADD": lambda: out + s, "AND": lambda: out * s, "IAND": lambda: s * (1.0 - out)}[self.cnf]()
        s = self.sn3(self.d1(s)) + self.sn4(self.down(s))
        return self.out(self.fc(s.mean((3, 4))))


@pytest.mark.parametrize("cnf", ["ADD", "IAND"])
def test_spikingjelly_costs_equal_snncost_twin(cnf, exact_grid):
    net = _model(cnf, "if", exact_grid)
    ours = OursSew(net).eval()
    x = torch.randint(0, 9, (5, 2, 8, 8)).float() / 8
    got = snncost.evaluate(net, data=x, timesteps=T)
    ref = snncost.evaluate(ours, data=x, input_shape=(2, 8, 8))
    assert got.snn_total.energy_total_pj == ref.snn_total.energy_total_pj
    assert got.ann_total.energy_total_pj == ref.ann_total.energy_total_pj
    assert got.snn_total.energy_total_pj > 0
