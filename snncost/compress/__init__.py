"""Network compression: PCA-based spatial (channel) pruning.

See :mod:`snncost.compress.spatial` for the method (Chowdhury, Garg & Roy
2021, Sec. III-A). Typical use::

    from snncost.compress import collect_membrane_stats, plan_spatial_pruning, warm_start_weights

    stats = collect_membrane_stats(snn, loader, max_batches=50)
    plan = plan_spatial_pruning(snn, stats, threshold=0.999, overrides={"features.1": 0.9999})
    small = build_snn(plan.pruned_spec, neurons)
    warm_start_weights(snn, small, stats, plan)
    print(plan.to_markdown())

matplotlib is imported only when :func:`plot_explained_variance` draws.
"""

from snncost.compress.plots import plot_explained_variance
from snncost.compress.spatial import (
    CompressionSummary,
    LayerPlan,
    MembraneStats,
    SpatialPlan,
    collect_membrane_stats,
    pca_explained_variance,
    plan_spatial_pruning,
    select_width,
    spec_cost,
)
from snncost.compress.warmstart import warm_start_weights

__all__ = [
    "CompressionSummary",
    "LayerPlan",
    "MembraneStats",
    "SpatialPlan",
    "collect_membrane_stats",
    "pca_explained_variance",
    "plan_spatial_pruning",
    "plot_explained_variance",
    "select_width",
    "spec_cost",
    "warm_start_weights",
]
