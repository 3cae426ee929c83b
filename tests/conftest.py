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
