"""Stateful spiking neuron modules (thin wrappers over :mod:`snncost.nn.functional`)."""

from __future__ import annotations

import torch
from torch import nn

from snncost.nn.functional import lif_multistep
from snncost.nn.surrogate import Surrogate


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire layer with soft reset.

    Takes the input current ``I`` as a ``[T, B, ...]`` tensor and returns the
    spike trains ``s`` of the same shape, following (per layer, scalars)::

        h[t] = leak * u[t-1] + I[t]
        s[t] = 1 if h[t] >= threshold else 0
        u[t] = h[t] - s[t] * threshold          (soft reset), u[-1] = 0

    ``leak = 1`` gives the IF neuron. ``threshold`` and ``leak`` are
    parameters (trained by BPTT when ``learn_*`` is set). In the forward pass
    the leak is clamped to ``[0, 1]`` and the threshold to ``>= min_threshold``
    so training cannot make the neuron unstable; :meth:`effective` returns the
    values actually used (what the simulator replays).
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
    ) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"LIF threshold must be > 0, got {threshold}")
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"LIF leak must be in [0, 1], got {leak}")
        self.threshold = nn.Parameter(torch.tensor(float(threshold)), requires_grad=learn_threshold)
        self.leak = nn.Parameter(torch.tensor(float(leak)), requires_grad=learn_leak)
        self.surrogate = Surrogate(surrogate, slope)
        self.detach_reset = detach_reset

    def effective(self) -> tuple[float, float]:
        """``(leak, threshold)`` as used in the forward pass (after clamping)."""
        leak, theta = self._clamped()
        return float(leak.detach()), float(theta.detach())

    def _clamped(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.leak.clamp(0.0, 1.0), self.threshold.clamp_min(self.min_threshold)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        leak, theta = self._clamped()
        return lif_multistep(current, leak, theta, self.surrogate, self.detach_reset)

    def extra_repr(self) -> str:
        leak, theta = self.effective()
        return (
            f"threshold={theta:.4g}, leak={leak:.4g}, surrogate={self.surrogate.name}"
            f"(slope={self.surrogate.slope:g}), learn_threshold={self.threshold.requires_grad}, "
            f"learn_leak={self.leak.requires_grad}"
        )
