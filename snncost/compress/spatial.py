"""PCA-based spatial (channel) pruning of VGG networks, ANN or SNN.

The method of Chowdhury, Garg & Roy (2021, arXiv:2104.12528, Sec. III-A):
for every spiking layer, record the *average accumulated membrane
potential* on a training subset, i.e. the input current integrated over the
``T`` steps and divided by ``T`` (before any reset, so it does not depend on
the threshold). Treat it as data: for a conv layer each image *and* spatial
position is one sample whose dimensions are the channels; for a linear
layer each image is one sample. Principal component analysis then says how
many directions the layer really uses; the layer's new width is the number
of components whose cumulative explained variance reaches a threshold
(0.999 by default). The VGG is rebuilt with those widths (structured
pruning: whole channels go), warm-started from the wide one, and retrained.

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
from snncost.models.vgg import VGGSpec, spiking_layers, weight_layers

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
    "warm_start_weights",
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


@dataclass(frozen=True)
class _Site:
    """One prunable activation: where its statistics are taken and which layer feeds it."""

    name: str  # the LIF (SNN) or ReLU (ANN) module
    weight_layer: str  # the conv/linear whose output channels it sees
    kind: Literal["conv", "linear"]


def _sites(model: nn.Module) -> list[_Site]:
    """The prunable activations of ``model`` in forward order.

    SNN (any :class:`~snncost.nn.LIF` present): every LIF, fed by the last
    conv/linear before it. ANN: every ``nn.ReLU`` that directly follows a
    conv/linear (in module order), whose *input* is that layer's
    pre-activation, the ANN counterpart of the membrane input current.
    """
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    spiking = any(isinstance(m, sn.LIF) for _, m in leaves)
    sites: list[_Site] = []
    last: tuple[str, nn.Module] | None = None
    previous: nn.Module | None = None
    for name, module in leaves:
        if spiking and isinstance(module, sn.LIF) and last is not None:
            sites.append(
                _Site(name, last[0], "conv" if isinstance(last[1], nn.Conv2d) else "linear")
            )
        elif (
            not spiking
            and isinstance(module, nn.ReLU)
            and isinstance(previous, (nn.Conv2d, nn.Linear))
            and last is not None
        ):
            sites.append(
                _Site(name, last[0], "conv" if isinstance(last[1], nn.Conv2d) else "linear")
            )
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            last = (name, module)
        previous = module
    return sites


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
    ReLU that directly follows a conv/linear, i.e. the pre-activation, so
    the same code prunes ANNs too.

    Conv layers contribute ``B * H * W`` samples of dimension ``C`` per
    batch, linear layers ``B`` samples of dimension ``F``. ``batches``
    yields input tensors ``[B, ...]``; ``(inputs, labels)`` tuples/lists
    (what a ``DataLoader`` yields) are accepted and the labels ignored.
    The model runs in eval mode (no dropout) without gradients and its
    training flag is restored afterwards. Statistics live in float64 on the
    model's device; call :meth:`MembraneStats.all_reduce` on each under
    ``torchrun`` to combine ranks.

    Returns ``{activation module name: MembraneStats}`` in forward order;
    the names (``features.1``, ``classifier.2``, ...) are the same in the
    ANN and SNN forms of a VGG.
    """
    model = _unwrap(model)
    sites = _sites(model)
    if not sites:
        raise ValueError(
            "model has no LIF layers and no ReLU following a conv/linear: nothing to prune"
        )
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

    handles = [modules[s.name].register_forward_pre_hook(hook_for(s.name)) for s in sites]
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
    return {s.name: stats[s.name] for s in sites if s.name in stats}


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
    """The decision for one prunable layer.

    ``name`` is the activation (LIF/ReLU) module, ``weight_layer`` the
    conv/linear whose output channels are pruned. ``threshold`` is the
    explained-variance threshold used, or ``None`` when the width was fixed
    by an integer override. ``explained_variance`` is the full ratio curve
    (descending; empty when no statistics were given).
    """

    name: str
    weight_layer: str
    kind: Literal["conv", "linear"]
    original_width: int
    new_width: int
    threshold: float | None
    explained_variance: list[float] = field(default_factory=list, repr=False)

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


def spec_cost(spec: VGGSpec) -> tuple[int, int]:
    """``(parameters, dense MACs per sample)`` of the conv/linear layers a :class:`VGGSpec` builds.

    Computed from the spec alone (no model is built), so a plan can report
    the cost of a network before it exists. Stride-1 convs with ``k // 2``
    padding and 2x2 pooling, as :func:`snncost.models.vgg.build_ann` builds.
    """
    k = spec.kernel_size
    size = spec.image_size
    channels = spec.in_channels
    params = macs = 0
    for w in spec.features:
        if w == "P":
            size //= 2
            continue
        size = size + 2 * (k // 2) - k + 1
        weights = channels * w * k * k
        params += weights + (w if spec.bias else 0)
        macs += weights * size * size
        channels = w
    width = channels * spec.feature_map_size() ** 2
    for w in [*spec.classifier, spec.num_classes]:
        params += width * w + (w if spec.bias else 0)
        macs += width * w
        width = w
    return params, macs


@dataclass
class SpatialPlan:
    """Per-layer widths chosen by PCA, and what they save.

    ``spec`` is the original :class:`~snncost.models.VGGSpec`; ``layers`` one
    :class:`LayerPlan` per conv and hidden linear in forward order (the
    output layer keeps ``num_classes`` and is not listed).
    """

    spec: VGGSpec
    layers: list[LayerPlan]
    threshold: float = DEFAULT_THRESHOLD

    @property
    def widths(self) -> list[int]:
        return [layer.new_width for layer in self.layers]

    @property
    def pruned_spec(self) -> VGGSpec:
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
        rows = [
            "| layer | weight layer | kind | width | new width | threshold | kept variance |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for lp in self.layers:
            threshold = "fixed" if lp.threshold is None else f"{lp.threshold:g}"
            kept = "-" if lp.kept_variance is None else f"{lp.kept_variance:.6f}"
            rows.append(
                f"| {lp.name} | {lp.weight_layer} | {lp.kind} | {lp.original_width} | "
                f"{lp.new_width} | {threshold} | {kept} |"
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
    """Choose every conv/hidden-linear width from the PCA of its activations.

    ``model`` must carry its ``spec`` (every model from
    :func:`~snncost.models.build_snn`/``build_ann`` does); its prunable
    layers (LIFs, or ReLUs after conv/linear in an ANN) are matched in
    order to the spec's conv widths then hidden widths; the output layer
    keeps ``num_classes``. ``stats`` comes from :func:`collect_membrane_stats`.

    ``overrides`` maps a layer name (the activation, e.g. ``features.1``,
    or the conv/linear feeding it, e.g. ``features.0``) to either a float
    threshold in ``(0, 1]`` for that layer or an int fixing its width
    (``1 <= width <= original``; no statistics needed then). The paper
    keeps sensitive layers wider this way. Unknown names fail listing the
    valid ones.
    """
    model = _unwrap(model)
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(spec, "with_widths"):
        raise ValueError(
            "model has no .spec (VGGSpec): build it with snncost.models.build_snn/build_ann"
        )
    threshold = _check_threshold(threshold, "threshold")
    sites = _sites(model)
    widths = [w for w in spec.features if w != "P"] + list(spec.classifier)
    if len(sites) != len(widths):
        raise ValueError(
            f"model has {len(sites)} prunable layers but its spec has {len(widths)} conv/hidden widths"
        )

    by_name: dict[str, int] = {}
    for i, site in enumerate(sites):
        by_name[site.name] = i
        by_name[site.weight_layer] = i
    resolved: dict[int, tuple[str, float | int]] = {}
    for key, value in (overrides or {}).items():
        if key not in by_name:
            valid = ", ".join(f"{s.name} (or {s.weight_layer})" for s in sites)
            raise ValueError(f"override for unknown layer {key!r}; valid layer names: {valid}")
        i = by_name[key]
        if i in resolved:
            raise ValueError(
                f"layer {sites[i].name} is overridden twice ({resolved[i][0]!r} and {key!r})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"override {key!r} = {value!r}: give a float threshold or an int width")
        if isinstance(value, int):
            if not 1 <= value <= widths[i]:
                raise ValueError(
                    f"override {key!r} = {value}: a fixed width must be in [1, {widths[i]}] "
                    "(pruning cannot widen a layer)"
                )
        else:
            _check_threshold(value, f"override {key!r}")
        resolved[i] = (key, value)

    layers: list[LayerPlan] = []
    for i, (site, width) in enumerate(zip(sites, widths, strict=True)):
        override = resolved.get(i, (None, None))[1]
        layer_stats = stats.get(site.name)
        ratio: list[float] = []
        if layer_stats is not None:
            if layer_stats.dim != width:
                raise ValueError(
                    f"statistics of {site.name} have {layer_stats.dim} channels, the spec says {width}"
                )
            ratio = layer_stats.explained_variance_ratio().cpu().tolist()
        if isinstance(override, int):
            new_width, used = override, None
        else:
            used = float(override) if override is not None else threshold
            if layer_stats is None:
                raise ValueError(
                    f"no statistics for layer {site.name}: collect them, or fix its width "
                    "with an int override"
                )
            new_width = select_width(ratio, used)
        layers.append(
            LayerPlan(site.name, site.weight_layer, site.kind, width, new_width, used, ratio)
        )
    return SpatialPlan(spec=spec, layers=layers, threshold=threshold)


# --------------------------------------------------------------------------- warm start


def _channel_scores(stats: MembraneStats, k: int) -> Tensor:
    """How much of the top-``k`` principal subspace each channel carries.

    ``score[c] = sum_{j < k} lambda_j * V[c, j]^2``: the variance of channel
    ``c`` that lies inside the kept subspace.
    """
    values, vectors = stats.eigh()
    return (vectors[:, :k].square() * values[:k]).sum(1)


def _keep_indices(layer: LayerPlan, stats: MembraneStats | None, weight: Tensor) -> Tensor:
    k = layer.new_width
    if k >= layer.original_width:
        return torch.arange(layer.original_width)
    if stats is not None and stats.count >= 2:
        scores = _channel_scores(stats, k).cpu()
    else:  # fixed width without statistics: keep the strongest output channels by weight norm
        scores = weight.detach().flatten(1).norm(dim=1).double().cpu()
    keep = torch.topk(scores, k).indices
    return keep.sort().values


def warm_start_weights(
    src_model: nn.Module,
    dst_model: nn.Module,
    stats: Mapping[str, MembraneStats],
    plan: SpatialPlan,
) -> dict[str, list[int]]:
    """Initialise the narrower ``dst_model`` from the wide ``src_model``.

    Retraining a pruned network from scratch throws away what the wide one
    learnt; instead, per pruned layer, keep the ``k`` original channels that
    carry most of the top-``k`` principal subspace (scored with
    ``sum_j lambda_j V[c, j]^2`` over the leading ``k`` eigenpairs; kept in
    their original order) and copy their slices: the out-channel rows of
    that layer's weight and bias, and the matching in-channel columns of the
    next layer's weight. For the first linear after the flatten, in-features
    are channel-major blocks of ``H * W``, so whole blocks are kept. Layers
    fixed by an int override without statistics fall back to the weight
    norm of each output channel. LIF thresholds and leaks are copied by
    name where both models have them.

    Works ANN->ANN and SNN->SNN (and across forms, since weight names
    match). Returns ``{weight layer name: kept output channel indices}`` for
    every weight layer (all channels for unpruned ones).
    """
    src_model, dst_model = _unwrap(src_model), _unwrap(dst_model)
    src_layers = weight_layers(src_model)
    dst_layers = dict(weight_layers(dst_model))
    names = [n for n, _ in src_layers]
    if names != list(dst_layers):
        raise ValueError(f"weight layers differ: {names} vs {list(dst_layers)}")
    planned = {layer.weight_layer: layer for layer in plan.layers}
    unknown = set(planned) - set(names)
    if unknown:
        raise ValueError(f"plan names weight layers the model lacks: {sorted(unknown)}")

    kept: dict[str, list[int]] = {}
    with torch.no_grad():
        prev_keep: Tensor | None = None  # None: every input channel
        prev_kind: str | None = None
        prev_out = 0
        for name, src in src_layers:
            dst = dst_layers[name]
            layer = planned.get(name)
            if layer is not None:
                if src.weight.shape[0] != layer.original_width:
                    raise ValueError(
                        f"{name}: source has {src.weight.shape[0]} outputs, the plan says {layer.original_width}"
                    )
                out_keep = _keep_indices(layer, stats.get(layer.name), src.weight)
            else:
                out_keep = torch.arange(src.weight.shape[0])
            in_keep = _input_indices(src, prev_keep, prev_kind, prev_out)
            dev = src.weight.device
            weight = src.weight.index_select(0, out_keep.to(dev))
            if in_keep is not None:
                weight = weight.index_select(1, in_keep.to(dev))
            if weight.shape != dst.weight.shape:
                raise ValueError(
                    f"{name}.weight: warm-start slice {tuple(weight.shape)} does not fit "
                    f"{tuple(dst.weight.shape)}; was dst built from plan.pruned_spec?"
                )
            dst.weight.copy_(weight)
            if (src.bias is None) != (dst.bias is None):
                raise ValueError(f"{name}.bias: present in one model only")
            if src.bias is not None:
                dst.bias.copy_(src.bias.index_select(0, out_keep.to(dev)))
            kept[name] = out_keep.tolist()
            prev_keep = out_keep if len(out_keep) < src.weight.shape[0] else None
            prev_kind = "conv" if isinstance(src, nn.Conv2d) else "linear"
            prev_out = src.weight.shape[0]

        dst_lifs = dict(spiking_layers(dst_model))
        for name, lif in spiking_layers(src_model):
            if name in dst_lifs:
                dst_lifs[name].threshold.copy_(lif.threshold)
                dst_lifs[name].leak.copy_(lif.leak)
    return kept


def _input_indices(
    layer: nn.Module, prev_keep: Tensor | None, prev_kind: str | None, prev_out: int
) -> Tensor | None:
    """Input columns of ``layer`` that survive the previous layer's pruning (``None``: all)."""
    if prev_keep is None:
        return None
    if isinstance(layer, nn.Linear) and prev_kind == "conv":
        # Flatten of [C, H, W] is channel-major: channel c owns columns c*HW .. c*HW + HW - 1.
        if layer.in_features % prev_out:
            raise ValueError(
                f"linear in_features {layer.in_features} is not a multiple of the {prev_out} conv channels"
            )
        hw = layer.in_features // prev_out
        return (prev_keep[:, None] * hw + torch.arange(hw)[None, :]).flatten()
    return prev_keep
