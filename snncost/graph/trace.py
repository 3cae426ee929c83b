"""Trace a torch model (plain ``nn.Module`` or SpikingJelly multi-step) into a :class:`LayerGraph`.

:func:`trace_graph` runs ``torch.fx`` symbolic tracing with a tracer whose
leaves are the modules of the one mapping table
(:data:`snncost.graph.mapping.MODULES`), then walks the fx graph:

- a module call becomes its table entry's node (BatchNorm folded into the
  conv/linear before it, dropout skipped; a container of the table, e.g.
  :class:`~snncost.nn.SpikingSequential` or SpikingJelly's
  ``SeqToANNContainer``/``MultiStepContainer``, maps its children as a chain);
- the functions and tensor methods of :data:`FUNCTIONS` become merges and
  reshapes: ``a + b`` an ``add`` merge, ``a * b`` of two spike maps ``and``,
  ``(1 - a) * b`` ``iand``, ``torch.cat`` along channels ``concat``,
  ``flatten``/``view``/``reshape`` of the whole sample a flatten,
  ``mean`` over ``H, W`` or ``adaptive_avg_pool2d(x, 1)`` a global average
  pool, ``mean`` over the time axis the read-out.

Anything else is refused with one line naming the module (or the function
and the module that calls it) and its type.

Time axis: snncost modules after an encoder, and SpikingJelly multi-step
models, take ``[T, B, ...]``. A model with an encoder
(:class:`~snncost.nn.DirectEncoder`/:class:`~snncost.nn.PoissonEncoder`)
takes the static batch ``[B, ...]``; a model without one is fed the static
image repeated over ``T`` (direct encoding: the first weight layer does
MACs), so ``timesteps`` is required. Shapes come from the node builders and
are checked against one real forward of a small zero batch
(``torch.fx.passes.shape_prop.ShapeProp``): a module that mixes the time or
batch axes into the sample is refused.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

import snncost.nn as sn
from snncost.graph.layergraph import LayerGraph
from snncost.graph.mapping import (
    UnsupportedModuleError,
    check_batchnorm_eval,
    fold_batchnorm,
    global_pool_node,
    module_rule,
)
from snncost.graph.nodes import (
    FlattenNode,
    InputNode,
    LIFNode,
    MergeNode,
    Node,
    OutputNode,
    ReLUNode,
    Shape,
    WeightNode,
)

__all__ = [
    "FUNCTIONS",
    "UnsupportedOperationError",
    "find_encoder",
    "graph_of",
    "has_encoder",
    "is_chain_model",
    "is_spiking_model",
    "static_input",
    "trace_graph",
]


class UnsupportedOperationError(ValueError):
    """A function or tensor method in a traced forward that has no LayerGraph form."""

    def __init__(self, op: str, scope: str, why: str) -> None:
        self.op = op
        self.scope = scope
        where = f" in module {scope!r}" if scope else ""
        super().__init__(f"unsupported operation {op}{where}: {why}")


@dataclass(frozen=True)
class _Value:
    """A tensor of the traced forward: the node that produced it and its per-sample shape.

    ``negated``: the value is ``1 - <node>`` (only a multiplication may use it: IAND);
    ``raw``: the model's input before its encoder (``[B, ...]``).
    """

    name: str
    shape: Shape
    negated: bool = False
    raw: bool = False


class _Builder:
    """The nodes and edges found so far, plus what BatchNorm folding needs."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.modules: dict[str, nn.Module] = {}
        self.skipped: list[tuple[str, str]] = []

    def add(self, node: Node, inputs: tuple[str, ...], module: nn.Module | None = None) -> _Value:
        if node.name in self.nodes:
            raise ValueError(f"the module {node.name!r} is called twice; snncost maps each module to one node")
        self.nodes[node.name] = node
        self.edges += [(src, node.name) for src in inputs]
        if module is not None:
            self.modules[node.name] = module
        return _Value(node.name, tuple(node.out_shape))


# ---------------------------------------------------------------------- the fx tracer
class _Tracer(fx.Tracer):
    """Stops at every module the mapping table knows, at torch's built-in layers and at any
    SpikingJelly layer or neuron (its own or a subclass), so those are mapped or refused by name
    and type; the user's own modules and SpikingJelly's model-zoo blocks are traced into."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            module_rule(m) is not None
            or any(_spikingjelly_layer(c) for c in type(m).__mro__)
            or super().is_leaf_module(m, module_qualified_name)
        )


def _spikingjelly_layer(cls: type) -> bool:
    """A SpikingJelly layer or neuron class (mapped or refused by name); the networks of its model
    zoo (``spikingjelly.activation_based.model``, e.g. ``sew_resnet``'s blocks) are traced into."""
    return cls.__module__.startswith("spikingjelly.") and not cls.__module__.startswith(
        "spikingjelly.activation_based.model"
    )


def _scope(node: fx.Node) -> str:
    """The module path whose forward made ``node`` (``''`` for the model's own forward)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1]
    return str(path[0] if isinstance(path, tuple) else path)


def _op_name(node: fx.Node) -> str:
    t = node.target
    return f"Tensor.{t}" if node.op == "call_method" else getattr(t, "__name__", str(t))


def _refuse_op(node: fx.Node, why: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(_op_name(node), _scope(node), why)


# ---------------------------------------------------------------------- module calls
@dataclass
class _Walk:
    """State of one trace: the builder, the fx values seen so far, whether the model spikes."""

    builder: _Builder
    values: dict[fx.Node, _Value | None]
    spiking_model: bool

    def value(self, arg: Any, node: fx.Node) -> _Value:
        if not isinstance(arg, fx.Node) or self.values.get(arg) is None:
            raise _refuse_op(node, f"an argument {arg!r} is not a tensor of the network")
        return self.values[arg]

    def apply_module(self, path: str, m: nn.Module, v: _Value, lead: int, sole_user: bool, within: str = "") -> _Value:
        """Map one module call on ``v``; ``lead`` = batch/time axes the module sees in front of a sample."""
        rule = module_rule(m)
        if rule is None:
            raise UnsupportedModuleError(path, m)
        if rule.role == "input":
            if not v.raw:
                raise UnsupportedModuleError(path, m, "an encoder must be the first module of the forward")
            return self.builder.add(rule.build(path, m, v.shape), ())
        if rule.role == "chain":
            return self.apply_chain(path, m, v)
        if v.raw:
            raise UnsupportedModuleError(path, m, "the model's input goes to it before the encoder")
        if v.negated:
            raise UnsupportedModuleError(path, m, "it receives 1 - spikes (only a multiplication can use that)")
        if rule.role == "skip":
            self.builder.skipped.append((path, type(m).__name__))
            return v
        if rule.role == "fold":
            producer = self.builder.nodes.get(v.name)
            prev = (v.name, self.builder.modules[v.name]) if v.name in self.builder.modules else None
            if producer is not None and not sole_user:
                raise UnsupportedModuleError(
                    path, m, f"{v.name!r} also feeds other layers, so the BatchNorm cannot be folded into it"
                )
            node = fold_batchnorm(path, m, prev, producer)
            self.builder.nodes[v.name] = node
            return _Value(v.name, v.shape)
        if getattr(m, "step_mode", "m") != "m" and within != "multistep" and _is_neuron(m):
            raise UnsupportedModuleError(
                path, m, "step_mode='s' on a [T, B, ...] input: call functional.set_step_mode(model, 'm')"
            )
        if within == "folded" and _is_temporal(m):
            raise UnsupportedModuleError(path, m, "a neuron inside a container that folds time into the batch")
        node = rule.build(path, m, v.shape, lead)
        if isinstance(node, ReLUNode) and self.spiking_model:
            raise UnsupportedModuleError(path, m, "ReLU inside a spiking model")
        return self.builder.add(node, (v.name,), m)

    def apply_chain(self, path: str, container: nn.Module, v: _Value) -> _Value:
        """Children of a chain container, in order; the children see a folded or a per-step tensor."""
        within = "multistep" if type(container).__name__ == "MultiStepContainer" else "folded"
        if isinstance(container, sn.SpikingSequential):
            within = "spiking"
        for name, child in container.named_children():
            child_path = f"{path}.{name}" if path else name
            temporal = within == "spiking" and _is_temporal(child)
            v = self.apply_module(child_path, child, v, 2 if temporal else 1, True, within)
        return v


def _is_neuron(m: nn.Module) -> bool:
    """snncost's LIF or a SpikingJelly neuron (``BaseNode``)."""
    if isinstance(m, sn.LIF):
        return True
    return any(c.__name__ == "BaseNode" and "spikingjelly" in c.__module__ for c in type(m).__mro__)


def _is_temporal(m: nn.Module) -> bool:
    """Consumes ``[T, B, ...]`` itself: a neuron or an snncost temporal layer (read-out, dropout)."""
    return _is_neuron(m) or isinstance(m, sn.TemporalModule)


def is_spiking_model(model: nn.Module) -> bool:
    """The model has a spiking neuron (snncost or SpikingJelly)."""
    return any(_is_neuron(m) for m in model.modules())


# ---------------------------------------------------------------------- functions and methods
def _observed(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def _per_sample(node: fx.Node) -> Shape:
    """The shape ``node`` produced in the shape-propagation run, without ``[T, B]``."""
    shape = _observed(node)
    if shape is None or len(shape) < 2:
        raise _refuse_op(node, f"its output {shape} is not a [T, B, ...] tensor")
    return shape[2:]


def _merge(walk: _Walk, node: fx.Node, op: str, inputs: list[_Value]) -> _Value:
    shapes = {v.shape for v in inputs}
    if op != "concat" and len(shapes) != 1:
        raise _refuse_op(node, f"operands of shapes {[v.shape for v in inputs]} (broadcasting has no LayerGraph form)")
    if op == "concat":
        rest = {v.shape[1:] for v in inputs}
        if len(rest) != 1 or any(len(v.shape) < 1 for v in inputs):
            raise _refuse_op(node, f"concatenates shapes {[v.shape for v in inputs]} along channels")
        shape: Shape = (sum(v.shape[0] for v in inputs), *inputs[0].shape[1:])
    else:
        shape = inputs[0].shape
    name = _node_name(walk, node)
    return walk.builder.add(MergeNode(name, op=op, inputs=tuple(v.name for v in inputs), shape=shape),
                            tuple(v.name for v in inputs))  # fmt: skip


def _node_name(walk: _Walk, node: fx.Node) -> str:
    scope = _scope(node)
    name = f"{scope}.{node.name}" if scope else node.name
    return name if name not in walk.builder.nodes else f"{name}_{len(walk.builder.nodes)}"


def _tensor_args(walk: _Walk, node: fx.Node) -> list[_Value]:
    args = [a for a in node.args]
    if len(args) != 2 or not all(isinstance(a, fx.Node) for a in args) or node.kwargs.get("alpha", 1) != 1:
        raise _refuse_op(node, f"arguments {node.args} (two tensors of the network, no scalars)")
    return [walk.value(a, node) for a in args]


def _add(walk: _Walk, node: fx.Node) -> _Value:
    a, b = _tensor_args(walk, node)
    if a.negated or b.negated:
        raise _refuse_op(node, "adds 1 - spikes")
    return _merge(walk, node, "add", [a, b])


def _sub(walk: _Walk, node: fx.Node) -> _Value:
    """``1 - a``: remembered as "not a" for the multiplication that makes it an IAND."""
    one, a = (node.args + (None,))[:2]
    if not (isinstance(one, (int, float)) and one == 1 and isinstance(a, fx.Node)) or node.kwargs:
        raise _refuse_op(node, "only 1 - spikes (the NOT of an IAND) is supported")
    v = walk.value(a, node)
    if not _is_spikes(walk, v):
        raise _refuse_op(node, f"1 - {v.name!r}, which is not a spike map")
    return _Value(v.name, v.shape, negated=True)


def _is_spikes(walk: _Walk, v: _Value) -> bool:
    node = walk.builder.nodes.get(v.name)
    return isinstance(node, LIFNode) or (isinstance(node, MergeNode) and node.op in ("and", "iand"))


def _mul(walk: _Walk, node: fx.Node) -> _Value:
    a, b = _tensor_args(walk, node)
    if a.negated and b.negated:
        raise _refuse_op(node, "(1 - a) * (1 - b) has no LayerGraph form")
    if a.negated or b.negated:
        neg, other = (a, b) if a.negated else (b, a)
        if not _is_spikes(walk, other):
            raise _refuse_op(node, f"(1 - {neg.name!r}) * {other.name!r}: IAND needs two spike maps")
        return _merge(walk, node, "iand", [_Value(neg.name, neg.shape), other])
    if not (_is_spikes(walk, a) and _is_spikes(walk, b)):
        raise _refuse_op(node, f"{a.name!r} * {b.name!r}: only spike maps multiply (AND)")
    return _merge(walk, node, "and", [a, b])


def _cat(walk: _Walk, node: fx.Node) -> _Value:
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise _refuse_op(node, "needs a list of tensors")
    values = [walk.value(t, node) for t in tensors]
    ndim = 2 + len(values[0].shape)
    if not isinstance(dim, int) or dim % ndim != 2:
        raise _refuse_op(node, f"dim={dim} on [T, B, C, ...] tensors (only the channel axis, 2)")
    if any(v.negated for v in values):
        raise _refuse_op(node, "concatenates 1 - spikes")
    return _merge(walk, node, "concat", values)


def _reshape(walk: _Walk, node: fx.Node) -> _Value:
    """``flatten``/``view``/``reshape``: the whole sample to a vector, or nothing at all."""
    v = walk.value(node.args[0], node)
    out = _per_sample(node)
    src = node.args[0]
    if _observed(src)[:2] != _observed(node)[:2]:
        raise _refuse_op(node, f"changes the [T, B] axes {_observed(src)[:2]} -> {_observed(node)[:2]}")
    if out == v.shape:
        return v
    if out != (math.prod(v.shape),):
        raise _refuse_op(node, f"reshapes a sample {v.shape} -> {out} (only flattening the whole sample)")
    return walk.builder.add(FlattenNode(_node_name(walk, node), in_shape=v.shape, out_shape=out), (v.name,))


def _identity(walk: _Walk, node: fx.Node) -> _Value:
    return walk.value(node.args[0], node)


def _global_pool(walk: _Walk, node: fx.Node, v: _Value) -> _Value:
    """Average over ``H, W``: a pool node, then a flatten when the result has no ``1 x 1`` axes."""
    name = _node_name(walk, node)
    pooled = walk.builder.add(global_pool_node(name, node, v.shape), (v.name,))
    if _per_sample(node) == pooled.shape:
        return pooled
    flat = FlattenNode(f"{name}.flatten", in_shape=pooled.shape, out_shape=(pooled.shape[0],))
    return walk.builder.add(flat, (pooled.name,))


def _mean(walk: _Walk, node: fx.Node) -> _Value:
    """``mean`` over the time axis (the read-out) or over ``H, W`` (a global average pool)."""
    v = walk.value(node.args[0], node)
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    dims = sorted(d % (2 + len(v.shape)) for d in (dim if isinstance(dim, (list, tuple)) else [dim])) if dim is not None else None
    if dims == [0]:
        name = _node_name(walk, node)
        return walk.builder.add(OutputNode(name, shape=v.shape, reduce="mean"), (v.name,))
    if dims == [3, 4] and len(v.shape) == 3:
        return _global_pool(walk, node, v)
    raise _refuse_op(node, f"mean over dim={dim} (only 0, the time axis: the read-out; or the H, W axes)")


def _adaptive_avg_pool(walk: _Walk, node: fx.Node) -> _Value:
    v = walk.value(node.args[0], node)
    size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
    if size not in (1, (1, 1), [1, 1]):
        raise _refuse_op(node, f"output_size={size} (only 1: a global average)")
    return _global_pool(walk, node, v)


#: Functions and tensor methods (by name) the tracer maps; each handler returns the new value.
FUNCTIONS: dict[Any, Callable[[_Walk, fx.Node], _Value]] = {
    operator.add: _add, operator.iadd: _add, torch.add: _add, "add": _add, "add_": _add,
    operator.sub: _sub, torch.sub: _sub, torch.rsub: _sub,
    operator.mul: _mul, operator.imul: _mul, torch.mul: _mul, "mul": _mul, "mul_": _mul,
    operator.and_: _mul, torch.logical_and: _mul,
    torch.cat: _cat, torch.concat: _cat,
    torch.flatten: _reshape, "flatten": _reshape, "view": _reshape, "reshape": _reshape, torch.reshape: _reshape,
    torch.mean: _mean, "mean": _mean,
    F.adaptive_avg_pool2d: _adaptive_avg_pool,
    "contiguous": _identity,
}  # fmt: skip


def _rsub_args(node: fx.Node) -> fx.Node:
    """``torch.rsub(a, 1)`` is ``1 - a``: put it in ``(1, a)`` order."""
    if node.target is torch.rsub:
        node.args = (node.args[1], node.args[0])
    return node


# ---------------------------------------------------------------------- entry points
def has_encoder(model: nn.Module) -> bool:
    return any(isinstance(m, sn.Encoder) for m in model.modules())


def find_encoder(model: nn.Module) -> sn.Encoder | None:
    """The model's first :class:`~snncost.nn.Encoder`, or ``None`` (it is fed the image over ``T``)."""
    return next((m for m in model.modules() if isinstance(m, sn.Encoder)), None)


def static_input(
    data: Any, input_shape: tuple[int, ...] | None, timesteps: int | None, encoder: bool
) -> tuple[Any, tuple[int, ...] | None, int | None]:
    """``(data, input_shape, timesteps)`` for a traced model, the data as a static batch ``[B, ...]``.

    A model without an encoder takes ``[T, B, ...]``: data of that rank (one
    more axis than ``input_shape``) must be the same image at every step; it
    becomes its first step and fixes ``T``. Input that changes over ``T``
    (event frames) is refused: the LayerGraph's input is direct (the image
    repeated) or Poisson-coded by the model's encoder. Without
    ``input_shape`` the data are read as a static batch: ``[B, *input_shape]``.
    """
    pair = isinstance(data, (tuple, list)) and len(data) == 2
    x = data[0] if pair else data
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        return data, input_shape, timesteps
    x = torch.as_tensor(x)
    if input_shape is None:
        return data, tuple(int(s) for s in x.shape[1:]), timesteps
    if encoder or x.dim() != len(input_shape) + 2:
        return data, input_shape, timesteps
    steps = int(x.shape[0])
    if timesteps is not None and int(timesteps) != steps:
        raise ValueError(f"data has shape {tuple(x.shape)}: T = {steps} steps, but timesteps={timesteps}")
    if not torch.equal(x, x[:1].expand_as(x)):
        raise ValueError(
            f"data [T, B, ...] = {tuple(x.shape)} changes over T (event input): snncost replays a "
            "static image repeated over T (direct encoding) or the model's own encoder; pass [B, ...]"
        )
    x0 = x[0]
    return ((x0, data[1]) if pair else x0), input_shape, steps


def is_chain_model(model: nn.Module) -> bool:
    """An ``nn.Sequential`` chain :func:`~snncost.graph.build_graph` walks (no tracing needed):
    one with an encoder, or one without neurons (an ANN, refused by ``evaluate``), made only of
    modules the mapping table knows. A Sequential of neurons without an encoder (SpikingJelly) is
    traced, fed the image over ``T``, and so is one holding residual blocks (the model zoo's ResNets)."""
    return (
        isinstance(model, nn.Sequential)
        and (has_encoder(model) or not is_spiking_model(model))
        and not any(_traced_into(m) for m in model.modules())  # residual blocks are traced
    )


def _reset_states(model: nn.Module) -> None:
    """Forget SpikingJelly neuron state (membranes from an earlier batch of another size)."""
    for m in model.modules():
        if any("spikingjelly" in c.__module__ and c.__name__ == "MemoryModule" for c in type(m).__mro__):
            m.reset()


class _InOrder(nn.Module):
    """A :class:`~snncost.nn.SpikingSequential` that holds residual blocks, as torch.fx can trace it.

    ``SpikingSequential.forward`` branches on the input's strides (to reuse a
    time-constant input), which symbolic tracing cannot follow, so the tracer
    would stop at it and map its children as a chain. When a child is a block
    to be traced into (SEW or ResNet-19 blocks of :mod:`snncost.models.resnet`),
    the container is replaced, for tracing only, by this module: the same
    children under the same names (so module paths are unchanged), called in
    order. Every child must take ``[T, B, ...]`` itself (a neuron, a block, a
    nested spiking container); a time-folded layer placed directly beside
    residual blocks is refused, naming it.
    """

    def __init__(self, children: dict[str, nn.Module], path: str) -> None:
        super().__init__()
        for name, child in children.items():
            child_path = f"{path}.{name}" if path else name
            if not (_is_temporal(child) or isinstance(child, (sn.Encoder, sn.SpikingSequential, _InOrder))):
                raise UnsupportedModuleError(
                    child_path, child,
                    "a time-folded layer directly beside residual blocks in a SpikingSequential: wrap it "
                    "in a SpikingSequential of its own",
                )  # fmt: skip
            self.add_module(name, child)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = child(x)
        return x


def _traced_into(m: nn.Module) -> bool:
    """``m`` is neither mapped by the table nor a leaf: the tracer follows its forward."""
    return module_rule(m) is None and not _Tracer().is_leaf_module(m, "")


def _in_order(module: nn.Module, path: str = "") -> nn.Module:
    """``module`` with every SpikingSequential that holds a block to trace into replaced by
    :class:`_InOrder` (a new container tree sharing the same layers; the model is not changed)."""
    if not isinstance(module, sn.SpikingSequential):
        return module
    children = {name: _in_order(child, f"{path}.{name}" if path else name) for name, child in module.named_children()}
    if not any(isinstance(c, _InOrder) or _traced_into(c) for c in children.values()):
        return module
    return _InOrder(children, path)


def _fx_graph(model: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    model = _in_order(model)
    try:
        graph = tracer.trace(model)
    except Exception as exc:
        stack = getattr(tracer, "module_stack", None) or {}
        inner = list(stack.items())[-1] if stack else None
        where = ""
        if inner is not None:
            path, kind = inner[1] if isinstance(inner[1], tuple) else (inner[0], inner[1])
            where = f" in module {path!r} of type {getattr(kind, '__name__', kind)}"
        raise ValueError(
            f"cannot trace {type(model).__name__} with torch.fx{where}: {type(exc).__name__}: {exc}"
        ) from exc
    return fx.GraphModule(model, graph)


def _check_modules(gm: fx.GraphModule) -> None:
    """Refuse, before running anything, a module call the table does not know, a BatchNorm that
    normalises with batch statistics, and a neuron setting the LayerGraph cannot hold."""
    def check(path: str, m: nn.Module) -> None:
        rule = module_rule(m)
        if rule is None:
            raise UnsupportedModuleError(path, m)
        if rule.role == "chain":
            for name, child in m.named_children():
                check(f"{path}.{name}", child)
        elif rule.role == "fold":
            check_batchnorm_eval(path, m)
        elif rule.role == "node" and _is_neuron(m):
            rule.build(path, m, (1,), 2)  # a neuron's settings do not depend on the shape

    for node in gm.graph.nodes:
        if node.op == "call_module":
            check(str(node.target), gm.get_submodule(str(node.target)))


class _ShapeProp(ShapeProp):
    """ShapeProp whose errors name the module (or operation) that failed, in one line."""

    def run_node(self, n: fx.Node) -> Any:
        try:
            return super().run_node(n)
        except Exception as exc:
            what = f"module {n.target!r} of type {type(self.module.get_submodule(str(n.target))).__name__}" \
                if n.op == "call_module" else f"operation {_op_name(n)}"  # fmt: skip
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"running the model failed at {what}: {first}") from exc


def _propagate_shapes(gm: fx.GraphModule, model: nn.Module, example: torch.Tensor) -> None:
    _reset_states(model)
    try:
        with torch.no_grad():
            _ShapeProp(gm).propagate(example)
    finally:
        _reset_states(model)


def trace_graph(
    model: nn.Module,
    input_shape: tuple[int, ...],
    timesteps: int | None = None,
    name: str = "",
) -> LayerGraph:
    """Trace ``model`` into a :class:`LayerGraph` (see the module docstring).

    ``input_shape`` is the per-sample shape ``(C, H, W)`` (or ``(F,)``).
    ``timesteps`` is ``T`` for a model without an encoder (its input is the
    static image repeated over ``T``: an :class:`InputNode` with direct
    encoding); a model with an encoder takes ``T`` from it. Raises
    :class:`~snncost.graph.UnsupportedModuleError` or
    :class:`UnsupportedOperationError` naming the module (and its type) or
    the operation it cannot map.
    """
    shape: Shape = tuple(int(s) for s in input_shape)
    encoder = has_encoder(model)
    if not encoder and timesteps is None:
        raise ValueError(f"{type(model).__name__} has no encoder, so it does not fix T: pass timesteps=")
    if timesteps is not None and (isinstance(timesteps, bool) or int(timesteps) != timesteps or timesteps < 1):
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    gm = _fx_graph(model)
    T = int(timesteps) if timesteps is not None else 1
    example = torch.zeros((2, *shape)) if encoder else torch.zeros((T, 2, *shape))
    _check_modules(gm)
    _propagate_shapes(gm, model, example)

    builder = _Builder()
    walk = _Walk(builder, {}, is_spiking_model(model))
    result: _Value | None = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if walk.values:
                raise ValueError(f"{type(model).__name__}.forward takes more than one input ({node.name!r})")
            if encoder:
                walk.values[node] = _Value("", shape, raw=True)
            else:
                walk.values[node] = builder.add(InputNode("input", shape=shape, encoding="direct", timesteps=T), ())
        elif node.op == "call_module":
            walk.values[node] = _call_module(walk, gm, node)
        elif node.op in ("call_function", "call_method"):
            walk.values[node] = _call_function(walk, node)
        elif node.op == "get_attr":
            walk.values[node] = None
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise ValueError(f"{type(model).__name__}.forward returns {type(out).__name__}, not one tensor")
            result = walk.value(out, node)
    assert result is not None
    _finish(walk, result)
    graph = LayerGraph(list(builder.nodes.values()), edges=builder.edges, skipped=builder.skipped,
                       name=name or type(model).__name__)  # fmt: skip
    _check_dead_ends(graph)
    return graph


def _call_module(walk: _Walk, gm: fx.GraphModule, node: fx.Node) -> _Value:
    path = str(node.target)
    m = gm.get_submodule(path)
    if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
        raise UnsupportedModuleError(path, m, "called with other than one tensor argument")
    v = walk.value(node.args[0], node)
    sole = len(node.args[0].users) == 1
    rule = module_rule(m)
    # a stateless SpikingJelly layer in multi-step mode folds [T, B] itself
    lead = 1 if getattr(m, "step_mode", None) == "m" and not _is_neuron(m) else 2
    out = walk.apply_module(path, m, v, lead, sole)
    if rule is not None and rule.role not in ("input", "skip"):
        seen = _observed(node)
        lead_out = 1 if isinstance(walk.builder.nodes[out.name], OutputNode) else 2  # the read-out reduces T
        if seen is None or seen[lead_out:] != out.shape or len(seen) != lead_out + len(out.shape):
            raise UnsupportedModuleError(
                path, m, f"maps to a per-sample shape {out.shape} but returns {seen} (it mixes the T, B axes)"
            )
    return out


def _call_function(walk: _Walk, node: fx.Node) -> _Value | None:
    if _observed(node) is None:  # x.shape, x.size(0), ...: not a tensor of the network
        return None
    handler = FUNCTIONS.get(node.target)
    if handler is None:
        raise _refuse_op(node, "no LayerGraph mapping (see docs/simulator.md, 'Models you can pass in')")
    return handler(walk, _rsub_args(node))


def _finish(walk: _Walk, result: _Value) -> None:
    """The read-out: the mean over ``T`` of a weight layer's output (added when the forward returns ``[T, B, ...]``)."""
    b = walk.builder
    if result.negated:
        raise ValueError("the forward returns 1 - spikes")
    node = b.nodes[result.name]
    if not isinstance(node, OutputNode):
        if "output" in b.nodes:
            raise ValueError("a node is named 'output' and the read-out needs that name")
        node = b.nodes[b.add(OutputNode("output", shape=result.shape, reduce="mean"), (result.name,)).name]
    src = [a for a, bb in b.edges if bb == node.name]
    feeder = b.nodes[src[0]] if src else None
    if not isinstance(feeder, WeightNode):
        kind = feeder.type_name if feeder is not None else "nothing"
        raise ValueError(
            f"the read-out {node.name!r} follows {src[0] if src else ''!r} ({kind}): snncost's read-out is the "
            "mean over T of a conv/linear layer's output (logits), not of spikes or merges"
        )


def _check_dead_ends(graph: LayerGraph) -> None:
    """Every node must lead to the read-out: a branch computed and dropped would be costed for nothing."""
    out = graph.output
    assert out is not None
    import networkx as nx

    reach = nx.ancestors(graph.nx, out.name) | {out.name}
    dead = [n.name for n in graph if n.name not in reach]
    if dead:
        raise ValueError(f"the nodes {dead} do not lead to the read-out (their result is unused)")


def graph_of(
    model: nn.Module, input_shape: tuple[int, ...], timesteps: int | None = None, name: str = ""
) -> LayerGraph:
    """The LayerGraph of any model snncost can cost: a chain of known modules is walked
    (:func:`~snncost.graph.build_graph`), anything else is traced (:func:`trace_graph`).

    The graph is built afresh each call (a snapshot of the model as it is now), but when it
    is :meth:`~snncost.graph.LayerGraph.same_as` the graph this model gave last time, that
    earlier graph is returned: what was derived from it (the replay's compiled plan, the
    weight statistics of its nodes) is reused when the same model is costed again, and
    recomputed as soon as anything in the model changed.
    """
    from snncost.graph.build import build_graph

    if is_chain_model(model):
        graph = build_graph(model, input_shape, name=name)
    else:
        graph = trace_graph(model, input_shape, timesteps, name)
    try:
        last = _LAST_GRAPH.get(model)
    except TypeError:  # not weak-referenceable: nothing to reuse
        return graph
    if last is not None and last.same_as(graph):
        return last
    _LAST_GRAPH[model] = graph
    return graph


#: model -> the graph graph_of built for it last time (goes with the model)
_LAST_GRAPH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

