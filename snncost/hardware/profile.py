"""Hardware profiles: the energy and latency price list the cost model reads.

A :class:`HardwareProfile` is a validated, immutable description of one target
(a CMOS process table such as Horowitz 45 nm, or a neuromorphic chip such as
Loihi). Every number carries a ``source`` that must be a key of the profile's
``references`` mapping, so a profile cannot hold an uncited figure.

Units, everywhere in this module:

* energy in picojoules (pJ),
* time in seconds, clock in hertz,
* sizes in bytes, data volumes in bits.

The rules the simulator and the reports rely on (each is repeated in the
docstring of the method that implements it, and in ``docs/hardware_profiles.md``):

* **Bit-width rule.** Arithmetic energies are tabulated at a few bit widths per
  ``(op, number_format)``. Other widths are derived with the scaling law
  *adds scale linearly with bits, multiplies quadratically*: between two table
  points interpolate linearly in ``bits**p`` (``p = 1`` for add, ``2`` for mult);
  outside the table scale the nearest point by ``(bits / b_nearest)**p``.
* **MAC** = mult + add (or the explicit ``mac_pj`` override).
* **AC** (synaptic accumulate) = ``synaptic_op_pj`` when the chip publishes a
  per-event figure, else one add.
* **Neuron update** = ``neuron_update_pj`` when published, else one multiply
  (leak, only if leaky) + one add (integrate) + one add (threshold compare /
  reset) at the state width.
* **Memory** = bits moved x pJ/bit of the smallest SRAM level that holds the
  array, else of the DRAM level.
* **Latency** per timestep = ``ceil(syn / syn_per_cycle) + ceil(macs /
  macs_per_cycle) + ceil(updates / updates_per_cycle) + overhead`` cycles
  (``max`` instead of ``+`` for the three terms when ``overlap`` is set), at
  least ``min_timestep_cycles``; the sum over timesteps divided by ``clock_hz``.

This module never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    model_validator,
)

from snncost.hardware.yamlfile import ProfileError, read_model_file

__all__ = [
    "ChipLimits",
    "Energy",
    "HardwareProfile",
    "MemoryLevel",
    "NumberFormat",
    "OpEnergy",
    "ProfileError",
    "TimingModel",
    "UnsupportedOperationError",
]

NumberFormat = Literal["int", "float"]
Dataflow = Literal["no-reuse", "weight-stationary", "output-stationary", "neuromorphic"]
OpKind = Literal["add", "mult"]
_NUMBER_FORMATS = ("int", "float")
#: Exponent of the bit-width scaling law per operation (energy ~ bits**p).
_SCALING_EXPONENT = {"add": 1, "mult": 2}
_SIGNIFICANT_DIGITS = 12

NonEmptyStr = Annotated[str, Field(min_length=1)]


class UnsupportedOperationError(ProfileError):
    """The profile has no way to price the requested operation.

    For example a MAC on a neuromorphic chip that is characterised only per
    synaptic event. Use :meth:`HardwareProfile.supports` to test first.
    """


def _clean(x: float) -> float:
    """Round to 12 significant digits: 3.7 + 0.9 is reported as 4.6, not 4.6000000000000005.

    Rounding to significant digits is monotone, so orderings between energies
    are preserved, and positive values stay positive.
    """
    if x == 0.0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{_SIGNIFICANT_DIGITS}g}")


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        if isinstance(bits, float | np.floating) and float(bits).is_integer():
            bits = int(bits)
        else:
            raise ValueError(f"bits must be a positive integer, got {bits!r}")
    bits = int(bits)
    if bits <= 0:
        raise ValueError(f"bits must be a positive integer, got {bits}")
    return bits


def _check_format(number_format: Any) -> str:
    if number_format not in _NUMBER_FORMATS:
        raise ValueError(f"number_format must be 'int' or 'float', got {number_format!r}")
    return number_format


class _Strict(BaseModel):
    """Base: unknown keys are errors (a typo in a YAML file fails), instances are immutable.

    ``allow_inf_nan=False``: ``.inf`` / ``.nan`` are rejected in every float field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Energy(_Strict):
    """One cited energy figure, in pJ (e.g. a chip's energy per synaptic event)."""

    value: NonNegativeFloat = Field(description="Energy in picojoules (pJ).")
    source: NonEmptyStr = Field(description="Key of the profile's `references`.")
    notes: str = Field(default="", description="Operating point, derivation, caveats.")


class OpEnergy(_Strict):
    """Energy of one arithmetic operation at one bit width and number format."""

    op: OpKind
    number_format: NumberFormat
    bits: PositiveInt
    energy_pj: NonNegativeFloat = Field(description="Energy per operation in pJ.")
    source: NonEmptyStr
    notes: str = ""


class MemoryLevel(_Strict):
    """One level of the memory hierarchy with its access energy per bit.

    ``size_bytes`` is the capacity; ``None`` means unbounded (DRAM, or a
    neuromorphic system whose on-chip capacity grows with its chip count).
    """

    name: NonEmptyStr = Field(description="Unique within the profile, e.g. 'sram_8KB', 'dram'.")
    kind: Literal["sram", "dram"]
    size_bytes: PositiveInt | None = Field(description="Capacity in bytes; null = unbounded.")
    read_pj_per_bit: NonNegativeFloat
    write_pj_per_bit: NonNegativeFloat
    source: NonEmptyStr
    notes: str = ""


class TimingModel(_Strict):
    """Throughput model used to turn per-timestep operation counts into seconds.

    Per timestep the chip spends ``ceil(syn / synaptic_ops_per_cycle) + ceil(macs
    / macs_per_cycle) + ceil(updates / neuron_updates_per_cycle) +
    timestep_overhead_cycles`` cycles; with ``overlap`` the three ``ceil`` terms
    run concurrently and their ``max`` is taken instead of their sum. A timestep
    lasts at least ``min_timestep_cycles`` (a real-time tick). Throughputs may be
    fractional (derived "clock-equivalents" of asynchronous chips).
    """

    clock_hz: PositiveFloat = Field(description="Cycles per second (or equivalent).")
    synaptic_ops_per_cycle: PositiveFloat = Field(description="Parallel accumulate units.")
    macs_per_cycle: PositiveFloat | None = Field(
        description="Parallel MAC units; null = the chip does not perform MACs."
    )
    neuron_updates_per_cycle: PositiveFloat
    timestep_overhead_cycles: NonNegativeFloat = 0.0
    overlap: bool = Field(
        default=False,
        description="True: synaptic, MAC and neuron phases run concurrently (max, not sum).",
    )
    min_timestep_cycles: NonNegativeFloat = Field(
        default=0.0, description="A timestep lasts at least this many cycles (real-time tick)."
    )
    source: NonEmptyStr
    notes: str = ""


class ChipLimits(_Strict):
    """What fits on one chip: weight precision, neurons, fan-in and synapse memory per core, cores.

    A neuromorphic chip stores every neuron's synapses in its core
    (no weight sharing across a convolution's positions is assumed), so a
    layer needs ``max(ceil(neurons / neurons_per_core),
    ceil(neurons x fan_in x weight_bits / 8 / synapse_memory_bytes_per_core))``
    cores. ``None`` = no published limit.
    """

    max_weight_bits: PositiveInt | None = Field(default=None, description="Widest integer weight.")
    integer_weights_only: bool = Field(default=True, description="No float weights on chip.")
    neurons_per_core: PositiveInt | None = None
    fan_in_per_core: PositiveInt | None = Field(
        default=None, description="Distinct inputs (axons) one neuron's core accepts."
    )
    synapse_memory_bytes_per_core: PositiveInt | None = None
    cores_per_chip: PositiveInt | None = None
    source: NonEmptyStr
    notes: str = ""


def _table_key(op: str, number_format: str) -> tuple[str, str]:
    return (op, number_format)


class HardwareProfile(_Strict):
    """A validated hardware target: cited energies, memory hierarchy and timing.

    Build one from YAML (:func:`snncost.hardware.load_profile`,
    :meth:`from_yaml`) or directly in Python. Invalid profiles raise
    ``pydantic.ValidationError`` (the loader wraps it in :class:`ProfileError`).
    """

    name: NonEmptyStr
    description: str = ""
    technology_nm: PositiveFloat | None = None
    references: dict[NonEmptyStr, NonEmptyStr] = Field(
        description="Citation key -> full citation. Every `source` must be a key here."
    )
    arithmetic: tuple[OpEnergy, ...] = ()
    synaptic_op_pj: Energy | None = Field(
        default=None, description="Per synaptic event; replaces the CMOS AC (one add) estimate."
    )
    neuron_update_pj: Energy | None = Field(
        default=None, description="Per (active) neuron update; replaces the CMOS estimate."
    )
    neuron_update_inactive_pj: Energy | None = Field(
        default=None,
        description="Per update of a neuron that received no input (chips that publish it).",
    )
    spike_pj: Energy | None = Field(
        default=None,
        description="Per emitted spike message (routing), if published; None = not modelled.",
    )
    mac_pj: Energy | None = Field(default=None, description="Explicit MAC energy override.")
    memory: tuple[MemoryLevel, ...] = Field(min_length=1)
    timing: TimingModel
    default_bits: PositiveInt = Field(
        description="Native weight/state width assumed when a model does not set one."
    )
    default_number_format: NumberFormat
    state_bits: PositiveInt = Field(
        default=32,
        description="Membrane / partial-sum width (bits) of integer (quantized) models.",
    )
    default_dataflow: Dataflow = Field(
        default="weight-stationary",
        description="Dataflow used when evaluate() is given none (see docs/cost_model.md).",
    )
    limits: ChipLimits | None = Field(
        default=None, description="A chip's capacity limits (reports say whether a model fits)."
    )

    _tables: dict[tuple[str, str], list[tuple[int, float]]] = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ validation
    @model_validator(mode="after")
    def _check_consistency(self) -> HardwareProfile:
        problems: list[str] = []
        known = sorted(self.references)

        def check_source(where: str, key: str) -> None:
            if key not in self.references:
                problems.append(
                    f"{where}.source: {key!r} is not a key of references "
                    f"(known keys: {', '.join(known) or 'none'})"
                )

        for i, entry in enumerate(self.arithmetic):
            check_source(f"arithmetic[{i}]", entry.source)
        for field in (
            "synaptic_op_pj",
            "neuron_update_pj",
            "neuron_update_inactive_pj",
            "spike_pj",
            "mac_pj",
        ):
            value = getattr(self, field)
            if value is not None:
                check_source(field, value.source)
        for i, level in enumerate(self.memory):
            check_source(f"memory[{i}]", level.source)
        check_source("timing", self.timing.source)
        if self.limits is not None:
            check_source("limits", self.limits.source)

        names = [level.name for level in self.memory]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"memory: duplicate level name(s) {', '.join(duplicates)}")

        seen: dict[tuple[str, str, int], int] = {}
        tables: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for i, entry in enumerate(self.arithmetic):
            key3 = (entry.op, entry.number_format, entry.bits)
            if key3 in seen:
                problems.append(
                    f"arithmetic[{i}]: duplicate entry for {entry.op} "
                    f"{entry.number_format} {entry.bits}-bit (also arithmetic[{seen[key3]}])"
                )
                continue
            seen[key3] = i
            tables.setdefault(_table_key(entry.op, entry.number_format), []).append(
                (entry.bits, entry.energy_pj)
            )
        for (op, fmt), points in tables.items():
            points.sort()
            for (b0, e0), (b1, e1) in zip(points, points[1:], strict=False):
                if e1 < e0:
                    problems.append(
                        f"arithmetic: {op} {fmt} energy decreases with bit width "
                        f"({b0}-bit {e0} pJ > {b1}-bit {e1} pJ)"
                    )

        if self.neuron_update_inactive_pj is not None and self.neuron_update_pj is None:
            problems.append("neuron_update_inactive_pj is set but neuron_update_pj is not")

        if problems:
            raise ValueError("; ".join(problems))

        self._tables = tables
        # A profile must at least price what every SNN does: accumulates and
        # neuron updates at its own default width and format.
        fmt = self.default_number_format
        if self.synaptic_op_pj is None and not self._has("add", fmt):
            problems.append(
                f"cannot price an accumulate: synaptic_op_pj is not set and arithmetic has "
                f"no 'add' entry for default_number_format {fmt!r}"
            )
        if self.neuron_update_pj is None and not self._has("add", fmt):
            problems.append(
                f"cannot price a neuron update: neuron_update_pj is not set and arithmetic "
                f"has no 'add' entry for default_number_format {fmt!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ helpers
    def _has(self, op: str, number_format: str) -> bool:
        return bool(self._tables.get(_table_key(op, number_format)))

    def supports(self, op: str, number_format: str = "int") -> bool:
        """Whether ``op`` can be priced in ``number_format``.

        ``op`` is one of ``"add"``, ``"mult"``, ``"mac"``, ``"ac"``,
        ``"neuron_update"`` (leaky, the stricter case) or ``"neuron_update_if"``
        (non-leaky). Use this before asking a neuromorphic profile for MACs.
        """
        _check_format(number_format)
        if op in ("add", "mult"):
            return self._has(op, number_format)
        if op == "mac":
            return self.mac_pj is not None or (
                self._has("add", number_format) and self._has("mult", number_format)
            )
        if op == "ac":
            return self.synaptic_op_pj is not None or self._has("add", number_format)
        if op == "neuron_update":
            return self.neuron_update_pj is not None or (
                self._has("add", number_format) and self._has("mult", number_format)
            )
        if op == "neuron_update_if":
            return self.neuron_update_pj is not None or self._has("add", number_format)
        raise ValueError(
            f"unknown op {op!r}; expected add, mult, mac, ac, neuron_update or neuron_update_if"
        )

    def _op_energy(self, op: str, bits: Any, number_format: Any) -> float:
        bits = _check_bits(bits)
        number_format = _check_format(number_format)
        points = self._tables.get(_table_key(op, number_format))
        if not points:
            have = sorted({f for (o, f) in self._tables if o == op})
            raise UnsupportedOperationError(
                f"profile {self.name!r} has no {op!r} energy for number format "
                f"{number_format!r} (arithmetic has {op!r} for: {', '.join(have) or 'none'})"
            )
        p = _SCALING_EXPONENT[op]
        for b, e in points:
            if b == bits:
                return _clean(e)
        lo_b, lo_e = points[0]
        hi_b, hi_e = points[-1]
        if bits < lo_b:
            return _clean(lo_e * (bits / lo_b) ** p)
        if bits > hi_b:
            return _clean(hi_e * (bits / hi_b) ** p)
        for (b0, e0), (b1, e1) in zip(points, points[1:], strict=False):
            if b0 < bits < b1:
                t = (bits**p - b0**p) / (b1**p - b0**p)
                return _clean(e0 + t * (e1 - e0))
        raise AssertionError("unreachable: bits is bracketed by the table")  # pragma: no cover

    # ------------------------------------------------------------------ energy rules
    def add_energy(self, bits: int, number_format: str = "int") -> float:
        """Energy (pJ) of one ``bits``-wide add in ``number_format``.

        Exact at table points. Between two table points of the same op and
        format, linear interpolation in ``bits`` (adds scale linearly with width);
        outside the table, the nearest point scaled by ``bits / b_nearest``.
        E.g. Horowitz int add 8b 0.03 pJ, 32b 0.1 pJ gives 16b = 0.03 + 0.07 * 8/24.

        Raises :class:`UnsupportedOperationError` (a ``ValueError``) naming the
        profile, op and format when the table has no add in that format.
        """
        return self._op_energy("add", bits, number_format)

    def mult_energy(self, bits: int, number_format: str = "int") -> float:
        """Energy (pJ) of one ``bits``-wide multiply in ``number_format``.

        Exact at table points. Multiplies scale quadratically with width: between
        two table points interpolate linearly in ``bits**2``; outside the table,
        the nearest point scaled by ``(bits / b_nearest)**2``. Raises
        :class:`UnsupportedOperationError` if no multiply in that format exists.
        """
        return self._op_energy("mult", bits, number_format)

    def mac_energy(self, bits: int, number_format: str = "int") -> float:
        """Energy (pJ) of one multiply-accumulate: ``mac_pj`` if set, else mult + add.

        ``mac_pj`` (a single published figure) is used for every width. On the
        45 nm profile ``mac_energy(32, "float") == 3.7 + 0.9 == 4.6``.
        """
        if self.mac_pj is not None:
            _check_bits(bits)
            _check_format(number_format)
            return _clean(self.mac_pj.value)
        if not (
            self._has("add", _check_format(number_format)) and self._has("mult", number_format)
        ):
            raise UnsupportedOperationError(
                f"profile {self.name!r} cannot price a MAC in {number_format!r}: mac_pj is not "
                f"set and arithmetic lacks an 'add' and/or 'mult' entry for that format"
            )
        return _clean(self.mult_energy(bits, number_format) + self.add_energy(bits, number_format))

    def ac_energy(self, bits: int, number_format: str = "int") -> float:
        """Energy (pJ) of one synaptic accumulate (a spike arriving at one synapse).

        ``synaptic_op_pj`` when the chip publishes a per-event figure (used for
        every width: it already covers the chip's weight fetch and accumulate),
        else one add: ``add_energy(bits, number_format)``. On 45 nm fp32 this is 0.9.
        """
        if self.synaptic_op_pj is not None:
            _check_bits(bits)
            _check_format(number_format)
            return _clean(self.synaptic_op_pj.value)
        if not self._has("add", _check_format(number_format)):
            raise UnsupportedOperationError(
                f"profile {self.name!r} cannot price an accumulate in {number_format!r}: "
                f"synaptic_op_pj is not set and arithmetic has no 'add' for that format"
            )
        return self.add_energy(bits, number_format)

    def neuron_update_energy(
        self,
        bits: int,
        number_format: str = "int",
        leaky: bool = True,
        *,
        active: bool = True,
        adds: int = 2,
    ) -> float:
        """Energy (pJ) of updating one neuron for one timestep.

        If the chip publishes a per-update figure, that figure
        (``neuron_update_pj``; ``neuron_update_inactive_pj`` when ``active`` is
        False and the chip publishes one), whatever ``bits`` and ``leaky``.

        Otherwise the CMOS estimate at the state width ``bits``::

            (mult_energy if leaky else 0)      # leak:      u <- leak * u
            + add_energy                       # integrate: u <- u + I
            + add_energy                       # threshold compare / soft reset

        ``adds`` (default 2, snncost's LIF) is the number of additions and
        subtractions of the neuron kind (:data:`snncost.costmodel.pricing.CHARGE_OPS`).

        The synaptic input ``I`` itself is priced separately, as ACs or MACs.
        On 45 nm fp32: leaky 3.7 + 0.9 + 0.9 = 5.5 pJ, non-leaky (IF) 1.8 pJ.
        """
        bits = _check_bits(bits)
        number_format = _check_format(number_format)
        if self.neuron_update_pj is not None:
            if not active and self.neuron_update_inactive_pj is not None:
                return _clean(self.neuron_update_inactive_pj.value)
            return _clean(self.neuron_update_pj.value)
        if not self._has("add", number_format) or (leaky and not self._has("mult", number_format)):
            raise UnsupportedOperationError(
                f"profile {self.name!r} cannot price a {'leaky ' if leaky else ''}neuron update "
                f"in {number_format!r}: neuron_update_pj is not set and arithmetic lacks "
                f"{'add/mult' if leaky else 'add'} entries for that format"
            )
        total = float(adds) * self.add_energy(bits, number_format)
        if leaky:
            total += self.mult_energy(bits, number_format)
        return _clean(total)

    def spike_energy(self) -> float:
        """Energy (pJ) to emit/route one output spike message; 0.0 when not modelled."""
        return 0.0 if self.spike_pj is None else _clean(self.spike_pj.value)

    # ------------------------------------------------------------------ memory
    def memory_level_for(self, size_bytes: int) -> MemoryLevel:
        """The level that holds an array of ``size_bytes`` bytes.

        The smallest SRAM level whose capacity is at least ``size_bytes``
        (``size_bytes: null`` counts as unbounded); if no SRAM level fits, the
        smallest DRAM level that does. Raises :class:`ProfileError` naming the
        profile if nothing fits.
        """
        if isinstance(size_bytes, bool) or not isinstance(size_bytes, int | np.integer):
            if isinstance(size_bytes, float | np.floating) and float(size_bytes).is_integer():
                size_bytes = int(size_bytes)
            else:
                raise ValueError(f"size_bytes must be a non-negative integer, got {size_bytes!r}")
        size_bytes = int(size_bytes)
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be a non-negative integer, got {size_bytes}")

        def capacity(level: MemoryLevel) -> float:
            return math.inf if level.size_bytes is None else float(level.size_bytes)

        for kind in ("sram", "dram"):
            fitting = [m for m in self.memory if m.kind == kind and capacity(m) >= size_bytes]
            if fitting:
                return min(fitting, key=capacity)
        largest = max(self.memory, key=capacity)
        raise ProfileError(
            f"profile {self.name!r}: no memory level holds {size_bytes} bytes "
            f"(largest is {largest.name!r} with {largest.size_bytes} bytes)"
        )

    def memory_energy(self, bits: float, size_bytes: int, write: bool = False) -> float:
        """Energy (pJ) to read (or, with ``write=True``, write) ``bits`` bits.

        The bits are priced at the per-bit energy of
        :meth:`memory_level_for` ``(size_bytes)``, i.e. the level that holds the
        whole array (``size_bytes`` is the array's size, not the transfer's).
        """
        bits_f = float(bits)
        if not math.isfinite(bits_f) or bits_f < 0:
            raise ValueError(f"bits must be a finite non-negative number, got {bits!r}")
        level = self.memory_level_for(size_bytes)
        per_bit = level.write_pj_per_bit if write else level.read_pj_per_bit
        return _clean(bits_f * per_bit)

    # ------------------------------------------------------------------ latency
    def latency_cycles(
        self,
        synaptic_ops: float | Iterable[float],
        macs: float | Iterable[float] = 0,
        neuron_updates: float | Iterable[float] = 0,
    ) -> float:
        """Total cycles for a run, given operation counts per timestep.

        Each argument is a scalar (one timestep) or a 1-D array-like with one
        entry per timestep (scalars broadcast). Per timestep::

            c_t = ceil(syn_t / synaptic_ops_per_cycle)
                + ceil(macs_t / macs_per_cycle)
                + ceil(nu_t / neuron_updates_per_cycle)      # max(...) of the three if overlap
                + timestep_overhead_cycles
            c_t = max(c_t, min_timestep_cycles)

        and the result is ``sum_t c_t``. Counts are per input sample. Raises
        :class:`UnsupportedOperationError` if MACs are requested from a chip with
        ``macs_per_cycle: null``.
        """
        t = self.timing
        arrays = []
        for label, value in (
            ("synaptic_ops", synaptic_ops),
            ("macs", macs),
            ("neuron_updates", neuron_updates),
        ):
            arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
            if arr.ndim != 1:
                raise ValueError(f"{label} must be a scalar or 1-D (one entry per timestep)")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{label} must be finite and non-negative")
            arrays.append(arr)
        try:
            syn, mac, nu = np.broadcast_arrays(*arrays)
        except ValueError as exc:
            raise ValueError(
                "synaptic_ops, macs and neuron_updates must have the same number of timesteps"
            ) from exc

        def ceil_div(count: np.ndarray, per_cycle: float) -> np.ndarray:
            # The (1 - 1e-12) factor absorbs float noise such as 3.0000000000000004.
            return np.ceil((count / per_cycle) * (1.0 - 1e-12))

        syn_c = ceil_div(syn, t.synaptic_ops_per_cycle)
        nu_c = ceil_div(nu, t.neuron_updates_per_cycle)
        if t.macs_per_cycle is None:
            if np.any(mac > 0):
                raise UnsupportedOperationError(
                    f"profile {self.name!r} does not perform MACs (timing.macs_per_cycle is null)"
                )
            mac_c = np.zeros_like(syn_c)
        else:
            mac_c = ceil_div(mac, t.macs_per_cycle)
        if t.overlap:
            per_step = np.maximum(np.maximum(syn_c, mac_c), nu_c)
        else:
            per_step = syn_c + mac_c + nu_c
        per_step = np.maximum(per_step + t.timestep_overhead_cycles, t.min_timestep_cycles)
        return float(per_step.sum())

    def latency_seconds(
        self,
        synaptic_ops: float | Iterable[float],
        macs: float | Iterable[float] = 0,
        neuron_updates: float | Iterable[float] = 0,
    ) -> float:
        """Wall-clock seconds: :meth:`latency_cycles` divided by ``timing.clock_hz``."""
        return self.latency_cycles(synaptic_ops, macs, neuron_updates) / self.timing.clock_hz

    # ------------------------------------------------------------------ summaries and I/O
    def key_numbers(
        self, bits: int | None = None, number_format: str | None = None
    ) -> dict[str, float | None]:
        """Headline numbers (pJ, Hz) at ``bits``/``number_format`` (default: the profile's).

        Keys: ``ac_pj``, ``mac_pj``, ``neuron_update_leaky_pj``,
        ``neuron_update_if_pj``, ``clock_hz``. An operation the profile cannot
        price is ``None``.
        """
        bits = self.default_bits if bits is None else bits
        fmt = self.default_number_format if number_format is None else number_format

        def maybe(fn: Any, *args: Any, **kwargs: Any) -> float | None:
            try:
                return fn(*args, **kwargs)
            except UnsupportedOperationError:
                return None

        return {
            "ac_pj": maybe(self.ac_energy, bits, fmt),
            "mac_pj": maybe(self.mac_energy, bits, fmt),
            "neuron_update_leaky_pj": maybe(self.neuron_update_energy, bits, fmt, True),
            "neuron_update_if_pj": maybe(self.neuron_update_energy, bits, fmt, False),
            "clock_hz": self.timing.clock_hz,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-compatible dict (lists, not tuples); defaults included."""
        return self.model_dump(mode="json")

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialise to YAML text; also write it to ``path`` when given.

        Comments of a hand-written file are not preserved; the data round-trips
        exactly (``from_yaml(p.to_yaml(f)) == p``).
        """
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> HardwareProfile:
        """Load and validate a YAML file (errors as one-line :class:`ProfileError`)."""
        return read_model_file(path, cls)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HardwareProfile:
        """Validate a mapping (e.g. parsed YAML/JSON). Raises ``pydantic.ValidationError``."""
        return cls.model_validate(dict(data))
