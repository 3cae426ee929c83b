"""Build a :class:`LayerGraph` from a torch model (SNN or ANN form).

Batch normalisation is folded at inference: an eval-mode ``nn.BatchNorm2d``
directly after an ``nn.Conv2d`` (``nn.BatchNorm1d`` after an ``nn.Linear``)
gets no node of its own; its running statistics are folded into that
layer (see :func:`build_graph`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import snncost.nn as sn
from snncost.graph.layergraph import LayerGraph
from snncost.graph.mapping import (
    FoldedConvNode,
    FoldedLinearNode,
    UnsupportedModuleError,
    fold_batchnorm,
    module_rule,
)
from snncost.graph.nodes import InputNode, Node, OutputNode, ReLUNode, Shape

__all__ = ["FoldedConvNode", "FoldedLinearNode", "UnsupportedModuleError", "build_graph"]


_CONTAINERS = (nn.Sequential,)  # SpikingSequential and SpikingJelly's containers are subclasses


def _leaves(module: nn.Module, prefix: str = ""):
    """Yield ``(path, module)`` of the non-container modules in forward order."""
    if isinstance(module, _CONTAINERS):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, module


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
        rule = module_rule(m)
        if rule is None and isinstance(m, sn.Encoder):
            raise UnsupportedModuleError(path, m, "only DirectEncoder and PoissonEncoder")
        if rule is None or rule.role == "chain":
            raise UnsupportedModuleError(path, m)
        if rule.role == "input":
            if i != 0:
                raise UnsupportedModuleError(path, m, "an encoder must be the first module")
            nodes.append(rule.build(path, m, shape))
            continue
        if not nodes:
            name_in = "input" if "input" not in taken else "<input>"
            nodes.append(InputNode(name_in, shape=shape, encoding="analog", timesteps=1))
        if rule.role == "skip":
            skipped.append((path, type(m).__name__))
            continue
        if rule.role == "fold":
            prev = leaves[i - 1] if i > 0 else None
            nodes[-1] = fold_batchnorm(path, m, prev, nodes[-1])
            continue
        node: Node = rule.build(path, m, shape)
        if spiking and isinstance(node, ReLUNode):
            raise UnsupportedModuleError(path, m, "ReLU inside a spiking model")
        nodes.append(node)
        shape = tuple(node.out_shape)

    if not nodes:
        raise ValueError("the model has no modules")
    if not spiking and not isinstance(nodes[-1], OutputNode):
        out_name = "output" if "output" not in taken else "<output>"
        nodes.append(OutputNode(out_name, shape=shape, reduce="none"))
    label = name or type(model).__name__
    return LayerGraph(nodes, skipped=skipped, name=label)
