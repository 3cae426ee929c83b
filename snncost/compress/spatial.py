"""PCA-based spatial (channel) pruning of the zoo's networks (VGG, ResNet), ANN or SNN.

The method of Chowdhury, Garg & Roy (2021, arXiv:2104.12528, Sec. III-A):
for every spiking layer, record the *average accumulated membrane
potential* on a training subset, i.e. the input current integrated over the
``T`` steps and divided by ``T`` (before any reset, so it does not depend on
the threshold). Treat it as data: for a conv layer each image *and* spatial
position is one sample whose dimensions are the channels; for a linear
layer each image is one sample. Principal component analysis then says how
many directions the layer really uses; the layer's new width is the number
of components whose cumulative explained variance reaches a threshold
(0.999 by default). The network is rebuilt with those widths (structured
pruning: whole channels go), warm-started from the wide one
(:mod:`snncost.compress.warmstart`), and retrained.

Residual networks: a shortcut adds two tensors channel by channel, so the
activations it joins form one *channel group*
(:meth:`~snncost.models.ResNetSpec.channel_groups`): statistics are still
taken per activation, the group's width is the largest its activations
ask for (:func:`plan_spatial_pruning`), and every conv, BatchNorm and
shortcut that touches the group is sliced with the same channels.

Pipeline::

    stats = collect_membrane_stats(snn, (x for x, _ in loader), max_batches=50)
    plan = plan_spatial_pruning(snn, stats, threshold=0.999)
    small = build_snn(plan.pruned_spec, neurons)
    warm_start_weights(snn, small, stats, plan)

Statistics are streamed (count, sum, sum of outer products, in float64), so
a data set of any size fits in ``O(D^2)`` memory per layer, and partial
statistics from several GPUs sum into the exact global ones
(:meth:`MembraneStats.all_reduce`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

import snncost.nn as sn
from snncost.models import ChannelGroup, Spec

__all__ = [
    "CompressionSummary",
    "LayerPlan",
    "MembraneStats",
    "SpatialPlan",
    "collect_membrane_stats",
    "pca_explained_variance",
    "plan_spatial_pruning",
    "select_width",
    "spec_cost",
]

DEFAULT_THRESHOLD = 0.999
# Cumulative sums of normalised float64 eigenvalues can end at 1 - 1e-16;
# without this slack a threshold of exactly 1.0 could never be met.
_CUMULATIVE_SLACK = 1e-12


# --------------------------------------------------------------------------- statistics


class MembraneStats:
    """Streaming sufficient statistics of one layer's samples, for PCA.

    Holds the sample count ``n``, the sum vector ``sum[D]`` and the sum of
    outer products ``outer[D, D]`` (float64, on the device the samples come
    from). These three are all a covariance needs, they add up across
    batches (:meth:`update`), subsets (:meth:`merge`) and ranks
    (:meth:`all_reduce`), and they take ``O(D^2)`` memory no matter how many
    samples are seen, which is why they are kept instead of the samples.
    float64 because ``outer - n * mean mean^T`` cancels catastrophically in
    float32 once ``n`` reaches millions of conv positions.
    """

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        device = _stats_device(torch.device(device) if device is not None else torch.device("cpu"))
        self.dim = int(dim)
        self.n = torch.zeros((), dtype=torch.float64, device=device)
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    @property
    def device(self) -> torch.device:
        return self.sum.device

    @property
    def count(self) -> int:
        """Number of samples seen (``n`` as an int)."""
        return int(self.n.item())

    def update(self, samples: Tensor) -> MembraneStats:
        """Add a ``[N, D]`` block of samples. Returns ``self`` for chaining."""
        if samples.dim() != 2 or samples.shape[1] != self.dim:
            raise ValueError(f"samples must be [N, {self.dim}], got {tuple(samples.shape)}")
        x = samples.detach().to(device=self.device, dtype=torch.float64)
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x
        return self

    def merge(self, other: MembraneStats) -> MembraneStats:
        """Add another layer's statistics (e.g. from another data shard) into ``self``.

        In place, returns ``self``. The result equals the statistics of the
        union of both sample sets, exactly.
        """
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into {self.dim}")
        self.n += other.n.to(self.device)
        self.sum += other.sum.to(self.device)
        self.outer += other.outer.to(self.device)
        return self

    def all_reduce(self) -> MembraneStats:
        """Sum the statistics over all ranks when ``torch.distributed`` is initialised.

        Each rank of a DistributedDataParallel job sees a different data
        shard; after this call every rank holds the global statistics, so
        all ranks choose the same widths. A no-op in a single process.
        Returns ``self``.
        """
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            for tensor in (self.n, self.sum, self.outer):
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return self

    def mean(self) -> Tensor:
        self._require_samples(1)
        return self.sum / self.n

    def covariance(self) -> Tensor:
        """Unbiased sample covariance ``[D, D]`` (float64)."""
        self._require_samples(2)
        mean = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(mean, mean)) / (self.n - 1)
        return 0.5 * (cov + cov.T)  # exact symmetry for eigh

    def eigh(self) -> tuple[Tensor, Tensor]:
        """Eigenvalues (descending, clamped at 0) and eigenvectors (columns) of the covariance."""
        values, vectors = torch.linalg.eigh(self.covariance())
        return values.flip(0).clamp_min(0.0), vectors.flip(1)

    def explained_variance_ratio(self) -> Tensor:
        """Fraction of the total variance along each principal component, descending.

        The eigenvalues of the covariance normalised to sum to 1; the same as
        the squared singular values of the centred sample matrix, normalised
        (:func:`pca_explained_variance`). All zeros if the layer has no
        variance at all (a dead or constant layer).
        """
        values, _ = self.eigh()
        total = values.sum()
        return values / total if total > 0 else torch.zeros_like(values)

    def _require_samples(self, k: int) -> None:
        if self.count < k:
            raise ValueError(f"need at least {k} samples, have {self.count}")

    def __repr__(self) -> str:
        return f"MembraneStats(dim={self.dim}, n={self.count}, device={self.device})"


def pca_explained_variance(samples: Tensor) -> Tensor:
    """Explained-variance ratio of ``samples[N, D]`` straight from an SVD.

    The reference the streaming :class:`MembraneStats` path is checked
    against: squared singular values of the centred matrix, normalised,
    descending, padded with zeros to length ``D`` when ``N < D``.
    """
    if samples.dim() != 2:
        raise ValueError(f"samples must be [N, D], got {tuple(samples.shape)}")
    x = samples.detach().to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(x)  # the S of torch.linalg.svd, without computing U and V
    var = s.square()
    if var.numel() < x.shape[1]:
        var = torch.cat([var, var.new_zeros(x.shape[1] - var.numel())])
    total = var.sum()
    return var / total if total > 0 else torch.zeros_like(var)


def _stats_device(device: torch.device) -> torch.device:
    # MPS has no float64; keep such statistics on the CPU.
    return torch.device("cpu") if device.type == "mps" else device


# --------------------------------------------------------------------------- layers


def _groups(model: nn.Module) -> list[ChannelGroup]:
    """The channel groups of ``model``'s spec, checked against the model's modules.

    Every zoo spec (:class:`~snncost.models.VGGSpec`,
    :class:`~snncost.models.ResNetSpec`) says which activations, layers and
    BatchNorms share channels (:meth:`channel_groups`); the same names hold
    in the ANN (ReLU) and SNN (LIF) forms.
    """
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(spec, "channel_groups"):
        raise ValueError(
            "model has no .spec (VGGSpec or ResNetSpec): build it with snncost.models.build_snn/build_ann"
        )
    groups = spec.channel_groups()
    modules = dict(model.named_modules())
    for group in groups:
        for site in group.sites:
            if not isinstance(modules.get(site), (sn.LIF, nn.ReLU)):
                found = type(modules[site]).__name__ if site in modules else "nothing"
                raise ValueError(f"the spec names {site} as an activation, the model has {found} there")
    return groups


def _sites_in_order(model: nn.Module, groups: list[ChannelGroup]) -> list[str]:
    """Every group's sites, in module order (the forward order of the zoo's networks)."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted((site for g in groups for site in g.sites), key=order.__getitem__)


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel/DataParallel wrapper (names without ``module.``)."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return model.module
    return model


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _as_samples(current: Tensor, spiking: bool) -> Tensor:
    """``[T, B, C, H, W]``/``[T, B, F]`` (SNN) or ``[B, C, H, W]``/``[B, F]`` (ANN) to ``[N, D]``."""
    x = current.detach()
    if spiking:
        x = x.float().mean(0)  # accumulated membrane potential / T (before any reset)
    if x.dim() == 4:  # conv: every image and position is a sample, channels are dimensions
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    if x.dim() == 2:
        return x
    raise ValueError(
        f"expected a conv ([B, C, H, W]) or linear ([B, F]) activation, got {tuple(x.shape)}"
    )


def collect_membrane_stats(
    model: nn.Module,
    batches: Iterable[Any],
    max_batches: int | None = None,
    progress: bool = False,
) -> dict[str, MembraneStats]:
    """Run ``model`` over ``batches`` and gather PCA statistics per prunable layer.

    SNN (the model contains :class:`~snncost.nn.LIF` layers): a forward
    pre-hook on every LIF reads its input current ``I[T, B, ...]`` and takes
    the mean over ``T``, the paper's average accumulated membrane potential
    (integrated input, before any reset). ANN (no LIF): the input of every
    ReLU at the same place, i.e. the pre-activation, so the same code
    prunes ANNs too. The activations are those the model's spec lists in
    its channel groups (every LIF/ReLU of the zoo's networks).

    Conv layers contribute ``B * H * W`` samples of dimension ``C`` per
    batch, linear layers ``B`` samples of dimension ``F``. ``batches``
    yields input tensors ``[B, ...]``; ``(inputs, labels)`` tuples/lists
    (what a ``DataLoader`` yields) are accepted and the labels ignored.
    The model runs in eval mode (no dropout) without gradients and its
    training flag is restored afterwards. Statistics live in float64 on the
    model's device; call :meth:`MembraneStats.all_reduce` on each under
    ``torchrun`` to combine ranks.

    Returns ``{activation module name: MembraneStats}`` in forward order;
    the names (``features.1``, ``layer1.0.act2``, ...) are the same in the
    ANN and SNN forms.
    """
    model = _unwrap(model)
    sites = _sites_in_order(model, _groups(model))
    spiking = any(isinstance(m, sn.LIF) for m in model.modules())
    device = _model_device(model)
    modules = dict(model.named_modules())
    stats: dict[str, MembraneStats] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            samples = _as_samples(args[0], spiking)
            if name not in stats:
                stats[name] = MembraneStats(samples.shape[1], device=samples.device)
            stats[name].update(samples)

        return hook

    handles = [modules[name].register_forward_pre_hook(hook_for(name)) for name in sites]
    was_training = model.training
    model.eval()
    iterator: Iterable[Any] = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, total=max_batches, desc="membrane stats", leave=False)
    try:
        with torch.no_grad():
            for i, batch in enumerate(iterator):
                if max_batches is not None and i >= max_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not stats:
        raise ValueError("no batches were seen: the statistics are empty")
    return {name: stats[name] for name in sites if name in stats}


# --------------------------------------------------------------------------- planning


def select_width(ratio: Tensor | list[float], threshold: float) -> int:
    """Smallest ``k`` whose first ``k`` components explain ``>= threshold`` of the variance.

    ``ratio`` is a descending explained-variance ratio. At least 1 (a layer
    never vanishes, even with zero variance); at most ``len(ratio)``.
    ``threshold`` must be in ``(0, 1]``.
    """
    threshold = _check_threshold(threshold, "threshold")
    r = torch.as_tensor(ratio, dtype=torch.float64).flatten()
    if r.numel() == 0:
        raise ValueError("ratio is empty")
    if r.sum() <= 0:
        return 1
    cumulative = torch.cumsum(r, 0)
    reached = torch.nonzero(cumulative >= threshold - _CUMULATIVE_SLACK)
    k = int(reached[0].item()) + 1 if reached.numel() else r.numel()
    return max(1, k)


@dataclass
class LayerPlan:
    """The decision for one prunable activation (one site of a channel group).

    ``name`` is the activation (LIF/ReLU) module, ``weight_layer`` the
    conv/linear feeding it (in a residual group, the one of its own block).
    ``threshold`` is the explained-variance threshold used, or ``None`` when
    the width was fixed by an integer override. ``explained_variance`` is
    the full ratio curve (descending; empty when no statistics were given).
    ``group`` names the channel group (its first site); ``significant`` is
    the width this site's own PCA asks for, and ``new_width`` the group's
    width, the largest ``significant`` of its sites (equal in a chain).
    """

    name: str
    weight_layer: str
    kind: Literal["conv", "linear"]
    original_width: int
    new_width: int
    threshold: float | None
    explained_variance: list[float] = field(default_factory=list, repr=False)
    group: str = ""
    significant: int | None = None

    def __post_init__(self) -> None:
        self.group = self.group or self.name

    @property
    def fixed(self) -> bool:
        return self.threshold is None

    @property
    def kept_variance(self) -> float | None:
        """Fraction of the variance carried by the ``new_width`` leading components."""
        if not self.explained_variance:
            return None
        return float(sum(self.explained_variance[: self.new_width]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight_layer": self.weight_layer,
            "kind": self.kind,
            "original_width": self.original_width,
            "new_width": self.new_width,
            "threshold": self.threshold,
            "kept_variance": self.kept_variance,
            "group": self.group,
            "significant": self.significant,
            "explained_variance": list(self.explained_variance),
        }


@dataclass(frozen=True)
class CompressionSummary:
    """Parameters and dense MACs of the network before and after pruning.

    MACs are for one dense pass of one sample: one ANN inference, or one
    timestep of the SNN run densely (event-driven hardware does fewer; the
    simulator counts those).
    """

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int

    @property
    def param_ratio(self) -> float:
        """``params_before / params_after`` (x times fewer parameters)."""
        return self.params_before / max(1, self.params_after)

    @property
    def mac_ratio(self) -> float:
        return self.macs_before / max(1, self.macs_after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "param_ratio": self.param_ratio,
            "mac_ratio": self.mac_ratio,
        }


def spec_cost(spec: Spec) -> tuple[int, int]:
    """``(parameters, dense MACs per sample)`` of the conv/linear layers a spec builds.

    Computed from the spec alone (no model is built; ``spec.cost()``), so a
    plan can report the cost of a network before it exists.
    """
    return spec.cost()


@dataclass
class SpatialPlan:
    """Per-layer widths chosen by PCA, and what they save.

    ``spec`` is the original :class:`~snncost.models.VGGSpec` or
    :class:`~snncost.models.ResNetSpec`; ``layers`` one :class:`LayerPlan`
    per prunable activation, group by group in the order of
    ``spec.channel_groups()`` (the output layer keeps ``num_classes`` and is
    not listed). In a VGG every conv and hidden linear is its own group.
    """

    spec: Spec
    layers: list[LayerPlan]
    threshold: float = DEFAULT_THRESHOLD

    @property
    def widths(self) -> list[int]:
        """One new width per channel group, in ``spec.channel_groups()`` order."""
        return list({layer.group: layer.new_width for layer in self.layers}.values())

    @property
    def pruned_spec(self) -> Spec:
        """``spec.with_widths(new widths)``: build the narrower network from this."""
        return self.spec.with_widths(self.widths)

    @property
    def compression(self) -> CompressionSummary:
        params_before, macs_before = spec_cost(self.spec)
        params_after, macs_after = spec_cost(self.pruned_spec)
        return CompressionSummary(params_before, params_after, macs_before, macs_after)

    def layer(self, name: str) -> LayerPlan:
        """The plan of one layer, by activation or weight-layer name."""
        for layer in self.layers:
            if name in (layer.name, layer.weight_layer):
                return layer
        valid = ", ".join(f"{lp.name}/{lp.weight_layer}" for lp in self.layers)
        raise KeyError(f"no layer {name!r} in the plan; layers: {valid}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "spec": self.spec.to_dict(),
            "pruned_spec": self.pruned_spec.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "compression": self.compression.to_dict(),
        }

    def to_markdown(self) -> str:
        """One row per activation; with tied groups (ResNets) also each row's group and own PCA width."""
        tied = len(self.widths) < len(self.layers)
        extra = (" group | own width |", " --- | ---: |") if tied else ("", "")
        rows = [
            "| layer | weight layer | kind | width | new width | threshold | kept variance |" + extra[0],
            "| --- | --- | --- | ---: | ---: | ---: | ---: |" + extra[1],
        ]
        for lp in self.layers:
            threshold = "fixed" if lp.threshold is None else f"{lp.threshold:g}"
            kept = "-" if lp.kept_variance is None else f"{lp.kept_variance:.6f}"
            own = "-" if lp.significant is None else str(lp.significant)
            rows.append(
                f"| {lp.name} | {lp.weight_layer} | {lp.kind} | {lp.original_width} | "
                f"{lp.new_width} | {threshold} | {kept} |" + (f" {lp.group} | {own} |" if tied else "")
            )
        c = self.compression
        rows += [
            "",
            "| | before | after | reduction |",
            "| --- | ---: | ---: | ---: |",
            f"| parameters | {c.params_before:,} | {c.params_after:,} | {c.param_ratio:.2f}x |",
            f"| dense MACs / sample | {c.macs_before:,} | {c.macs_after:,} | {c.mac_ratio:.2f}x |",
        ]
        return "\n".join(rows) + "\n"


def _check_threshold(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a float in (0, 1], got {value!r}")
    if math.isnan(value) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return float(value)


def plan_spatial_pruning(
    model: nn.Module,
    stats: Mapping[str, MembraneStats],
    threshold: float = DEFAULT_THRESHOLD,
    overrides: Mapping[str, float | int] | None = None,
) -> SpatialPlan:
    """Choose every channel group's width from the PCA of its activations.

    ``model`` must carry its ``spec`` (every model from
    :func:`~snncost.models.build_snn`/``build_ann`` does); the spec's
    channel groups (:class:`~snncost.models.ChannelGroup`) say which
    activations share channels. ``stats`` comes from
    :func:`collect_membrane_stats`. Each site's width is the number of
    principal components reaching the threshold (:func:`select_width`); a
    group tied by identity shortcuts takes the **largest** width of its
    sites: each site needs that many directions, and the shortcut adds
    them channel by channel, so a narrower group would drop directions a
    site still uses. (The union of each site's top channels would exceed
    every site's own PCA count without being asked for by any of them.)
    In a VGG every group has one site, so this is the paper's rule.

    ``overrides`` maps a layer name (an activation, e.g. ``features.1``, or
    a conv/linear or BatchNorm of the group, e.g. ``features.0``) to either
    a float threshold in ``(0, 1]`` for that group or an int fixing its
    width (``1 <= width <= original``; no statistics needed then). The
    paper keeps sensitive layers wider this way. Unknown names fail listing
    the valid ones.
    """
    model = _unwrap(model)
    groups = _groups(model)
    threshold = _check_threshold(threshold, "threshold")
    resolved = _resolve_overrides(groups, overrides or {})
    layers: list[LayerPlan] = []
    for i, group in enumerate(groups):
        override = resolved.get(i)
        ratios = {site: _ratio(site, stats.get(site), group.width) for site in group.sites}
        if isinstance(override, int):
            used, width = None, override
            own = {site: (select_width(r, threshold) if r else None) for site, r in ratios.items()}
        else:
            used = float(override) if override is not None else threshold
            missing = [site for site in group.sites if site not in stats]
            if missing:
                raise ValueError(
                    f"no statistics for layer {missing[0]}: collect them, or fix its width with an int override"
                )
            own = {site: select_width(r, used) for site, r in ratios.items()}
            width = max(own.values())
        layers += [
            LayerPlan(
                site, _feeding(site, group.producers), group.kind, group.width, width, used,
                ratios[site], group=group.name, significant=own[site],
            )  # fmt: skip
            for site in group.sites
        ]
    return SpatialPlan(spec=model.spec, layers=layers, threshold=threshold)


def _ratio(site: str, layer_stats: MembraneStats | None, width: int) -> list[float]:
    if layer_stats is None:
        return []
    if layer_stats.dim != width:
        raise ValueError(f"statistics of {site} have {layer_stats.dim} channels, the spec says {width}")
    return layer_stats.explained_variance_ratio().cpu().tolist()


def _feeding(site: str, producers: tuple[str, ...]) -> str:
    """The producer of ``site``'s group that shares the longest module path with it (its own block's)."""
    parts = site.split(".")

    def shared(name: str) -> int:
        count = 0
        for a, b in zip(parts, name.split("."), strict=False):
            if a != b:
                break
            count += 1
        return count

    return max(producers, key=shared)


def _resolve_overrides(groups: list[ChannelGroup], overrides: Mapping[str, float | int]) -> dict[int, float | int]:
    """``{group index: threshold or fixed width}``, each key checked; errors list the valid names."""
    by_name = {member: i for i, g in enumerate(groups) for member in g.members()}
    keys: dict[int, str] = {}
    resolved: dict[int, float | int] = {}
    for key, value in overrides.items():
        if key not in by_name:
            valid = ", ".join(f"{g.name} (or {', '.join(g.members()[1:])})" for g in groups)
            raise ValueError(f"override for unknown layer {key!r}; valid layer names: {valid}")
        i = by_name[key]
        if i in keys:
            raise ValueError(f"layer {groups[i].name} is overridden twice ({keys[i]!r} and {key!r})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"override {key!r} = {value!r}: give a float threshold or an int width")
        if isinstance(value, int):
            if not 1 <= value <= groups[i].width:
                raise ValueError(
                    f"override {key!r} = {value}: a fixed width must be in [1, {groups[i].width}] "
                    "(pruning cannot widen a layer)"
                )
        else:
            _check_threshold(value, f"override {key!r}")
        keys[i], resolved[i] = key, value
    return resolved
