"""Warm start of a spatially pruned network: copy the kept channels' weights from the wide one.

Retraining a pruned network from scratch throws away what the wide one
learnt. Instead each channel group of the plan
(:func:`snncost.compress.plan_spatial_pruning`) keeps the original channels
that carry most of its sites' leading principal subspace, and every layer
that touches the group gets the matching slice: out-channel rows of its
producers (conv/linear weight and bias), the channels of its BatchNorms
(affine parameters and running statistics) and the in-channel columns of
its consumers. A residual group is sliced the same way in every layer it
touches, so the shortcut still adds channel ``c`` to channel ``c``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from snncost.compress.spatial import MembraneStats, SpatialPlan, _groups, _unwrap
from snncost.models import ChannelGroup, norm_layers, spiking_layers, weight_layers

_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _channel_scores(stats: MembraneStats, k: int) -> Tensor:
    """How much of the top-``k`` principal subspace each channel carries.

    ``score[c] = sum_{j < k} lambda_j * V[c, j]^2``: the variance of channel
    ``c`` that lies inside the kept subspace.
    """
    values, vectors = stats.eigh()
    return (vectors[:, :k].square() * values[:k]).sum(1)


def _group_keep(
    group: ChannelGroup, k: int, stats: Mapping[str, MembraneStats], layers: Mapping[str, nn.Module]
) -> Tensor:
    """The ``k`` channels of ``group`` to keep, sorted.

    Each site scores the channels by :func:`_channel_scores`, normalised to
    sum to 1 so a site with large currents does not outvote the others; the
    group keeps the ``k`` best channels of the summed scores (one site: the
    paper's choice). Without statistics (an int override) the producers'
    weight norm per output channel decides.
    """
    if k >= group.width:
        return torch.arange(group.width)
    scored = [stats[site] for site in group.sites if site in stats and stats[site].count >= 2]
    if scored:
        total = torch.zeros(group.width, dtype=torch.float64)
        for site_stats in scored:
            score = _channel_scores(site_stats, k).cpu()
            total += score / score.sum() if score.sum() > 0 else score
    else:
        total = sum(
            layers[p].weight.detach().flatten(1).norm(dim=1).double().cpu() for p in group.producers
        )
    return torch.topk(total, k).indices.sort().values


def warm_start_weights(
    src_model: nn.Module,
    dst_model: nn.Module,
    stats: Mapping[str, MembraneStats],
    plan: SpatialPlan,
) -> dict[str, list[int]]:
    """Initialise the narrower ``dst_model`` (built from ``plan.pruned_spec``) from the wide ``src_model``.

    Per channel group, keep the channels carrying most of the top-``k``
    principal subspace (``k`` the group's new width; scored with
    ``sum_j lambda_j V[c, j]^2`` over the leading ``k`` eigenpairs, summed
    over the group's sites; kept in their original order) and copy their
    slices: the out-channel rows of the group's producers, its
    BatchNorms' channels, and the in-channel columns of its consumers. A
    linear consumer of a conv group (after a flatten of ``[C, H, W]``) reads
    channel-major blocks of ``in_features // C`` columns, so whole blocks
    are kept. Groups fixed by an int override without statistics fall back
    to the weight norm of each output channel. LIF thresholds and leaks are
    copied by name where both models have them.

    Works ANN->ANN and SNN->SNN (and across forms, since names match).
    Returns ``{weight layer name: kept output channel indices}`` for every
    weight layer (all channels for unpruned ones).
    """
    src_model, dst_model = _unwrap(src_model), _unwrap(dst_model)
    src_layers = dict(weight_layers(src_model))
    dst_layers = dict(weight_layers(dst_model))
    if list(src_layers) != list(dst_layers):
        raise ValueError(f"weight layers differ: {list(src_layers)} vs {list(dst_layers)}")
    groups = _groups(src_model)
    new_widths = {layer.group: layer.new_width for layer in plan.layers}
    unknown = set(new_widths) - {g.name for g in groups}
    if unknown:
        raise ValueError(f"plan names layers the model lacks: {sorted(unknown)}")
    keep: dict[str, Tensor] = {}  # module name -> kept channels of the group it produces/normalises
    reads: dict[str, tuple[Tensor, int]] = {}  # consumer -> (kept input channels, original width)
    for group in groups:
        width = new_widths.get(group.name, group.width)
        for p in group.producers:
            if src_layers[p].weight.shape[0] != group.width:
                raise ValueError(
                    f"{p}: source has {src_layers[p].weight.shape[0]} outputs, the plan says {group.width}"
                )
        kept = _group_keep(group, width, stats, src_layers)
        keep.update(dict.fromkeys((*group.producers, *group.norms), kept))
        reads.update(dict.fromkeys(group.consumers, (kept, group.width)))

    result: dict[str, list[int]] = {}
    with torch.no_grad():
        for name, src in src_layers.items():
            out_keep = keep.get(name, torch.arange(src.weight.shape[0]))
            weight = src.weight.index_select(0, out_keep.to(src.weight.device))
            if name in reads:
                weight = weight.index_select(
                    1, _input_columns(name, src, *reads[name]).to(weight.device)
                )
            _copy(f"{name}.weight", weight, dst_layers[name].weight)
            if (src.bias is None) != (dst_layers[name].bias is None):
                raise ValueError(f"{name}.bias: present in one model only")
            if src.bias is not None:
                _copy(
                    f"{name}.bias",
                    src.bias.index_select(0, out_keep.to(src.bias.device)),
                    dst_layers[name].bias,
                )
            result[name] = out_keep.tolist()
        src_norms, dst_norms = dict(norm_layers(src_model)), dict(norm_layers(dst_model))
        if list(src_norms) != list(dst_norms):
            raise ValueError(f"BatchNorm layers differ: {list(src_norms)} vs {list(dst_norms)}")
        for name, src in src_norms.items():
            kept = keep.get(name, torch.arange(src.num_features))
            for attr in _NORM_TENSORS:
                tensor = getattr(src, attr)
                if tensor is not None:
                    _copy(
                        f"{name}.{attr}",
                        tensor.index_select(0, kept.to(tensor.device)),
                        getattr(dst_norms[name], attr),
                    )
            if src.num_batches_tracked is not None:
                dst_norms[name].num_batches_tracked.copy_(src.num_batches_tracked)
        dst_lifs = dict(spiking_layers(dst_model))
        for name, lif in spiking_layers(src_model):
            if name in dst_lifs:
                dst_lifs[name].threshold.copy_(lif.threshold)
                dst_lifs[name].leak.copy_(lif.leak)
    return result


def _copy(what: str, value: Tensor, target: Tensor) -> None:
    if value.shape != target.shape:
        raise ValueError(
            f"{what}: warm-start slice {tuple(value.shape)} does not fit {tuple(target.shape)}; "
            "was dst built from plan.pruned_spec?"
        )
    target.copy_(value)


def _input_columns(name: str, layer: nn.Module, kept: Tensor, width: int) -> Tensor:
    """Input columns of ``layer`` that read the kept channels of a group of ``width`` channels."""
    if isinstance(layer, nn.Linear) and layer.in_features != width:
        # Flatten of [C, H, W] is channel-major: channel c owns columns c*HW .. c*HW + HW - 1.
        if layer.in_features % width:
            raise ValueError(
                f"{name}: in_features {layer.in_features} is not a multiple of the {width} channels it reads"
            )
        hw = layer.in_features // width
        return (kept[:, None] * hw + torch.arange(hw)[None, :]).flatten()
    return kept
