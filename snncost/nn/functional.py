"""Pure neuron functions: the one discrete-time LIF model of snncost.

Every spiking layer in snncost, in training and in the event-driven
simulator, follows these equations (per layer, scalar ``leak`` and
``theta``):

.. math::

    h[t] &= \\lambda \\, u[t-1] + I[t]            && \\text{(leak, integrate)} \\\\
    s[t] &= \\Theta(h[t] - \\vartheta)            && \\text{(fire: } h \\ge \\vartheta) \\\\
    u[t] &= h[t] - s[t] \\, \\vartheta            && \\text{(soft reset)}

with ``u[-1] = 0``. ``leak = 1`` is the integrate-and-fire (IF) neuron. The
simulator replays exactly this, so the functions here are the reference.

:func:`lif_multistep` runs the whole ``[T, B, ...]`` sequence in one fused
autograd node: the forward loop keeps no autograd graph (only ``h[t]`` and
``s[t]`` are stored) and the backward loop applies the hand-derived BPTT
recurrence below. That is several times cheaper in memory and time than
letting autograd record ~5 ops per step.

Backward (``g_u`` is dL/du[t] arriving from step t+1, ``f'`` the surrogate):

.. math::

    \\partial s/\\partial h &= f'(x)/\\vartheta,\\quad x = (h-\\vartheta)/\\vartheta \\\\
    \\partial u/\\partial h &= 1 - \\vartheta\\,\\partial s/\\partial h
        \\quad (1 \\text{ with detached reset}) \\\\
    dL/dh[t] &= dL/ds[t]\\,\\partial s/\\partial h + g_u\\,\\partial u/\\partial h \\\\
    dL/dI[t] &= dL/dh[t], \\qquad g_u \\leftarrow \\lambda\\, dL/dh[t] \\\\
    dL/d\\lambda &= \\textstyle\\sum_t dL/dh[t]\\, u[t-1]

``detach_reset=True`` (default, as in DIET-SNN and snntorch) stops the
gradient through the reset term ``s[t] * theta``.
"""

from __future__ import annotations

import torch

from snncost.nn.surrogate import Surrogate, spike_partials


def lif_step(
    u: torch.Tensor, current: torch.Tensor, leak: float | torch.Tensor, theta: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step (no gradient tricks): returns ``(spike, new_membrane)``."""
    h = leak * u + current
    s = (h >= theta).to(current.dtype)
    return s, h - s * theta


def lif_multistep(
    current: torch.Tensor,
    leak: torch.Tensor,
    theta: torch.Tensor,
    surrogate: Surrogate,
    detach_reset: bool = True,
) -> torch.Tensor:
    """Run the LIF over a ``[T, B, ...]`` input current; returns spikes of the same shape.

    ``leak`` and ``theta`` are 0-d tensors (they may require grad).
    """
    if current.dim() < 2:
        raise ValueError(f"lif_multistep expects a [T, B, ...] current, got shape {tuple(current.shape)}")
    return _LIFMultiStep.apply(current, leak, theta, surrogate, detach_reset)


def _forward_loop(current: torch.Tensor, leak: torch.Tensor, theta: torch.Tensor):
    steps = current.shape[0]
    h_all = torch.empty_like(current)
    s_all = torch.empty_like(current)
    u = torch.zeros_like(current[0])
    is_if = bool(leak == 1.0)
    for t in range(steps):
        if is_if:
            u.add_(current[t])
        else:
            u.mul_(leak).add_(current[t])
        h_all[t].copy_(u)
        s = s_all[t]
        s.copy_(u >= theta)
        u.sub_(s * theta)
    return h_all, s_all


class _LIFMultiStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, leak, theta, surrogate, detach_reset):  # type: ignore[override]
        with torch.no_grad():
            h_all, s_all = _forward_loop(current, leak.detach(), theta.detach())
        ctx.save_for_backward(h_all, s_all, leak, theta)
        ctx.surrogate = surrogate
        ctx.detach_reset = detach_reset
        return s_all

    @staticmethod
    def backward(ctx, grad_s):  # type: ignore[override]
        h_all, s_all, leak, theta = ctx.saved_tensors
        leak_d, theta_d = leak.detach(), theta.detach()
        need_leak, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        steps = h_all.shape[0]
        grad_i = torch.empty_like(h_all)
        g_u = torch.zeros_like(h_all[0])
        acc_theta = torch.zeros_like(h_all[0]) if need_theta else None
        acc_leak = torch.zeros_like(h_all[0]) if need_leak else None
        for t in range(steps - 1, -1, -1):
            h, s = h_all[t], s_all[t]
            ds_dh, ds_dtheta = spike_partials(h, theta_d, ctx.surrogate)
            if ctx.detach_reset:
                dh = grad_s[t] * ds_dh + g_u
            else:
                dh = grad_s[t] * ds_dh + g_u * (1.0 - theta_d * ds_dh)
            grad_i[t] = dh
            if need_theta:
                du_dtheta = -s if ctx.detach_reset else -s - theta_d * ds_dtheta
                acc_theta += grad_s[t] * ds_dtheta + g_u * du_dtheta
            if need_leak and t > 0:
                acc_leak += dh * (h_all[t - 1] - s_all[t - 1] * theta_d)
            g_u = leak_d * dh
        g_leak = acc_leak.sum().reshape(leak.shape) if need_leak else None
        g_theta = acc_theta.sum().reshape(theta.shape) if need_theta else None
        return grad_i, g_leak, g_theta, None, None
