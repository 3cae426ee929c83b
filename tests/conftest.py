"""Shared fixtures: small, fast, and independent of ../shared."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))


@pytest.fixture
def runs_dir(tmp_path):
    return str(tmp_path / "runs")


@pytest.fixture(scope="session")
def tiny_vgg_runs():
    """A real replay of a tiny direct-coded VGG (T=4, 3 inputs) and its ANN counted on the same
    inputs: ``(snn RunCounts, ann RunCounts)``, shared by the convention tests."""
    import torch

    from snncost.graph import build_graph
    from snncost.models import NeuronConfig, VGGSpec, build_snn
    from snncost.sim import ann_counts, simulate

    torch.manual_seed(0)
    spec = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)
    model = build_snn(spec, NeuronConfig(timesteps=4, threshold=0.5)).eval()
    graph = build_graph(model, (1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    return simulate(graph, x), ann_counts(graph, inputs=x)


def _linear_layer(name, n_in, n_out, *, T, neuron="lif", acs=(), macs=(), batch=1):
    """A hand-built linear layer's LayerCounts with the given per-step ACs / MACs (zeros if empty),
    every neuron updated every step."""
    import numpy as np

    from snncost.sim.counts import LayerCounts

    zeros = np.zeros(T, np.int64)
    acs = np.asarray(acs, np.int64) if len(acs) else zeros
    macs = np.asarray(macs, np.int64) if len(macs) else zeros
    return LayerCounts(
        name=name,
        kind="linear",
        neuron=neuron,
        input_shape=(n_in,),
        output_shape=(n_out,),
        weight_count=n_in * n_out,
        weight_bits=32,
        number_format="float",
        input_events=zeros,
        synaptic_ops=acs,
        synaptic_ops_nonzero=acs,
        macs=macs,
        neuron_updates=np.full(T, n_out * batch, np.int64),
        output_spikes=zeros,
        analog=bool(macs.sum()),
        real_macs=n_in * n_out,
        padded_macs=n_in * n_out,
        nonzero_weight_macs=n_in * n_out,
    )


@pytest.fixture(scope="session")
def linear_layer():
    """The hand-built linear-layer builder of the convention tests (see :func:`_linear_layer`)."""
    return _linear_layer


def _put_on_exact_grid(model, seed: int = 0):
    """Weights on a binary grid (multiples of 1/32) and BatchNorms whose folding is exact (var 4,
    eps 0, so ``alpha = gamma / 2``; dyadic means, gammas and betas): the PyTorch forward and the
    replay of the folded graph then add exactly the same numbers, and a spike cannot differ by
    rounding. Returns the model (in eval mode)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 0.0
                m.running_var.fill_(4.0)
                m.running_mean.copy_(torch.randint(-4, 5, m.running_mean.shape) / 16)
                m.weight.copy_(torch.randint(1, 5, m.weight.shape) / 2)
                m.bias.copy_(torch.randint(-2, 7, m.bias.shape) / 16)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.round(m.weight * 32) / 32)
                if m.bias is not None:
                    m.bias.copy_(torch.round(m.bias * 32) / 32)
    return model.eval()


@pytest.fixture(scope="session")
def exact_grid():
    """:func:`_put_on_exact_grid`: makes a model's forward and its replay add identical numbers."""
    return _put_on_exact_grid


def _spikingjelly_spike_counts(net, x, timesteps: int) -> dict[str, int]:
    """Spikes per SpikingJelly neuron (module path -> count) in one multi-step forward of ``net``
    on ``x`` repeated over ``timesteps`` steps (direct input, as the traced graph replays it)."""
    import torch
    from spikingjelly.activation_based import functional, neuron

    counts: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, k=k: counts.__setitem__(k, int(o.sum())))
        for k, m in net.named_modules()
        if isinstance(m, neuron.BaseNode)
    ]
    functional.reset_net(net)
    try:
        with torch.no_grad():
            net(x.unsqueeze(0).repeat(timesteps, *([1] * x.dim())))
    finally:
        for h in hooks:
            h.remove()
    return counts


@pytest.fixture(scope="session")
def sj_spike_counts():
    """:func:`_spikingjelly_spike_counts`: what a SpikingJelly model's own forward fires, per neuron."""
    return _spikingjelly_spike_counts
