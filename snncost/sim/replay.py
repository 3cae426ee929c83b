"""The event-driven replay of a :class:`~snncost.graph.LayerGraph`: :func:`simulate`.

The graph (any acyclic topology) is first compiled into a plan of steps
(:mod:`snncost.sim.plan`): one numba kernel call per weight layer, with its
neuron layer fused when that layer's current goes only into it (the chain
case, as fast as ever), and element-wise steps for what joins branches
(merges), pools on spike maps or currents, and neuron layers fed by a
merge. Each step runs once per chunk of samples (see :mod:`snncost.sim.kernels`).

Counted events (also in docs/simulator.md and :mod:`snncost.sim.counts`),
per step, summed over the batch; no memory traffic and no widths (those are
the cost model's, :mod:`snncost.costmodel`). One row per weight layer:

- ``input_events``: spikes processed as events (pre-pool spikes when an
  average pool is folded; pooled spikes after a max pool; signed Poisson
  input spikes; an event of multiplicity ``m``, after a SEW ADD, is ``m``
  spikes). 0 for the dense analog first layer.
- ``synaptic_ops``: accumulates actually performed, ``sum over events of
  m * (reached output positions) * O``, borders and stride respected;
  ``synaptic_ops_nonzero``: those whose weight is nonzero.
- ``macs``: dense analog first layer only, its real-tap (border-exact) MACs
  of one pass, reported at every step: the replay computes the current once,
  and whether a chip recomputes it every step is a cost-model option.
- ``neuron_updates``: every neuron every step when the layer's neurons are
  fused (LIF, or the output integrator), bias added as part of the update;
  0 when its current flows on to a merge or pool (``neuron="none"``);
  ``active_neurons``: those that received synaptic input in the step.
- ``output_spikes``: spikes emitted (0 for the output layer).

One ``kind="neuron"`` row per neuron layer (or read-out) fed by anything
but one fused weight layer: ``neuron_updates`` (every neuron, every step),
``output_spikes``. One ``kind="merge"`` row per merge: ``elementwise_ops``
(one per output element and step; 0 for ``concat``), ``input_events``
(spikes arriving on its event inputs, counted with multiplicity) and
``output_spikes`` (spikes it hands on, with multiplicity).
"""

from __future__ import annotations

import numpy as np
import torch

from snncost.graph.layergraph import LayerGraph
from snncost.graph.nodes import LIFNode, WeightNode
from snncost.sim import kernels as K
from snncost.sim.counts import LayerCounts, RunCounts
from snncost.sim.plan import (
    DensePoolStep,
    MaxPoolStep,
    MergeStep,
    NeuronStep,
    Plan,
    ReadoutStep,
    Stage,
    Value,
    compile_plan,
    neuron_constants,
    plan_for,
)

SPIKE_MAP_BUDGET = 1 << 28  # bytes of the largest [B, T, N] array (int8 spikes, float32 currents) per chunk


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
    plan = plan_for(graph)
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

    chunk = max(1, min(int(batch_size), SPIKE_MAP_BUDGET // max(1, T * max(plan.array_bytes.values()))))
    runner = _Runner(plan, T, record_spikes)
    for start in range(0, B, chunk):
        stop = min(B, start + chunk)
        nb = stop - start
        if inp.encoding == "direct":
            first = x[start:stop].reshape(nb, -1)
        else:
            first = np.ascontiguousarray(x[:, start:stop].reshape(T, nb, -1).transpose(1, 0, 2))
        runner.run_chunk(inp.name, first)

    logits = None
    if runner.logits_parts:
        logits = np.concatenate(runner.logits_parts, axis=0).reshape(B, -1)
    run = RunCounts(
        model="snn",
        timesteps=T,
        batch_size=B,
        layers=runner.layer_counts(B),
        logits=logits,
        labels=None if labels is None else _as_numpy(labels),
    )
    run.extra["encoding"] = inp.encoding
    run.extra["chunk"] = chunk
    if record_spikes:
        run.extra["spikes"] = {
            name: np.concatenate(parts, axis=1).reshape(T, B, *plan.values[name].shape)
            for name, parts in runner.spikes_parts.items()
            if parts
        }
    return run


def _dense(v: Value, store: dict[str, np.ndarray], T: int) -> np.ndarray:
    """A value as float32 ``[B, T, N]``: analog values repeated over T, spikes as their values,
    average-pooled spikes as (sum of the window) / k^2."""
    a = store[v.key]
    if v.kind == "analog":
        return np.broadcast_to(a[:, None, :], (a.shape[0], T, a.shape[1]))
    if v.kind == "current":
        return a
    if v.fold is None:
        return a.astype(np.float32)
    keep = v.fold >= 0
    sums = np.zeros((a.shape[0], T, v.size), np.int32)
    np.add.at(sums, (slice(None), slice(None), v.fold[keep]), a[:, :, keep].astype(np.int32))
    return sums.astype(np.float32) / np.float32(v.divisor)


def _dense_pool(a: np.ndarray, shape: tuple[int, ...], kind: str, k: int) -> np.ndarray:
    """Pooling (kernel == stride, no padding) of ``[..., C*H*W]`` float32 values."""
    lead = a.shape[:-1]
    c, h, w = shape
    v = a.reshape(*lead, c, h, w)[..., : (h // k) * k, : (w // k) * k].reshape(*lead, c, h // k, k, w // k, k)
    if kind == "avg":
        out = (v.sum(axis=(-3, -1), dtype=np.float32) / np.float32(k * k)).astype(np.float32)
    else:
        out = v.max(axis=(-3, -1))
    return np.ascontiguousarray(out, dtype=np.float32).reshape(*lead, -1)


def _per_step_abs(a: np.ndarray) -> np.ndarray:
    """Sum of ``|value|`` per step of an int8 ``[B, T, N]`` spike map (spikes with multiplicity)."""
    return np.abs(a.astype(np.int64)).sum(axis=(0, 2))


class _Runner:
    """Runs a :class:`Plan` chunk by chunk and keeps the per-row totals over the batch."""

    def __init__(self, plan: Plan, T: int, record_spikes: bool) -> None:
        self.plan, self.T, self.record = plan, T, record_spikes
        self.totals = {self._row(s): np.zeros((T, K.N_COUNTS), np.int64) for s in plan.steps if self._row(s)}
        self.logits_parts: list[np.ndarray] = []
        self.spikes_parts: dict[str, list[np.ndarray]] = {n: [] for n in plan.spiking}

    @staticmethod
    def _row(step) -> str:
        """The counts row a step adds to ('' for pools: their work is counted by the consumer)."""
        if isinstance(step, (Stage, MergeStep, NeuronStep, ReadoutStep)):
            return step.node.name
        return ""

    def run_chunk(self, input_name: str, first: np.ndarray) -> None:
        store = {input_name: first}
        nb = first.shape[0]
        handlers = {
            Stage: self._stage,
            MaxPoolStep: self._maxpool,
            DensePoolStep: self._densepool,
            MergeStep: self._merge,
            NeuronStep: self._neuron,
            ReadoutStep: self._readout,
        }
        for step, done in zip(self.plan.steps, self.plan.free_after, strict=True):
            handlers[type(step)](step, store, nb)
            for key in done:
                store.pop(key, None)

    def _keep_spikes(self, name: str, spikes: np.ndarray, store: dict) -> None:
        store[name] = spikes
        if self.record and name in self.spikes_parts:
            self.spikes_parts[name].append(spikes.transpose(1, 0, 2).astype(np.uint8))

    def _stage(self, st: Stage, store: dict, nb: int) -> None:
        T = self.T
        (c, h, w, o, kh, kw, sh, sw, ph, pw, ho, wo) = st.geom
        n_out = st.out_size
        charge, hard, nc = neuron_constants(st.neuron)
        spk_out = np.zeros((nb, T, n_out) if st.mode == 0 else (1, T, 1), np.int8)
        acc_out = np.zeros((nb, n_out) if st.mode == 1 else (1, 1), np.float32)
        cur_out = np.zeros((nb, T, n_out) if st.mode == 2 else (1, T, 1), np.float32)
        counts = np.zeros((nb, T, K.N_COUNTS), np.int64)
        src = store[st.source.key]
        if st.source.kind == "analog":
            K.dense_layer(src, c, h, w, st.wt, st.scale, st.bias, o, kh, kw, sh, sw, ph, pw, ho, wo, T,
                          charge, hard, nc, st.mode, spk_out, acc_out, cur_out, counts)  # fmt: skip
        else:
            K.event_layer(src, st.fkey, st.fx, st.vtab, st.post, c, h, w, st.kwt, st.nzc, st.scale, st.bias, o,
                          kh, kw, sh, sw, ph, pw, ho, wo, charge, hard, nc, st.mode, spk_out, acc_out, cur_out,
                          counts)  # fmt: skip
        self.totals[st.node.name] += counts.sum(axis=0)
        if st.mode == 0:
            self._keep_spikes(st.out_key, spk_out, store)
        elif st.mode == 1:
            self.logits_parts.append((acc_out / np.float32(T)).astype(np.float32))
        else:
            store[st.out_key] = cur_out

    def _maxpool(self, step: MaxPoolStep, store: dict, nb: int) -> None:
        c, h, w, k = step.geom
        pooled = np.empty((nb, self.T, c * (h // k) * (w // k)), np.int8)
        K.maxpool_spikes(store[step.source.key], c, h, w, k, pooled)
        store[step.node.name] = pooled

    def _densepool(self, step: DensePoolStep, store: dict, nb: int) -> None:
        node = step.node
        store[node.name] = _dense_pool(store[step.source.key], step.source.shape, node.kind, int(node.kernel))

    def _merge(self, step: MergeStep, store: dict, nb: int) -> None:
        out = step.out
        if out.kind == "events":
            xs = [store[v.key].astype(np.int16) if step.node.op == "add" else store[v.key] for v in step.sources]
        elif out.kind == "analog":
            xs = [store[v.key] for v in step.sources]
        else:
            xs = [_dense(v, store, self.T) for v in step.sources]
        res = step.rule.apply(xs, lambda arrs: np.concatenate(arrs, axis=-1))
        tot = self.totals[step.node.name]
        for v in step.sources:
            if v.kind == "events":
                tot[:, K.EVENTS] += _per_step_abs(store[v.key])
        if out.kind == "events":
            res = res.astype(np.int8)
            tot[:, K.SPIKES] += _per_step_abs(res)
        else:
            res = np.ascontiguousarray(res, dtype=np.float32)
        if step.rule.elementwise:
            tot[:, K.SYNOPS] += out.size * nb  # element-wise operations (the merge row's own slot)
        store[step.node.name] = res

    def _neuron(self, step: NeuronStep, store: dict, nb: int) -> None:
        cur = np.ascontiguousarray(_dense(step.source, store, self.T), dtype=np.float32)
        charge, hard, nc = neuron_constants(step.node)
        spikes = np.zeros(cur.shape, np.int8)
        counts = np.zeros((nb, self.T, K.N_COUNTS), np.int64)
        K.neuron_layer(cur, charge, hard, nc, spikes, counts)
        self.totals[step.node.name] += counts.sum(axis=0)
        self._keep_spikes(step.node.name, spikes, store)

    def _readout(self, step: ReadoutStep, store: dict, nb: int) -> None:
        cur = _dense(step.source, store, self.T)
        acc = np.zeros((nb, cur.shape[2]), np.float32)
        for t in range(self.T):  # in time order, as the output integrator sums
            acc += cur[:, t]
        self.logits_parts.append((acc / np.float32(self.T)).astype(np.float32))

    # -- rows -----------------------------------------------------------------
    def layer_counts(self, B: int) -> list[LayerCounts]:
        stages = self.plan.stages
        net_format = "int" if all(s.node.number_format == "int" for s in stages) else "float"
        net_bits = max(int(s.node.weight_bits) for s in stages)
        rows = []
        for step in self.plan.steps:
            name = self._row(step)
            if not name:
                continue
            tot = self.totals[name]
            if isinstance(step, Stage):
                rows.append(_stage_counts(step, tot, self.T, B))
            else:
                rows.append(_other_counts(step, tot, self.T, B, net_format, net_bits))
        return rows


def _neuron_fields(node: LIFNode | None) -> dict:
    """The neuron kind a row's updates follow (what the cost model prices them by)."""
    if node is None:
        return {}
    return {"leak": float(node.leak), "charge": node.charge, "reset": node.reset, "reset_value": float(node.reset_value)}


def _stage_counts(st: Stage, tot: np.ndarray, T: int, B: int) -> LayerCounts:
    node: WeightNode = st.node
    analog = st.source.kind == "analog"
    macs = np.full(T, node.real_macs * B if analog else 0, np.int64)
    neuron = {0: "lif", 1: "output", 2: "none"}[st.mode]
    updates = 0 if st.mode == 2 else st.out_size * B
    return LayerCounts(
        name=node.name,
        neuron=neuron,
        input_events=tot[:, K.EVENTS].copy(),
        synaptic_ops=tot[:, K.SYNOPS].copy(),
        synaptic_ops_nonzero=tot[:, K.SYNOPS_NZ].copy(),
        macs=macs,
        neuron_updates=np.full(T, updates, np.int64),
        output_spikes=tot[:, K.SPIKES].copy(),
        active_neurons=tot[:, K.ACTIVE].copy() if st.mode != 2 else np.zeros(T, np.int64),
        analog=analog,
        **_neuron_fields(st.neuron),
        **st.facts,
    )


def _other_counts(step, tot: np.ndarray, T: int, B: int, number_format: str, weight_bits: int) -> LayerCounts:
    """A ``neuron`` row (a neuron layer or read-out fed by a merge or pool) or a ``merge`` row."""
    node = step.node
    shape = tuple(node.out_shape)
    n = int(np.prod(shape))
    zeros = np.zeros(T, np.int64)
    common = {
        "name": node.name,
        "output_shape": shape,
        "weight_count": 0,
        "weight_bits": weight_bits,
        "number_format": number_format,
        "synaptic_ops_nonzero": zeros.copy(),
        "macs": zeros.copy(),
    }
    if isinstance(step, MergeStep):
        return LayerCounts(
            kind="merge", neuron="none", input_shape=shape, merge_op=node.op,
            input_events=tot[:, K.EVENTS].copy(), synaptic_ops=zeros.copy(), neuron_updates=zeros.copy(),
            output_spikes=tot[:, K.SPIKES].copy(), active_neurons=zeros.copy(),
            elementwise_ops=tot[:, K.SYNOPS].copy(), **common,
        )  # fmt: skip
    lif = isinstance(node, LIFNode)
    return LayerCounts(
        kind="neuron", neuron="lif" if lif else "output", input_shape=step.source.shape,
        input_events=zeros.copy(), synaptic_ops=zeros.copy(), neuron_updates=np.full(T, n * B, np.int64),
        output_spikes=tot[:, K.SPIKES].copy() if lif else zeros.copy(),
        active_neurons=np.full(T, n * B, np.int64), **_neuron_fields(node if lif else None), **common,
    )  # fmt: skip


__all__ = ["compile_plan", "encode_poisson", "simulate"]
