"""Inference-time BatchNorm folding in build_graph (conv/linear + eval-mode BN -> one node)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snncost
import snncost.nn as sn
from snncost.graph import build_graph
from snncost.graph.build import FoldedConvNode, FoldedLinearNode, UnsupportedModuleError
from snncost.graph.nodes import ConvNode, LinearNode
from snncost.sim import verify_against_torch

BNS = ("bn1", "bn2", "bn3")
FOLDS = {"conv1": "bn1", "conv2": "bn2", "fc1": "bn3"}


def lif(leak: float = 1.0) -> sn.LIF:
    return sn.LIF(threshold=0.5, leak=leak, learn_threshold=False, learn_leak=False)


def layers(encoder: sn.Encoder | None = None, bn: bool = True, eps: float = 1e-5) -> OrderedDict:
    """Conv-BN-LIF-Pool-Conv(no bias)-BN-LIF-Flatten-Linear-BN-LIF-Linear-Out on (2, 8, 8)."""
    mods: list[tuple[str, nn.Module]] = [
        ("enc", encoder or sn.DirectEncoder(4)),
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)),
        ("bn1", nn.BatchNorm2d(4, eps=eps)),
        ("lif1", lif()),
        ("pool", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1, bias=False)),
        ("bn2", nn.BatchNorm2d(6, eps=eps)),
        ("lif2", lif(0.5)),
        ("flat", nn.Flatten()),
        ("fc1", nn.Linear(6 * 4 * 4, 12)),
        ("bn3", nn.BatchNorm1d(12, eps=eps)),
        ("lif3", lif()),
        ("fc2", nn.Linear(12, 5)),
        ("out", sn.OutputIntegrator()),
    ]
    return OrderedDict((k, v) for k, v in mods if bn or k not in BNS)


def make(encoder: sn.Encoder | None = None, bn: bool = True, eps: float = 1e-5, seed: int = 0):
    torch.manual_seed(seed)
    model = sn.SpikingSequential(layers(encoder, bn, eps))
    model.input_shape = (2, 8, 8)
    return model


def train_stats(model: nn.Module, steps: int = 3) -> nn.Module:
    """Non-trivial running statistics: a few train-mode forwards (time folded into the batch)."""
    gen = torch.Generator().manual_seed(7)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(8, 2, 8, 8, generator=gen) * 2 + 0.5)
        for name in BNS:  # and non-trivial affine parameters
            bn = getattr(model, name)
            bn.weight.uniform_(0.5, 2.0, generator=gen)
            bn.bias.uniform_(-0.3, 0.3, generator=gen)
    return model.eval()


def dyadic(model: nn.Module, eps: float) -> nn.Module:
    """Weights, biases and BN constants on a coarse dyadic grid, so that every float32
    operation of the unfolded forward and of the folded replay is exact."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc1", "fc2"):
            layer = getattr(model, name)
            k = torch.randint(-127, 128, layer.weight.shape, generator=gen).float()
            k.view(k.shape[0], -1)[:, 0] = 127  # max|w| = 127/128: a per-channel scale of 1/128
            layer.weight.copy_(k / 128)
            if layer.bias is not None:
                layer.bias.copy_(torch.randint(-8, 9, layer.bias.shape, generator=gen) / 16)
        for name in BNS:
            bn = getattr(model, name)
            n = bn.num_features
            # var + eps is exactly 1/4, 1 or 4, so 1/sqrt is exact; gamma in {0.75, 1.5, -1}
            var = torch.tensor([0.25, 1.0, 4.0]).repeat(n)[:n]
            bn.running_var.copy_(var - eps)
            assert torch.equal(bn.running_var + eps, var)
            bn.running_mean.copy_(torch.randint(-8, 9, (n,), generator=gen) / 16)
            bn.weight.copy_(torch.tensor([0.75, 1.5, -1.0]).repeat(n)[:n])
            bn.bias.copy_(torch.randint(-8, 9, (n,), generator=gen) / 16 + 0.25)
    return model.eval()


def dyadic_inputs(n: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    return torch.randint(-8, 9, (n, 2, 8, 8), generator=gen) / 8


def check_folded_nodes(model: nn.Module, graph) -> None:
    """No BN node; each folded node computes exactly what its layer followed by the BN computes."""
    assert not any(n.name in BNS for n in graph)
    assert not any("batchnorm" in n.type_name.lower() for n in graph)
    assert [n.name for n in graph.weight_layers()] == ["conv1", "conv2", "fc1", "fc2"]
    gen = torch.Generator().manual_seed(11)
    for layer_name, bn_name in FOLDS.items():
        node = graph[layer_name]
        assert isinstance(node, (FoldedConvNode, FoldedLinearNode))
        assert node.folded_bn == bn_name and f"+bn[{bn_name}]" in node.describe()
        assert node.bias is not None  # the BN shift is a bias now (conv2 had none)
        layer, bn = getattr(model, layer_name), getattr(model, bn_name)
        shape = (3, *node.in_shape)
        x = (torch.rand(shape, generator=gen) < 0.3).float()
        w, b = torch.from_numpy(node.effective_weight), torch.from_numpy(node.bias)
        with torch.no_grad():
            ref = bn(layer(x))
            got = (
                F.conv2d(x, w, b, node.stride, node.padding)
                if isinstance(node, ConvNode)
                else F.linear(x, w, b)
            )
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert not isinstance(graph["fc2"], (FoldedConvNode, FoldedLinearNode))


# ---------------------------------------------------------------------- float weights
def test_folded_graph_has_no_bn_and_matches_the_layers():
    model = train_stats(make())
    graph = build_graph(model)
    check_folded_nodes(model, graph)
    assert isinstance(graph["conv1"], ConvNode) and isinstance(graph["fc1"], LinearNode)
    assert graph["conv1"].type_name == "conv" and graph["conv1"].weight_scale is None
    assert "+bn[bn1]" in graph.summary() and "skipped" not in graph.summary()
    # the formula of the issue, per output channel
    bn, conv = model.bn2, model.conv2
    alpha = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    np.testing.assert_allclose(
        graph["conv2"].weight, (conv.weight * alpha.view(-1, 1, 1, 1)).detach(), rtol=1e-6
    )
    np.testing.assert_allclose(
        graph["conv2"].bias, (bn.bias - bn.running_mean * alpha).detach(), rtol=1e-6, atol=1e-7
    )
    # an ANN (ReLU) with BN folds the same way
    ann = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(12, 2),
        nn.BatchNorm1d(2),
    ).eval()
    ag = build_graph(ann, (1, 4, 4))
    assert [n.type_name for n in ag] == ["input", "conv", "relu", "flatten", "linear", "output"]
    assert ag["0"].folded_bn == "1" and ag["4"].folded_bn == "5"


def test_float_replay_exact_on_dyadic_grid():
    eps = 2.0**-10
    model = dyadic(make(eps=eps), eps)
    x = dyadic_inputs()
    res = verify_against_torch(model, None, x)
    assert res["spike_mismatches"] == 0 and res["spikes_compared"] > 0
    assert res["logits_equal"] and res["prediction_agreement"] == 1.0
    spikes = res["counts"].extra["spikes"]
    # the test is not vacuous: every layer spikes, none saturates
    assert all(0 < spikes[n].mean() < 1 for n in ("lif1", "lif2", "lif3"))


@pytest.mark.parametrize("encoder", ["direct", "poisson"])
def test_float_replay_with_trained_stats(encoder):
    enc = sn.DirectEncoder(4) if encoder == "direct" else sn.PoissonEncoder(4)
    if encoder == "poisson":
        enc.generator = torch.Generator().manual_seed(2)
    model = train_stats(make(enc))
    x = torch.randn(24, 2, 8, 8)
    res = verify_against_torch(model, None, x)
    # Arbitrary float BN constants: folding rounds w * alpha once per weight where PyTorch
    # rounds the accumulated sum times alpha, so a neuron within an ulp of its threshold
    # may flip (it does not on this seed; the bound leaves room for other BLAS orders).
    assert res["mismatch_fraction"] < 1e-3
    assert res["prediction_agreement"] >= 0.95
    spikes = res["counts"].extra["spikes"]
    assert all(spikes[n].any() for n in ("lif1", "lif2", "lif3"))


def test_evaluate_counts_the_unfolded_layers():
    eps = 2.0**-10
    model = dyadic(make(eps=eps), eps)
    x = dyadic_inputs(8)
    rep = snncost.evaluate(model, data=x, verify=True, name="bn")
    assert rep.spike_mismatches == 0 and rep.spikes_compared > 0
    assert [r.name for r in rep.snn] == ["conv1", "conv2", "fc1", "fc2"]
    plain = build_graph(make(bn=False), (2, 8, 8))  # same conv/linear layers, no BN
    assert rep.ann_total.macs == sum(n.real_macs for n in plain.weight_layers())
    assert rep.ann_total.macs == sum(n.real_macs for n in build_graph(model).weight_layers())


# ---------------------------------------------------------------------- refusals
def test_bn_in_training_mode_refused():
    model = train_stats(make())
    model.bn2.train()
    with pytest.raises(
        UnsupportedModuleError, match=r"'bn2' of type BatchNorm2d: in training mode"
    ) as err:
        build_graph(model)
    assert err.value.path == "bn2" and err.value.module_type == "BatchNorm2d"
    assert "\n" not in str(err.value)
    # verify_against_torch builds the graph before switching to eval: same refusal
    with pytest.raises(UnsupportedModuleError, match="bn2"):
        verify_against_torch(model, None, torch.zeros(1, 2, 8, 8))
    # evaluate() puts the model in eval mode first, so it folds
    assert snncost.evaluate(model, data=torch.zeros(2, 2, 8, 8)).batch_size == 2


def test_bn_without_running_stats_refused():
    model = make()
    model.bn3 = nn.BatchNorm1d(12, track_running_stats=False)
    with pytest.raises(
        UnsupportedModuleError, match=r"'bn3' of type BatchNorm1d: track_running_stats=False"
    ):
        build_graph(model.eval())


@pytest.mark.parametrize(
    ("where", "bn", "after"),
    [
        ("lif1", nn.BatchNorm2d(4), "'lif1' of type LIF"),  # after an activation
        ("pool", nn.BatchNorm2d(4), "'pool' of type AvgPool2d"),
        ("conv1", nn.BatchNorm1d(4), "'conv1' of type Conv2d"),  # wrong kind of BN
        ("bn1", nn.BatchNorm2d(4), "'bn1' of type BatchNorm2d"),  # two BNs in a row
    ],
)
def test_bn_not_after_its_layer_refused(where, bn, after):
    mods = layers()
    items = list(mods.items())
    at = [k for k, _ in items].index(where) + 1
    items.insert(at, ("extra_bn", bn))
    model = sn.SpikingSequential(OrderedDict(items))
    model.input_shape = (2, 8, 8)
    model.eval()
    kind = type(bn).__name__
    with pytest.raises(
        UnsupportedModuleError,
        match=rf"'extra_bn' of type {kind}: .*directly after a .*; it follows {after}",
    ):
        build_graph(model)


def test_other_norms_refused():
    model = make()
    model.bn1 = nn.InstanceNorm2d(4, track_running_stats=True)
    with pytest.raises(UnsupportedModuleError, match="'bn1' of type InstanceNorm2d"):
        build_graph(model.eval())


# ---------------------------------------------------------------------- quantized weights
def test_quantized_fold_into_scale_keeps_codes():
    model = sn.quantize_model(train_stats(make()), 8)  # quantize_model leaves BN alone
    assert isinstance(model.conv1, sn.QuantConv2d) and isinstance(model.bn1, nn.BatchNorm2d)
    graph = build_graph(model)
    check_folded_nodes(model, graph)
    for layer_name, bn_name in FOLDS.items():
        node, layer, bn = graph[layer_name], getattr(model, layer_name), getattr(model, bn_name)
        assert node.number_format == "int" and node.weight_bits == 8
        np.testing.assert_array_equal(node.weight, layer.weight_codes.numpy().astype(np.float32))
        alpha = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        np.testing.assert_allclose(
            node.weight_scale, (layer.weight_scale * alpha).numpy(), rtol=1e-6
        )
    x = torch.randn(24, 2, 8, 8)
    res = verify_against_torch(model, None, x)
    # (acc * s + b) * alpha + shift vs acc * (s * alpha) + (b * alpha + shift): equal up to
    # float rounding for arbitrary alpha (exact on this seed), so only a bound is asserted
    assert res["mismatch_fraction"] < 1e-3 and res["prediction_agreement"] >= 0.95


def test_quantized_replay_exact_on_dyadic_grid():
    eps = 2.0**-10
    model = sn.quantize_model(dyadic(make(eps=eps), eps), 8)
    graph = build_graph(model)
    assert all(np.array_equal(n.weight, np.round(n.weight)) for n in graph.weight_layers())
    res = verify_against_torch(model, graph, dyadic_inputs())
    assert res["spike_mismatches"] == 0 and res["logits_equal"]
    rep = snncost.evaluate(model, data=dyadic_inputs(8))
    plain = build_graph(make(bn=False), (2, 8, 8))
    assert rep.ann_total.macs == sum(n.real_macs for n in plain.weight_layers())
