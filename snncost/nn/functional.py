"""Pure neuron functions: the discrete-time neuron kinds of snncost.

Every spiking layer, in training and in the event-driven simulator, does
three things per step, in float32, each operation left to right exactly as
written (the replay repeats these operations, so spikes agree bit for bit):

1. **charge**: ``h = C(u, I)`` from the membrane ``u`` left by the last step
   and the input current ``I``, by one rule of :data:`CHARGES`;
2. **fire**: ``s = h >= theta``;
3. **reset**: ``u = h - s * theta`` (soft) or ``u = reset_value`` where
   ``s`` else ``h`` (hard), by one rule of :data:`RESETS`.

The membrane starts at ``vr`` (:attr:`NeuronKind.vr`: ``reset_value`` for a
hard reset, 0 for a soft one). The charge rules (``p`` is the rule's one
constant; :class:`~snncost.graph.LIFNode` states the same table):

======================= ==================================  ===============  ==================================
``charge``              ``h =``                             ``p``            SpikingJelly
======================= ==================================  ===============  ==================================
``leak``                ``p * u + I``                       leak in [0, 1]   ``IFNode`` when ``p = 1``
``decay-input``         ``u + (I - (u - vr)) / p``          tau >= 1         ``LIFNode(tau, decay_input=True)``
``no-decay-input``      ``u - (u - vr) / p + I``            tau >= 1         ``LIFNode(tau, decay_input=False)``
``plif-decay-input``    ``u + (I - (u - vr)) * p``          sigmoid(w)       ``ParametricLIFNode``
``plif-no-decay-input`` ``u - (u - vr) * p + I``            sigmoid(w)       ``ParametricLIFNode(decay_input=False)``
======================= ==================================  ===============  ==================================

:func:`neuron_multistep` runs a whole ``[T, B, ...]`` sequence in one fused
autograd node: the forward loop keeps no autograd graph (only ``h[t]`` and
``s[t]`` are stored) and the backward loop applies the hand-derived BPTT
recurrence below. That is several times cheaper in memory and time than
letting autograd record ~5 ops per step. On the CPU (float32) both loops
run as numba kernels (:mod:`snncost.nn.neuron_kernels`), one pass over
memory each way, in the activations' own memory layout; the torch loops
are the reference and what runs on GPUs (:func:`set_neuron_backend`).

Backward (``g_u[t]`` is dL/du[t] arriving from step t+1, ``f'`` the
surrogate, each charge rule supplying the scalars ``dh/du``, ``dh/dI`` and
the tensor ``dh/dp``, each reset rule ``du/dh`` and ``du/dtheta``):

.. math::

    \\partial s/\\partial h &= f'(x)/\\vartheta,\\quad x = (h-\\vartheta)/\\vartheta,
        \\qquad \\partial s/\\partial \\vartheta = -\\partial s/\\partial h \\; h/\\vartheta \\\\
    dL/dh[t] &= dL/ds[t]\\,\\partial s/\\partial h + g_u[t]\\,\\partial u/\\partial h,
        \\qquad g_u[t-1] = \\partial h/\\partial u \\; dL/dh[t] \\\\
    dL/dI[t] &= \\partial h/\\partial I \\; dL/dh[t], \\qquad
        dL/dp = \\textstyle\\sum_t dL/dh[t]\\, \\partial h[t]/\\partial p \\\\
    dL/d\\vartheta &= \\textstyle\\sum_t dL/ds[t]\\,\\partial s/\\partial\\vartheta
        + g_u[t]\\,\\partial u/\\partial\\vartheta

Reset partials: soft ``du/dh = 1 - theta ds/dh``, ``du/dtheta = -s - theta
ds/dtheta``; hard ``du/dh = 1 - s + (vr - h) ds/dh``, ``du/dtheta = (vr - h)
ds/dtheta``. ``detach_reset=True`` (snncost's default, as in DIET-SNN and
snntorch; SpikingJelly's default is False) stops the gradient through the
spike in the reset, dropping the ``ds`` terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from snncost.nn.surrogate import SURROGATE_CODES, Surrogate, spike_fn

Tensor = torch.Tensor
Scalar = float | Tensor


@dataclass(frozen=True)
class ChargeRule:
    """One charge rule ``h = C(u, I; p, vr)`` with what the fused BPTT needs of it.

    ``parameter`` names the rule's constant ``p`` as the
    :class:`~snncost.graph.LIFNode` field that carries it. ``h`` is the
    pure, differentiable form; ``h_`` computes the same float operations in
    place into ``u`` (the fused forward loop, ``p`` a Python float).
    """

    parameter: str
    h: Callable[[Tensor, Tensor, Scalar, float], Tensor]
    h_: Callable[[Tensor, Tensor, float, float], Tensor]
    dh_du: Callable[[float], float]
    dh_di: Callable[[float], float]
    dh_dp: Callable[[Tensor, Tensor, float, float], Tensor]  # (u_prev, current, p, vr)
    dh_dp_reads_current: bool


def _leak_(u: Tensor, i: Tensor, p: float, vr: float) -> Tensor:
    # 1 * u == u exactly: the IF neuron skips a pass over the membrane
    return (u if p == 1.0 else u.mul_(p)).add_(i)


CHARGES: dict[str, ChargeRule] = {
    "leak": ChargeRule(
        "leak",
        h=lambda u, i, p, vr: p * u + i,
        h_=_leak_,
        dh_du=lambda p: p,
        dh_di=lambda p: 1.0,
        dh_dp=lambda u, i, p, vr: u,
        dh_dp_reads_current=False,
    ),
    "decay-input": ChargeRule(
        "tau",
        h=lambda u, i, p, vr: u + (i - (u - vr)) / p,
        h_=lambda u, i, p, vr: u.add_((i - (u - vr)).div_(p)),
        dh_du=lambda p: 1.0 - 1.0 / p,
        dh_di=lambda p: 1.0 / p,
        dh_dp=lambda u, i, p, vr: (i - (u - vr)).mul_(-1.0 / (p * p)),
        dh_dp_reads_current=True,
    ),
    "no-decay-input": ChargeRule(
        "tau",
        h=lambda u, i, p, vr: u - (u - vr) / p + i,
        h_=lambda u, i, p, vr: u.sub_((u - vr).div_(p)).add_(i),
        dh_du=lambda p: 1.0 - 1.0 / p,
        dh_di=lambda p: 1.0,
        dh_dp=lambda u, i, p, vr: (u - vr).mul_(1.0 / (p * p)),
        dh_dp_reads_current=False,
    ),
    "plif-decay-input": ChargeRule(
        "decay",
        h=lambda u, i, p, vr: u + (i - (u - vr)) * p,
        h_=lambda u, i, p, vr: u.add_((i - (u - vr)).mul_(p)),
        dh_du=lambda p: 1.0 - p,
        dh_di=lambda p: p,
        dh_dp=lambda u, i, p, vr: i - (u - vr),
        dh_dp_reads_current=True,
    ),
    "plif-no-decay-input": ChargeRule(
        "decay",
        h=lambda u, i, p, vr: u - (u - vr) * p + i,
        h_=lambda u, i, p, vr: u.sub_((u - vr).mul_(p)).add_(i),
        dh_du=lambda p: 1.0 - p,
        dh_di=lambda p: 1.0,
        dh_dp=lambda u, i, p, vr: vr - u,
        dh_dp_reads_current=False,
    ),
}


@dataclass(frozen=True)
class ResetRule:
    """One reset rule ``u = R(h, s; theta, vr)`` with its partials for the fused BPTT.

    ``u`` is the pure, differentiable form (through ``s``); ``u_`` resets
    ``h`` in place (the fused forward loop). ``du_dh`` and ``du_dtheta`` take
    ``(h, s, ds, theta, vr, detach)`` with ``ds`` = ds/dh resp. ds/dtheta and
    return ``None`` for "1" (``du_dh``) or "0" (``du_dtheta``), sparing a pass.
    """

    u: Callable[[Tensor, Tensor, Scalar, float], Tensor]
    u_: Callable[[Tensor, Tensor, float, float], Tensor]
    du_dh: Callable[[Tensor, Tensor, Tensor, float, float, bool], Tensor | None]
    du_dtheta: Callable[[Tensor, Tensor, Tensor, float, float, bool], Tensor | None]


RESETS: dict[str, ResetRule] = {
    "soft": ResetRule(
        u=lambda h, s, theta, vr: h - s * theta,
        u_=lambda h, s, theta, vr: h.sub_(s * theta),
        du_dh=lambda h, s, ds, theta, vr, detach: None if detach else 1.0 - theta * ds,
        du_dtheta=lambda h, s, ds, theta, vr, detach: -s if detach else -s - theta * ds,
    ),
    "hard": ResetRule(
        # SpikingJelly's s * vr + (1 - s) * h: the same values as "vr where s else h"
        u=lambda h, s, theta, vr: s * vr + (1.0 - s) * h,
        u_=lambda h, s, theta, vr: h.masked_fill_(s.bool(), vr),
        du_dh=lambda h, s, ds, theta, vr, detach: 1.0 - s if detach else 1.0 - s + (vr - h) * ds,
        du_dtheta=lambda h, s, ds, theta, vr, detach: None if detach else (vr - h) * ds,
    ),
}


@dataclass(frozen=True)
class NeuronKind:
    """What a spiking layer does besides its constants: charge rule, reset, reset value.

    A soft reset subtracts the threshold and has no reset value (it must be
    0), so :attr:`vr` is ``reset_value`` for both resets.
    """

    charge: str = "leak"
    reset: str = "soft"
    reset_value: float = 0.0

    def __post_init__(self) -> None:
        if self.charge not in CHARGES:
            raise ValueError(f"unknown charge rule {self.charge!r}; choose one of {', '.join(CHARGES)}")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; choose one of {', '.join(RESETS)}")
        if self.reset == "soft" and self.reset_value != 0.0:
            raise ValueError(
                f"reset_value={self.reset_value} needs reset='hard' (a soft reset subtracts the threshold)"
            )
        object.__setattr__(self, "reset_value", float(self.reset_value))

    @property
    def vr(self) -> float:
        """Where the membrane starts and what the charge decays toward."""
        return self.reset_value

    @property
    def rule(self) -> ChargeRule:
        return CHARGES[self.charge]

    def initial_membrane(self, like: Tensor) -> Tensor:
        """The membrane before the first step, shaped and typed like ``like``."""
        return torch.full_like(like, self.vr)


SOFT_LIF = NeuronKind()


def neuron_step(
    u: Tensor,
    current: Tensor,
    constant: Scalar,
    theta: Scalar,
    kind: NeuronKind = SOFT_LIF,
    surrogate: Surrogate | None = None,
    detach_reset: bool = True,
) -> tuple[Tensor, Tensor]:
    """One step of any neuron kind: returns ``(spike, new_membrane)``.

    ``constant`` is the charge rule's ``p`` (leak, tau or decay). Without a
    ``surrogate`` the spike is the plain step (no gradient through it); with
    one it is differentiable by the surrogate and the reset sees the spike
    detached or not per ``detach_reset``: plain autograd over these steps is
    the reference the fused :func:`neuron_multistep` is tested against.
    """
    h = kind.rule.h(u, current, constant, kind.vr)
    if surrogate is None:
        s = (h >= theta).to(current.dtype)
        s_reset = s
    else:
        theta_t = theta if isinstance(theta, Tensor) else torch.tensor(theta, dtype=h.dtype)
        s = spike_fn(h, theta_t, surrogate)
        s_reset = s.detach() if detach_reset else s
    return s, RESETS[kind.reset].u(h, s_reset, theta, kind.vr)


def lif_step(u: Tensor, current: Tensor, leak: Scalar, theta: Scalar) -> tuple[Tensor, Tensor]:
    """One step of snncost's soft-reset LIF (no gradient tricks): returns ``(spike, new_membrane)``."""
    return neuron_step(u, current, leak, theta)


def neuron_multistep(
    current: Tensor,
    constant: Tensor,
    theta: Tensor,
    kind: NeuronKind,
    surrogate: Surrogate,
    detach_reset: bool = True,
) -> Tensor:
    """Run a neuron kind over a ``[T, B, ...]`` input current; returns spikes of the same shape.

    ``constant`` (the charge rule's leak, tau or decay) and ``theta`` are 0-d
    tensors; either may require grad (a learned PLIF passes ``sigmoid(w)``
    and autograd carries the gradient on to ``w``).
    """
    if current.dim() < 2:
        raise ValueError(f"neuron_multistep expects a [T, B, ...] current, got shape {tuple(current.shape)}")
    return _NeuronMultiStep.apply(current, constant, theta, kind, surrogate, detach_reset)


def lif_multistep(
    current: Tensor,
    leak: Tensor,
    theta: Tensor,
    surrogate: Surrogate,
    detach_reset: bool = True,
) -> Tensor:
    """snncost's soft-reset LIF over a ``[T, B, ...]`` current (:func:`neuron_multistep`, charge ``leak``)."""
    return neuron_multistep(current, leak, theta, SOFT_LIF, surrogate, detach_reset)


def neuron_forward(current: Tensor, constant: float, theta: float, kind: NeuronKind) -> tuple[Tensor, Tensor]:
    """The fused forward loop, no autograd: the charged membranes ``h[t]`` and spikes ``s[t]``.

    Each step's membrane after the reset is ``RESETS[kind.reset].u(h[t], s[t], theta, kind.vr)``
    (the same values the loop carries). Inputs: a ``[T, B, ...]`` current, the
    charge constant and threshold as Python floats.
    """
    charge_, reset_ = kind.rule.h_, RESETS[kind.reset].u_
    vr = kind.vr
    with torch.no_grad():
        h_all = torch.empty_like(current)
        s_all = torch.empty_like(current)
        u = kind.initial_membrane(current[0])
        for t in range(current.shape[0]):
            charge_(u, current[t], constant, vr)
            h_all[t].copy_(u)
            s = s_all[t]
            s.copy_(u >= theta)
            reset_(u, s, theta, vr)
    return h_all, s_all


def _constant_grad(grad_h: Tensor, h_all: Tensor, s_all: Tensor, current, p: float, th: float, kind: NeuronKind):
    """dL/dp = sum_t dL/dh[t] * dh[t]/dp at ``u[t-1]``: the initial membrane for t = 0, then each
    step's reset membrane (recomputed from ``h`` and ``s``)."""
    rule, vr = kind.rule, kind.vr
    first = rule.dh_dp(kind.initial_membrane(h_all[0]), None if current is None else current[0], p, vr)
    total = (grad_h[0] * first).sum()
    if h_all.shape[0] > 1:
        u_prev = RESETS[kind.reset].u(h_all[:-1], s_all[:-1], th, vr)
        rest = rule.dh_dp(u_prev, None if current is None else current[1:], p, vr)
        total = (grad_h[1:] * rest).sum() + total
    return total


class _NeuronMultiStep(torch.autograd.Function):
    """The fused multi-step neuron. On the CPU in float32 the loops run in the numba kernels
    of :mod:`snncost.nn.neuron_kernels` (one pass over memory each way) on ``[T, M]`` views in
    the input's memory order (:class:`_StepLayout`); elsewhere, or with the ``"torch"``
    backend, as the torch loops above. Both give the same spikes bit for bit."""

    @staticmethod
    def forward(ctx, current, constant, theta, kind, surrogate, detach_reset):  # type: ignore[override]
        p, th = float(constant.detach()), float(theta.detach())
        layout = _StepLayout.of(current) if _use_kernels(current) else None
        if layout is None:
            h_all, s_all = neuron_forward(current, p, th, kind)
            out = s_all
        else:
            current = layout.flat(current)
            h_all, s_all = torch.empty_like(current), torch.empty_like(current)
            _kernels().multistep_forward(
                current.detach().numpy(), _kernels().CHARGE_CODES[kind.charge], kind.reset == "hard",
                _kernel_constants(p, th, kind.vr), h_all.numpy(), s_all.numpy(),
            )  # fmt: skip
            out = layout.unflat(s_all)
        keep_current = ctx.needs_input_grad[1] and kind.rule.dh_dp_reads_current
        ctx.save_for_backward(h_all, s_all, current if keep_current else None)
        ctx.constants, ctx.shapes, ctx.layout = (p, th), (constant.shape, theta.shape), layout
        ctx.kind, ctx.surrogate, ctx.detach_reset = kind, surrogate, detach_reset
        return out

    @staticmethod
    def backward(ctx, grad_s):  # type: ignore[override]
        h_all, s_all, current = ctx.saved_tensors
        p, th = ctx.constants
        kind, detach, layout = ctx.kind, ctx.detach_reset, ctx.layout
        rule = kind.rule
        need_constant, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        dh_du = rule.dh_du(p)
        if layout is None:
            grad_h, ds_dh = _recurrence_torch(
                grad_s, h_all, s_all, p, th, kind, ctx.surrogate, detach
            )
        else:
            grad_s = layout.flat(grad_s.detach()).contiguous()
            grad_h = torch.empty_like(h_all)
            ds_dh = torch.empty_like(h_all) if need_theta else torch.empty((1, 1))
            f32 = np.float32
            _kernels().multistep_backward(
                grad_s.numpy(), h_all.numpy(), s_all.numpy(), SURROGATE_CODES[ctx.surrogate.name],
                f32(ctx.surrogate.slope), f32(th), f32(dh_du), kind.reset == "hard", detach, f32(kind.vr),
                grad_h.numpy(), ds_dh.numpy(), need_theta,
            )  # fmt: skip
        g_constant = g_theta = None
        if need_constant:
            g_constant = _constant_grad(grad_h, h_all, s_all, current, p, th, kind).reshape(ctx.shapes[0])
        if need_theta:
            g_theta = _theta_grad(grad_s, grad_h, h_all, s_all, ds_dh, dh_du, th, kind, detach).reshape(ctx.shapes[1])
        dh_di = rule.dh_di(p)
        grad_i = grad_h if dh_di == 1.0 else grad_h.mul_(dh_di)
        grad_i = grad_i if layout is None else layout.unflat(grad_i)
        return grad_i, g_constant, g_theta, None, None, None


def _recurrence_torch(
    grad_s, h_all, s_all, p, th, kind, surrogate, detach
) -> tuple[Tensor, Tensor]:
    """``dL/dh[t]`` for all steps by whole-tensor torch passes; also returns ``ds/dh``."""
    reset, vr = RESETS[kind.reset], kind.vr
    # f'(x) / theta with x = (h - theta) / theta = h/theta - 1, for all steps at once
    ds_dh = surrogate.scaled_grad_(h_all.mul(1.0 / th).sub_(1.0), 1.0, 1.0 / th)
    grad_h = grad_s * ds_dh  # dL/ds[t] * ds/dh[t]; the recurrence is added below
    dh_du = kind.rule.dh_du(p)
    # dL/dh[t] += dh[t+1]/du[t] * du[t]/dh[t] * dL/dh[t+1]: one in-place pass backwards in time
    for t in range(h_all.shape[0] - 2, -1, -1):
        factor = reset.du_dh(h_all[t], s_all[t], ds_dh[t], th, vr, detach)
        if factor is None:
            grad_h[t].add_(grad_h[t + 1], alpha=dh_du)
        else:
            grad_h[t].addcmul_(grad_h[t + 1], factor, value=dh_du)
    return grad_h, ds_dh


#: which implementation runs the fused neuron loops: "auto" (numba kernels for float32 CPU
#: tensors, torch otherwise), "numba" (the same; an error where the kernels cannot run) or "torch"
NEURON_BACKENDS = ("auto", "numba", "torch")
_backend = "auto"


def set_neuron_backend(name: str) -> str:
    """Choose the implementation of :func:`neuron_multistep` (:data:`NEURON_BACKENDS`); returns the old one.

    The backends give identical spikes; gradients agree to float32 rounding
    (they sum in a different order). ``"torch"`` is the reference the kernels
    are tested against, and what runs on GPUs.
    """
    global _backend
    if name not in NEURON_BACKENDS:
        raise ValueError(
            f"unknown neuron backend {name!r}; choose one of {', '.join(NEURON_BACKENDS)}"
        )
    old, _backend = _backend, name
    return old


@contextmanager
def neuron_backend(name: str) -> Iterator[None]:
    """``with neuron_backend("torch"): ...`` runs the block with that backend (:func:`set_neuron_backend`)."""
    old = set_neuron_backend(name)
    try:
        yield
    finally:
        set_neuron_backend(old)


def _use_kernels(current: Tensor) -> bool:
    if _backend == "torch":
        return False
    ok = current.device.type == "cpu" and current.dtype == torch.float32 and current.numel() > 0
    if not ok and _backend == "numba":
        raise ValueError(
            f"the numba neuron kernels run on float32 CPU tensors; got {current.dtype} on {current.device}"
        )
    if ok:
        import numba

        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    return ok


def _kernels():
    """:mod:`snncost.nn.neuron_kernels`, imported on first use (``import snncost.nn`` stays numba-free)."""
    from snncost.nn import neuron_kernels

    return neuron_kernels


def _kernel_constants(p: float, th: float, vr: float) -> np.ndarray:
    """:mod:`snncost.nn.neuron_kernels`'s ``nc``: the rule constant in every rule's slot."""
    return np.array([p, p, p, vr, th, vr], dtype=np.float32)


@dataclass(frozen=True)
class _StepLayout:
    """How a ``[T, ...]`` tensor maps onto the kernels' ``[T, M]`` arrays.

    The per-step dimensions are taken in memory order (a channels-last
    activation stays channels-last, no copy); a stride-0 time axis (a
    direct-input current repeated over ``T``) is kept as a view.
    """

    order: tuple[int, ...]  # dims 1.. by decreasing stride
    shape: tuple[int, ...]  # the permuted shape

    @classmethod
    def of(cls, x: Tensor) -> _StepLayout:
        dims = sorted(range(1, x.dim()), key=lambda d: -x.stride(d))
        order = (0, *dims)
        return cls(order, tuple(x.shape[d] for d in order))

    def flat(self, x: Tensor) -> Tensor:
        """``x`` as ``[T, M]`` in memory order (a view where the strides allow, else a copy)."""
        y = x.permute(self.order).reshape(self.shape[0], -1)
        return y if y.stride(1) == 1 else y.contiguous()

    def unflat(self, y: Tensor) -> Tensor:
        """The inverse of :meth:`flat` for a contiguous ``[T, M]`` tensor."""
        inverse = sorted(range(len(self.order)), key=lambda i: self.order[i])
        return y.reshape(self.shape).permute(inverse)


def _theta_grad(grad_s, grad_h, h_all, s_all, ds_dh, dh_du, th, kind, detach) -> Tensor:
    """dL/dtheta: through every spike directly, and through each reset via ``g_u[t] = dh/du dL/dh[t+1]``.

    Overwrites ``ds_dh`` (no longer needed) with ds/dtheta = -ds/dh * h / theta.
    """
    ds_dtheta = ds_dh.mul_(h_all).mul_(-1.0 / th)
    total = (grad_s * ds_dtheta).sum()
    if h_all.shape[0] > 1:
        du_dtheta = RESETS[kind.reset].du_dtheta(h_all[:-1], s_all[:-1], ds_dtheta[:-1], th, kind.vr, detach)
        if du_dtheta is not None:
            total = total + (grad_h[1:] * dh_du * du_dtheta).sum()
    return total
