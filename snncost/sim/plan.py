"""Compile a spiking :class:`~snncost.graph.LayerGraph` (any acyclic topology) into replay steps.

Each node's output is a *value* of one of three kinds (:mod:`snncost.graph.merges`):
``analog`` (the direct-coded input, ``float32 [B, N]``), ``events`` (spike
maps ``int8 [B, T, N]``: 0/1 spikes, -1/0/1 Poisson input, spike counts
after a SEW ADD) or ``current`` (``float32 [B, T, N]``). Values are flat per
sample in row-major ``(C, H, W)`` order, so ``Flatten`` and channel
concatenation need no data movement of their own.

Steps, in topological order:

- :class:`Stage`: one weight layer as one numba kernel call. The *fused*
  path, as fast as a chain's: a weight layer whose current goes only into
  one neuron layer that has no other input (``mode 0``), or only into the
  output read-out (``mode 1``). Otherwise its current is materialised
  (``mode 2``) for the merge or pool that needs it.
- :class:`MaxPoolStep`: max pooling of spike maps (materialised).
- :class:`DensePoolStep`: pooling of analog values or currents.
- :class:`MergeStep`: ``add``/``and``/``iand``/``concat`` by their rule.
- :class:`NeuronStep`: a neuron layer fed by anything but one fused weight
  layer (a current merge, a pooled current).
- :class:`ReadoutStep`: the output fed by anything but one fused weight layer.

Average pools on spikes are never materialised when a weight layer reads
them: they stay a *fold* (each spike's target index after the pools and the
value ``1/k^2`` per pool), as in a chain. A merge or a neuron layer that
reads average-pooled spikes gets them as float values (``sum / k^2``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, fields, replace

import numpy as np

from snncost.graph.layergraph import LayerGraph
from snncost.graph.merges import MergeRule, merge_rule
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
from snncost.nn.neuron_kernels import CHARGE_CODES
from snncost.sim.counts import layer_shape_facts

INT8_MAX = 127


@dataclass(frozen=True)
class Value:
    """What flows out of a node: ``kind``, the store ``key`` of the array it reads, its logical
    ``shape``; for events, a pending average-pool ``fold`` (array index -> value index, -1
    dropped; None: identity), the value of one unit ``fval`` and the pools' ``divisor``, a
    bound on ``|value|`` (``max_abs``) and whether values can be negative (``signed``)."""

    kind: str
    key: str
    shape: tuple[int, ...]
    fold: np.ndarray | None = field(default=None, compare=False, repr=False)
    fval: float = 1.0
    divisor: int = 1
    max_abs: int = 1
    signed: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def binary(self) -> bool:
        """0/1 spikes: what ``and``/``iand`` need."""
        return self.kind == "events" and self.fold is None and self.max_abs == 1 and not self.signed


@dataclass
class Stage:
    """A weight layer: its input value, weights as ``[C, kh, kw, O]`` columns, and what takes
    its current (``mode`` 0: the fused ``neuron``, 1: the read-out, 2: materialised)."""

    node: WeightNode
    source: Value
    mode: int
    neuron: LIFNode | None
    out_key: str
    geom: tuple
    wt: np.ndarray
    nzc: np.ndarray  # int64 [C*kh*kw]: nonzero weights per weight column
    scale: np.ndarray  # float32 [O]
    bias: np.ndarray  # float32 [O]
    fkey: np.ndarray | None = None  # int32: input row c*H + y each source index lands in (-1 dropped)
    fx: np.ndarray | None = None  # int16: and its input column x
    fval: float = 1.0
    kwt: np.ndarray | None = None  # the weights the event kernel reads (float32, or int8/int16 codes)
    vtab: np.ndarray | None = None  # [256]: what an event of value s adds (at s + 128), accumulator dtype
    post: np.float32 = np.float32(1.0)  # accumulator -> current factor (fval for integer codes)
    facts: dict = field(default_factory=dict)  # the layer's shape fields of its counts row (layer_shape_facts)

    @property
    def out_size(self) -> int:
        return int(np.prod(self.node.out_shape))


@dataclass
class MaxPoolStep:
    node: PoolNode
    source: Value
    geom: tuple[int, int, int, int]  # C, H, W, k


@dataclass
class DensePoolStep:
    node: PoolNode
    source: Value


@dataclass
class MergeStep:
    node: MergeNode
    rule: MergeRule
    sources: list[Value]
    out: Value


@dataclass
class NeuronStep:
    node: LIFNode
    source: Value


@dataclass
class ReadoutStep:
    node: Node
    source: Value


@dataclass
class Plan:
    """The steps in order, the value of every node, and after each step the arrays no later
    step reads (freed, so a chunk holds only what is still needed)."""

    steps: list
    values: dict[str, Value]
    input_kind: str
    readout: str  # name of the node whose current is read out (logits)
    free_after: list[list[str]]
    array_bytes: dict[str, int]  # key -> bytes per sample and step of its array
    spiking: list[str]  # the neuron layers, in forward order

    @property
    def stages(self) -> list[Stage]:
        return [s for s in self.steps if isinstance(s, Stage)]


def neuron_constants(node: LIFNode | None) -> tuple[int, bool, np.ndarray]:
    """``(charge code, hard reset, float32 [leak, tau, decay, vr, theta, u0])`` for the kernels;
    the output read-out (``None``) gets inert ones."""
    if node is None:
        return 0, False, np.array([1, 1, 1, 0, 1, 0], np.float32)
    if node.charge not in CHARGE_CODES:
        raise ValueError(f"{node.name}: unknown charge {node.charge!r}; choose one of {', '.join(CHARGE_CODES)}")
    if node.reset not in ("soft", "hard"):
        raise ValueError(f"{node.name}: reset must be 'soft' or 'hard', got {node.reset!r}")
    hard = node.reset == "hard"
    vr = node.reset_value if hard else 0.0
    consts = np.array([node.leak, node.tau, node.decay, vr, node.threshold, vr], np.float32)
    return CHARGE_CODES[node.charge], hard, consts


def _geometry(node: WeightNode) -> tuple:
    if isinstance(node, ConvNode):
        c, h, w = node.in_shape
        o, _, kh, kw = node.weight.shape
        (sh, sw), (ph, pw) = node.stride, node.padding
        _, ho, wo = node.out_shape
        wt = node.weight.transpose(1, 2, 3, 0)
    else:
        (c,) = node.in_shape
        h = w = kh = kw = sh = sw = ho = wo = 1
        ph = pw = 0
        o = node.weight.shape[0]
        wt = node.weight.T
    geom = (c, h, w, o, kh, kw, sh, sw, ph, pw, ho, wo)
    wt = np.ascontiguousarray(wt, dtype=np.float32).reshape(-1)
    bias = np.zeros(o, np.float32) if node.bias is None else np.ascontiguousarray(node.bias, np.float32)
    return geom, wt, _scale(node, o), bias


#: integer widths the event kernel keeps quantized codes at, narrowest first
CODE_DTYPES = (np.int8, np.int16)


def event_weights(node: WeightNode, wt: np.ndarray, fval: float, fan_in: int) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """``(weights, value table, post factor)`` the event kernel reads for one layer.

    Integer codes of a quantized layer (``number_format="int"``) are kept at the
    narrowest width that holds them (int8/int16: a quarter or half of float32's
    weight traffic) and summed in int32, exactly; the current is then
    ``float32(sum) * fval * scale + bias``. That equals the float32 sum of
    ``fval * s * code`` whenever that sum is exact (``fval`` a power of two, partial
    sums below 2^24 units), and is exact where float32 would round. Anything else
    (float weights, a 3x3 average pool's ``1/9``, a sum that could leave int32)
    stays float32, the event adding ``fval * s`` (rounded once) times the weight.
    """
    f = np.float32(fval)
    spikes = np.arange(-128, 128)
    if node.number_format == "int" and np.frexp(f)[0] == 0.5 and wt.size and np.array_equal(wt, np.round(wt)):
        peak = float(np.abs(wt).max())
        for dtype in CODE_DTYPES:
            if peak <= np.iinfo(dtype).max and fan_in * peak < 2**31:
                return wt.astype(dtype), spikes.astype(np.int32), f
    return wt, (f * spikes.astype(np.float32)).astype(np.float32), np.float32(1.0)


def _scale(node: WeightNode, o: int) -> np.ndarray:
    """The per-output-channel weight scale ``[O]`` (ones for float weights)."""
    if node.weight_scale is None:
        return np.ones(o, np.float32)
    scale = np.asarray(node.weight_scale, np.float32).reshape(-1)
    if scale.size == 1:
        return np.full(o, scale[0], np.float32)
    if scale.size != o:
        raise ValueError(f"{node.name}: weight_scale has {scale.size} values for {o} output channels")
    return np.ascontiguousarray(scale)


def pool_map(shape: tuple[int, ...], k: int) -> np.ndarray:
    """For each flat index of a ``(C, H, W)`` map, the flat index after a ``k`` pool (or -1)."""
    c, h, w = shape
    hp, wp = h // k, w // k
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    out = cc * (hp * wp) + (yy // k) * wp + (xx // k)
    out[(yy // k >= hp) | (xx // k >= wp)] = -1
    return out.reshape(-1).astype(np.int64)


class _Compiler:
    def __init__(self, graph: LayerGraph) -> None:
        self.graph = graph
        self.g = graph.nx
        self.values: dict[str, Value] = {}
        self.steps: list = []
        self.readouts: list[str] = []
        self.fused: set[str] = set()  # neuron/output nodes integrated inside their weight layer's stage

    def preds(self, node: Node) -> list[str]:
        return list(self.g.predecessors(node.name))

    def single_input(self, node: Node) -> Value:
        preds = self.preds(node)
        if len(preds) != 1:
            raise ValueError(
                f"{node.name}: a {node.type_name} node takes one input, got {len(preds)} ({', '.join(preds) or 'none'}); "
                "join branches with a MergeNode"
            )
        return self.values[preds[0]]

    # -- node rules -------------------------------------------------------------
    def input(self, node: InputNode) -> None:
        if node.encoding not in ("direct", "poisson"):
            raise ValueError(
                f"graph input encoding is {node.encoding!r}: simulate needs a spiking graph (use ann_counts for ANNs)"
            )
        kind = "analog" if node.encoding == "direct" else "events"
        self.values[node.name] = Value(kind, node.name, tuple(node.shape), signed=kind == "events")

    def flatten(self, node: FlattenNode) -> None:
        v = self.single_input(node)
        if v.size != int(np.prod(node.out_shape)):
            raise ValueError(f"{node.name}: flatten of {v.shape} cannot give {tuple(node.out_shape)}")
        self.values[node.name] = replace(v, shape=tuple(node.out_shape))

    def pool(self, node: PoolNode) -> None:
        v = self.single_input(node)
        if len(v.shape) != 3:
            raise ValueError(f"{node.name}: pooling needs a (C, H, W) map, got {v.shape}")
        c, h, w = v.shape
        k = int(node.kernel)
        expect = (c, h // k, w // k)
        if tuple(node.out_shape) != expect:
            raise ValueError(f"{node.name}: a {k}x{k} pool of {v.shape} gives {expect}, node says {tuple(node.out_shape)}")
        if node.kind not in ("avg", "max"):
            raise ValueError(f"{node.name}: pool kind must be 'avg' or 'max', got {node.kind!r}")
        if v.kind == "events" and node.kind == "avg":
            m = pool_map(v.shape, k)
            fold = m if v.fold is None else np.where(v.fold >= 0, m[np.maximum(v.fold, 0)], -1)
            self.values[node.name] = replace(
                v, shape=expect, fold=fold, fval=v.fval * (1.0 / (k * k)), divisor=v.divisor * k * k
            )
        elif v.kind == "events":
            if v.fold is not None:
                raise ValueError(f"{node.name}: a max pool after an average pool is not supported by the replay")
            self.steps.append(MaxPoolStep(node, v, (c, h, w, k)))
            self.values[node.name] = replace(v, key=node.name, shape=expect)
        else:
            self.steps.append(DensePoolStep(node, v))
            self.values[node.name] = Value(v.kind, node.name, expect)

    def weight(self, node: WeightNode) -> None:
        v = self.single_input(node)
        if v.size != int(np.prod(node.in_shape)):
            raise ValueError(f"{node.name}: input size {v.shape} does not match {tuple(node.in_shape)}")
        if v.kind == "current":
            raise ValueError(
                f"{node.name}: a weight layer fed by a current (no neuron layer in between) is not "
                "supported by the replay; it replays event or direct analog input"
            )
        succs = list(self.g.successors(node.name))
        mode, neuron, out_key = 2, None, node.name
        if not succs:
            mode = 1
            self.readouts.append(node.name)
        elif len(succs) == 1 and self.g.in_degree(succs[0]) == 1:
            nxt = self.graph[succs[0]]
            if isinstance(nxt, LIFNode):
                mode, neuron, out_key = 0, nxt, nxt.name
                self.fused.add(nxt.name)
            elif isinstance(nxt, OutputNode):
                mode = 1
                self.fused.add(nxt.name)
                self.readouts.append(nxt.name)
        geom, wt, scale, bias = _geometry(node)
        st = Stage(node, v, mode, neuron, out_key, geom, wt, _nonzero_columns(wt, geom[3]), scale, bias)
        st.facts = layer_shape_facts(node)
        if v.kind == "events":
            fold = v.fold if v.fold is not None else np.arange(v.size)  # a fold spans its whole array
            width = geom[2]  # the input rows the event kernel groups events by
            if width >= 1 << 15:
                raise ValueError(f"{node.name}: input width {width} exceeds the event kernel's int16 columns")
            st.fkey = np.ascontiguousarray(np.where(fold >= 0, fold // width, -1), dtype=np.int32)
            st.fx = np.ascontiguousarray(fold % width, dtype=np.int16)
            st.fval = v.fval
            if v.max_abs * v.divisor > (1 << 24):
                raise ValueError(f"{node.name}: input values up to {v.max_abs}/{v.divisor} are not exact in float32")
            fan_in = geom[0] * geom[4] * geom[5] * v.divisor * v.max_abs  # |events x values| reaching a membrane
            st.kwt, st.vtab, st.post = event_weights(node, wt, v.fval, fan_in)
        self.steps.append(st)
        if mode == 2:
            self.values[node.name] = Value("current", node.name, tuple(node.out_shape))

    def lif(self, node: LIFNode) -> None:
        neuron_constants(node)  # validates the neuron's fields
        if node.name not in self.fused:
            v = self.single_input(node)
            if v.size != node.neurons:
                raise ValueError(f"{node.name}: {node.neurons} neurons fed by a value of shape {v.shape}")
            self.steps.append(NeuronStep(node, v))
        self.values[node.name] = Value("events", node.name, tuple(node.shape))

    def merge(self, node: MergeNode) -> None:
        rule = merge_rule(node)
        preds = set(self.preds(node))
        if preds != set(node.inputs):
            raise ValueError(
                f"{node.name}: MergeNode.inputs {list(node.inputs)} differ from the graph's edges into it {sorted(preds)}"
            )
        srcs = [self.values[n] for n in node.inputs]
        for name, v in zip(node.inputs, srcs, strict=True):
            if v.kind not in rule.kinds:
                raise ValueError(f"{node.name}: merge {node.op!r} takes {sorted(rule.kinds)}, but {name} gives {v.kind}")
            if rule.binary and not v.binary:
                raise ValueError(f"{node.name}: merge {node.op!r} needs 0/1 spikes, but {name} gives counts, signed or pooled values")
        out_kind = rule.out_kind([v.kind for v in srcs])
        if node.op == "concat":
            if any(len(v.shape) != len(srcs[0].shape) or v.shape[1:] != srcs[0].shape[1:] for v in srcs):
                raise ValueError(f"{node.name}: concat needs equal shapes after the channels, got {[v.shape for v in srcs]}")
            shape = (sum(v.shape[0] for v in srcs), *srcs[0].shape[1:])
        else:
            if any(v.shape != srcs[0].shape for v in srcs):
                raise ValueError(f"{node.name}: merge {node.op!r} needs equal shapes, got {[v.shape for v in srcs]}")
            shape = srcs[0].shape
        if tuple(node.shape) != shape:
            raise ValueError(f"{node.name}: merge gives shape {shape}, node says {tuple(node.shape)}")
        out = Value(out_kind, node.name, shape)
        if out_kind == "events":
            if any(v.fold is not None for v in srcs):
                raise ValueError(
                    f"{node.name}: merge {node.op!r} of average-pooled spikes (graded values, not spikes) "
                    "is not supported by the replay; pool after the merge"
                )
            bound = sum(v.max_abs for v in srcs) if node.op == "add" else max(v.max_abs for v in srcs)
            if bound > INT8_MAX:
                raise ValueError(f"{node.name}: spike counts up to {bound} do not fit the replay's int8 spike maps")
            out = replace(out, max_abs=bound, signed=any(v.signed for v in srcs))
        self.steps.append(MergeStep(node, rule, srcs, out))
        self.values[node.name] = out

    def output(self, node: OutputNode) -> None:
        if node.name not in self.fused:
            v = self.single_input(node)
            self.steps.append(ReadoutStep(node, v))
            self.readouts.append(node.name)
        self.values[node.name] = Value("current", node.name, tuple(node.shape))

    def relu(self, node: ReLUNode) -> None:
        raise ValueError(f"{node.name}: ReLU in the graph; simulate replays SNNs (use ann_counts)")


_RULES = {
    InputNode: _Compiler.input,
    FlattenNode: _Compiler.flatten,
    PoolNode: _Compiler.pool,
    WeightNode: _Compiler.weight,
    LIFNode: _Compiler.lif,
    MergeNode: _Compiler.merge,
    OutputNode: _Compiler.output,
    ReLUNode: _Compiler.relu,
}


def _nonzero_columns(wt: np.ndarray, o: int) -> np.ndarray:
    """Nonzero weights in each ``[O]`` column of the transposed weights (ACs of a weight-sparse chip)."""
    return np.ascontiguousarray((wt.reshape(-1, o) != 0).sum(axis=1), dtype=np.int64)


def _reads(step) -> list[str]:
    if isinstance(step, MergeStep):
        return [v.key for v in step.sources]
    return [step.source.key]


def _writes(step) -> tuple[str, str] | None:
    """``(key, kind)`` of the array a step stores (None: the read-out keeps its own)."""
    if isinstance(step, Stage):
        return None if step.mode == 1 else (step.out_key, "events" if step.mode == 0 else "current")
    if isinstance(step, (MaxPoolStep,)):
        return step.node.name, "events"
    if isinstance(step, DensePoolStep):
        return step.node.name, step.source.kind
    if isinstance(step, MergeStep):
        return step.node.name, step.out.kind
    if isinstance(step, NeuronStep):
        return step.node.name, "events"
    return None


_BYTES = {"events": 1, "current": 4, "analog": 4}


def compile_plan(graph: LayerGraph) -> Plan:
    """Turn a spiking graph into replay steps; raises ValueError naming the node that the
    replay cannot run and why."""
    nodes = list(graph)
    if not nodes or not isinstance(nodes[0], InputNode):
        raise ValueError("the graph must start with its input node")
    if sum(isinstance(n, InputNode) for n in nodes) != 1:
        raise ValueError("the replay needs exactly one input node")
    comp = _Compiler(graph)
    for node in nodes:
        rule = next((fn for cls, fn in _RULES.items() if isinstance(node, cls)), None)
        if rule is None:
            raise ValueError(f"{node.name}: node type {node.type_name} not supported by the replay")
        rule(comp, node)
    if not any(isinstance(s, Stage) for s in comp.steps):
        raise ValueError("the graph has no weight layers")
    if len(comp.readouts) > 1:
        raise ValueError(f"the replay reads out one node, the graph has {len(comp.readouts)}: {', '.join(comp.readouts)}")
    last_use: dict[str, int] = {}
    for i, step in enumerate(comp.steps):
        for key in _reads(step):
            last_use[key] = i
    free_after: list[list[str]] = [[] for _ in comp.steps]
    for key, i in last_use.items():
        free_after[i].append(key)
    array_bytes = {nodes[0].name: _BYTES[comp.values[nodes[0].name].kind] * comp.values[nodes[0].name].size}
    for step in comp.steps:
        w = _writes(step)
        if w is not None:
            array_bytes[w[0]] = _BYTES[w[1]] * comp.values[w[0]].size
    return Plan(
        steps=comp.steps,
        values=comp.values,
        input_kind=comp.values[nodes[0].name].kind,
        readout=comp.readouts[0] if comp.readouts else "",
        free_after=free_after,
        array_bytes=array_bytes,
        spiking=[n.name for n in nodes if isinstance(n, LIFNode)],
    )


#: graph -> (what its plan was compiled from, the plan); entries go with their graph
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sources(graph: LayerGraph) -> list:
    """What a plan depends on: the nodes in order, each with its field values (arrays as the
    objects themselves, so an array replaced by another is seen), and the edges."""
    return [list(graph.nx.edges)] + [(node, [getattr(node, f.name) for f in fields(node)]) for node in graph]


def _same_sources(a: list, b: list) -> bool:
    if len(a) != len(b) or a[0] != b[0]:
        return False
    for (node_a, vals_a), (node_b, vals_b) in zip(a[1:], b[1:], strict=True):
        if node_a is not node_b:
            return False
        if not all(_same_value(x, y) for x, y in zip(vals_a, vals_b, strict=True)):
            return False
    return True


def _same_value(x, y) -> bool:
    """Arrays (and anything whose ``==`` is not a plain truth value) by identity, the rest by value."""
    if x is y:
        return True
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return False
    try:
        return bool(x == y)
    except (TypeError, ValueError):  # e.g. a list holding arrays
        return False


def plan_for(graph: LayerGraph) -> Plan:
    """:func:`compile_plan`, compiled once per graph and reused while its nodes, their fields
    and the arrays they hold are the same objects (streamed batches, repeated replays).

    Compiling transposes every weight array and counts its nonzeros: for VGG9 that
    costs more than replaying a batch of 8 at 1% activity. A node field set to a new
    value or array is seen and the plan recompiled; a weight array edited in place
    is not (assign a new array instead).
    """
    src = _sources(graph)
    hit = _PLANS.get(graph)
    if hit is not None and _same_sources(hit[0], src):
        return hit[1]
    plan = compile_plan(graph)
    _PLANS[graph] = (src, plan)
    return plan


__all__ = ["Plan", "Stage", "Value", "compile_plan", "neuron_constants", "plan_for", "pool_map"]
