"""One table from framework modules to LayerGraph nodes, shared by every importer.

:data:`MODULES` maps a module type (torch, snncost, SpikingJelly) to a
:class:`Rule`: what the module becomes in a :class:`~snncost.graph.LayerGraph`
and the function that builds its node. The chain walker
(:func:`snncost.graph.build_graph`) and the tracer
(:func:`snncost.graph.trace_graph`) both look modules up here, so a module
is supported (or refused) the same way whichever door it comes in by, and
supporting a new one is one entry. :mod:`snncost.interop.nir` keeps its NIR
node types in a :class:`RuleTable` of the same kind.

A rule's ``role`` says what the module is:

- ``node``: one LayerGraph node, ``build(path, module, in_shape, lead) -> Node``
  (``in_shape`` per sample; ``lead`` the number of batch/time axes in front
  of the sample as the module sees it: 1 when time is folded into the batch,
  2 on ``[T, B, ...]``);
- ``fold``: a BatchNorm, folded into the conv/linear node before it
  (:func:`fold_batchnorm`);
- ``skip``: an identity at inference (dropout), no node;
- ``input``: an encoder, which builds the :class:`~snncost.graph.nodes.InputNode`;
- ``chain``: a container whose children run one after the other on the
  same tensor (time folded into the batch, or one step at a time); the
  tracer maps its children as a chain.

SpikingJelly entries are added the first time a table lookup happens after
``spikingjelly.activation_based`` has been imported (a model built from its
modules imports it), so snncost never imports SpikingJelly itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

import snncost.nn as sn
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    LinearNode,
    Node,
    OutputNode,
    PoolNode,
    ReLUNode,
    Shape,
)


class UnsupportedModuleError(ValueError):
    """A module (or a module setting) the LayerGraph cannot represent; names its path and type."""

    def __init__(self, path: str, module: Any, why: str = "") -> None:
        self.path = path
        self.module_type = type(module).__name__
        text = f"unsupported module {path or '<root>'!r} of type {self.module_type}"
        super().__init__(text + (f": {why}" if why else ""))


Role = Literal["node", "fold", "skip", "input", "chain"]


@dataclass(frozen=True)
class Rule:
    """How one framework type enters a LayerGraph (see the module docstring for ``role``).

    ``subclasses``: whether subclasses match too. False for neurons: a
    subclass usually changes the dynamics, so it is refused rather than
    replayed as its parent. ``maps_to`` is the text of the docs table.
    """

    role: Role
    build: Callable[..., Any] | None = None
    subclasses: bool = True
    maps_to: str = ""


class RuleTable:
    """Framework type -> :class:`Rule`; a lookup walks the type's MRO (most specific first)."""

    def __init__(self, what: str, on_lookup: Callable[[RuleTable], None] | None = None) -> None:
        self.what = what
        self._rules: dict[type, Rule] = {}
        self._on_lookup = on_lookup

    def register(self, cls: type, rule: Rule) -> None:
        self._rules[cls] = rule

    def lookup(self, obj: Any) -> Rule | None:
        """The rule of ``obj``'s type, or ``None`` when the table does not know it."""
        if self._on_lookup is not None:
            self._on_lookup(self)
        for cls in type(obj).__mro__:
            rule = self._rules.get(cls)
            if rule is not None and (rule.subclasses or cls is type(obj)):
                return rule
        return None

    def __iter__(self) -> Iterator[tuple[type, Rule]]:
        if self._on_lookup is not None:
            self._on_lookup(self)
        return iter(list(self._rules.items()))

    def __contains__(self, cls: object) -> bool:
        return cls in self._rules


# ---------------------------------------------------------------------- small helpers
def pair(value: Any, path: str, module: Any, what: str) -> tuple[int, int]:
    """``(a, b)`` from an int or a pair of ints; refuses anything else naming ``what``."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise UnsupportedModuleError(path, module, f"{what}={value!r}")


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """A float32 copy of ``t``: a LayerGraph is a snapshot of the model, never a view of its
    parameters (training on afterwards would otherwise change a built graph's weights under the
    replay's cached plan, :func:`snncost.sim.plan.plan_for`)."""
    if t is None:
        return None
    return np.array(t.detach().cpu().to(torch.float32).numpy(), dtype=np.float32, order="C", copy=True)


def _quant(module: nn.Module) -> tuple[np.ndarray, int, np.ndarray | None, str]:
    """``(weight, bits, scale, number_format)`` of a conv/linear module's node.

    A quantized module (it has ``weight_bits`` and ``weight_codes``, e.g.
    :class:`snncost.nn.QuantConv2d`): the node weight is the integer codes
    (float32 array of integer values) and the scale a float32 ``[O]`` array
    (a per-layer scale repeated per output channel), which the simulator
    applies to each step's accumulated current before the bias. A module
    that declares ``weight_bits`` and ``weight_scale`` but no codes keeps its
    float ``weight`` in the node (scale ``None``: its forward pass applies
    ``weight`` as it is), priced at ``weight_bits``. Otherwise float32
    weights, no scale.
    """
    weight = to_numpy(module.weight)
    bits = getattr(module, "weight_bits", None)
    codes = getattr(module, "weight_codes", None)
    scale = getattr(module, "weight_scale", None)
    if bits is None or (codes is None and scale is None):
        return weight, 32, None, "float"
    if codes is None:
        return weight, int(bits), None, "int"
    codes = to_numpy(torch.as_tensor(codes))
    if scale is None:
        scale_arr = np.ones(codes.shape[0], np.float32)
    else:
        scale_arr = np.asarray(to_numpy(torch.as_tensor(scale)), np.float32).reshape(-1)
        if scale_arr.size == 1:
            scale_arr = np.full(codes.shape[0], scale_arr[0], np.float32)
        elif scale_arr.size != codes.shape[0]:
            raise ValueError(f"weight_scale has {scale_arr.size} values for {codes.shape[0]} output channels")
    return codes, int(bits), np.ascontiguousarray(scale_arr), "int"


def _need_chw(path: str, m: nn.Module, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UnsupportedModuleError(path, m, f"expects a (C, H, W) input, gets shape {shape}")
    return shape  # type: ignore[return-value]


# ---------------------------------------------------------------------- node builders
def conv_node(path: str, m: nn.Conv2d, shape: Shape, lead: int = 1) -> ConvNode:
    c, h, w = _need_chw(path, m, shape)
    if m.groups != 1:
        raise UnsupportedModuleError(path, m, f"groups={m.groups} (only 1)")
    if pair(m.dilation, path, m, "dilation") != (1, 1):
        raise UnsupportedModuleError(path, m, f"dilation={m.dilation} (only 1)")
    if m.padding_mode != "zeros":
        raise UnsupportedModuleError(path, m, f"padding_mode={m.padding_mode!r} (only 'zeros')")
    if c != m.in_channels:
        raise UnsupportedModuleError(path, m, f"in_channels={m.in_channels} but the input has {c} channels")
    kh, kw = m.kernel_size
    sh, sw = pair(m.stride, path, m, "stride")
    if isinstance(m.padding, str):
        if m.padding == "valid":
            ph = pw = 0
        elif m.padding == "same" and kh % 2 == 1 and kw % 2 == 1 and (sh, sw) == (1, 1):
            ph, pw = kh // 2, kw // 2
        else:
            raise UnsupportedModuleError(path, m, f"padding={m.padding!r} with kernel {m.kernel_size}")
    else:
        ph, pw = pair(m.padding, path, m, "padding")
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise UnsupportedModuleError(path, m, f"a {h}x{w} input gives an empty output")
    weight, bits, scale, fmt = _quant(m)
    return ConvNode(
        name=path, weight=weight, bias=to_numpy(m.bias), in_shape=tuple(shape),
        out_shape=(m.out_channels, ho, wo), weight_bits=bits, weight_scale=scale,
        number_format=fmt, stride=(sh, sw), padding=(ph, pw),
    )  # fmt: skip


def linear_node(path: str, m: nn.Linear, shape: Shape, lead: int = 1) -> LinearNode:
    if len(shape) != 1 or shape[0] != m.in_features:
        raise UnsupportedModuleError(path, m, f"in_features={m.in_features} but gets shape {shape}")
    weight, bits, scale, fmt = _quant(m)
    return LinearNode(
        name=path, weight=weight, bias=to_numpy(m.bias), in_shape=tuple(shape),
        out_shape=(m.out_features,), weight_bits=bits, weight_scale=scale, number_format=fmt,
    )  # fmt: skip


def pool_node(path: str, m: nn.Module, shape: Shape, lead: int = 1) -> PoolNode:
    kind = "avg" if isinstance(m, nn.AvgPool2d) else "max"
    k = pair(m.kernel_size, path, m, "kernel_size")
    s = pair(m.stride if m.stride is not None else m.kernel_size, path, m, "stride")
    if k[0] != k[1] or s != k:
        raise UnsupportedModuleError(path, m, f"kernel {m.kernel_size} and stride {m.stride} (need square, kernel == stride)")
    if pair(m.padding, path, m, "padding") != (0, 0) or m.ceil_mode:
        raise UnsupportedModuleError(path, m, "padding or ceil_mode (need padding 0, floor)")
    if kind == "max" and (pair(m.dilation, path, m, "dilation") != (1, 1) or m.return_indices):
        raise UnsupportedModuleError(path, m, "dilation or return_indices")
    if kind == "avg" and m.divisor_override is not None:
        raise UnsupportedModuleError(path, m, "divisor_override")
    c, h, w = _need_chw(path, m, shape)
    kk = k[0]
    if h < kk or w < kk:
        raise UnsupportedModuleError(path, m, f"kernel {kk} larger than the {h}x{w} input")
    return PoolNode(name=path, kind=kind, kernel=kk, in_shape=tuple(shape), out_shape=(c, h // kk, w // kk))


def global_pool_node(path: str, m: Any, shape: Shape, lead: int = 1) -> PoolNode:
    """Average over the whole ``H x W`` map (``(C, H, W) -> (C, 1, 1)``): a square pool, kernel ``H``."""
    c, h, w = _need_chw(path, m, shape)
    if h != w:
        raise UnsupportedModuleError(path, m, f"a global average over a {h}x{w} map (snncost pools are square)")
    return PoolNode(name=path, kind="avg", kernel=h, in_shape=tuple(shape), out_shape=(c, 1, 1))


def adaptive_pool_node(path: str, m: nn.AdaptiveAvgPool2d, shape: Shape, lead: int = 1) -> PoolNode:
    if m.output_size not in (1, (1, 1), [1, 1]):
        raise UnsupportedModuleError(path, m, f"output_size={m.output_size} (only 1: a global average)")
    return global_pool_node(path, m, shape)


def flatten_node(path: str, m: nn.Flatten, shape: Shape, lead: int = 1) -> FlattenNode:
    """Flatten the whole sample; ``start_dim`` must be the first per-sample axis (``lead``)."""
    if m.start_dim != lead or m.end_dim != -1:
        raise UnsupportedModuleError(
            path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim} (need {lead}, -1: the whole sample)"
        )
    return FlattenNode(path, in_shape=tuple(shape), out_shape=(int(np.prod(shape)),))


def snncost_lif_node(path: str, m: sn.LIF, shape: Shape, lead: int = 1) -> LIFNode:
    return LIFNode(path, shape=tuple(shape), **m.graph_fields())


def relu_node(path: str, m: nn.ReLU, shape: Shape, lead: int = 1) -> ReLUNode:
    return ReLUNode(path, shape=tuple(shape))


def output_node(path: str, m: sn.OutputIntegrator, shape: Shape, lead: int = 1) -> OutputNode:
    return OutputNode(path, shape=tuple(shape), reduce="mean")


def encoder_node(path: str, m: sn.Encoder, shape: Shape, lead: int = 1) -> InputNode:
    if isinstance(m, sn.PoissonEncoder):
        return InputNode(path, shape=tuple(shape), encoding="poisson", timesteps=m.timesteps, gain=float(m.gain))
    return InputNode(path, shape=tuple(shape), encoding="direct", timesteps=m.timesteps)


# ---------------------------------------------------------------------- BatchNorm folding
@dataclass
class FoldedConvNode(ConvNode):
    """A :class:`ConvNode` whose weights/scale and bias have a BatchNorm2d folded in.

    ``folded_bn`` is the module path of the folded BatchNorm (shown by :meth:`describe`).
    """

    folded_bn: str = ""

    def describe(self) -> str:
        return super().describe() + f" +bn[{self.folded_bn}]"


@dataclass
class FoldedLinearNode(LinearNode):
    """A :class:`LinearNode` whose weights/scale and bias have a BatchNorm1d folded in."""

    folded_bn: str = ""

    def describe(self) -> str:
        text = super().describe()
        return (text + " " if text else "") + f"+bn[{self.folded_bn}]"


def check_batchnorm_eval(path: str, m: nn.Module) -> None:
    """Refuse a BatchNorm that normalises with batch statistics (nothing fixed to fold)."""
    if not getattr(m, "track_running_stats", False) or m.running_mean is None or m.running_var is None:
        raise UnsupportedModuleError(
            path, m, "track_running_stats=False: it normalises with batch statistics, nothing to fold"
        )
    if m.training:
        raise UnsupportedModuleError(
            path, m, "in training mode (normalises with batch statistics): call model.eval() to fold its running statistics"
        )


def fold_batchnorm(path: str, m: nn.Module, prev: tuple[str, nn.Module] | None, node: Node | None) -> Node:
    """``node`` (the conv/linear node of the module ``prev`` right before ``m``) with the
    eval-mode BatchNorm ``m`` folded in; raises :class:`UnsupportedModuleError` otherwise.

    The per-channel constants are computed as PyTorch's CPU inference kernel
    computes them, in float32: ``alpha = gamma / sqrt(var + eps)`` and
    ``shift = beta - mean * alpha``, so the BN maps ``y`` to ``y * alpha + shift``.
    A layer with a ``weight_scale`` (integer codes) gets ``scale * alpha``
    and keeps its codes; a float layer gets ``weight * alpha``. The bias
    becomes ``bias * alpha + shift`` (``shift`` without a bias), which is
    ``(bias - mean) * alpha + beta``. A BatchNorm followed by a neuron needs
    nothing more (tdBN's ``alpha * V_th`` is in its affine parameters).
    """
    if isinstance(m, nn.modules.lazy.LazyModuleMixin) or not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        raise UnsupportedModuleError(path, m, "only BatchNorm2d after a Conv2d or BatchNorm1d after a Linear is folded")
    want = nn.Conv2d if isinstance(m, nn.BatchNorm2d) else nn.Linear
    if prev is None or not isinstance(prev[1], want) or node is None or node.name != prev[0]:
        after = f"it follows {prev[0]!r} of type {type(prev[1]).__name__}" if prev is not None else "it comes first"
        raise UnsupportedModuleError(
            path, m, f"a {type(m).__name__} is folded only directly after a {want.__name__}; {after}"
        )
    check_batchnorm_eval(path, m)
    assert isinstance(node, (ConvNode, LinearNode))
    o = node.out_features
    if m.num_features != o:
        raise UnsupportedModuleError(path, m, f"num_features={m.num_features} but {prev[0]!r} has {o} outputs")
    f32 = np.float32
    mean = to_numpy(m.running_mean).reshape(-1)
    var = to_numpy(m.running_var).reshape(-1)
    gamma = to_numpy(m.weight).reshape(-1) if m.weight is not None else np.ones(o, f32)
    beta = to_numpy(m.bias).reshape(-1) if m.bias is not None else np.zeros(o, f32)
    with np.errstate(all="ignore"):
        invstd = f32(1.0) / np.sqrt(var + f32(m.eps))
        alpha = (invstd * gamma).astype(f32)
        shift = (beta - mean * alpha).astype(f32)
        bias = shift if node.bias is None else (np.asarray(node.bias, f32) * alpha + shift).astype(f32)
        if node.weight_scale is not None:
            scale = np.asarray(node.weight_scale, f32).reshape(-1)
            scale = np.full(o, scale[0], f32) if scale.size == 1 else scale
            weight, new_scale = node.weight, np.ascontiguousarray((scale * alpha).astype(f32))
        else:
            shape = (-1,) + (1,) * (node.weight.ndim - 1)
            weight, new_scale = np.ascontiguousarray((node.weight * alpha.reshape(shape)).astype(f32)), None
    if not (np.isfinite(alpha).all() and np.isfinite(bias).all() and np.isfinite(weight).all()):
        raise UnsupportedModuleError(path, m, "folding its running statistics gives non-finite weights or bias")
    kwargs = {f.name: getattr(node, f.name) for f in fields(node)}
    kwargs.update(weight=weight, bias=np.ascontiguousarray(bias), weight_scale=new_scale, folded_bn=path)
    return (FoldedConvNode if isinstance(node, ConvNode) else FoldedLinearNode)(**kwargs)


# ---------------------------------------------------------------------- SpikingJelly neurons
def _sj_common(path: str, m: nn.Module) -> dict[str, Any]:
    """Threshold and reset of a SpikingJelly ``BaseNode``: ``v_reset=None`` is the soft reset."""
    theta = m.v_threshold
    if isinstance(theta, torch.Tensor) or not isinstance(theta, (int, float)):
        raise UnsupportedModuleError(path, m, f"v_threshold of type {type(theta).__name__} (only one float per layer)")
    if not theta > 0:
        raise UnsupportedModuleError(path, m, f"v_threshold={theta} (must be > 0)")
    if getattr(m, "_neuron_precision", None) is not None:
        raise UnsupportedModuleError(path, m, "a reduced neuron precision (the replay runs the neuron in float32)")
    v_reset = m.v_reset
    if v_reset is None:
        return {"threshold": float(theta), "reset": "soft", "reset_value": 0.0}
    if isinstance(v_reset, torch.Tensor) or not isinstance(v_reset, (int, float)):
        raise UnsupportedModuleError(path, m, f"v_reset of type {type(v_reset).__name__} (only a float or None)")
    return {"threshold": float(theta), "reset": "hard", "reset_value": float(v_reset)}


def sj_if_node(path: str, m: nn.Module, shape: Shape, lead: int = 1) -> LIFNode:
    return LIFNode(path, shape=tuple(shape), charge="leak", leak=1.0, **_sj_common(path, m))


def sj_lif_node(path: str, m: nn.Module, shape: Shape, lead: int = 1) -> LIFNode:
    charge = "decay-input" if m.decay_input else "no-decay-input"
    return LIFNode(path, shape=tuple(shape), charge=charge, tau=float(m.tau), **_sj_common(path, m))


def sj_plif_node(path: str, m: nn.Module, shape: Shape, lead: int = 1) -> LIFNode:
    if m.w.numel() != 1:
        raise UnsupportedModuleError(path, m, f"w has {m.w.numel()} values (one decay per layer)")
    decay = float(np.float32(torch.sigmoid(m.w.detach().float()).item()))
    charge = "plif-decay-input" if m.decay_input else "plif-no-decay-input"
    return LIFNode(path, shape=tuple(shape), charge=charge, decay=decay, **_sj_common(path, m))


# ---------------------------------------------------------------------- the table
_SKIP = Rule("skip", maps_to="nothing (identity at inference)")
_CHAIN = Rule("chain", maps_to="its children, in order")
_FOLD = Rule("fold", maps_to="BatchNorm1d/2d folded into the linear/conv before it; other norms refused")


def _torch_and_snncost(table: RuleTable) -> None:
    entries: list[tuple[type, Rule]] = [
        (nn.Conv2d, Rule("node", conv_node, maps_to="conv (groups 1, dilation 1, zero padding)")),
        (nn.Linear, Rule("node", linear_node, maps_to="linear")),
        (nn.AvgPool2d, Rule("node", pool_node, maps_to="pool avg (square, stride = kernel)")),
        (nn.MaxPool2d, Rule("node", pool_node, maps_to="pool max (square, stride = kernel)")),
        (nn.AdaptiveAvgPool2d, Rule("node", adaptive_pool_node, maps_to="pool avg, global (output_size 1)")),
        (nn.Flatten, Rule("node", flatten_node, maps_to="flatten (the whole sample)")),
        (nn.ReLU, Rule("node", relu_node, maps_to="relu (ANN graphs only)")),
        (nn.modules.batchnorm._NormBase, _FOLD),  # BatchNorm1d/2d (others are refused when folded)
        (nn.Dropout, _SKIP), (nn.Dropout1d, _SKIP), (nn.Dropout2d, _SKIP), (nn.Dropout3d, _SKIP),
        (nn.AlphaDropout, _SKIP), (nn.Identity, _SKIP), (sn.TemporalDropout, _SKIP),
        (sn.LIF, Rule("node", snncost_lif_node, maps_to="lif, charge leak")),
        (sn.OutputIntegrator, Rule("node", output_node, maps_to="output (mean over T)")),
        (sn.DirectEncoder, Rule("input", encoder_node, subclasses=False, maps_to="input, direct")),
        (sn.PoissonEncoder, Rule("input", encoder_node, subclasses=False, maps_to="input, poisson")),
        (sn.SpikingSequential, _CHAIN),
    ]  # fmt: skip
    for cls, rule in entries:
        table.register(cls, rule)


def _spikingjelly(table: RuleTable) -> None:
    """SpikingJelly's entries, once its ``activation_based`` package has been imported by the user."""
    global _sj_registered
    if _sj_registered or "spikingjelly.activation_based.neuron" not in sys.modules:
        return
    from spikingjelly.activation_based import layer, neuron

    _sj_registered = True
    entries: list[tuple[type, Rule]] = [
        (neuron.IFNode, Rule("node", sj_if_node, subclasses=False, maps_to="lif, charge leak, leak 1")),
        (neuron.LIFNode, Rule("node", sj_lif_node, subclasses=False, maps_to="lif, charge (no-)decay-input, tau")),
        (neuron.ParametricLIFNode, Rule("node", sj_plif_node, subclasses=False,
                                        maps_to="lif, charge plif-(no-)decay-input, decay = sigmoid(w)")),
        (layer.SeqToANNContainer, _CHAIN),
        (layer.MultiStepContainer, _CHAIN),
        (layer.Dropout, _SKIP),
    ]  # fmt: skip
    for cls, rule in entries:
        table.register(cls, rule)


_sj_registered = False

#: The one table of framework modules; see the module docstring.
MODULES = RuleTable("module", on_lookup=_spikingjelly)
_torch_and_snncost(MODULES)


def module_rule(module: nn.Module) -> Rule | None:
    """The :class:`Rule` of ``module`` in :data:`MODULES`, or ``None`` (unsupported)."""
    return MODULES.lookup(module)


_PUBLIC = (  # where users import these classes from
    ("torch.nn.modules.", "torch.nn."),
    ("snncost.nn.", "snncost.nn."),
    ("spikingjelly.activation_based.neuron.", "spikingjelly neuron."),
    ("spikingjelly.activation_based.layer.", "spikingjelly layer."),
)


def _public_name(cls: type) -> str:
    for prefix, public in _PUBLIC:
        if cls.__module__.startswith(prefix):
            return public + cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def table_markdown() -> str:
    """The supported modules as a Markdown table (docs/simulator.md, "Models you can pass in")."""
    rows = ["| module | becomes |", "|---|---|"]
    for cls, rule in MODULES:
        rows.append(f"| `{_public_name(cls)}`{'' if rule.subclasses else ' (exact type)'} | {rule.maps_to} |")
    return "\n".join(rows)


__all__ = [
    "MODULES",
    "FoldedConvNode",
    "FoldedLinearNode",
    "Rule",
    "RuleTable",
    "UnsupportedModuleError",
    "fold_batchnorm",
    "module_rule",
    "table_markdown",
]
