"""Stateful spiking neuron modules (thin wrappers over :mod:`snncost.nn.functional`).

Every kind is a :class:`LIF` (so ``isinstance(m, LIF)`` finds the spiking
layers of any model) and differs only in its charge rule and the constant
that rule takes:

=====================  ==============================  ===========================================
module                 charge (constant)               SpikingJelly equivalent
=====================  ==============================  ===========================================
``LIF(leak)``          ``leak`` (leak, learnable)      ``IFNode`` when leak is 1
``IF``                 ``leak`` (fixed at 1)           ``IFNode``
``TauLIF(tau, di)``    ``[no-]decay-input`` (tau)      ``LIFNode(tau, decay_input=di)``
``ParametricLIF``      ``plif-[no-]decay-input``       ``ParametricLIFNode(init_tau, decay_input)``
                       (``sigmoid(w)``, learnable w)
=====================  ==============================  ===========================================

Each takes ``reset="soft"`` (subtract the threshold) or ``"hard"`` (to
``reset_value``). :meth:`LIF.effective` returns the float constants used in
the forward pass and :meth:`LIF.graph_fields` the matching
:class:`~snncost.graph.LIFNode` fields (what the simulator replays).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snncost.nn.functional import NeuronKind, neuron_multistep
from snncost.nn.surrogate import Surrogate


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire layer (soft reset by default).

    Takes the input current ``I`` as a ``[T, B, ...]`` tensor and returns the
    spike trains ``s`` of the same shape, following (per layer, scalars)::

        h[t] = leak * u[t-1] + I[t]
        s[t] = 1 if h[t] >= threshold else 0
        u[t] = h[t] - s[t] * threshold          (soft reset), u[-1] = 0
        u[t] = reset_value if s[t] else h[t]    (hard reset), u[-1] = reset_value

    ``leak = 1`` gives the IF neuron. ``threshold`` and ``leak`` are
    parameters (trained by BPTT when ``learn_*`` is set). In the forward pass
    the leak is clamped to ``[0, 1]`` and the threshold to ``>= min_threshold``
    so training cannot make the neuron unstable; :meth:`effective` returns the
    values actually used (what the simulator replays).

    It is also the base of every neuron kind: subclasses set their charge
    rule in :meth:`_init_firing` and supply their constant in
    :meth:`charge_constant`.
    """

    min_threshold = 1e-3

    def __init__(
        self,
        threshold: float = 1.0,
        leak: float = 1.0,
        learn_threshold: bool = True,
        learn_leak: bool = True,
        surrogate: str = "piecewise_linear",
        slope: float | None = None,
        detach_reset: bool = True,
        reset: str = "soft",
        reset_value: float = 0.0,
    ) -> None:
        super().__init__()
        self._init_firing("leak", threshold, learn_threshold, surrogate, slope, detach_reset, reset, reset_value)
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"LIF leak must be in [0, 1], got {leak}")
        self.leak = nn.Parameter(torch.tensor(float(leak)), requires_grad=learn_leak)

    def _init_firing(
        self,
        charge: str,
        threshold: float,
        learn_threshold: bool,
        surrogate: str,
        slope: float | None,
        detach_reset: bool,
        reset: str,
        reset_value: float,
    ) -> None:
        """What every kind shares: charge rule, threshold, surrogate, reset."""
        if not threshold > 0:
            raise ValueError(f"{type(self).__name__} threshold must be > 0, got {threshold}")
        try:
            self.kind = NeuronKind(charge, reset, reset_value)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        self.threshold = nn.Parameter(torch.tensor(float(threshold)), requires_grad=learn_threshold)
        self.surrogate = Surrogate(surrogate, slope)
        self.detach_reset = detach_reset

    def charge_constant(self) -> torch.Tensor:
        """The charge rule's constant as used in the forward pass (here the clamped leak)."""
        return self.leak.clamp(0.0, 1.0)

    def clamped_threshold(self) -> torch.Tensor:
        """The threshold as used in the forward pass (at least :attr:`min_threshold`)."""
        return self.threshold.clamp_min(self.min_threshold)

    def effective(self) -> tuple[float, float]:
        """``(charge constant, threshold)`` as used in the forward pass: ``(leak, threshold)`` for a
        LIF, ``(tau, threshold)`` for a :class:`TauLIF`, ``(decay, threshold)`` for a
        :class:`ParametricLIF`."""
        return float(self.charge_constant().detach()), float(self.clamped_threshold().detach())

    def graph_fields(self) -> dict[str, object]:
        """The :class:`~snncost.graph.LIFNode` fields of this layer (all but name and shape)."""
        constant, theta = self.effective()
        return {
            "charge": self.kind.charge,
            self.kind.rule.parameter: constant,
            "threshold": theta,
            "reset": self.kind.reset,
            "reset_value": self.kind.reset_value,
        }

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return neuron_multistep(
            current, self.charge_constant(), self.clamped_threshold(), self.kind, self.surrogate, self.detach_reset
        )

    def extra_repr(self) -> str:
        constant, theta = self.effective()
        learned = ", ".join(name for name, p in self.named_parameters(recurse=False) if p.requires_grad)
        reset = "soft reset" if self.kind.reset == "soft" else f"hard reset to {self.kind.reset_value:g}"
        return (
            f"charge={self.kind.charge}, {self.kind.rule.parameter}={constant:.4g}, threshold={theta:.4g}, "
            f"{reset}, surrogate={self.surrogate.name}(slope={self.surrogate.slope:g}), "
            f"learned=[{learned}], detach_reset={self.detach_reset}"
        )


class IF(LIF):
    """Integrate-and-fire: a :class:`LIF` whose leak is fixed at 1 (SpikingJelly's ``IFNode``)."""

    def __init__(
        self,
        threshold: float = 1.0,
        learn_threshold: bool = True,
        surrogate: str = "piecewise_linear",
        slope: float | None = None,
        detach_reset: bool = True,
        reset: str = "soft",
        reset_value: float = 0.0,
    ) -> None:
        super().__init__(
            threshold, 1.0, learn_threshold, False, surrogate, slope, detach_reset, reset, reset_value
        )


class TauLIF(LIF):
    """SpikingJelly's LIF: a membrane time constant ``tau`` instead of a leak factor.

    ``decay_input=True``: ``h = u + (I - (u - vr)) / tau`` (the input is
    scaled by ``1/tau`` too); ``False``: ``h = u - (u - vr) / tau + I``.
    ``tau`` is fixed, as in SpikingJelly's ``LIFNode``; the defaults are that
    module's (tau 2, threshold 1, hard reset to 0, reset not detached).
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        threshold: float = 1.0,
        learn_threshold: bool = False,
        surrogate: str = "piecewise_linear",
        slope: float | None = None,
        detach_reset: bool = False,
        reset: str = "hard",
        reset_value: float = 0.0,
    ) -> None:
        nn.Module.__init__(self)  # not LIF.__init__: this kind has no leak parameter
        charge = "decay-input" if decay_input else "no-decay-input"
        self._init_firing(charge, threshold, learn_threshold, surrogate, slope, detach_reset, reset, reset_value)
        if not tau >= 1.0:
            raise ValueError(f"TauLIF tau must be >= 1 (decay 1/tau in (0, 1]), got {tau}")
        self.register_buffer("tau", torch.tensor(float(tau)))

    def charge_constant(self) -> torch.Tensor:
        return self.tau


class ParametricLIF(LIF):
    """Parametric LIF (Fang et al. 2021): the decay ``sigmoid(w)`` is learned.

    ``decay_input=True``: ``h = u + (I - (u - vr)) * sigmoid(w)``; ``False``:
    ``h = u - (u - vr) * sigmoid(w) + I``. ``w`` starts at
    ``-log(init_tau - 1)``, so ``1 / sigmoid(w) = init_tau``, exactly as
    SpikingJelly's ``ParametricLIFNode``, whose defaults these are.
    """

    def __init__(
        self,
        init_tau: float = 2.0,
        decay_input: bool = True,
        threshold: float = 1.0,
        learn_threshold: bool = False,
        learn_decay: bool = True,
        surrogate: str = "piecewise_linear",
        slope: float | None = None,
        detach_reset: bool = False,
        reset: str = "hard",
        reset_value: float = 0.0,
    ) -> None:
        nn.Module.__init__(self)  # not LIF.__init__: this kind has no leak parameter
        charge = "plif-decay-input" if decay_input else "plif-no-decay-input"
        self._init_firing(charge, threshold, learn_threshold, surrogate, slope, detach_reset, reset, reset_value)
        if not init_tau > 1.0:
            raise ValueError(f"ParametricLIF init_tau must be > 1 (w = -log(init_tau - 1)), got {init_tau}")
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)), requires_grad=learn_decay)

    def charge_constant(self) -> torch.Tensor:
        return torch.sigmoid(self.w)
