"""The event-driven replay of a :class:`~snncost.graph.LayerGraph`: :func:`simulate`.

The graph is first compiled into a plan of *stages*, one per weight layer:
the transforms between the previous spiking layer and this weight layer
(average pools folded into the events, max pools materialised, flatten),
the weights pre-transposed to ``[C, kh, kw, O]`` (a column over the output
channels is contiguous; integer codes for a quantized layer, whose
per-channel scale is applied to each step's accumulated current before the
bias, see docs/simulator.md), and what integrates the current (a LIF layer
or the non-spiking output). Each stage runs as one numba kernel call per chunk of
samples (see :mod:`snncost.sim.kernels`).

Counted events (also in docs/simulator.md and :mod:`snncost.sim.counts`),
per weight layer, per step, summed over the batch; no memory traffic and no
widths (those are the cost model's, :mod:`snncost.costmodel`):

- ``input_events``: nonzero inputs processed as events (pre-pool spikes when
  an average pool is folded; pooled spikes after a max pool; signed Poisson
  input spikes). 0 for the dense analog first layer.
- ``synaptic_ops``: accumulates actually performed, ``sum over events of
  (reached output positions) * O``, borders and stride respected;
  ``synaptic_ops_nonzero``: those whose weight is nonzero.
- ``macs``: dense analog first layer only, its real-tap (border-exact) MACs
  of one pass, reported at every step: the replay computes the current once,
  and whether a chip recomputes it every step is a cost-model option.
- ``neuron_updates``: every neuron every step (LIF, or the output
  integrator), bias added as part of the update; ``active_neurons``: those
  that received synaptic input in the step (the rest only leak).
- ``output_spikes``: spikes emitted (0 for the output layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from snncost.graph.layergraph import LayerGraph
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    PoolNode,
    ReLUNode,
    WeightNode,
)
from snncost.sim import kernels as K
from snncost.sim.counts import LayerCounts, RunCounts, layer_shape_facts

SPIKE_MAP_BUDGET = 1 << 28  # bytes of one int8 [B, T, N] spike map per chunk


@dataclass
class _MaxPool:
    C: int
    H: int
    W: int
    k: int

    @property
    def out_size(self) -> int:
        return self.C * (self.H // self.k) * (self.W // self.k)


@dataclass
class _Stage:
    node: WeightNode
    source: str  # "events" | "analog"
    pre: list = field(default_factory=list)  # _MaxPool ops (events) / PoolNode, FlattenNode (analog)
    fmap: np.ndarray | None = None  # int32 fold map (events)
    fval: float = 1.0
    neuron: LIFNode | None = None  # None: output read-out
    # conv geometry, linear as a 1x1 conv on (F, 1, 1)
    geom: tuple = ()
    wt: np.ndarray | None = None
    nzc: np.ndarray | None = None  # int64 [C*kh*kw]: nonzero weights per weight column
    scale: np.ndarray | None = None  # float32 [O]: weight scale (ones for float weights)
    bias: np.ndarray | None = None
    src_size: int = 0  # length of the event rows fed to the kernel

    @property
    def out_size(self) -> int:
        return int(np.prod(self.node.out_shape))


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


def _nonzero_columns(wt: np.ndarray, o: int) -> np.ndarray:
    """Nonzero weights in each ``[O]`` column of the transposed weights (ACs of a weight-sparse chip)."""
    return np.ascontiguousarray((wt.reshape(-1, o) != 0).sum(axis=1), dtype=np.int64)


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


def _pool_map(shape: tuple[int, ...], k: int) -> np.ndarray:
    """For each flat index of a ``(C, H, W)`` map, the flat index after a ``k`` pool (or -1)."""
    c, h, w = shape
    hp, wp = h // k, w // k
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    out = cc * (hp * wp) + (yy // k) * wp + (xx // k)
    out[(yy // k >= hp) | (xx // k >= wp)] = -1
    return out.reshape(-1).astype(np.int64)


def compile_plan(graph: LayerGraph) -> list[_Stage]:
    """Turn a spiking chain graph into replay stages (raises ValueError on unsupported topologies)."""
    if not graph.is_chain():
        raise ValueError("the replay supports chain graphs only (one path from input to output)")
    nodes = list(graph)
    inp = nodes[0]
    if not isinstance(inp, InputNode):
        raise ValueError("the graph must start with its input node")
    if inp.encoding not in ("direct", "poisson"):
        raise ValueError(f"graph input encoding is {inp.encoding!r}: simulate needs a spiking graph (use ann_counts for ANNs)")
    source = "analog" if inp.encoding == "direct" else "events"
    shape = tuple(inp.shape)
    fold: np.ndarray | None = None  # pending average-pool fold map over the current event rows
    fval = 1.0
    pre: list = []
    stages: list[_Stage] = []
    pending: _Stage | None = None
    for node in nodes[1:]:
        if pending is not None:
            if isinstance(node, LIFNode):
                pending.neuron = node
            elif isinstance(node, OutputNode):
                pending.neuron = None
            else:
                raise ValueError(
                    f"{pending.node.name} is followed by {node.name} ({node.type_name}); "
                    "the replay needs every weight layer to feed a LIF layer or the output"
                )
            stages.append(pending)
            pending = None
            source, shape, fold, fval, pre = "events", tuple(node.out_shape), None, 1.0, []
            if isinstance(node, OutputNode):
                break
            continue
        if isinstance(node, PoolNode):
            if source == "analog":
                pre.append(node)
            elif node.kind == "avg":
                m = _pool_map(shape, node.kernel)
                fold = m if fold is None else np.where(fold >= 0, m[np.maximum(fold, 0)], -1)
                fval *= 1.0 / (node.kernel * node.kernel)
            else:
                if fold is not None:
                    raise ValueError(f"{node.name}: a max pool after an average pool is not supported by the replay")
                pre.append(_MaxPool(*shape, node.kernel))
            shape = tuple(node.out_shape)
        elif isinstance(node, FlattenNode):
            if source == "analog":
                pre.append(node)
            shape = tuple(node.out_shape)
        elif isinstance(node, WeightNode):
            if int(np.prod(shape)) != int(np.prod(node.in_shape)):
                raise ValueError(f"{node.name}: input size {shape} does not match {node.in_shape}")
            geom, wt, scale, bias = _geometry(node)
            st = _Stage(
                node=node, source=source, pre=pre, fval=fval, geom=geom, wt=wt, scale=scale, bias=bias,
                nzc=_nonzero_columns(wt, geom[3]),
            )  # fmt: skip
            if source == "events":
                n_rows = pre[-1].out_size if pre else None
                if fold is not None:
                    st.fmap = fold.astype(np.int32)
                else:
                    size = n_rows if n_rows is not None else int(np.prod(shape))
                    st.fmap = np.arange(size, dtype=np.int32)
                st.src_size = len(st.fmap)
            pending = st
        elif isinstance(node, LIFNode):
            raise ValueError(f"{node.name}: a LIF layer must follow a weight layer in the replay")
        elif isinstance(node, ReLUNode):
            raise ValueError(f"{node.name}: ReLU in the graph; simulate replays SNNs (use ann_counts)")
        elif isinstance(node, OutputNode):
            raise ValueError(f"{node.name}: the output node must follow a weight layer")
        else:
            raise ValueError(f"{node.name}: node type {node.type_name} not supported by the replay")
    if pending is not None:  # graph ends at a weight layer: read it out
        stages.append(pending)
    if not stages:
        raise ValueError("the graph has no weight layers")
    return stages


def _analog_pre(x: np.ndarray, pre: list) -> np.ndarray:
    """Dense pooling/flatten on the analog input ``[B, ...]`` (before the first weight layer)."""
    for op in pre:
        if isinstance(op, PoolNode):
            b, c, h, w = x.shape
            k = op.kernel
            v = x[:, :, : (h // k) * k, : (w // k) * k].reshape(b, c, h // k, k, w // k, k)
            if op.kind == "avg":
                x = (v.sum(axis=(3, 5), dtype=np.float32) / np.float32(k * k)).astype(np.float32)
            else:
                x = v.max(axis=(3, 5))
        else:
            x = x.reshape(x.shape[0], -1)
    return np.ascontiguousarray(x, dtype=np.float32).reshape(x.shape[0], -1)


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def encode_poisson(x, timesteps: int, gain: float = 1.0, generator: torch.Generator | None = None) -> np.ndarray:
    """Poisson-encode ``[B, ...]`` to signed spikes ``int8 [T, B, ...]`` exactly as
    :class:`snncost.nn.PoissonEncoder` does (same generator, same spikes)."""
    from snncost.nn import PoissonEncoder

    enc = PoissonEncoder(timesteps, gain=gain)
    enc.generator = generator
    with torch.no_grad():
        s = enc(torch.as_tensor(_as_numpy(x), dtype=torch.float32))
    return s.numpy().astype(np.int8)


def simulate(
    graph,
    inputs,
    timesteps: int | None = None,
    record_spikes: bool = False,
    batch_size: int = 64,
    labels=None,
    generator: torch.Generator | None = None,
) -> RunCounts:
    """Replay a spiking graph on ``inputs`` event by event and count what hardware pays for.

    ``inputs``: direct encoding, the analog batch ``[B, C, H, W]`` (or ``[B, F]``);
    Poisson encoding, the already-encoded signed spikes ``[T, B, ...]`` (values
    in {-1, 0, 1}, e.g. captured from the model's seeded encoder). A raw
    ``[B, ...]`` batch given to a Poisson graph is encoded here with
    ``generator`` (as :class:`~snncost.nn.PoissonEncoder` would).
    ``graph`` may also be a torch model (built with :func:`~snncost.graph.build_graph`).
    ``timesteps`` overrides the graph's ``T`` (direct encoding only).
    Inputs are processed in chunks of at most ``batch_size`` samples. With
    ``record_spikes`` the spike trains of every LIF layer are returned in
    ``extra["spikes"]`` (name -> ``uint8 [T, B, ...]``).
    """
    if not isinstance(graph, LayerGraph):
        from snncost.graph.build import build_graph

        x0 = _as_numpy(inputs)
        graph = build_graph(graph, input_shape=getattr(graph, "input_shape", None) or x0.shape[-3:])
    stages = compile_plan(graph)
    inp = graph.input
    x = _as_numpy(inputs)
    in_shape = tuple(inp.shape)
    if inp.encoding == "direct":
        if x.shape[1:] != in_shape:
            raise ValueError(f"direct input must be [B, {', '.join(map(str, in_shape))}], got {x.shape}")
        T = int(timesteps or inp.timesteps)
        B = x.shape[0]
        x = x.astype(np.float32, copy=False)
    else:
        if x.shape[1:] == in_shape:  # raw batch: encode like the model's encoder
            x = encode_poisson(x, int(timesteps or inp.timesteps), inp.gain or 1.0, generator)
        if x.shape[2:] != in_shape:
            raise ValueError(f"Poisson input must be encoded spikes [T, B, {', '.join(map(str, in_shape))}], got {x.shape}")
        if timesteps is not None and int(timesteps) != x.shape[0]:
            raise ValueError(f"timesteps={timesteps} but the encoded input has T={x.shape[0]}")
        T, B = int(x.shape[0]), int(x.shape[1])
        if x.dtype != np.int8:
            xi = x.astype(np.int8)
            if not np.array_equal(xi, x):
                raise ValueError("Poisson input spikes must be in {-1, 0, 1}")
            x = xi
        elif x.size and (x.max() > 1 or x.min() < -1):
            raise ValueError("Poisson input spikes must be in {-1, 0, 1}")
    if B < 1:
        raise ValueError("empty input batch")

    max_n = max([int(np.prod(in_shape))] + [s.out_size for s in stages])
    chunk = max(1, min(int(batch_size), SPIKE_MAP_BUDGET // max(1, T * max_n)))
    totals = [np.zeros((T, K.N_COUNTS), np.int64) for _ in stages]
    logits_parts: list[np.ndarray] = []
    spikes_parts: dict[str, list[np.ndarray]] = {s.neuron.name: [] for s in stages if s.neuron is not None}

    for start in range(0, B, chunk):
        stop = min(B, start + chunk)
        nb = stop - start
        if inp.encoding == "direct":
            cur_in = x[start:stop]
        else:
            cur_in = np.ascontiguousarray(x[:, start:stop].reshape(T, nb, -1).transpose(1, 0, 2))
        for si, st in enumerate(stages):
            (c, h, w, o, kh, kw, sh, sw, ph, pw, ho, wo) = st.geom
            n_out = st.out_size
            mode = 0 if st.neuron is not None else 1
            leak = np.float32(st.neuron.leak if st.neuron else 1.0)
            theta = np.float32(st.neuron.threshold if st.neuron else 1.0)
            spk_out = np.zeros((nb, T, n_out) if mode == 0 else (1, T, 1), np.int8)
            acc_out = np.zeros((nb, n_out) if mode == 1 else (1, 1), np.float32)
            counts = np.zeros((nb, T, K.N_COUNTS), np.int64)
            if st.source == "analog":
                xa = _analog_pre(np.asarray(cur_in, np.float32), st.pre)
                K.dense_layer(xa, c, h, w, st.wt, st.scale, st.bias, o, kh, kw, sh, sw, ph, pw, ho, wo, T,
                              leak, theta, mode, spk_out, acc_out, counts)  # fmt: skip
            else:
                ev = cur_in
                for mp in st.pre:
                    pooled = np.empty((nb, T, mp.out_size), np.int8)
                    K.maxpool_spikes(ev, mp.C, mp.H, mp.W, mp.k, pooled)
                    ev = pooled
                if ev.shape[2] != st.src_size:
                    raise AssertionError(f"{st.node.name}: event rows {ev.shape[2]} != {st.src_size}")
                K.event_layer(ev, st.fmap, np.float32(st.fval), c, h, w, st.wt, st.nzc, st.scale, st.bias, o,
                              kh, kw, sh, sw, ph, pw, ho, wo, leak, theta, mode, spk_out, acc_out, counts)  # fmt: skip
            totals[si] += counts.sum(axis=0)
            if mode == 0:
                if record_spikes:
                    shape = tuple(st.neuron.shape)
                    spikes_parts[st.neuron.name].append(
                        spk_out.transpose(1, 0, 2).reshape(T, nb, *shape).astype(np.uint8)
                    )
                cur_in = spk_out
            else:
                logits_parts.append((acc_out / np.float32(T)).astype(np.float32))

    layers = [_layer_counts(st, tot, T, B) for st, tot in zip(stages, totals, strict=True)]
    logits = None
    if logits_parts:
        logits = np.concatenate(logits_parts, axis=0).reshape(B, *stages[-1].node.out_shape)
        if logits.ndim > 2:
            logits = logits.reshape(B, -1)
    run = RunCounts(
        model="snn",
        timesteps=T,
        batch_size=B,
        layers=layers,
        logits=logits,
        labels=None if labels is None else _as_numpy(labels),
    )
    run.extra["encoding"] = inp.encoding
    run.extra["chunk"] = chunk
    if record_spikes:
        run.extra["spikes"] = {k: np.concatenate(v, axis=1) for k, v in spikes_parts.items() if v}
    return run


def _layer_counts(st: _Stage, tot: np.ndarray, T: int, B: int) -> LayerCounts:
    node = st.node
    analog = st.source == "analog"
    macs = np.full(T, node.real_macs * B if analog else 0, np.int64)
    return LayerCounts(
        name=node.name,
        neuron="lif" if st.neuron is not None else "output",
        input_events=tot[:, K.EVENTS].copy(),
        synaptic_ops=tot[:, K.SYNOPS].copy(),
        synaptic_ops_nonzero=tot[:, K.SYNOPS_NZ].copy(),
        macs=macs,
        neuron_updates=np.full(T, st.out_size * B, np.int64),
        output_spikes=tot[:, K.SPIKES].copy(),
        active_neurons=tot[:, K.ACTIVE].copy(),
        leak=float(st.neuron.leak) if st.neuron is not None else 1.0,
        analog=analog,
        **layer_shape_facts(node),
    )


__all__ = ["compile_plan", "encode_poisson", "simulate"]
