"""Event-driven replay of a LayerGraph (numba) and the dense ANN baseline counts."""

from snncost.sim.ann import ann_counts
from snncost.sim.counts import LayerCounts, RunCounts
from snncost.sim.replay import encode_poisson, simulate
from snncost.sim.verify import verify_against_torch

__all__ = [
    "LayerCounts",
    "RunCounts",
    "ann_counts",
    "encode_poisson",
    "simulate",
    "verify_against_torch",
]
