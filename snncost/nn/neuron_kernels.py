"""Numba neuron kernels (CPU, float32): the charge and fire rules written once for numba.

Two users share these definitions, so the replay and training cannot drift
apart:

- the event-driven replay (:mod:`snncost.sim.kernels`) calls :func:`charge`
  and :func:`fire` on each membrane it updates;
- training on the CPU runs :func:`multistep_forward` and
  :func:`multistep_backward`, the fused forward and BPTT of
  :func:`snncost.nn.functional.neuron_multistep` as one pass over memory
  each (the torch form takes ~6 tensor passes per step forward and ~7
  passes backward; on the bench VGG5 the neurons were a fifth of a training
  step).

Neuron constants ``nc`` = ``[leak, tau, decay, vr, theta, u0]`` (float32):
``charge`` reads the slot of its rule, ``vr`` is what the decay rules decay
toward, ``u0`` the membrane before the first step and after a hard reset.
Every operation is float32, left to right as :data:`snncost.nn.functional.CHARGES`
writes it, with no fastmath (no FMA contraction): spikes and membranes are
bit-identical to the torch forward. The backward sums in a different order
than the torch form, so gradients agree to float32 rounding.

Arrays are ``[T, M]`` (M neurons of a whole batch, any strides; the
forward allows a stride-0 time axis, a direct-input current repeated over
T). Work is split over blocks of :data:`BLOCK` neurons (``prange``), each
block walking all T steps with its membranes in L1.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from snncost.nn import surrogate

surrogate_grad_scalar = njit(cache=True, inline="always")(surrogate.surrogate_grad_scalar)

#: LIFNode.charge / NeuronKind.charge -> the rule index :func:`charge` branches on
CHARGE_CODES = {
    "leak": 0,
    "decay-input": 1,
    "no-decay-input": 2,
    "plif-decay-input": 3,
    "plif-no-decay-input": 4,
}

#: neurons per parallel block: 2,048 float32 membranes (8 KB) plus the
#: block's gradient carry stay in L1
BLOCK = 2048


@njit(cache=True, inline="always")
def charge_scalar(code, u, i, p, vr):
    """``h`` of one neuron by the rule ``code`` (:data:`CHARGE_CODES`) with constant ``p``
    (leak, tau or decay), float32, left to right. Scalars only, so loops calling it
    vectorise (no array the stores could alias)."""
    if code == 0:
        return p * u + i
    if code == 1:
        return u + (i - (u - vr)) / p
    if code == 2:
        return u - (u - vr) / p + i
    if code == 3:
        return u + (i - (u - vr)) * p
    return u - (u - vr) * p + i


@njit(cache=True, inline="always")
def charge(code, u, i, nc):
    """:func:`charge_scalar` with the constant of rule ``code`` read from ``nc``."""
    p = nc[0] if code == 0 else (nc[1] if code <= 2 else nc[2])
    return charge_scalar(code, u, i, p, nc[3])


@njit(cache=True, inline="always")
def fire(h, hard, nc):
    """``(spike, new membrane)``: ``h >= theta``; soft reset ``h - theta``, hard reset to ``u0``."""
    if h >= nc[4]:
        return 1, (nc[5] if hard else h - nc[4])
    return 0, h


@njit(cache=True)
def _forward_block(code, hard, cur, p, vr, th, u0, h_out, s_out, j0, u):
    """All T steps of the neurons ``j0 .. j0 + len(u)``. A function of its own (not inlined
    into the ``prange`` body) on 1-d row views: LLVM vectorises the loop over neurons (the
    branches on ``code`` and ``hard`` are loop-invariant and hoisted out of it)."""
    zero, one = np.float32(0.0), np.float32(1.0)
    n = u.shape[0]
    for t in range(cur.shape[0]):
        c = cur[t, j0 : j0 + n]
        ho = h_out[t, j0 : j0 + n]
        so = s_out[t, j0 : j0 + n]
        for k in range(n):
            h = charge_scalar(code, u[k], c[k], p, vr)
            f = h >= th
            ho[k] = h
            so[k] = one if f else zero
            u[k] = (u0 if hard else h - th) if f else h


@njit(parallel=True, cache=True)
def multistep_forward(cur, code, hard, nc, h_out, s_out):
    """Run ``T`` steps: charged membranes into ``h_out`` and spikes into ``s_out`` (both ``[T, M]``).

    Same values as :func:`charge` then :func:`fire` per neuron and step."""
    M = cur.shape[1]
    p = nc[0] if code == 0 else (nc[1] if code <= 2 else nc[2])
    vr, th, u0 = nc[3], nc[4], nc[5]
    for blk in prange((M + BLOCK - 1) // BLOCK):
        j0 = blk * BLOCK
        u = np.full(min(M - j0, BLOCK), u0, np.float32)
        _forward_block(code, hard, cur, p, vr, th, u0, h_out, s_out, j0, u)


@njit(cache=True)
def _backward_block(
    sur, alpha, th, dh_du, hard, detach, vr, grad_s, h, s, grad_h, ds_out, keep_ds, j0, nxt
):
    """BPTT of the neurons ``j0 .. j0 + len(nxt)`` (1-d row views, vectorised as the forward)."""
    one = np.float32(1.0)
    inv = one / th
    n = nxt.shape[0]
    for t in range(h.shape[0] - 1, -1, -1):
        gs = grad_s[t, j0 : j0 + n]
        hr = h[t, j0 : j0 + n]
        sr = s[t, j0 : j0 + n]
        gh = grad_h[t, j0 : j0 + n]
        for k in range(n):
            hv = hr[k]
            d = surrogate_grad_scalar(sur, hv * inv - one, alpha) * inv
            if hard:
                f = one - sr[k]
                if not detach:
                    f = f + (vr - hv) * d
            elif detach:
                f = one
            else:
                f = one - th * d
            g = gs[k] * d + f * nxt[k]
            gh[k] = g
            nxt[k] = dh_du * g
            if keep_ds:
                ds_out[t, j0 + k] = d


@njit(parallel=True, cache=True)
def multistep_backward(
    grad_s, h, s, sur, alpha, th, dh_du, hard, detach, vr, grad_h, ds_out, keep_ds
):
    """BPTT of :func:`multistep_forward`: ``dL/dh[t]`` into ``grad_h`` (``[T, M]``).

    Per neuron, backwards in time (the recurrence of :mod:`snncost.nn.functional`)::

        d[t]      = f'(h[t]/theta - 1) / theta                 (surrogate ``sur``, slope ``alpha``)
        dL/dh[t]  = dL/ds[t] d[t] + du[t]/dh[t] * dh_du * dL/dh[t+1]

    with ``du/dh`` = 1 (soft, detached), ``1 - theta d`` (soft), ``1 - s``
    (hard, detached), ``1 - s + (vr - h) d`` (hard). ``ds_out`` receives
    ``d`` when ``keep_ds`` (the threshold's gradient needs it). All scalars float32.
    """
    M = h.shape[1]
    for blk in prange((M + BLOCK - 1) // BLOCK):
        j0 = blk * BLOCK
        nxt = np.zeros(min(M - j0, BLOCK), np.float32)  # dh[t+1]/du[t] * dL/dh[t+1]
        _backward_block(
            sur, alpha, th, dh_du, hard, detach, vr, grad_s, h, s, grad_h, ds_out, keep_ds, j0, nxt
        )
