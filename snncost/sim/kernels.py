"""Numba kernels of the event-driven replay.

One kernel call processes one weight layer (and its neurons) for a chunk of
``B`` samples over all ``T`` steps, ``prange`` over samples (each sample has
its own membrane buffers and count rows, so there are no races). Linear
layers are run as 1x1 convolutions on a ``(F, 1, 1)`` map, so the same two
kernels serve both kinds:

- :func:`event_layer`: spike (event) input. For every nonzero input at
  (c, y, x) (after the avg-pool fold map) it adds ``val * W[c, ky, kx, :]``
  (one contiguous weight column over the output channels) to each output
  membrane it reaches. ``val`` is the spike's sign times the fold factor
  (``1/k^2`` per folded average pool).
- :func:`dense_layer`: analog input (direct encoding): the dense current is
  computed once per sample and fed to the neurons at every step.

Membrane/current buffers are channels-last ``[Ho*Wo, O]``; spike maps are
``int8 [B, T, C*H*W]`` in row-major CHW order (so ``Flatten`` is free).
Everything is float32 with the operations in the order of
:func:`snncost.nn.functional.lif_step` (no fastmath: no FMA contraction),
so with exactly representable currents the replay is bit-identical to the
PyTorch forward pass.

Quantized layers (:class:`snncost.nn.QuantConv2d`/``QuantLinear``) are
replayed on their integer codes: the step's accumulated current ``acc``
(exact: sums of spikes times small integers) becomes
``I = acc * scale[o] + bias[o]`` right before the neuron update, the same
two float32 operations in the same order as the layer's forward pass, so
the replay of a quantized network is bit-exact. Float layers pass
``scale = 1``.

``mode``: 0 = LIF neurons (spikes out), 1 = output read-out (the current is
summed over T into ``acc_out``; the caller divides by T).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# slots of the per-sample, per-step count rows
EVENTS, SYNOPS, SPIKES, SYNOPS_NZ, ACTIVE = 0, 1, 2, 3, 4
N_COUNTS = 5


@njit(cache=True)
def _neurons(cur, u, scale, bias, npos, n_out, leak, theta, mode, spk_row, acc):
    """LIF update of every neuron (mode 0) or read-out accumulation (mode 1); returns spikes.

    The input current of neuron ``(p, o)`` is ``I = cur * scale[o] + bias[o]``
    (two rounded float32 operations, as ``conv(x, codes) * scale + bias`` in
    :class:`snncost.nn.QuantConv2d`); float layers pass ``scale = 1``, and
    ``cur * 1`` is exactly ``cur``.
    """
    fired = 0
    if mode == 0:
        for p in range(npos):
            base = p * n_out
            for o in range(n_out):
                j = base + o
                i = cur[j] * scale[o] + bias[o]
                h = leak * u[j] + i
                if h >= theta:
                    u[j] = h - theta
                    spk_row[o * npos + p] = 1
                    fired += 1
                else:
                    u[j] = h
                    spk_row[o * npos + p] = 0
    else:
        for p in range(npos):
            base = p * n_out
            for o in range(n_out):
                acc[base + o] += cur[base + o] * scale[o] + bias[o]
    return fired


@njit(cache=True)
def _to_chw(acc_hwc, out_row, npos, n_out):
    for p in range(npos):
        for o in range(n_out):
            out_row[o * npos + p] = acc_hwc[p * n_out + o]


@njit(cache=True)
def _event_sample(
    spk, fmap, fval, H, W, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, leak, theta, mode,
    spk_out, acc_out, counts,
):  # fmt: skip
    """One sample over all T steps (serial code, so LLVM vectorises the column loop)."""
    T = spk.shape[0]
    nsrc = spk.shape[1]
    npos = Ho * Wo
    hw = H * W
    cur = np.empty(npos * O, np.float32)
    u = np.zeros(npos * O, np.float32)
    acc = np.zeros(npos * O if mode == 1 else 1, np.float32)
    touched = np.zeros(npos, np.bool_)  # output positions that received input this step
    for t in range(T):
        cur[:] = 0.0
        touched[:] = False
        nev = 0
        nsyn = 0
        nsyn_nz = 0
        row = spk[t]
        for i in range(nsrc):
            s = row[i]
            if s == 0:
                continue
            j = fmap[i]
            if j < 0:
                continue
            nev += 1
            val = fval * np.float32(s)
            unit = val == np.float32(1.0)  # x * 1 == x exactly: skip the multiply
            c = j // hw
            r = j - c * hw
            y = r // W
            x = r - y * W
            for ky in range(kh):
                ny = y + ph - ky
                if ny < 0:
                    break
                if ny % sh != 0:
                    continue
                oy = ny // sh
                if oy >= Ho:
                    continue
                for kx in range(kw):
                    nx = x + pw - kx
                    if nx < 0:
                        break
                    if nx % sw != 0:
                        continue
                    ox = nx // sw
                    if ox >= Wo:
                        continue
                    tap = (c * kh + ky) * kw + kx
                    wb = tap * O
                    pos = oy * Wo + ox
                    touched[pos] = True
                    cb = pos * O
                    # slice views: the loop below then vectorises (flat
                    # indexing with computed offsets does not)
                    dst = cur[cb : cb + O]
                    col = wt[wb : wb + O]
                    if unit:
                        for o in range(O):
                            dst[o] += col[o]
                    else:
                        for o in range(O):
                            dst[o] += val * col[o]
                    nsyn += O
                    nsyn_nz += nzc[tap]
        fired = _neurons(cur, u, scale, bias, npos, O, leak, theta, mode, spk_out[t], acc)
        counts[t, EVENTS] = nev
        counts[t, SYNOPS] = nsyn
        counts[t, SPIKES] = fired
        counts[t, SYNOPS_NZ] = nsyn_nz
        counts[t, ACTIVE] = touched.sum() * O
    if mode == 1:
        _to_chw(acc, acc_out, npos, O)


@njit(parallel=True, cache=True)
def event_layer(
    spk_in,  # int8 [B, T, Nsrc]
    fmap,  # int32 [Nsrc]: target index in the layer's (C, H, W) input, -1 = dropped
    fval,  # float32: value of one event (1/k^2 per folded average pool)
    C,
    H,
    W,
    wt,  # float32 [C*kh*kw*O]: weights (or integer codes) as [C, kh, kw, O]
    nzc,  # int64 [C*kh*kw]: nonzero weights in each column (ACs a weight-sparse chip performs)
    scale,  # float32 [O]: per-output-channel weight scale (ones for float weights)
    bias,  # float32 [O] (zeros without bias)
    O,
    kh,
    kw,
    sh,
    sw,
    ph,
    pw,
    Ho,
    Wo,
    leak,  # float32
    theta,  # float32
    mode,
    spk_out,  # int8 [B, T, O*Ho*Wo] (mode 0)
    acc_out,  # float32 [B, O*Ho*Wo] (mode 1): sum over T of the current
    counts,  # int64 [B, T, N_COUNTS]
):
    """Event-driven layer over a chunk: ``prange`` over samples."""
    B = spk_in.shape[0]
    for b in prange(B):
        so = spk_out[b] if mode == 0 else spk_out[0]
        ao = acc_out[b] if mode == 1 else acc_out[0]
        _event_sample(
            spk_in[b], fmap, fval, H, W, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo,
            leak, theta, mode, so, ao, counts[b],
        )  # fmt: skip


@njit(cache=True)
def _dense_sample(
    xb, C, H, W, wt, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T, leak, theta, mode,
    spk_out, acc_out, counts,
):  # fmt: skip
    npos = Ho * Wo
    hw = H * W
    cur = np.zeros(npos * O, np.float32)
    for oy in range(Ho):
        for ox in range(Wo):
            cb = (oy * Wo + ox) * O
            dst = cur[cb : cb + O]
            for c in range(C):
                for ky in range(kh):
                    iy = oy * sh - ph + ky
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - pw + kx
                        if ix < 0 or ix >= W:
                            continue
                        v = xb[c * hw + iy * W + ix]
                        wb = ((c * kh + ky) * kw + kx) * O
                        col = wt[wb : wb + O]
                        for o in range(O):
                            dst[o] += v * col[o]
    u = np.zeros(npos * O, np.float32)
    acc = np.zeros(npos * O if mode == 1 else 1, np.float32)
    for t in range(T):
        fired = _neurons(cur, u, scale, bias, npos, O, leak, theta, mode, spk_out[t], acc)
        counts[t, EVENTS] = 0
        counts[t, SYNOPS] = 0
        counts[t, SPIKES] = fired
        counts[t, SYNOPS_NZ] = 0
        counts[t, ACTIVE] = npos * O  # a dense input reaches every neuron
    if mode == 1:
        _to_chw(acc, acc_out, npos, O)


@njit(parallel=True, cache=True)
def dense_layer(
    x,  # float32 [B, C*H*W] analog input (CHW)
    C,
    H,
    W,
    wt,
    scale,
    bias,
    O,
    kh,
    kw,
    sh,
    sw,
    ph,
    pw,
    Ho,
    Wo,
    T,
    leak,
    theta,
    mode,
    spk_out,  # int8 [B, T, O*Ho*Wo]
    acc_out,  # float32 [B, O*Ho*Wo]
    counts,  # int64 [B, T, N_COUNTS]
):
    """Dense (MAC) first layer on an analog input that is the same at every step."""
    B = x.shape[0]
    for b in prange(B):
        so = spk_out[b] if mode == 0 else spk_out[0]
        ao = acc_out[b] if mode == 1 else acc_out[0]
        _dense_sample(
            x[b], C, H, W, wt, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T, leak, theta, mode,
            so, ao, counts[b],
        )  # fmt: skip


@njit(parallel=True, cache=True)
def maxpool_spikes(spk_in, C, H, W, k, spk_out):
    """Max pooling (kernel == stride) of int8 spike maps ``[B, T, C*H*W] -> [B, T, C*Hp*Wp]``."""
    B = spk_in.shape[0]
    T = spk_in.shape[1]
    hp = H // k
    wp = W // k
    for b in prange(B):
        for t in range(T):
            src = spk_in[b, t]
            dst = spk_out[b, t]
            for c in range(C):
                for py in range(hp):
                    for px in range(wp):
                        m = src[c * H * W + (py * k) * W + px * k]
                        for dy in range(k):
                            for dx in range(k):
                                v = src[c * H * W + (py * k + dy) * W + px * k + dx]
                                if v > m:
                                    m = v
                        dst[c * hp * wp + py * wp + px] = m


@njit(cache=True)
def stream_columns(wt, O, cols, offs, acc):
    """The single-core bound: accumulate weight column ``cols[e]`` into ``acc[offs[e]:+O]``.

    The least work any event-driven kernel must do per event (read a column,
    read-add-write the membranes); used by ``bench/sim_throughput.py``.
    """
    for e in range(cols.shape[0]):
        wb = cols[e] * O
        cb = offs[e]
        dst = acc[cb : cb + O]
        col = wt[wb : wb + O]
        for o in range(O):
            dst[o] += col[o]
    return cols.shape[0] * O
