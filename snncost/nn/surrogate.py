"""Surrogate spike functions.

The forward pass of a spiking neuron is a Heaviside step, whose derivative is
zero almost everywhere. Surrogate-gradient training keeps the exact step in
the forward pass and, in the backward pass, uses the derivative of a smooth
step ``f(x)`` instead. Each surrogate below is defined by that smooth
primitive ``f`` and its derivative ``f'``; ``slope`` (alpha) sets how sharp
the step is (larger = narrower, closer to the true step).

``x`` is the *normalised* distance to threshold, ``x = (h - theta) / theta``,
so that layers with very different thresholds (as ANN-to-SNN conversion
produces) see surrogates of the same relative width.

=================  =====================================  ===================================
name               primitive f(x)                          derivative f'(x)
=================  =====================================  ===================================
piecewise_linear   integral of the triangle (below)        alpha * max(0, 1 - alpha*|x|)
fast_sigmoid       1/2 + x*alpha / (2*(1 + alpha*|x|))     alpha / (2 * (1 + alpha*|x|)^2)
arctan             1/2 + arctan(pi/2 * alpha * x) / pi     alpha / (2 * (1 + (pi/2*alpha*x)^2))
=================  =====================================  ===================================

The piecewise-linear primitive is the integral of the triangle:
``f(x) = 0`` for ``alpha*x <= -1``, ``(1 + alpha*x)^2 / 2`` for
``-1 < alpha*x <= 0``, ``1 - (1 - alpha*x)^2 / 2`` for ``0 < alpha*x < 1`` and
``1`` beyond. All three integrate to one over the real line, so ``alpha``
changes the width, not the total gradient mass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

SURROGATES = ("piecewise_linear", "fast_sigmoid", "arctan")


def _pwl_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * torch.clamp(1.0 - alpha * x.abs(), min=0.0)


def _pwl_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    z = torch.clamp(alpha * x, -1.0, 1.0)
    return torch.where(z <= 0, 0.5 * (1 + z) ** 2, 1 - 0.5 * (1 - z) ** 2)


def _fast_sigmoid_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / (2.0 * (1.0 + alpha * x.abs()) ** 2)


def _fast_sigmoid_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return 0.5 + alpha * x / (2.0 * (1.0 + alpha * x.abs()))


def _arctan_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / (2.0 * (1.0 + (math.pi / 2.0 * alpha * x) ** 2))


def _arctan_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return 0.5 + torch.atan(math.pi / 2.0 * alpha * x) / math.pi


def _pwl_grad_(x: torch.Tensor, alpha: float, a: float, b: float) -> torch.Tensor:
    # b * alpha * max(0, 1 - alpha*|a*x|)
    return x.abs_().mul_(-alpha * abs(a)).add_(1.0).clamp_(min=0.0).mul_(b * alpha)


def _fast_sigmoid_grad_(x: torch.Tensor, alpha: float, a: float, b: float) -> torch.Tensor:
    # b * alpha / (2 * (1 + alpha*|a*x|)^2)
    return x.abs_().mul_(alpha * abs(a)).add_(1.0).square_().reciprocal_().mul_(b * alpha / 2.0)


def _arctan_grad_(x: torch.Tensor, alpha: float, a: float, b: float) -> torch.Tensor:
    # b * alpha / (2 * (1 + (pi/2 * alpha * a*x)^2))
    return x.mul_(math.pi / 2.0 * alpha * a).square_().add_(1.0).reciprocal_().mul_(b * alpha / 2.0)


#: name -> the branch of :func:`surrogate_grad_scalar` (the fused CPU neuron kernels)
SURROGATE_CODES = {"piecewise_linear": 0, "fast_sigmoid": 1, "arctan": 2}


def surrogate_grad_scalar(code, x, alpha):
    """``f'(x)`` of one float32 value: the formulas above, written for numba
    (:mod:`snncost.nn.neuron_kernels` compiles it; importing this module does not need numba)."""
    if code == 0:
        return alpha * max(np.float32(0.0), np.float32(1.0) - alpha * abs(x))
    if code == 1:
        d = np.float32(1.0) + alpha * abs(x)
        return alpha / (np.float32(2.0) * d * d)
    z = np.float32(math.pi / 2.0) * alpha * x
    return alpha / (np.float32(2.0) * (np.float32(1.0) + z * z))


_TABLE_INPLACE: dict[str, Callable] = {
    "piecewise_linear": _pwl_grad_,
    "fast_sigmoid": _fast_sigmoid_grad_,
    "arctan": _arctan_grad_,
}

_TABLE: dict[str, tuple[Callable, Callable, float]] = {
    # name: (derivative, primitive, default slope)
    "piecewise_linear": (_pwl_grad, _pwl_primitive, 1.0),
    "fast_sigmoid": (_fast_sigmoid_grad, _fast_sigmoid_primitive, 10.0),
    "arctan": (_arctan_grad, _arctan_primitive, 2.0),
}


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate with its slope; callable as the derivative ``f'(x)``."""

    name: str = "piecewise_linear"
    slope: float | None = None

    def __post_init__(self) -> None:
        if self.name not in _TABLE:
            raise ValueError(f"unknown surrogate {self.name!r}; choose one of {', '.join(SURROGATES)}")
        if self.slope is None:
            object.__setattr__(self, "slope", _TABLE[self.name][2])
        if not self.slope > 0:
            raise ValueError(f"surrogate slope must be > 0, got {self.slope}")

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``f'(x)``: the pseudo-derivative of the spike w.r.t. the normalised membrane."""
        return _TABLE[self.name][0](x, self.slope)

    def scaled_grad_(self, x: torch.Tensor, a: float = 1.0, b: float = 1.0) -> torch.Tensor:
        """``b * f'(a * x)`` computed in place in ``x`` (a scratch tensor), returned.

        Same function as :meth:`grad`, with the scalings folded into the
        constants and no temporaries: the fused LIF backward uses it.
        """
        return _TABLE_INPLACE[self.name](x, self.slope, a, b)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)``: the smooth step whose derivative is :meth:`grad` (for tests and plots)."""
        return _TABLE[self.name][1](x, self.slope)

    __call__ = grad


def spike_fn(h: torch.Tensor, theta: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Single-step differentiable spike ``H(h - theta)`` with a surrogate gradient.

    Used where a step-by-step (not multi-step) neuron is wanted; the multi-step
    LIF in :mod:`snncost.nn.functional` has its own fused backward.
    """
    return _SpikeFunction.apply(h, theta, surrogate)


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, theta, surrogate):  # type: ignore[override]
        ctx.save_for_backward(h, theta)
        ctx.surrogate = surrogate
        return (h >= theta).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        h, theta = ctx.saved_tensors
        ds_dh, ds_dtheta = spike_partials(h, theta, ctx.surrogate)
        g_h = grad_out * ds_dh
        g_theta = (grad_out * ds_dtheta).sum().reshape(theta.shape) if ctx.needs_input_grad[1] else None
        return g_h, g_theta, None


def spike_partials(
    h: torch.Tensor, theta: torch.Tensor, surrogate: Surrogate
) -> tuple[torch.Tensor, torch.Tensor]:
    """Partial derivatives of the surrogate spike ``f((h - theta)/theta)``.

    Returns ``(ds/dh, ds/dtheta)`` = ``(f'(x)/theta, -f'(x) * h / theta^2)``.
    """
    x = (h - theta) / theta
    g = surrogate.grad(x)
    return g / theta, -g * h / (theta * theta)
