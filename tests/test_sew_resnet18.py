"""SEW-ResNet-18 at CIFAR size, built in SpikingJelly and from snncost's model zoo, costed by snncost.

The issue's acceptance check: SpikingJelly's own ``sew_resnet18`` (CIFAR stem:
3x3 conv, no max pool; multi-step IF neurons with soft reset, SEW ADD) and the
zoo's ``sew-resnet18`` with the same weights trace to the same LayerGraph and
cost identically through :func:`snncost.evaluate`; the replay's spikes equal
SpikingJelly's forward layer by layer; and every spike-fed conv's ACs equal a
brute-force count from the inputs SpikingJelly's convs actually received
(``conv2d(|x|, ones)`` summed, times the output channels: spike counts from the
ADD shortcut included).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snncost
from snncost.graph import trace_graph
from snncost.models import zoo
from snncost.models.common import NeuronConfig
from snncost.sim import simulate

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.model import sew_resnet  # noqa: E402

T = 2
SHAPE = (3, 32, 32)


def _sj_sew18(exact_grid) -> nn.Module:
    net = sew_resnet.sew_resnet18(cnf="ADD", spiking_neuron=neuron.IFNode, num_classes=10, v_reset=None)
    net.conv1 = layer.Conv2d(3, 64, 3, 1, 1, bias=False)  # CIFAR stem, as the zoo's
    net.maxpool = nn.Identity()
    net.fc = layer.Linear(512, 10, bias=False)  # the zoo's classifier has no bias
    functional.set_step_mode(net, "m")
    return exact_grid(net)


def _zoo_twin(sj_net: nn.Module) -> nn.Module:
    """The zoo's SEW-ResNet-18 (IF, soft reset, threshold 1) with SpikingJelly's weights, layer by layer."""
    ours = zoo.build_snn(
        zoo.spec_from_arch("sew-resnet18", in_channels=3, num_classes=10),
        NeuronConfig(timesteps=T, threshold=1.0, leak=1.0, learn_threshold=False, learn_leak=False),
    ).eval()
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
    src = [m for m in sj_net.modules() if isinstance(m, kinds)]
    dst = [m for m in ours.modules() if isinstance(m, kinds)]
    base = {m: next(k for k in kinds if isinstance(m, k)) for m in src + dst}
    assert [base[m] for m in src] == [base[m] for m in dst]
    for a, b in zip(src, dst, strict=True):
        if isinstance(a, nn.BatchNorm2d):
            b.eps = a.eps
        b.load_state_dict(a.state_dict())
    return ours


@pytest.fixture(scope="module")
def nets(exact_grid):
    sj_net = _sj_sew18(exact_grid)
    return sj_net, _zoo_twin(sj_net), torch.randint(0, 9, (2, *SHAPE)).float() / 8


def test_spikingjelly_and_zoo_sew18_cost_identically(nets):
    sj_net, ours, x = nets
    got = snncost.evaluate(sj_net, "45nm", data=x, timesteps=T)
    ref = snncost.evaluate(ours, "45nm", data=x)
    assert got.snn_total.energy_total_pj == ref.snn_total.energy_total_pj > 0
    assert got.ann_total.energy_total_pj == ref.ann_total.energy_total_pj
    assert [r.energy_total_pj for r in got.snn] == [r.energy_total_pj for r in ref.snn]
    assert sum(r.kind == "merge" for r in got.snn) == 8  # one SEW ADD per basic block


def test_replay_spikes_and_acs_equal_spikingjelly_forward(nets, sj_spike_counts):
    sj_net, _, x = nets
    graph = trace_graph(sj_net, SHAPE, timesteps=T)
    conv_acs: dict[str, int] = {}

    def count_acs(name, conv):
        def hook(m, args):
            inp = args[0].abs().flatten(0, 1)  # [T*B, C, H, W], spike counts after an ADD
            ones = torch.ones(1, m.in_channels, *m.kernel_size)
            reach = F.conv2d(inp, ones, stride=m.stride, padding=m.padding)
            conv_acs[name] = int(reach.sum()) * m.out_channels
        return hook

    hooks = [
        m.register_forward_pre_hook(count_acs(name, m))
        for name, m in sj_net.named_modules()
        if isinstance(m, nn.Conv2d) and name != "conv1"
    ]
    try:
        spikes = sj_spike_counts(sj_net, x, T)
    finally:
        for h in hooks:
            h.remove()
    run = simulate(graph, x, record_spikes=True)
    assert {k: int(v.sum()) for k, v in run.extra["spikes"].items()} == spikes
    assert sum(spikes.values()) > 0
    replayed = {lc.name: int(lc.synaptic_ops.sum()) for lc in run.layers if lc.kind == "conv" and not lc.analog}
    assert replayed == conv_acs
    assert len(conv_acs) == 19  # 16 block convs + 3 downsample convs
