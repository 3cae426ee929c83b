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

from snncost.nn.surrogate import Surrogate


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
        lam, th = float(leak.detach()), float(theta.detach())
        need_leak, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        # f'(x) / theta with x = (h - theta) / theta = h/theta - 1, for all steps at once
        ds_dh = ctx.surrogate.scaled_grad_(h_all.mul(1.0 / th).sub_(1.0), 1.0, 1.0 / th)
        grad_i = grad_s * ds_dh  # dL/ds[t] * ds/dh[t]; the recurrence is added below
        steps = h_all.shape[0]
        if ctx.detach_reset:
            # dL/dh[t] = a[t] + leak * dL/dh[t+1]: one in-place pass backwards in time
            for t in range(steps - 2, -1, -1):
                grad_i[t].add_(grad_i[t + 1], alpha=lam)
        else:
            for t in range(steps - 2, -1, -1):
                grad_i[t].addcmul_(grad_i[t + 1], 1.0 - th * ds_dh[t], value=lam)
        g_leak = g_theta = None
        if need_theta:
            # ds/dtheta = -f'(x) h / theta^2 = -ds/dh * h / theta; the reset path -s (detached) or
            # -s - theta ds/dtheta (attached), reached through g_u[t] = leak * dL/dh[t+1]
            ds_dtheta = ds_dh.mul_(h_all).mul_(-1.0 / th)
            total = (grad_s * ds_dtheta).sum()
            if steps > 1:
                g_u = grad_i[1:] * lam
                du_dtheta = -s_all[:-1] if ctx.detach_reset else -s_all[:-1] - th * ds_dtheta[:-1]
                total = total + (g_u * du_dtheta).sum()
            g_theta = total.reshape(theta.shape)
        if need_leak:
            if steps > 1:  # dL/dleak = sum_t dL/dh[t] * u[t-1], u[t-1] = h[t-1] - s[t-1] theta
                u_prev = h_all[:-1] - s_all[:-1] * th
                g_leak = (grad_i[1:] * u_prev).sum().reshape(leak.shape)
            else:
                g_leak = torch.zeros_like(leak)
        return grad_i, g_leak, g_theta, None, None
