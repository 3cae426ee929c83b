"""Lemaire et al. (ICONIP 2022): operations, addressing and SRAM accesses, per layer.

Rules (as the reference implementation, Qualia's ``EnergyEstimationMetric``,
computes them; per inference; ``theta_in`` / ``theta_out`` are the layer's input /
output spikes per inference, summed over the timesteps)::

    E_ram(n, b)  = 1.09e-5 pJ/bit * n * b + 13.2 pJ        one access to a memory of n words of b bits
    E_add, E_mul = Horowitz 45 nm: 8-bit 0.03 / 0.2 pJ, 32-bit 0.1 / 3.1 pJ
                   (a MAC is E_mul + E_add)

``E_ram`` is a least-squares line through Horowitz's 8 KB, 32 KB and 1 MB SRAM
reads (10, 20, 100 pJ per 64-bit read). Every datum is one access, whatever its
width. ``b`` is the memory width ``mem_width``. Each memory has its own size:
the weights, the biases, the membrane potentials, the layer's input and output
maps, and the spike FIFOs (``fifo_size`` words).

Spiking layer, binary input (event-driven). Each input spike reads its weights
and accumulates into its fan-out:

- weights: ``theta_in * C_out * k*k`` reads;
- potentials: ``theta_in * C_out * k*k + T * N_out`` reads and as many writes;
- biases: ``T * N_out`` reads;
- FIFOs: ``theta_in`` input reads and ``theta_out`` output writes;
- operations: ``theta_in * C_out * ceil(k/s)^2`` accumulates (a linear layer:
  ``theta_in * N_out``), ``T * N_out`` per-step updates, and ``theta_out``
  resets; a LIF layer adds ``T * N_out`` leak MACs;
- addressing: ``2 * theta_in`` MACs and ``theta_in * k*k`` adds (conv);
  ``theta_in / N_in * N_out`` adds (linear).

Spiking layer, dense analog input. This is the direct-coded first layer; the
source calls it "hybrid". The input is read once per inference as ``d * N_in``
nonzero values (``d`` the input's density). The layer does ``d`` x the dense
MACs once. It also does ``N_out`` bias adds, ``N_out`` leak multiplies (LIF),
and ``theta_out`` resets. Weight reads and addressing follow the spiking
formulas with ``theta = d * N_in``. Potentials and biases are still charged at
every step, with ``theta = T * d * N_in``.

Formal (ANN) layer, dense:

- operations: ``MACs = C_in * k*k * N_out`` MACs (padding taps included), plus
  ``N_out`` adds;
- memory: ``MACs`` input reads and ``MACs`` weight reads (a linear layer reads
  its ``N_in`` inputs once), ``N_out`` bias reads, and ``N_out`` output writes;
- addressing: ``N_in + N_out + C_out * k*k`` adds (conv), ``N_in * N_out``
  adds (linear).

Split into :class:`LayerEnergy`: ``synaptic_pj`` holds the input-driven
accumulates or MACs. ``neuron_pj`` holds the per-step updates, leak and reset
(the two together are the source's ``ops``). ``memory_pj`` holds potentials,
weights, biases and I/O (the source's ``mem_total``). ``addressing_pj`` is the
source's ``addr``.

Source: E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J. Courtois,
B. Miramond, "An analytical estimation of spiking neural networks energy
efficiency", ICONIP 2022 (LNCS 13623, pp. 574-587, 2023),
doi:10.1007/978-3-031-30105-6_48, arXiv:2210.13107. Reference implementation:
``src/qualia_plugin_snn/postprocessing/EnergyEstimationMetric.py`` of
github.com/LEAT-EDGE/qualia-plugin-snn at commit 15165fe8b9a5 (2026-05-07); its
history back to release 2.0.0 (71391a5, 2023-11-24) was also read. snncost
follows the reference implementation wherever it departs from the paper's
equations, as cited in the implementation's own docstrings:

* Eq. 2.4, linear-layer accumulates: the paper has ``theta_in * N_in * N_out +
  T * N_out``. The implementation uses ``theta_in * N_out + T * N_out +
  theta_out``: one accumulate per output per spike, plus the reset.
* Eqs. 16.3 and 17.2, addressing: the paper has ``theta_in * C_out * k*k``
  (conv) and ``theta_in * N_out`` (linear). The code computes ``theta_in *
  k*k`` and ``(theta_in / N_in) * N_out`` (it passes a spike rate, not a spike
  count). snncost follows the code by default; ``addressing="paper"`` selects
  the paper's terms.
* Since 2024 (commit bcefe7d), potential reads are charged (Eqs. 9 and 10) and
  the per-neuron terms (the ``N_out`` potential access and the bias read) are
  charged at every timestep. Release 2.0.0 charged writes only, once per
  inference.
* ``E_ram``'s constants 1.09e-5 and 13.2 are the least-squares fit through
  sizes in bits with 1 KB = 1000 B (1.0860e-5, 13.214), rounded to three
  significant digits. The 2.0.0 code also keeps, commented out, a fit in bytes
  with 1 KiB = 1024 B (8.2816e-5 pJ/B, 13.2563 pJ). See :func:`fit_sram_line`.
  ``sram_estimation="new"`` is the implementation's alternative ("T. Louis"):
  ``10 pJ / (64 // b)``, several words packed into one 64-bit access of an
  8 KiB bank.

What it leaves out: pooling, flatten and the activation layers themselves
(no cost); spike routing between cores; static and leakage power; off-chip
memory; and any reuse of data in registers, since every datum is one SRAM
access.

Where snncost's mapping departs from the source:

* ``theta_in`` is the replay's ``input_events``: the events this layer
  processed. After a max pool these are the pooled spikes, as in the source.
  When snncost folds an average pool into the events, they are the pre-pool
  spikes. The source would instead see a non-binary input and price the layer
  as hybrid. The reference measures ``theta`` with forward hooks; snncost's
  replay counts are exact per step. ``theta_out`` is the layer's
  ``output_spikes`` (0 for the non-spiking read-out layer, which, as in the
  source, has no reset, no leak and no output FIFO writes).
* Dense analog input: the source measures the input's nonzero fraction ``d``.
  The replay does not count it for an analog layer, so ``d`` is the parameter
  ``analog_input_density`` (default 1.0, a dense image).
* The accumulates come from the source's own shape formulas, not from
  snncost's border-exact ``synaptic_ops``. Borders are ignored, and a strided
  convolution gets ``ceil(k/s)^2`` accumulates per spike but ``k*k`` weight
  reads, as in the source.
* Biases: ``LayerCounts`` does not say whether a layer has a bias. ``bias``
  (default True) says whether bias reads are charged. The per-step bias or
  update adds are charged either way, as in the source.
* ``mem_width`` (required by the source) defaults to each layer's
  ``weight_bits``. The operation energies follow the source's rule: the
  8-bit or 32-bit Horowitz values when ``mem_width`` is 8 or 32, otherwise
  the 32-bit ones ("ICONIP"), unless ``op_estimation`` is given.
  ``fifo_size`` (also required by the source for an SNN) defaults to 1000,
  the value in the plugin's CIFAR-10 example configurations.
* Only conv2d and linear layers exist in snncost. The source's residual
  ``Add`` and 1-D layers are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import LayerCounts, RunCounts

NAME = "lemaire2022"
SOURCE = (
    "E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J. Courtois, B. Miramond, "
    "'An analytical estimation of spiking neural networks energy efficiency', 29th International "
    "Conference on Neural Information Processing (ICONIP 2022), LNCS 13623, pp. 574-587, "
    "Springer 2023, doi:10.1007/978-3-031-30105-6_48, arXiv:2210.13107; energies from "
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014. "
    "Reference implementation: Qualia-Plugin-SNN EnergyEstimationMetric, "
    "https://github.com/LEAT-EDGE/qualia-plugin-snn/blob/15165fe8b9a504b910299f862bcb93f7af0429bf/"
    "src/qualia_plugin_snn/postprocessing/EnergyEstimationMetric.py"
)
DESCRIPTION = (
    "Ops + addressing + per-access SRAM energy linear in memory size (Horowitz 45 nm): "
    "event-driven SNN and dense ANN."
)

#: Horowitz (ISSCC 2014) 45 nm SRAM: (memory size in bits, pJ per 64-bit read) for
#: 8 KB, 32 KB and 1 MB, with 1 KB = 1000 B (the units that give the source's constants).
HOROWITZ_SRAM_POINTS_BITS: tuple[tuple[float, float], ...] = (
    (8_000 * 8, 10.0),
    (32_000 * 8, 20.0),
    (1_000_000 * 8, 100.0),
)
#: The same three reads with 1 KiB = 1024 B, sizes in bytes (the 2.0.0 commented-out fit).
HOROWITZ_SRAM_POINTS_BYTES_KIB: tuple[tuple[float, float], ...] = (
    (8 * 1024, 10.0),
    (32 * 1024, 20.0),
    (1024 * 1024, 100.0),
)
#: The source's SRAM line: pJ per access per bit of memory size, and the intercept (pJ).
SRAM_SLOPE_PJ_PER_BIT = 1.09e-5
SRAM_INTERCEPT_PJ = 13.2
#: The "new" SRAM estimate: a 64-bit access to an 8 KiB bank, 10 pJ, shared by packed words.
SRAM_BUS_BITS = 64
SRAM_BUS_ACCESS_PJ = 10.0
#: Horowitz 45 nm integer add / multiply energies (pJ) per bit width, as the source tabulates them.
OP_ENERGIES_PJ: dict[int, dict[str, float]] = {
    8: {"add": 0.03, "mul": 0.2},
    32: {"add": 0.1, "mul": 3.1},
}
OP_ESTIMATIONS = ("ICONIP", "saturation", "linear", "quadratic")
SRAM_ESTIMATIONS = ("iconip", "new")
#: The source requires ``fifo_size`` for an SNN; 1000 is its CIFAR-10 example configurations' value.
DEFAULT_FIFO_SIZE = 1000


def fit_sram_line(points=HOROWITZ_SRAM_POINTS_BITS) -> tuple[float, float]:
    """Least-squares line ``(slope, intercept)`` through ``(size, pJ)`` points.

    With the default points (sizes in bits, 1 KB = 1000 B) this is
    ``(1.0860e-5, 13.214)``, which the source rounds to ``(1.09e-5, 13.2)``.
    """
    x = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError("fit_sram_line needs at least two distinct memory sizes")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def sram_access_pj(
    words: float,
    bits: int,
    estimation: str | None = "iconip",
    slope_pj_per_bit: float = SRAM_SLOPE_PJ_PER_BIT,
    intercept_pj: float = SRAM_INTERCEPT_PJ,
) -> float:
    """Energy (pJ) of one read or write of one datum in a memory of ``words`` words of ``bits`` bits.

    ``"iconip"`` (the paper): ``slope * words * bits + intercept``.
    ``"new"`` (the implementation's alternative): ``10 / (64 // bits)``,
    independent of the memory's size.
    """
    est = (estimation or "iconip").lower()
    if est not in SRAM_ESTIMATIONS:
        raise ValueError(f"sram_estimation must be one of {SRAM_ESTIMATIONS}, got {estimation!r}")
    if not bits >= 1:
        raise ValueError(f"memory width must be a positive number of bits, got {bits!r}")
    if est == "new":
        per_bus = SRAM_BUS_BITS // int(bits)
        if per_bus < 1:
            raise ValueError(
                f"sram_estimation='new' packs words into 64-bit accesses; {bits} bits do not fit"
            )
        return SRAM_BUS_ACCESS_PJ / per_bus
    if words < 0:
        raise ValueError(f"memory size must be non-negative, got {words!r}")
    return slope_pj_per_bit * words * bits + intercept_pj


def op_energy_pj(bits: int, op: Literal["add", "mul"], estimation: str | None = None) -> float:
    """Energy (pJ) of one ``op`` at ``bits`` bits, by the source's rule.

    ``None``: the tabulated 8- or 32-bit value when ``bits`` is 8 or 32,
    otherwise the 32-bit value. ``"ICONIP"``: always the 32-bit value (the
    paper). ``"saturation"``: the 8-bit value up to 8 bits, the 32-bit one up
    to 32. ``"linear"``: the line through the 8- and 32-bit values.
    ``"quadratic"``: the parabola through ``(0, 0)`` and the 8- and 32-bit
    values.
    """
    if op not in ("add", "mul"):
        raise ValueError(f"op must be 'add' or 'mul', got {op!r}")
    e8, e32 = OP_ENERGIES_PJ[8][op], OP_ENERGIES_PJ[32][op]
    if estimation is None:
        return OP_ENERGIES_PJ.get(int(bits), OP_ENERGIES_PJ[32])[op]
    if estimation == "ICONIP":
        return e32
    if estimation == "saturation":
        for width in sorted(OP_ENERGIES_PJ):
            if bits <= width:
                return OP_ENERGIES_PJ[width][op]
        raise ValueError(f"saturation estimation supports 1 to 32 bits, got {bits}")
    if estimation == "linear":
        slope = (e32 - e8) / (32 - 8)
        return slope * bits + (e8 - slope * 8)
    if estimation == "quadratic":
        # y = a x^2 + b x through (0, 0), (8, e8), (32, e32)
        a = (e32 / 32 - e8 / 8) / (32 - 8)
        b = e8 / 8 - a * 8
        return a * bits * bits + b * bits
    raise ValueError(f"op_estimation must be None or one of {OP_ESTIMATIONS}, got {estimation!r}")


def op_energies(
    bits: int, estimation: str | Mapping[str, str] | None = None
) -> tuple[float, float]:
    """``(E_add, E_mul)`` in pJ; ``estimation`` is one rule for both or ``{"add": ..., "mul": ...}``."""
    if isinstance(estimation, Mapping):
        if set(estimation) != {"add", "mul"}:
            raise ValueError(
                f"op_estimation mapping needs exactly 'add' and 'mul', got {sorted(estimation)}"
            )
        add_rule, mul_rule = estimation["add"], estimation["mul"]
    else:
        add_rule = mul_rule = estimation
    return op_energy_pj(bits, "add", add_rule), op_energy_pj(bits, "mul", mul_rule)


@dataclass(frozen=True)
class LemaireTerms:
    """One layer's energy (pJ per inference) in the source's own fields (``EnergyMetrics``)."""

    name: str
    mem_pot: float
    mem_weights: float
    mem_bias: float
    mem_io: float
    ops_synaptic: float  # accumulates / MACs driven by the inputs
    ops_neuron: float  # per-step update (bias), leak, reset
    addr: float
    mode: Literal["snn", "hybrid", "ann"]

    @property
    def ops(self) -> float:
        return self.ops_synaptic + self.ops_neuron

    @property
    def mem_total(self) -> float:
        return self.mem_pot + self.mem_weights + self.mem_bias + self.mem_io

    @property
    def total(self) -> float:
        return self.mem_total + self.ops + self.addr

    def layer_energy(self) -> LayerEnergy:
        return LayerEnergy(
            name=self.name,
            synaptic_pj=self.ops_synaptic,
            neuron_pj=self.ops_neuron,
            memory_pj=self.mem_total,
            addressing_pj=self.addr,
        )


@dataclass(frozen=True)
class _Geometry:
    c_in: int
    c_out: int
    n_in: int  # input elements per sample
    n_out: int  # output neurons per sample
    taps: int  # kernel taps (k*k; 1 for linear)
    strided_taps: int  # prod(ceil(k/s)); 1 for linear
    dense_macs: int  # C_in * k*k * N_out (N_in * N_out for linear): padding taps included


def _geometry(lc: LayerCounts) -> _Geometry:
    n_in, n_out = int(np.prod(lc.input_shape)), int(np.prod(lc.output_shape))
    if lc.kind == "linear":
        return _Geometry(n_in, n_out, n_in, n_out, 1, 1, n_in * n_out)
    if lc.kind != "conv":
        raise ValueError(f"{lc.name}: unknown layer kind {lc.kind!r}")
    c_in, c_out = int(lc.input_shape[0]), int(lc.output_shape[0])
    kh, kw = (int(k) for k in lc.kernel)
    sh, sw = (int(s) for s in lc.stride)
    taps = kh * kw
    return _Geometry(
        c_in, c_out, n_in, n_out, taps, math.ceil(kh / sh) * math.ceil(kw / sw), c_in * taps * n_out
    )


def _check(name: str, value: float, low: float = 0.0, high: float = math.inf) -> None:
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


def layer_terms(
    lc: LayerCounts,
    *,
    model: Literal["snn", "ann"],
    timesteps: int,
    batch_size: int,
    mem_width: int | None = None,
    fifo_size: int = DEFAULT_FIFO_SIZE,
    op_estimation: str | Mapping[str, str] | None = None,
    sram_estimation: str | None = "iconip",
    bias: bool = True,
    analog_input_density: float = 1.0,
    addressing: Literal["reference", "paper"] = "reference",
) -> LemaireTerms:
    """The source's energy fields for one weight layer (pJ per inference); see the module docstring."""
    if addressing not in ("reference", "paper"):
        raise ValueError(f"addressing must be 'reference' or 'paper', got {addressing!r}")
    _check("analog_input_density", analog_input_density, 0.0, 1.0)
    _check("fifo_size", fifo_size)
    bits = int(lc.weight_bits if mem_width is None else mem_width)
    e_add, e_mul = op_energies(bits, op_estimation)
    e_mac = e_add + e_mul

    def e_ram(words: float) -> float:
        return sram_access_pj(words, bits, sram_estimation)

    g = _geometry(lc)
    conv = lc.kind == "conv"
    e_weights, e_bias = e_ram(lc.weight_count), e_ram(g.c_out)
    e_in, e_out, e_pot, e_fifo = e_ram(g.n_in), e_ram(g.n_out), e_ram(g.n_out), e_ram(fifo_size)

    if model == "ann":
        # formal layer: dense, no spikes, no potentials
        in_reads = g.dense_macs if conv else g.n_in
        addr_adds = (g.n_in + g.n_out + g.c_out * g.taps) if conv else g.n_in * g.n_out
        return LemaireTerms(
            name=lc.name,
            mem_pot=0.0,
            mem_weights=g.dense_macs * e_weights,
            mem_bias=g.n_out * e_bias if bias else 0.0,
            mem_io=in_reads * e_in + g.n_out * e_out,
            ops_synaptic=g.dense_macs * e_mac,
            ops_neuron=g.n_out * e_add,
            addr=addr_adds * e_add,
            mode="ann",
        )

    T, B = int(timesteps), int(batch_size)
    spiking = lc.neuron == "lif"
    theta_out = float(np.sum(lc.output_spikes)) / B if spiking else 0.0
    leak = spiking and float(lc.leak) != 1.0

    def addressing_pj(theta: float) -> float:
        if conv:
            adds = theta * g.taps * (g.c_out if addressing == "paper" else 1)
            return theta * 2 * e_mac + adds * e_add
        fan = theta if addressing == "paper" else theta / g.n_in
        return fan * g.n_out * e_add

    weight_reads_per_spike = g.c_out * g.taps if conv else g.n_out
    if lc.analog:
        # "hybrid": dense non-binary input, computed once over a single timestep with MACs
        theta_step = analog_input_density * g.n_in
        theta_pot = T * theta_step
        synaptic = g.dense_macs * analog_input_density * e_mac
        neuron = g.n_out * e_add + (g.n_out * e_mul if leak else 0.0) + theta_out * e_add
        mode: Literal["snn", "hybrid"] = "hybrid"
    else:
        theta_step = theta_pot = float(np.sum(lc.input_events)) / B
        acc_per_spike = g.c_out * g.strided_taps if conv else g.n_out
        synaptic = theta_step * acc_per_spike * e_add
        neuron = (T * g.n_out * e_mac if leak else 0.0) + (T * g.n_out + theta_out) * e_add
        mode = "snn"
    pot_accesses = theta_pot * weight_reads_per_spike + T * g.n_out  # reads; as many writes
    return LemaireTerms(
        name=lc.name,
        mem_pot=2 * pot_accesses * e_pot,
        mem_weights=theta_step * weight_reads_per_spike * e_weights,
        mem_bias=T * g.n_out * e_bias if bias else 0.0,
        mem_io=(theta_step + theta_out) * e_fifo,
        ops_synaptic=synaptic,
        ops_neuron=neuron,
        addr=addressing_pj(theta_step),
        mode=mode,
    )


def terms(
    counts: RunCounts,
    *,
    bias: bool | Collection[str] = True,
    **params,
) -> list[LemaireTerms]:
    """:func:`layer_terms` for every weight layer of ``counts``.

    ``bias`` is True/False for every layer, or the names of the layers that
    have a bias. Other parameters: ``mem_width``, ``fifo_size``,
    ``op_estimation``, ``sram_estimation``, ``analog_input_density``,
    ``addressing`` (see :func:`layer_terms`).
    """
    if counts.model not in ("snn", "ann"):
        raise ValueError(f"counts.model must be 'snn' or 'ann', got {counts.model!r}")
    if counts.batch_size <= 0:
        raise ValueError(f"counts.batch_size must be positive, got {counts.batch_size}")
    if counts.timesteps <= 0:
        raise ValueError(f"counts.timesteps must be positive, got {counts.timesteps}")
    biased: Callable[[str], bool] = (
        (lambda _name: bool(bias)) if isinstance(bias, bool) else set(bias).__contains__
    )
    return [
        layer_terms(
            lc,
            model=counts.model,
            timesteps=counts.timesteps,
            batch_size=counts.batch_size,
            bias=biased(lc.name),
            **params,
        )
        for lc in counts.layers
    ]


def price(counts: RunCounts, **params) -> list[LayerEnergy]:
    """Energy per inference of each weight layer by Lemaire et al.'s convention.

    Works for a replayed SNN (``counts.model == "snn"``) and for the ANN
    (``"ann"``). Parameters (all optional): ``mem_width`` (bits; default each
    layer's ``weight_bits``), ``fifo_size`` (words, default 1000),
    ``op_estimation`` (None, ``"ICONIP"``, ``"saturation"``, ``"linear"``,
    ``"quadratic"`` or ``{"add": ..., "mul": ...}``), ``sram_estimation``
    (``"iconip"`` or ``"new"``), ``bias`` (bool or the names of the biased
    layers), ``analog_input_density`` (nonzero fraction of a dense analog input,
    default 1.0) and ``addressing`` (``"reference"`` or ``"paper"``).
    """
    return [t.layer_energy() for t in terms(counts, **params)]


__all__ = [
    "DESCRIPTION",
    "HOROWITZ_SRAM_POINTS_BITS",
    "HOROWITZ_SRAM_POINTS_BYTES_KIB",
    "NAME",
    "OP_ENERGIES_PJ",
    "SOURCE",
    "LemaireTerms",
    "fit_sram_line",
    "layer_terms",
    "op_energies",
    "op_energy_pj",
    "price",
    "sram_access_pj",
    "terms",
]
