"""SpikingJelly's ``op_counter`` estimators: ``estimate_compute_energy`` and ``estimate_lemaire_energy``.

SpikingJelly counts the aten ops of one PyTorch forward pass on dense
tensors; a tensor is a *spike* (binary) tensor when all its values are 0 or 1.

``variant="compute"`` (``ComputeEnergyProfiler``): MACs x E_MAC + ACs x E_AC,
Horowitz 45 nm presets fp32 4.6/0.9, fp16 1.5/0.4, int8 0.23/0.03 pJ. A
conv/linear whose input is binary costs ACs = ``conv(x, ones).sum()``, the
border-exact fan-out of the active inputs (the replay's ``synaptic_ops``, zero
weights included); a non-binary input costs MACs over the whole geometry,
padding taps included (``padded_macs`` per pass); the bias is free.
``ACCounter`` also counts the neurons' elementwise add/sub, one AC per element,
or the operands' nonzeros when both are binary: per neuron step IF 3 (charge,
``v - v_th``, reset), LIF 5; while the potential is still all-zero LIF 4, and
a step where potential and input are both all-zero IF 1, LIF 2. The read-out
mean over ``T`` costs ``T - 1`` per output.

``variant="lemaire"`` (``LemaireEnergyProfiler``): E_add = 0.1, E_mul = 3.1 pJ
(a MAC is E_mul + E_add) whatever the precision, which sets only the element
size (4/2/1 bytes). The sum of:

- ops: (SynOps + ACs + state adds/compares) x E_add + (MACs + state
  multiplies) x (E_mul + E_add). ``SynOpCounter`` and ``ACCounter`` both count
  a spike-driven conv/linear, so its ACs are charged twice. Neuron state ops
  per neuron step (``NeuronStateCounter``): IF 4 adds/compares, LIF 6 + 1 divide.
- addressing, per conv/linear call: binary input = nnz x out_features (linear)
  or nnz x out_channels x kernel (conv, plus 2 nnz MAC addresses); non-binary
  = input + output elements (+ out_channels x kernel for a conv). Accumulator
  addresses cost E_add, MAC addresses E_mul + E_add.
- memory: bytes x :func:`memory_cost_per_byte` of their buffer, piecewise
  linear through (0, 0), (8 KiB, 2.5), (32 KiB, 5), (1 MiB, 25) pJ/byte and
  clamped at 1 MiB. Per conv/linear call, a dense input reads every input,
  parameter and output byte once; a sparse one (binary, or at least half
  zeros) reads the nonzero inputs and nnz x out_channels x kernel weights
  (plus a bias per written output) and writes the output sparse when it is
  half zeros. The input-read, output-write and parameter-read buffers are the
  largest per-call byte count of any layer. Potentials, per neuron step, with
  ``a`` the nonzero input currents (all ``N`` unless half zeros) and ``r`` the
  spikes (likewise): IF reads ``a + 2N + r``, writes ``a + N + r``; LIF
  ``6N + a + r`` and ``4N + a + r`` elements, in a buffer of one state tensor.
  SpikingJelly's state tracking misses every neuron layer after the first at
  its first step (single-step mode) or entirely (multi-step); reproduced by
  default, ``state_tracking="complete"`` counts them.

Per inference here means SpikingJelly run on one sample whose events at each
step are the replay's batch mean (sparsity tests and buffers use that sample).
Left out: batch norm (folded), pools (``avg_pool2d`` costs ``k^2 - 1`` ACs per
output in SpikingJelly; pools are not weight layers), other non-weight ops.

Mapping snncost's replay onto it, and departures:

- snncost's soft-reset LIF ``h = leak u + I`` is ``IFNode(v_reset=None)`` for
  ``leak = 1`` and ``LIFNode(tau=1/(1-leak), decay_input=False, v_reset=None)``
  otherwise (torch backend, eval); the neuron rules above were traced from
  them (an input current is all-zero when ``active_neurons`` is 0). The
  output layer's read-out is the mean over ``T``.
- The direct-coded first layer runs every step; its input is taken dense
  (ANN counts: its ``nonzero_inputs``).
- SpikingJelly sees an average-pooled spike map as non-binary (MACs, dense
  addressing) unless it is all zero; the replay folds the pool and counts the
  pre-pool spikes. Layers named in ``nonbinary_inputs`` (see
  :func:`params_from_graph`; also for signed Poisson input) are priced so,
  with the pre-pool spikes as an upper bound on the pooled map's nonzeros
  (memory only); by default every event-driven layer is a spike layer.
- Nonzero pre-activations (sparse writes, ``a``) are ``active_neurons``; with
  a bias (``bias=``; the counts do not record it) they are dense.
- The reset operand ``spike * v_th`` reads as sparse when at least half
  zeros; for ``v_th = 1`` SpikingJelly sees it binary, always sparse (they
  differ only in steps where most neurons fire).
- ``step_mode="s"`` (SpikingJelly's default) calls each layer once per step,
  ``"m"`` once over all ``T`` steps: bigger buffers, weights read once, a
  conv's dense ``out_channels x kernel`` addresses counted once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import LayerCounts, RunCounts

NAME = "spikingjelly"
SOURCE = (
    "Fang et al., SpikingJelly: An open-source machine learning infrastructure platform for "
    "spike-based intelligence, Science Advances 9(40), eadi1480 (2023); its op_counter "
    "estimate_compute_energy (Horowitz, ISSCC 2014 presets) and estimate_lemaire_energy (after "
    "Lemaire et al., ICONIP 2022). Read: github.com/fangwei123456/spikingjelly @ "
    "afb132264a8cbe38d0f221dcef04053e6ba134d3, spikingjelly/activation_based/op_counter/"
    "{compute_energy,ac,mac,synop,base,lemaire_addressing,neuron_state,_sparse_memory}.py, "
    "analytical_energy/core.py; test/activation_based/test_op_counter_compute_energy.py, "
    "test_op_counter_snn_energy.py"
)
DESCRIPTION = (
    "SpikingJelly op_counter: MAC/AC x Horowitz presets (compute), or Lemaire-style ops + "
    "addressing + buffer-size-priced memory (lemaire)"
)

# (E_MAC, E_AC) pJ, ComputeEnergyCostConfig presets (Horowitz 2014, 45 nm)
COMPUTE_PRESETS: dict[str, tuple[float, float]] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
    "int8": (0.23, 0.03),
}
# element size of the runtime tensors (bytes) for the Lemaire memory terms
ELEMENT_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "int8": 1}
# LemaireEnergyCostConfig defaults
LEMAIRE_E_ADD_PJ = 0.1
LEMAIRE_E_MUL_PJ = 3.1
_ACCESS_WIDTH_BYTES = 4.0
MEMORY_BREAKPOINTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (8.0 * 1024, 10.0 / _ACCESS_WIDTH_BYTES),
    (32.0 * 1024, 20.0 / _ACCESS_WIDTH_BYTES),
    (1024.0 * 1024, 100.0 / _ACCESS_WIDTH_BYTES),
)
SPARSE_ZERO_RATIO = 0.5  # LemaireEnergyConfig.sparse_zero_ratio_threshold

# ACCounter: elementwise add/sub per neuron per step (torch backend)
IF_NEURON_ACS = 3
LIF_NEURON_ACS = 5
LIF_FIRST_STEP_ACS = 4
# NeuronStateCounter projections per neuron per step: (state_acc_like, state_mac_like)
IF_STATE_OPS = (4, 0)
LIF_STATE_OPS = (6, 1)

PRECISIONS = tuple(COMPUTE_PRESETS)
VARIANTS = ("compute", "lemaire")


# -- the source's formulas, one call at a time ---------------------------------


def memory_cost_per_byte(
    nbytes: float, breakpoints: tuple[tuple[float, float], ...] = MEMORY_BREAKPOINTS
) -> float:
    """pJ per byte accessed in a buffer of ``nbytes``: piecewise linear, clamped to the breakpoints."""
    xs = [float(x) for x, _ in breakpoints]
    ys = [float(y) for _, y in breakpoints]
    return float(np.interp(min(max(float(nbytes), xs[0]), xs[-1]), xs, ys))


def compute_energy_pj(macs: float, acs: float, precision: str = "fp32") -> float:
    """``estimate_compute_energy``'s total: ``macs x E_MAC + acs x E_AC`` of a preset."""
    e_mac, e_ac = _preset(precision)
    return macs * e_mac + acs * e_ac


def linear_addressing(
    in_numel: float, out_numel: float, out_features: int, spike_nnz: float | None = None
) -> dict:
    """Lemaire addresses of one linear call: ``spike_nnz`` active inputs if the input is binary, else dense."""
    if spike_nnz is not None:
        return {"acc_addr": spike_nnz * out_features, "mac_addr": 0}
    return {"acc_addr": in_numel + out_numel, "mac_addr": 0}


def conv_addressing(
    in_numel: float,
    out_numel: float,
    out_channels: int,
    kernel_volume: int,
    spike_nnz: float | None = None,
    groups: int = 1,
) -> dict:
    """Lemaire addresses of one conv call (binary input: ``spike_nnz`` active inputs)."""
    if spike_nnz is not None:
        return {
            "acc_addr": spike_nnz * (out_channels // groups) * kernel_volume,
            "mac_addr": 2 * spike_nnz,
        }
    return {"acc_addr": in_numel + out_numel + out_channels * kernel_volume, "mac_addr": 0}


def layer_call_bytes(
    in_numel: float,
    out_numel: float,
    param_count: int,
    element_bytes: int,
    *,
    in_nnz: float | None = None,
    out_nnz: float | None = None,
    fan_out: int = 1,
    bias_count: int = 0,
) -> tuple[float, float, float]:
    """``(read_in, write_out, read_params)`` bytes of one conv/linear forward-hook call.

    ``in_nnz``/``out_nnz``: nonzeros of a *sparse* input/output (None:
    dense). A dense input reads every input, parameter (weights + biases)
    and output byte; a sparse input reads ``in_nnz`` inputs and
    ``in_nnz x fan_out`` weights (``fan_out`` = out_channels x kernel; out
    features for a linear) plus a bias per written output (``out_nnz`` if
    the output is sparse, else ``out_numel``). ``param_count`` counts weights
    only; ``bias_count`` the biases.
    """
    e = element_bytes
    if in_nnz is None:
        return in_numel * e, out_numel * e, (param_count + bias_count) * e
    written = out_numel if out_nnz is None else out_nnz
    params = in_nnz * fan_out * e + (written * e if bias_count else 0.0)
    return in_nnz * e, written * e, params


def neuron_potential_bytes(
    neurons: float,
    element_bytes: int,
    *,
    leaky: bool,
    sparse_input_nnz: float | None = None,
    sparse_spikes: float | None = None,
) -> tuple[float, float]:
    """``(read, write)`` potential bytes of one neuron-layer step (``NeuronStateCounter``).

    ``sparse_input_nnz``: nonzero input currents when the input is sparse
    (None: dense); ``sparse_spikes``: spikes when the reset operand is sparse.
    """
    n = neurons
    a = n if sparse_input_nnz is None else sparse_input_nnz
    r = n if sparse_spikes is None else sparse_spikes
    if leaky:
        return (6 * n + a + r) * element_bytes, (4 * n + a + r) * element_bytes
    return (a + 2 * n + r) * element_bytes, (a + n + r) * element_bytes


# -- pricing a replay ------------------------------------------------------------


@dataclass
class _Layer:
    """One weight layer's events per step, for the mean sample (batch-summed counts / batch)."""

    lc: LayerCounts
    binary: np.ndarray  # is the input tensor binary at this step (spikes, or all zeros)
    dense_macs: np.ndarray  # MACs SpikingJelly counts if the call's input is non-binary
    acs: np.ndarray  # ACs it counts if the call's input is binary
    in_nnz: np.ndarray  # nonzero inputs
    pre_nnz: np.ndarray  # nonzero pre-activations (the neuron's input current)
    spikes: np.ndarray
    bias: bool

    @property
    def out_channels(self) -> int:
        return int(self.lc.output_shape[0])

    @property
    def kernel_volume(self) -> int:
        return int(np.prod(self.lc.kernel)) if self.lc.kind == "conv" else 1

    @property
    def silent(self) -> np.ndarray:
        """Steps whose pre-activation is all zeros over the batch (an all-zero, binary tensor)."""
        return self.pre_nnz == 0


def _preset(precision: str) -> tuple[float, float]:
    if precision not in COMPUTE_PRESETS:
        raise ValueError(f"precision = {precision!r}: choose one of {PRECISIONS}")
    return COMPUTE_PRESETS[precision]


def _view(lc: LayerCounts, batch: int, nonbinary: bool, bias: bool) -> _Layer:
    def f(a) -> np.ndarray:
        return np.asarray(a, dtype=float) / batch

    steps = lc.timesteps
    inputs, neurons = float(lc.inputs), float(lc.neurons)
    zeros = np.zeros(steps)
    if lc.analog:
        passes = f(lc.macs) / lc.real_macs if lc.real_macs else zeros
        nnz = f(lc.nonzero_inputs) if lc.nonzero_inputs is not None else passes * inputs
        binary, dense_macs, acs = np.zeros(steps, bool), passes * lc.padded_macs, zeros
    elif nonbinary:
        events = f(lc.input_events)
        nnz = np.minimum(events, inputs)
        binary, dense_macs, acs = events == 0, np.full(steps, float(lc.padded_macs)), zeros
    else:
        nnz = f(lc.input_events)
        binary, dense_macs, acs = np.ones(steps, bool), zeros, f(lc.synaptic_ops)
    if bias or lc.active_neurons is None:
        pre_nnz = np.full(steps, neurons)
    else:
        pre_nnz = f(lc.active_neurons)
    spikes = f(lc.output_spikes) if lc.neuron == "lif" else zeros
    return _Layer(lc, binary, dense_macs, acs, nnz, pre_nnz, spikes, bias)


def _is_sparse(nnz: float, numel: float, enabled: bool, threshold: float) -> bool:
    """``is_sparse_access_tensor`` on a tensor with ``nnz`` nonzeros of ``numel`` (non-binary)."""
    return enabled and numel > 0 and 1.0 - nnz / numel >= threshold


def _calls(steps: int, step_mode: str) -> list[slice]:
    """The steps each forward call of a conv/linear covers."""
    return [slice(t, t + 1) for t in range(steps)] if step_mode == "s" else [slice(0, steps)]


def _synaptic_counts(layer: _Layer, step_mode: str) -> tuple[float, float]:
    """``(MACs, ACs)`` of the layer: a call's input is binary only if it is binary at all its steps."""
    macs = acs = 0.0
    for sl in _calls(layer.lc.timesteps, step_mode):
        if layer.binary[sl].all():
            acs += float(layer.acs[sl].sum())
        else:
            macs += float(layer.dense_macs[sl].sum())
    return macs, acs


def _neuron_acs(layer: _Layer, timesteps: int) -> float:
    """ACCounter's neuron and read-out adds of one inference.

    Adding two binary tensors costs their nonzeros: a step whose input current
    and potential are both all-zero costs IF 1 (the ``v - v_th``), LIF 2 per
    neuron; a LIF whose potential is still all-zero, 4.
    """
    lc = layer.lc
    n = float(lc.neurons)
    if lc.neuron == "output":
        return (timesteps - 1) * n
    if lc.neuron != "lif":
        return 0.0
    total, v_zero = 0.0, True
    for silent in layer.silent:
        if lc.leak == 1.0:
            per = 1 if (v_zero and silent) else IF_NEURON_ACS
        else:
            per = 2 if (v_zero and silent) else LIF_FIRST_STEP_ACS if v_zero else LIF_NEURON_ACS
        total += per * n
        v_zero = v_zero and bool(silent)
    return total


def price(
    counts: RunCounts,
    precision: str = "fp32",
    variant: str = "compute",
    *,
    step_mode: str = "s",
    bias: bool | Collection[str] = False,
    nonbinary_inputs: Collection[str] = (),
    state_tracking: str = "spikingjelly",
    e_add_pj: float = LEMAIRE_E_ADD_PJ,
    e_mul_pj: float = LEMAIRE_E_MUL_PJ,
    sparse_zero_ratio_threshold: float = SPARSE_ZERO_RATIO,
    sparse_memory: bool = True,
) -> list[LayerEnergy]:
    """pJ per inference of each weight layer as SpikingJelly's estimator would report it.

    ``precision``: ``fp32``/``fp16``/``int8`` (compute presets; element size
    in the Lemaire memory terms). ``variant``: ``compute`` (MAC/AC only) or
    ``lemaire`` (ops + addressing + memory, E_add/E_mul = ``e_add_pj``/
    ``e_mul_pj``). ``bias``: whether the layers have biases (True/False, or the
    names of those that do). ``nonbinary_inputs``: event-driven layers whose
    input SpikingJelly sees as non-binary (after an average pool, signed
    spikes), priced as dense MAC layers. ``state_tracking``: ``spikingjelly``
    reproduces the source's neuron-state tracking, which misses the neuron
    layers after the first one at their first step (``step_mode="s"``) or
    entirely (``"m"``); ``complete`` counts them. ``step_mode``, ``sparse_*``:
    the source's step mode and ``LemaireEnergyConfig`` fields.
    """
    _preset(precision)
    if variant not in VARIANTS:
        raise ValueError(f"variant = {variant!r}: choose one of {VARIANTS}")
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode = {step_mode!r}: choose 's' (per step) or 'm' (multi-step)")
    if state_tracking not in ("spikingjelly", "complete"):
        raise ValueError(
            f"state_tracking = {state_tracking!r}: choose 'spikingjelly' or 'complete'"
        )
    batch = max(int(counts.batch_size), 1)
    timesteps = int(counts.timesteps)
    nonbinary = set(nonbinary_inputs)
    unknown = nonbinary - {lc.name for lc in counts.layers}
    if unknown:
        raise ValueError(f"nonbinary_inputs names unknown layers: {sorted(unknown)}")
    biased = set() if isinstance(bias, bool) else set(bias)
    layers = [
        _view(lc, batch, lc.name in nonbinary, bias is True or lc.name in biased)
        for lc in counts.layers
    ]
    if variant == "compute":
        e_mac, e_ac = COMPUTE_PRESETS[precision]
        out = []
        for ly in layers:
            macs, acs = _synaptic_counts(ly, step_mode)
            out.append(
                LayerEnergy(
                    name=ly.lc.name,
                    synaptic_pj=macs * e_mac + acs * e_ac,
                    neuron_pj=_neuron_acs(ly, timesteps) * e_ac,
                )
            )
        return out
    return _price_lemaire(
        layers,
        timesteps,
        ELEMENT_BYTES[precision],
        step_mode,
        state_tracking == "complete",
        e_add_pj,
        e_mul_pj,
        sparse_zero_ratio_threshold,
        sparse_memory,
    )


def _tracked_steps(lc: LayerCounts, first: bool, step_mode: str, complete: bool) -> range:
    """Steps at which NeuronStateCounter sees the layer's potential as state.

    Its state is found from module memories and weak references to earlier
    state outputs; the first neuron layer's ``full_like`` is registered, but a
    later layer's is not (the earlier layers' states are alive), so its
    potential is unrecognised until the module stores it: after the first
    step in single-step mode, never within a multi-step call.
    """
    if complete or first:
        return range(lc.timesteps)
    return range(1, lc.timesteps) if step_mode == "s" else range(0)


def _price_lemaire(layers, timesteps, e, step_mode, complete, e_add, e_mul, threshold, sparse):
    e_mac = e_mul + e_add
    buf = {"in": 0.0, "out": 0.0, "params": 0.0, "pot": 0.0}
    rows = []
    first_lif = next((i for i, ly in enumerate(layers) if ly.lc.neuron == "lif"), None)
    for i, ly in enumerate(layers):
        lc = ly.lc
        inputs, neurons = float(lc.inputs), float(lc.neurons)
        acc_addr = mac_addr = 0.0
        b = {"in": 0.0, "out": 0.0, "params": 0.0, "pot": 0.0}
        for sl in _calls(lc.timesteps, step_mode):
            steps = sl.stop - sl.start
            nnz, pre = float(ly.in_nnz[sl].sum()), float(ly.pre_nnz[sl].sum())
            in_numel, out_numel = inputs * steps, neurons * steps
            binary = bool(ly.binary[sl].all())
            spike_nnz = nnz if binary else None
            if lc.kind == "conv":
                addr = conv_addressing(
                    in_numel, out_numel, ly.out_channels, ly.kernel_volume, spike_nnz
                )
            else:
                addr = linear_addressing(in_numel, out_numel, ly.out_channels, spike_nnz)
            acc_addr += addr["acc_addr"]
            mac_addr += addr["mac_addr"]
            in_sparse = sparse and (binary or _is_sparse(nnz, in_numel, True, threshold))
            out_sparse = _is_sparse(pre, out_numel, sparse, threshold)
            r_in, w_out, r_par = layer_call_bytes(
                in_numel,
                out_numel,
                lc.weight_count,
                e,
                in_nnz=nnz if in_sparse else None,
                out_nnz=pre if out_sparse else None,
                fan_out=ly.out_channels * ly.kernel_volume,
                bias_count=ly.out_channels if ly.bias else 0,
            )
            for key, val in (("in", r_in), ("out", w_out), ("params", r_par)):
                b[key] += val
                buf[key] = max(buf[key], val)
        state_acc = state_mul = 0.0
        if lc.neuron == "lif":
            leaky = lc.leak != 1.0
            acc_per, mul_per = LIF_STATE_OPS if leaky else IF_STATE_OPS
            tracked = _tracked_steps(lc, i == first_lif, step_mode, complete)
            for t in tracked:
                pre, s = float(ly.pre_nnz[t]), float(ly.spikes[t])
                rd, wr = neuron_potential_bytes(
                    neurons,
                    e,
                    leaky=leaky,
                    sparse_input_nnz=pre if _is_sparse(pre, neurons, sparse, threshold) else None,
                    sparse_spikes=s if _is_sparse(s, neurons, sparse, threshold) else None,
                )
                b["pot"] += rd + wr
                state_acc += acc_per * neurons
                state_mul += mul_per * neurons
            if len(tracked):
                buf["pot"] = max(buf["pot"], neurons * e)
        macs, acs = _synaptic_counts(ly, step_mode)
        readout = (timesteps - 1) * neurons if lc.neuron == "output" else 0.0
        rows.append(
            (
                lc.name,
                # SynOpCounter and ACCounter both count a spike-driven conv/linear
                2.0 * acs * e_add + macs * e_mac,
                (state_acc + readout) * e_add + state_mul * e_mac,
                acc_addr * e_add + mac_addr * e_mac,
                b,
            )
        )
    cost = {k: memory_cost_per_byte(v) for k, v in buf.items()}
    return [
        LayerEnergy(
            name=name,
            synaptic_pj=ops,
            neuron_pj=neuron,
            memory_pj=sum(b[k] * cost[k] for k in b),
            addressing_pj=addressing,
        )
        for name, ops, neuron, addressing, b in rows
    ]


def params_from_graph(graph) -> dict:
    """``bias`` and ``nonbinary_inputs`` for :func:`price`, read from a :class:`~snncost.graph.LayerGraph`.

    A weight layer's input is non-binary for SpikingJelly when an average
    pool lies between it and the previous spiking layer.
    """
    from snncost.graph.nodes import LIFNode, PoolNode, WeightNode

    def avg_pooled(name: str) -> bool:
        frontier, seen = list(graph.predecessors(name)), set()
        while frontier:
            node = frontier.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            if isinstance(node, PoolNode) and node.kind == "avg":
                return True
            if not isinstance(node, (LIFNode, WeightNode)):
                frontier.extend(graph.predecessors(node.name))
        return False

    weights = [n for n in graph if isinstance(n, WeightNode)]
    return {
        "bias": [n.name for n in weights if n.bias is not None],
        "nonbinary_inputs": [n.name for n in weights if avg_pooled(n.name)],
    }
