"""Residual networks as data: spiking ResNet-19 (tdBN) and SEW-ResNet-18, in ANN and SNN form.

A network is a :class:`ResNetSpec`: a stem width, then stages of basic
blocks (output width, number of blocks, stride of the first block), then
the hidden widths of the fully connected head; :data:`ARCHS` holds the two
published CIFAR networks. One function builds both forms with the same
module names, so ANN weights (convs, linears and BatchNorms) load into the
SNN by name (:func:`~snncost.models.transfer_weights`) and one pruning plan
fits both.

**Spiking ResNet-19** (Zheng et al., "Going Deeper With Directly-Trained
Larger Spiking Neural Networks", AAAI 2021, Table 1 and Fig. 3): stem
conv3x3-128; stages of 3, 3 and 2 basic blocks with widths 128, 256, 512
(strides 1, 2, 2; 32, 16 and 8 pixels on CIFAR); global average pooling;
FC 256; FC classes (1 + 2*8 convs + 2 FCs = 19 layers). Block ``"tdbn"``:
``LIF(BN(conv(LIF(BN(conv(x))))) + shortcut(x))``: the shortcut (identity,
or conv1x1 stride 2 + BN where the shape changes) is added to the second
BatchNorm's *output current*, before the block's last neuron.

**SEW-ResNet-18** (Fang et al., "Deep Residual Learning in Spiking Neural
Networks", NeurIPS 2021) for 32x32 inputs: stem conv3x3-64 with no max
pool, 4 stages x 2 blocks with widths 64, 128, 256, 512 (strides 1, 2, 2,
2), global average pooling, FC classes. Block ``"sew"``:
``g(LIF(BN(conv(LIF(BN(conv(x)))))), shortcut(x))`` on *spikes*, the
shortcut being identity or conv1x1-BN-LIF (a spiking downsample), with the
element-wise connect function ``g`` (``spec.connect``): ``ADD`` ``a + s``
(spike counts 0/1/2 flow on), ``AND`` ``a * s``, ``IAND`` ``(1 - a) * s``
(``a`` the residual branch, ``s`` the shortcut). AND and IAND are spike
logic with no ANN meaning: their networks have an SNN form only.

**tdBN** (threshold-dependent batch norm) normalises each channel over
time *and* batch: every BatchNorm2d of the SNN form sits in a
:class:`~snncost.nn.SpikingSequential` with its conv, which folds
``[T, B, C, H, W]`` into ``[T*B, C, H, W]``, so its batch statistics are
taken over both axes, as the paper defines them. The paper's scaling of the
normalised value by ``alpha * V_th`` is realised by BN's affine weight,
initialised to ``alpha * V_th`` (``alpha = 1/sqrt(2)`` for the two
BatchNorms whose outputs meet at a shortcut, 1 elsewhere) when an SNN is
built from scratch; conversion overwrites it with the ANN's. At inference
a BatchNorm is an affine map per channel that the graph builder folds into
the conv before it (:mod:`snncost.graph.build`).

Module paths (SNN; the ANN has the same without ``encoder``/``output``,
with ``nn.ReLU`` for every LIF)::

    encoder                          DirectEncoder / PoissonEncoder
    stem.0, stem.1, stem.2           conv3x3, BatchNorm2d, LIF
    layer{s}.{b}.conv1.0, .conv1.1   conv3x3 (stride of the block), BatchNorm2d
    layer{s}.{b}.act1                LIF
    layer{s}.{b}.conv2.0, .conv2.1   conv3x3, BatchNorm2d
    layer{s}.{b}.shortcut.0, .1 [.2] conv1x1 (stride), BatchNorm2d [, LIF: SEW only];
                                     absent (None) for an identity shortcut
    layer{s}.{b}.act2                LIF (its input: the sum for tdbn; the branch for SEW)
    head.0, head.1                   AdaptiveAvgPool2d(1), Flatten
    head.2, head.3 [, head.4]        hidden Linear, LIF [, TemporalDropout] per head width
    head.N                           Linear to the classes
    output                           OutputIntegrator (mean over T)

``s`` counts stages from 1, ``b`` blocks from 0. Block forwards are plain
torch arithmetic on ``[T, B, ...]`` tensors (``+``, ``*``, ``1 - a``) with
no data-dependent control flow, so ``torch.fx`` traces them with the
convs, BatchNorms, pools, containers and neurons as leaves.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

import snncost.nn as sn
from snncost.models.common import ChannelGroup, NeuronConfig

BlockKind = Literal["tdbn", "sew"]
Connect = Literal["ADD", "AND", "IAND"]

FAMILY = "resnet"

#: The published CIFAR networks (see the module docstring for the sources).
ARCHS: dict[str, dict[str, Any]] = {
    "resnet19": {
        "block": "tdbn",
        "stem": 128,
        "widths": [128, 256, 512],
        "depths": [3, 3, 2],
        "strides": [1, 2, 2],
        "head": [256],
    },
    "sew-resnet18": {
        "block": "sew",
        "stem": 64,
        "widths": [64, 128, 256, 512],
        "depths": [2, 2, 2, 2],
        "strides": [1, 2, 2, 2],
        "head": [],
    },
}

#: SEW connect functions ``g(a, s)``: ``a`` the residual branch's spikes, ``s`` the shortcut's.
CONNECTS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ADD": lambda a, s: a + s,
    "AND": lambda a, s: a * s,
    "IAND": lambda a, s: (1 - a) * s,
}


def _positive_ints(values: Any, what: str) -> None:
    if not isinstance(values, list):
        raise ValueError(f"{what} = {values!r}: must be a list")
    for i, w in enumerate(values):
        if isinstance(w, bool) or not (isinstance(w, int) and w > 0):
            raise ValueError(f"{what}[{i}] = {w!r}: must be a positive int")


@dataclass(frozen=True)
class ResNetSpec:
    """Everything needed to rebuild a residual network: saved in every checkpoint.

    ``stem``: width of the stem conv; ``widths``/``depths``/``strides``: per
    stage, the output width, the number of basic blocks and the stride of
    its first block; ``head``: hidden FC widths (the output layer with
    ``num_classes`` units is added). ``mids``: the inner width of every
    block (``conv1``'s outputs), per stage; default the stage width.
    ``projections``: per stage, whether its first block has a conv1x1
    shortcut; default where the shape changes (stride != 1 or a new
    width). Both are filled in at construction and stored, so a pruned
    spec keeps the original shortcut structure.
    """

    block: BlockKind
    stem: int
    widths: list[int]
    depths: list[int]
    strides: list[int]
    head: list[int] = field(default_factory=list)
    mids: list[list[int]] | None = None
    projections: list[bool] | None = None
    connect: Connect = "ADD"
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    bias: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.block not in ("tdbn", "sew"):
            raise ValueError(f"block = {self.block!r}: choose 'tdbn' (spiking ResNet-19) or 'sew'")
        if self.connect not in CONNECTS:
            raise ValueError(f"connect = {self.connect!r}: choose one of {', '.join(CONNECTS)}")
        if self.block == "tdbn" and self.connect != "ADD":
            raise ValueError(
                f"connect = {self.connect!r}: tdbn blocks add currents; only SEW blocks take AND/IAND"
            )
        if isinstance(self.stem, bool) or not (isinstance(self.stem, int) and self.stem > 0):
            raise ValueError(f"stem = {self.stem!r}: must be a positive int")
        for name in ("widths", "depths", "strides", "head"):
            _positive_ints(getattr(self, name), name)
        n = len(self.widths)
        if n == 0:
            raise ValueError("widths is empty: a ResNet needs at least one stage")
        for name in ("depths", "strides"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries, widths has {n} stages"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout = {self.dropout!r}: must be in [0, 1)")
        mids = (
            self.mids
            if self.mids is not None
            else [[w] * d for w, d in zip(self.widths, self.depths, strict=True)]
        )
        if len(mids) != n or any(len(m) != d for m, d in zip(mids, self.depths, strict=True)):
            raise ValueError(f"mids {mids}: need one inner width per block, depths {self.depths}")
        for s, m in enumerate(mids):
            _positive_ints(list(m), f"mids[{s}]")
        object.__setattr__(self, "mids", [list(m) for m in mids])
        inputs = [self.stem, *self.widths[:-1]]
        changes = [
            st != 1 or w != i for st, w, i in zip(self.strides, self.widths, inputs, strict=True)
        ]
        projections = self.projections if self.projections is not None else changes
        if len(projections) != n:
            raise ValueError(f"projections has {len(projections)} entries, widths has {n} stages")
        for s, (proj, change) in enumerate(zip(projections, changes, strict=True)):
            if change and not proj:
                raise ValueError(
                    f"stage {s + 1}: {inputs[s]}->{self.widths[s]} channels, stride {self.strides[s]} "
                    "changes the shape, so its first block needs a projection shortcut"
                )
        object.__setattr__(self, "projections", [bool(p) for p in projections])

    @classmethod
    def from_arch(cls, arch: str, **kwargs: Any) -> ResNetSpec:
        if arch not in ARCHS:
            raise ValueError(
                f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)} or give a ResNetSpec"
            )
        return cls(**{**_deep_lists(ARCHS[arch]), **kwargs})

    # ------------------------------------------------------------ channel groups
    def channel_groups(self) -> list[ChannelGroup]:
        """The prunable channel groups, in forward order of their first site.

        A block's inner width (``conv1``'s outputs, read only by ``conv2``)
        is a group of its own. The output channels of the stem and of every
        block joined by identity shortcuts are one group: they are added
        channel by channel, so they are pruned together; a projection
        shortcut starts a new group (its conv1x1 and the first block's
        ``conv2`` produce it). Hidden head widths are groups of their own.
        """
        groups: list[_GroupBuilder] = []
        chain = _GroupBuilder(["stem.2"], ["stem.0"], ["stem.1"], self.stem)
        groups.append(chain)
        for s, (width, depth) in enumerate(zip(self.widths, self.depths, strict=True), 1):
            for b in range(depth):
                block = f"layer{s}.{b}"
                chain.consumers.append(f"{block}.conv1.0")
                mid = _GroupBuilder(
                    [f"{block}.act1"],
                    [f"{block}.conv1.0"],
                    [f"{block}.conv1.1"],
                    self.mids[s - 1][b],
                )
                mid.consumers.append(f"{block}.conv2.0")
                groups.append(mid)
                projection = b == 0 and self.projections[s - 1]
                if projection:
                    chain.consumers.append(f"{block}.shortcut.0")
                    sites = [f"{block}.shortcut.2"] if self.block == "sew" else []
                    chain = _GroupBuilder(sites, [], [], width)
                    groups.append(chain)
                chain.sites.append(f"{block}.act2")
                chain.producers.append(f"{block}.conv2.0")
                chain.norms.append(f"{block}.conv2.1")
                if projection:  # the branch's conv first: it names the group's layer in plans
                    chain.producers.append(f"{block}.shortcut.0")
                    chain.norms.append(f"{block}.shortcut.1")
        linears = self._head_linears()
        chain.consumers.append(linears[0])
        for h, width in enumerate(self.head):
            hidden = _GroupBuilder([_next(linears[h])], [linears[h]], [], width, "linear")
            hidden.consumers.append(linears[h + 1])
            groups.append(hidden)
        return [g.freeze() for g in groups]

    def _head_linears(self) -> list[str]:
        """Names of the head's linears: ``head.2``, then 2 or 3 modules apart (linear, act[, dropout])."""
        names, index = [], 2
        for _ in self.head:
            names.append(f"head.{index}")
            index += 3 if self.dropout > 0 else 2
        return [*names, f"head.{index}"]

    def with_widths(self, widths: list[int]) -> ResNetSpec:
        """The same network with one new width per channel group (:meth:`channel_groups` order).

        Shortcut structure (:attr:`projections`) and depths are kept; tied
        widths cannot drift apart, since each group carries one width.
        """
        groups = self.channel_groups()
        if len(widths) != len(groups):
            raise ValueError(f"expected {len(widths)} widths, one per channel group: {len(groups)}")
        _positive_ints(list(widths), "widths")
        by_site = {site: int(w) for g, w in zip(groups, widths, strict=True) for site in g.sites}
        stem = by_site["stem.2"]
        stage_widths = [by_site[f"layer{s}.0.act2"] for s in range(1, len(self.widths) + 1)]
        mids = [
            [by_site[f"layer{s}.{b}.act1"] for b in range(depth)]
            for s, depth in enumerate(self.depths, 1)
        ]
        linears = self._head_linears()
        head = [by_site[_next(linears[h])] for h in range(len(self.head))]
        return replace(self, stem=stem, widths=stage_widths, mids=mids, head=head)

    # ------------------------------------------------------------ cost
    def cost(self) -> tuple[int, int]:
        """``(parameters, dense MACs per sample)`` of the conv/linear layers this spec builds.

        Counted from the spec alone (BatchNorms are not counted: inference
        folds them into the convs).
        """
        params = macs = 0

        def conv(cin: int, cout: int, k: int, out_size: int) -> None:
            nonlocal params, macs
            params += cin * cout * k * k
            macs += cin * cout * k * k * out_size * out_size

        size = self.image_size
        conv(self.in_channels, self.stem, 3, size)
        channels = self.stem
        for s, (width, depth, stride) in enumerate(
            zip(self.widths, self.depths, self.strides, strict=True)
        ):
            for b in range(depth):
                step = stride if b == 0 else 1
                out = _conv_out(size, 3, step)
                mid = self.mids[s][b]
                conv(channels, mid, 3, out)
                conv(mid, width, 3, out)
                if b == 0 and self.projections[s]:
                    conv(channels, width, 1, _conv_out(size, 1, step))
                size, channels = out, width
        for w in [*self.head, self.num_classes]:
            params += channels * w + (w if self.bias else 0)
            macs += channels * w
            channels = w
        return params, macs

    def to_dict(self) -> dict[str, Any]:
        return {"family": FAMILY, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResNetSpec:
        data = dict(data)
        family = data.pop("family", FAMILY)
        if family != FAMILY:
            raise ValueError(f"spec family {family!r} is not {FAMILY!r}")
        return cls(**data)


@dataclass
class _GroupBuilder:
    sites: list[str]
    producers: list[str]
    norms: list[str]
    width: int
    kind: Literal["conv", "linear"] = "conv"
    consumers: list[str] = field(default_factory=list)

    def freeze(self) -> ChannelGroup:
        return ChannelGroup(
            tuple(self.sites),
            tuple(self.producers),
            tuple(self.consumers),
            self.width,
            self.kind,
            tuple(self.norms),
        )


def _next(name: str) -> str:
    """``head.2`` -> ``head.3``: the activation right after a head linear."""
    prefix, index = name.rsplit(".", 1)
    return f"{prefix}.{int(index) + 1}"


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _deep_lists(data: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in data.items()}


# --------------------------------------------------------------------------- blocks


class _BasicBlock(sn.TemporalModule):
    """Two conv-BN units, a neuron after each, and a shortcut (``None``: identity).

    A :class:`~snncost.nn.TemporalModule`, so a spiking container hands it
    ``[T, B, ...]`` unchanged; its conv-BN units fold time themselves. The
    ANN form uses the same class on ``[B, ...]``.
    """

    def __init__(
        self,
        conv1: nn.Module,
        act1: nn.Module,
        conv2: nn.Module,
        act2: nn.Module,
        shortcut: nn.Module | None,
        connect: Connect = "ADD",
    ) -> None:
        super().__init__()
        self.connect = connect
        self.conv1 = conv1
        self.act1 = act1
        self.conv2 = conv2
        self.shortcut = shortcut
        self.act2 = act2

    def _identity(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.shortcut is None else self.shortcut(x)

    def extra_repr(self) -> str:
        return f"connect={self.connect}"


class CurrentAddBlock(_BasicBlock):
    """Spiking ResNet-19's block: the shortcut joins the second BN's output current."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.act1(self.conv1(x)))
        return self.act2(out + self._identity(x))


class SEWBlock(_BasicBlock):
    """SEW-ResNet's block: ``g(branch spikes, shortcut spikes)`` after the block's last neuron."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act2(self.conv2(self.act1(self.conv1(x))))
        return CONNECTS[self.connect](out, self._identity(x))


_BLOCKS: dict[str, type[_BasicBlock]] = {"tdbn": CurrentAddBlock, "sew": SEWBlock}


# --------------------------------------------------------------------------- building


class _Parts:
    """Layer factories for one form: the ANN (ReLU, ``nn.Sequential``) or the SNN (LIF, time folded)."""

    def __init__(self, neurons: NeuronConfig | None) -> None:
        self.neurons = neurons
        self.spiking = neurons is not None

    def act(self) -> nn.Module:
        return self.neurons.make_neuron() if self.neurons is not None else nn.ReLU(inplace=False)

    def seq(self, *modules: nn.Module) -> nn.Sequential:
        return sn.SpikingSequential(*modules) if self.spiking else nn.Sequential(*modules)

    def conv_bn(self, cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        ]

    def dropout(self, p: float) -> nn.Module:
        return sn.TemporalDropout(p) if self.spiking else nn.Dropout(p)


def _stage(spec: ResNetSpec, parts: _Parts, s: int, channels: int) -> nn.Sequential:
    width, stride = spec.widths[s], spec.strides[s]
    blocks = []
    for b, mid in enumerate(spec.mids[s]):
        step = stride if b == 0 else 1
        shortcut = None
        if b == 0 and spec.projections[s]:
            down = parts.conv_bn(channels, width, 1, step)
            shortcut = parts.seq(*down, parts.act()) if spec.block == "sew" else parts.seq(*down)
        args = (
            parts.seq(*parts.conv_bn(channels, mid, 3, step)),
            parts.act(),
            parts.seq(*parts.conv_bn(mid, width, 3, 1)),
            parts.act(),
            shortcut,
        )
        blocks.append(_BLOCKS[spec.block](*args, connect=spec.connect))
        channels = width
    return parts.seq(*blocks)


def _body(spec: ResNetSpec, parts: _Parts) -> OrderedDict[str, nn.Module]:
    body: OrderedDict[str, nn.Module] = OrderedDict()
    body["stem"] = parts.seq(*parts.conv_bn(spec.in_channels, spec.stem, 3, 1), parts.act())
    channels = spec.stem
    for s in range(len(spec.widths)):
        body[f"layer{s + 1}"] = _stage(spec, parts, s, channels)
        channels = spec.widths[s]
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for w in spec.head:
        head += [nn.Linear(channels, w, bias=spec.bias), parts.act()]
        if spec.dropout > 0:
            head.append(parts.dropout(spec.dropout))
        channels = w
    head.append(nn.Linear(channels, spec.num_classes, bias=spec.bias))
    body["head"] = parts.seq(*head)
    return body


def build_ann(spec: ResNetSpec) -> nn.Sequential:
    """The ANN form: ``stem``, ``layer1..n``, ``head`` with ReLUs (ADD blocks only)."""
    if spec.connect != "ADD":
        raise ValueError(
            f"connect = {spec.connect!r} is spike logic with no ANN form: train the SNN directly "
            "(stages without ann/convert)"
        )
    model = nn.Sequential(_body(spec, _Parts(None)))
    _init_weights(model)
    _describe(model, spec)
    return model


def build_snn(spec: ResNetSpec, neurons: NeuronConfig | None = None) -> sn.SpikingSequential:
    """The SNN form: ``encoder``, the ANN's modules with LIFs, ``output`` (mean over ``T``).

    Same keys for every conv, BatchNorm and linear as :func:`build_ann`.
    For ``tdbn`` blocks each BatchNorm's weight starts at ``alpha * V_th``
    (see the module docstring).
    """
    neurons = neurons or NeuronConfig()
    body = _body(spec, _Parts(neurons))
    model = sn.SpikingSequential(
        OrderedDict(encoder=neurons.make_encoder(), **body, output=sn.OutputIntegrator())
    )
    _init_weights(model)
    if spec.block == "tdbn":
        _init_tdbn(model, neurons.threshold)
    _describe(model, spec)
    model.neurons = neurons
    return model


def _init_tdbn(model: nn.Module, threshold: float) -> None:
    """tdBN's ``alpha * V_th`` scale as BN's initial weight: ``1/sqrt(2)`` where two currents are added."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                joins = name.endswith(("conv2.1", "shortcut.1"))
                m.weight.fill_(threshold / math.sqrt(2.0) if joins else threshold)


def _init_weights(model: nn.Module) -> None:
    """He init for convs, unit BatchNorms, PyTorch's default for linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def _describe(model: nn.Module, spec: ResNetSpec) -> None:
    """Attach the spec and per-sample input shape, so tools need no side channel."""
    model.spec = spec
    model.input_shape = (spec.in_channels, spec.image_size, spec.image_size)
