"""Run any :class:`~snncost.graph.LayerGraph` densely in torch: :class:`GraphModule`.

The independent reference for the event-driven replay (:func:`snncost.sim.simulate`):
it computes every node with plain torch operations, step by step, in the
same float32 order as the replay:

- weight layers: ``conv(x, codes) * scale + bias`` (quantized) or
  ``conv(x, w) + bias`` (float), the bias added after the convolution;
- neurons: :func:`snncost.nn.functional.neuron_step`, the one torch
  definition of every :class:`~snncost.graph.nodes.LIFNode` kind, the one
  training uses;
- merges: :data:`snncost.graph.merges.MERGE_RULES` (the same functions the
  replay applies), spikes entering a current add as their 0/1 values;
- pools: ``F.avg_pool2d`` / ``F.max_pool2d`` (kernel == stride);
- the output: the mean over T of its input, summed in time order.

It is also what an importer (NIR, a tracer) can hand back as a runnable model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snncost.graph.layergraph import LayerGraph
from snncost.graph.merges import merge_rule
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    MergeNode,
    Node,
    OutputNode,
    PoolNode,
    ReLUNode,
    WeightNode,
)
from snncost.nn.functional import NeuronKind
from snncost.nn.functional import neuron_step as _neuron_step

_F32 = torch.float32

def neuron_kind(node: LIFNode) -> NeuronKind:
    """The :class:`snncost.nn.functional.NeuronKind` of a LIF node (its charge and reset rules)."""
    try:
        return NeuronKind(node.charge, node.reset, node.reset_value if node.reset == "hard" else 0.0)
    except ValueError as exc:
        raise ValueError(f"{node.name}: {exc}") from None


def initial_membrane(node: LIFNode, like: torch.Tensor) -> torch.Tensor:
    """The membrane before the first step: ``reset_value`` for a hard reset, else 0."""
    return neuron_kind(node).initial_membrane(like.to(_F32))


def neuron_step(node: LIFNode, u: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``node``'s neurons by :func:`snncost.nn.functional.neuron_step`, the rule
    training uses (charge, fire, reset); returns ``(spikes, new membrane)``."""
    kind = neuron_kind(node)
    return _neuron_step(u, current.to(_F32), node.charge_constant, float(node.threshold), kind)


def _weight(node: WeightNode, x: torch.Tensor) -> torch.Tensor:
    w = torch.from_numpy(np.ascontiguousarray(node.weight, np.float32))
    if isinstance(node, ConvNode):
        x = x.reshape(len(x), *node.in_shape)
        y = F.conv2d(x, w, stride=tuple(node.stride), padding=tuple(node.padding))
        view = (1, -1, 1, 1)
    else:
        y = F.linear(x.reshape(len(x), -1), w)
        view = (1, -1)
    if node.weight_scale is not None:
        scale = np.broadcast_to(np.asarray(node.weight_scale, np.float32).reshape(-1), (node.out_features,))
        y = y * torch.from_numpy(np.array(scale)).reshape(view)
    if node.bias is not None:
        y = y + torch.from_numpy(np.ascontiguousarray(node.bias, np.float32)).reshape(view)
    return y


def _pool(node: PoolNode, x: torch.Tensor) -> torch.Tensor:
    pool = F.avg_pool2d if node.kind == "avg" else F.max_pool2d
    return pool(x, int(node.kernel))


def _cat(xs) -> torch.Tensor:
    return torch.cat(list(xs), dim=1)


class GraphModule(nn.Module):
    """A LayerGraph as a torch module (inference only; no parameters are trained).

    ``forward(x)``: ``x`` is the analog batch ``[B, ...]`` (direct encoding,
    fed at every step) or encoded spikes ``[T, B, ...]`` (Poisson). Returns the
    logits ``[B, classes]`` (mean over T of the output's input); with
    ``return_spikes=True`` also ``{LIF name: spikes [T, B, ...]}``; with
    ``return_values=True`` instead ``{node name: its output [T, B, ...]}`` for
    every node (what a brute-force count reads).
    """

    def __init__(self, graph: LayerGraph) -> None:
        super().__init__()
        self.graph = graph
        self.nodes = list(graph)
        for node in self.nodes:
            if isinstance(node, MergeNode):
                merge_rule(node)
                if set(graph.nx.predecessors(node.name)) != set(node.inputs):
                    raise ValueError(f"{node.name}: MergeNode.inputs {list(node.inputs)} differ from the graph's edges")
            elif isinstance(node, PoolNode) and node.kind not in ("avg", "max"):
                raise ValueError(f"{node.name}: pool kind must be 'avg' or 'max', got {node.kind!r}")

    def _input_of(self, node: Node, vals: dict[str, torch.Tensor]) -> torch.Tensor:
        preds = list(self.graph.nx.predecessors(node.name))
        if len(preds) != 1:
            raise ValueError(f"{node.name}: a {node.type_name} node takes one input, got {len(preds)}")
        return vals[preds[0]]

    @torch.no_grad()
    def forward(self, x, timesteps: int | None = None, return_spikes: bool = False, return_values: bool = False):
        inp = self.graph.input
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(_F32)
        if inp.encoding == "poisson":
            T = x.shape[0]
        else:
            T = int(timesteps or inp.timesteps)
        membranes: dict[str, torch.Tensor] = {}
        kept = [n.name for n in self.nodes if return_values or isinstance(n, LIFNode)]
        trace: dict[str, list[torch.Tensor]] = {name: [] for name in kept}
        total: torch.Tensor | None = None
        for t in range(T):
            vals: dict[str, torch.Tensor] = {}
            for node in self.nodes:
                vals[node.name] = self._node(node, vals, x[t] if inp.encoding == "poisson" else x, membranes)
                if node.name in trace:
                    trace[node.name].append(vals[node.name])
            out = self._readout(vals)
            total = out.clone() if total is None else total + out
        logits = (total / torch.tensor(float(T), dtype=_F32)).reshape(total.shape[0], -1)
        if return_spikes or return_values:
            return logits, {k: torch.stack(v) for k, v in trace.items()}
        return logits

    def _readout(self, vals: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.graph.output
        if out is not None:
            return vals[out.name]
        sinks = [n for n in self.nodes if self.graph.nx.out_degree(n.name) == 0]
        return vals[sinks[-1].name]

    def _node(self, node: Node, vals: dict, x: torch.Tensor, membranes: dict) -> torch.Tensor:
        if isinstance(node, InputNode):
            return x.reshape(len(x), *node.shape)
        if isinstance(node, MergeNode):
            return merge_rule(node).apply([vals[n] for n in node.inputs], _cat)
        h = self._input_of(node, vals)
        if isinstance(node, WeightNode):
            return _weight(node, h)
        if isinstance(node, LIFNode):
            cur = h.reshape(len(h), *node.shape)
            u = membranes.get(node.name)
            if u is None:
                u = initial_membrane(node, cur)
            s, membranes[node.name] = neuron_step(node, u, cur)
            return s
        if isinstance(node, PoolNode):
            return _pool(node, h)
        if isinstance(node, FlattenNode):
            return h.reshape(len(h), -1)
        if isinstance(node, OutputNode):
            return h.reshape(len(h), -1)
        if isinstance(node, ReLUNode):
            return torch.relu(h)
        raise ValueError(f"{node.name}: node type {node.type_name} not supported by GraphModule")


__all__ = ["GraphModule", "initial_membrane", "neuron_kind", "neuron_step"]
