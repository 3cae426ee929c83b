"""Build a :class:`LayerGraph` from a torch model (SNN or ANN form).

Batch normalisation is folded at inference: an eval-mode ``nn.BatchNorm2d``
directly after an ``nn.Conv2d`` (``nn.BatchNorm1d`` after an ``nn.Linear``)
gets no node of its own; its running statistics are folded into that
layer (see :func:`build_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

import snncost.nn as sn
from snncost.graph.layergraph import LayerGraph
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

    def __init__(self, path: str, module: nn.Module, why: str = "") -> None:
        self.path = path
        self.module_type = type(module).__name__
        text = f"unsupported module {path or '<root>'!r} of type {self.module_type}"
        super().__init__(text + (f": {why}" if why else ""))


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


_SKIP = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, sn.TemporalDropout, nn.Identity)
_CONTAINERS = (nn.Sequential,)  # SpikingSequential is a subclass


def _leaves(module: nn.Module, prefix: str = ""):
    """Yield ``(path, module)`` of the non-container modules in forward order."""
    if isinstance(module, _CONTAINERS):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, module


def _pair(value, path: str, module: nn.Module, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise UnsupportedModuleError(path, module, f"{what}={value!r}")


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    return np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())


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
    weight = _np(module.weight)
    bits = getattr(module, "weight_bits", None)
    codes = getattr(module, "weight_codes", None)
    scale = getattr(module, "weight_scale", None)
    if bits is None or (codes is None and scale is None):
        return weight, 32, None, "float"
    if codes is None:
        return weight, int(bits), None, "int"
    codes = _np(torch.as_tensor(codes))
    if scale is None:
        scale_arr = np.ones(codes.shape[0], np.float32)
    else:
        scale_arr = np.asarray(_np(torch.as_tensor(scale)), np.float32).reshape(-1)
        if scale_arr.size == 1:
            scale_arr = np.full(codes.shape[0], scale_arr[0], np.float32)
        elif scale_arr.size != codes.shape[0]:
            raise ValueError(f"weight_scale has {scale_arr.size} values for {codes.shape[0]} output channels")
    return codes, int(bits), np.ascontiguousarray(scale_arr), "int"


def _conv(path: str, m: nn.Conv2d, shape: Shape) -> ConvNode:
    if len(shape) != 3:
        raise UnsupportedModuleError(path, m, f"expects a (C, H, W) input, gets shape {shape}")
    if m.groups != 1:
        raise UnsupportedModuleError(path, m, f"groups={m.groups} (only 1)")
    if _pair(m.dilation, path, m, "dilation") != (1, 1):
        raise UnsupportedModuleError(path, m, f"dilation={m.dilation} (only 1)")
    if m.padding_mode != "zeros":
        raise UnsupportedModuleError(path, m, f"padding_mode={m.padding_mode!r} (only 'zeros')")
    c, h, w = shape
    if c != m.in_channels:
        raise UnsupportedModuleError(path, m, f"in_channels={m.in_channels} but the input has {c} channels")
    kh, kw = m.kernel_size
    sh, sw = _pair(m.stride, path, m, "stride")
    if isinstance(m.padding, str):
        if m.padding == "valid":
            ph = pw = 0
        elif m.padding == "same" and kh % 2 == 1 and kw % 2 == 1 and (sh, sw) == (1, 1):
            ph, pw = kh // 2, kw // 2
        else:
            raise UnsupportedModuleError(path, m, f"padding={m.padding!r} with kernel {m.kernel_size}")
    else:
        ph, pw = _pair(m.padding, path, m, "padding")
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise UnsupportedModuleError(path, m, f"a {h}x{w} input gives an empty output")
    weight, bits, scale, fmt = _quant(m)
    return ConvNode(
        name=path,
        weight=weight,
        bias=_np(m.bias),
        in_shape=tuple(shape),
        out_shape=(m.out_channels, ho, wo),
        weight_bits=bits,
        weight_scale=scale,
        number_format=fmt,
        stride=(sh, sw),
        padding=(ph, pw),
    )


def _linear(path: str, m: nn.Linear, shape: Shape) -> LinearNode:
    if len(shape) != 1 or shape[0] != m.in_features:
        raise UnsupportedModuleError(path, m, f"in_features={m.in_features} but gets shape {shape}")
    weight, bits, scale, fmt = _quant(m)
    return LinearNode(
        name=path,
        weight=weight,
        bias=_np(m.bias),
        in_shape=tuple(shape),
        out_shape=(m.out_features,),
        weight_bits=bits,
        weight_scale=scale,
        number_format=fmt,
    )


def _pool(path: str, m: nn.Module, shape: Shape) -> PoolNode:
    kind = "avg" if isinstance(m, nn.AvgPool2d) else "max"
    k = _pair(m.kernel_size, path, m, "kernel_size")
    s = _pair(m.stride if m.stride is not None else m.kernel_size, path, m, "stride")
    if k[0] != k[1] or s != k:
        raise UnsupportedModuleError(path, m, f"kernel {m.kernel_size} and stride {m.stride} (need square, kernel == stride)")
    if _pair(m.padding, path, m, "padding") != (0, 0) or m.ceil_mode:
        raise UnsupportedModuleError(path, m, "padding or ceil_mode (need padding 0, floor)")
    if kind == "max" and (_pair(m.dilation, path, m, "dilation") != (1, 1) or m.return_indices):
        raise UnsupportedModuleError(path, m, "dilation or return_indices")
    if kind == "avg" and m.divisor_override is not None:
        raise UnsupportedModuleError(path, m, "divisor_override")
    if len(shape) != 3:
        raise UnsupportedModuleError(path, m, f"expects a (C, H, W) input, gets shape {shape}")
    c, h, w = shape
    kk = k[0]
    if h < kk or w < kk:
        raise UnsupportedModuleError(path, m, f"kernel {kk} larger than the {h}x{w} input")
    return PoolNode(name=path, kind=kind, kernel=kk, in_shape=tuple(shape), out_shape=(c, h // kk, w // kk))


def _fold_batchnorm(path: str, m: nn.Module, prev: tuple[str, nn.Module] | None, node: Node | None) -> Node:
    """``node`` (the conv/linear node of the module ``prev`` right before ``m``) with the
    eval-mode BatchNorm ``m`` folded in; raises :class:`UnsupportedModuleError` otherwise.

    The per-channel constants are computed as PyTorch's CPU inference kernel
    computes them, in float32: ``alpha = gamma / sqrt(var + eps)`` and
    ``shift = beta - mean * alpha``, so the BN maps ``y`` to ``y * alpha + shift``.
    A layer with a ``weight_scale`` (integer codes) gets ``scale * alpha``
    and keeps its codes; a float layer gets ``weight * alpha``. The bias
    becomes ``bias * alpha + shift`` (``shift`` without a bias), which is
    ``(bias - mean) * alpha + beta``.
    """
    if isinstance(m, nn.modules.lazy.LazyModuleMixin) or not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        raise UnsupportedModuleError(path, m, "only BatchNorm2d after a Conv2d or BatchNorm1d after a Linear is folded")
    want = nn.Conv2d if isinstance(m, nn.BatchNorm2d) else nn.Linear
    if prev is None or not isinstance(prev[1], want) or node is None or node.name != prev[0]:
        after = f"it follows {prev[0]!r} of type {type(prev[1]).__name__}" if prev is not None else "it comes first"
        raise UnsupportedModuleError(
            path, m, f"a {type(m).__name__} is folded only directly after a {want.__name__}; {after}"
        )
    if not m.track_running_stats or m.running_mean is None or m.running_var is None:
        raise UnsupportedModuleError(
            path, m, "track_running_stats=False: it normalises with batch statistics, nothing to fold"
        )
    if m.training:
        raise UnsupportedModuleError(
            path, m, "in training mode (normalises with batch statistics): call model.eval() to fold its running statistics"
        )
    assert isinstance(node, (ConvNode, LinearNode))
    o = node.out_features
    if m.num_features != o:
        raise UnsupportedModuleError(path, m, f"num_features={m.num_features} but {prev[0]!r} has {o} outputs")
    f32 = np.float32
    mean = _np(m.running_mean).reshape(-1)
    var = _np(m.running_var).reshape(-1)
    gamma = _np(m.weight).reshape(-1) if m.weight is not None else np.ones(o, f32)
    beta = _np(m.bias).reshape(-1) if m.bias is not None else np.zeros(o, f32)
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


def _infer_input_shape(model: nn.Module, leaves) -> Shape:
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    for path, m in leaves:
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, nn.Conv2d):
            raise ValueError(
                f"cannot infer the input size: the first weight layer {path!r} is a conv; "
                f"pass input_shape=({m.in_channels}, H, W)"
            )
    raise ValueError("cannot infer the input shape: pass input_shape=(C, H, W)")


def build_graph(
    model: nn.Module,
    input_shape: tuple[int, ...] | torch.Tensor | np.ndarray | None = None,
    name: str = "",
) -> LayerGraph:
    """Walk ``model`` (nested ``Sequential``/``SpikingSequential``) into a :class:`LayerGraph`.

    ``input_shape`` is the per-sample input shape ``(C, H, W)`` (or ``(F,)``);
    a sample batch ``[B, ...]`` may be passed instead. When omitted it is taken
    from ``model.input_shape`` (set by :func:`snncost.models.build_snn`/``build_ann``)
    or, for an MLP, from the first linear layer. Raises
    :class:`UnsupportedModuleError` naming the path and type of any module it
    cannot represent.
    """
    leaves = list(_leaves(model))
    if isinstance(input_shape, (torch.Tensor, np.ndarray)):
        input_shape = tuple(int(s) for s in input_shape.shape[1:])
    shape: Shape = tuple(int(s) for s in input_shape) if input_shape is not None else _infer_input_shape(model, leaves)

    spiking = any(isinstance(m, sn.LIF) for _, m in leaves)
    encoders = [(p, m) for p, m in leaves if isinstance(m, sn.Encoder)]
    nodes: list[Node] = []
    skipped: list[tuple[str, str]] = []
    if spiking:
        if not encoders:
            raise ValueError("a spiking model needs an encoder (DirectEncoder or PoissonEncoder) to fix T")
        if leaves[0][1] is not encoders[0][1]:
            path, m = leaves[0]
            raise UnsupportedModuleError(path, m, "a spiking model must start with its encoder")
    taken = {p for p, _ in leaves}

    for i, (path, m) in enumerate(leaves):
        if isinstance(m, sn.Encoder):
            if i != 0:
                raise UnsupportedModuleError(path, m, "an encoder must be the first module")
            if isinstance(m, sn.PoissonEncoder):
                nodes.append(InputNode(path, shape=shape, encoding="poisson", timesteps=m.timesteps, gain=float(m.gain)))
            elif isinstance(m, sn.DirectEncoder):
                nodes.append(InputNode(path, shape=shape, encoding="direct", timesteps=m.timesteps))
            else:
                raise UnsupportedModuleError(path, m, "only DirectEncoder and PoissonEncoder")
            continue
        if not nodes:
            name_in = "input" if "input" not in taken else "<input>"
            nodes.append(InputNode(name_in, shape=shape, encoding="analog", timesteps=1))
        if isinstance(m, _SKIP):
            skipped.append((path, type(m).__name__))
            continue
        if isinstance(m, nn.modules.batchnorm._NormBase):
            prev = leaves[i - 1] if i > 0 else None
            nodes[-1] = _fold_batchnorm(path, m, prev, nodes[-1])
            continue
        if isinstance(m, nn.Conv2d):
            node: Node = _conv(path, m, shape)
        elif isinstance(m, nn.Linear):
            node = _linear(path, m, shape)
        elif isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
            node = _pool(path, m, shape)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedModuleError(path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim} (need 1, -1)")
            node = FlattenNode(path, in_shape=shape, out_shape=(int(np.prod(shape)),))
        elif isinstance(m, sn.LIF):  # every neuron kind (IF, TauLIF, ParametricLIF) is a LIF
            node = LIFNode(path, shape=shape, **m.graph_fields())
        elif isinstance(m, nn.ReLU):
            if spiking:
                raise UnsupportedModuleError(path, m, "ReLU inside a spiking model")
            node = ReLUNode(path, shape=shape)
        elif isinstance(m, sn.OutputIntegrator):
            node = OutputNode(path, shape=shape, reduce="mean")
        else:
            raise UnsupportedModuleError(path, m)
        nodes.append(node)
        shape = tuple(node.out_shape)

    if not nodes:
        raise ValueError("the model has no modules")
    if not spiking and not isinstance(nodes[-1], OutputNode):
        out_name = "output" if "output" not in taken else "<output>"
        nodes.append(OutputNode(out_name, shape=shape, reduce="none"))
    label = name or type(model).__name__
    return LayerGraph(nodes, skipped=skipped, name=label)
