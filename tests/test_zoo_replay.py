"""The zoo's residual networks replayed: spike for spike against their own PyTorch forward.

Small widths of Spiking ResNet-19 (a current add before the block's LIF) and
SEW-ResNet-18 (ADD, AND, IAND of spikes) are traced into LayerGraph DAGs and
replayed; every LIF module's spike count in the model's forward (hooks) must
equal the replay's, with weights on a binary grid so that the folded
BatchNorms add exactly the same numbers.
"""

from __future__ import annotations

import pytest
import torch

import snncost
import snncost.nn as sn
from snncost.graph import trace_graph
from snncost.models import zoo
from snncost.models.common import NeuronConfig
from snncost.sim import simulate

T = 3


SPECS = {
    "resnet19": dict(stem=8, widths=[8, 16, 16], depths=[2, 1, 1], head=[16]),
    "sew-resnet18-ADD": dict(stem=8, widths=[8, 16], depths=[2, 1], strides=[1, 2], connect="ADD"),
    "sew-resnet18-AND": dict(stem=8, widths=[8, 16], depths=[2, 1], strides=[1, 2], connect="AND"),
    "sew-resnet18-IAND": dict(stem=8, widths=[8, 16], depths=[2, 1], strides=[1, 2], connect="IAND"),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_zoo_resnet_replay_matches_its_forward(name, exact_grid):
    arch = name.split("-ADD")[0].split("-AND")[0].split("-IAND")[0]
    spec = zoo.spec_from_arch(arch, in_channels=3, num_classes=5, image_size=16, **SPECS[name])
    neurons = NeuronConfig(timesteps=T, threshold=0.5, learn_threshold=False, learn_leak=False)
    net = exact_grid(zoo.build_snn(spec, neurons), seed=1)
    x = torch.randint(0, 9, (3, 3, 16, 16)).float() / 8
    counts: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, k=k: counts.__setitem__(k, int(o.sum())))
        for k, m in net.named_modules()
        if isinstance(m, sn.LIF)
    ]
    with torch.no_grad():
        logits = net(x)
    for h in hooks:
        h.remove()
    run = simulate(trace_graph(net, (3, 16, 16)), x, record_spikes=True)
    assert {k: int(v.sum()) for k, v in run.extra["spikes"].items()} == counts
    assert sum(counts.values()) > 0
    assert torch.equal(torch.from_numpy(run.logits), logits)
    report = snncost.evaluate(net, "45nm", data=x)  # the zoo network goes through evaluate as it is
    assert report.snn_total.energy_total_pj > 0
