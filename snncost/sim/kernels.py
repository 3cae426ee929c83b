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

``mode``: 0 = neurons (spikes out), 1 = output read-out (the current is
summed over T into ``acc_out``; the caller divides by T), 2 = the current
of every step written to ``cur_out`` (it flows into a merge or a pool, and
:func:`neuron_layer` integrates it later).

Neurons follow :class:`snncost.graph.nodes.LIFNode`'s charge table (one
rule per ``charge``, :data:`CHARGE_CODES`), fire at ``h >= theta`` and
reset soft (``h - theta``) or hard (to ``reset_value``).

An input event of value ``s`` is ``|s|`` spikes at one address (a SEW ADD
of two spike maps gives 2): it adds ``s * W`` once (exact) and counts
``|s|`` input events and ``|s|`` times its accumulates, what a chip that
receives ``|s|`` spikes performs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# slots of the per-sample, per-step count rows
EVENTS, SYNOPS, SPIKES, SYNOPS_NZ, ACTIVE = 0, 1, 2, 3, 4
N_COUNTS = 5

#: LIFNode.charge -> the rule index :func:`_charge` branches on
CHARGE_CODES = {"leak": 0, "decay-input": 1, "no-decay-input": 2, "plif-decay-input": 3, "plif-no-decay-input": 4}


@njit(cache=True, inline="always")
def _charge(charge, u, i, nc):
    """``h`` of one neuron (:class:`~snncost.graph.nodes.LIFNode`'s table), float32, left to right.

    ``nc`` = ``[leak, tau, decay, reset_value_in_charge, theta, u0]`` (float32);
    ``charge`` is the index of the rule in :data:`CHARGE_CODES`.
    """
    if charge == 0:
        return nc[0] * u + i
    if charge == 1:
        return u + (i - (u - nc[3])) / nc[1]
    if charge == 2:
        return u - (u - nc[3]) / nc[1] + i
    if charge == 3:
        return u + (i - (u - nc[3])) * nc[2]
    return u - (u - nc[3]) * nc[2] + i


@njit(cache=True, inline="always")
def _fire(h, hard, nc):
    """``(spike, new membrane)``: ``h >= theta``; soft reset ``h - theta``, hard reset to ``u0``."""
    if h >= nc[4]:
        return 1, (nc[5] if hard else h - nc[4])
    return 0, h


@njit(cache=True)
def _neurons(cur, u, scale, bias, npos, n_out, charge, hard, nc, mode, spk_row, acc, cur_row):
    """Neuron update of every neuron (mode 0), read-out accumulation (mode 1), or the
    current handed on (mode 2, written to ``cur_row`` in CHW order); returns spikes.

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
                s, v = _fire(_charge(charge, u[j], i, nc), hard, nc)
                u[j] = v
                spk_row[o * npos + p] = s
                fired += s
    elif mode == 1:
        for p in range(npos):
            base = p * n_out
            for o in range(n_out):
                acc[base + o] += cur[base + o] * scale[o] + bias[o]
    else:
        for p in range(npos):
            base = p * n_out
            for o in range(n_out):
                cur_row[o * npos + p] = cur[base + o] * scale[o] + bias[o]
    return fired


@njit(cache=True)
def _to_chw(acc_hwc, out_row, npos, n_out):
    for p in range(npos):
        for o in range(n_out):
            out_row[o * npos + p] = acc_hwc[p * n_out + o]


@njit(cache=True)
def _event_sample(
    spk, fmap, fval, H, W, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, charge, hard, nc,
    mode, spk_out, acc_out, cur_out, counts,
):  # fmt: skip
    """One sample over all T steps (serial code, so LLVM vectorises the column loop)."""
    T = spk.shape[0]
    nsrc = spk.shape[1]
    npos = Ho * Wo
    hw = H * W
    cur = np.empty(npos * O, np.float32)
    u = np.full(npos * O, nc[5], np.float32)
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
            m = abs(np.int64(s))  # multiplicity: m spikes at one address (a SEW ADD gives 2)
            nev += m
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
                    nsyn += O * m
                    nsyn_nz += nzc[tap] * m
        fired = _neurons(cur, u, scale, bias, npos, O, charge, hard, nc, mode, spk_out[t], acc, cur_out[t])
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
    charge,  # int: index in CHARGE_CODES
    hard,  # bool: hard reset
    nc,  # float32 [6]: neuron constants (see _charge)
    mode,
    spk_out,  # int8 [B, T, O*Ho*Wo] (mode 0)
    acc_out,  # float32 [B, O*Ho*Wo] (mode 1): sum over T of the current
    cur_out,  # float32 [B, T, O*Ho*Wo] (mode 2): the current of every step
    counts,  # int64 [B, T, N_COUNTS]
):
    """Event-driven layer over a chunk: ``prange`` over samples."""
    B = spk_in.shape[0]
    for b in prange(B):
        so = spk_out[b] if mode == 0 else spk_out[0]
        ao = acc_out[b] if mode == 1 else acc_out[0]
        co = cur_out[b] if mode == 2 else cur_out[0]
        _event_sample(
            spk_in[b], fmap, fval, H, W, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo,
            charge, hard, nc, mode, so, ao, co, counts[b],
        )  # fmt: skip


@njit(cache=True)
def _dense_sample(
    xb, C, H, W, wt, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T, charge, hard, nc, mode,
    spk_out, acc_out, cur_out, counts,
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
    u = np.full(npos * O, nc[5], np.float32)
    acc = np.zeros(npos * O if mode == 1 else 1, np.float32)
    for t in range(T):
        fired = _neurons(cur, u, scale, bias, npos, O, charge, hard, nc, mode, spk_out[t], acc, cur_out[t])
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
    charge,
    hard,
    nc,
    mode,
    spk_out,  # int8 [B, T, O*Ho*Wo]
    acc_out,  # float32 [B, O*Ho*Wo]
    cur_out,  # float32 [B, T, O*Ho*Wo] (mode 2)
    counts,  # int64 [B, T, N_COUNTS]
):
    """Dense (MAC) first layer on an analog input that is the same at every step."""
    B = x.shape[0]
    for b in prange(B):
        so = spk_out[b] if mode == 0 else spk_out[0]
        ao = acc_out[b] if mode == 1 else acc_out[0]
        co = cur_out[b] if mode == 2 else cur_out[0]
        _dense_sample(
            x[b], C, H, W, wt, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T, charge, hard, nc, mode,
            so, ao, co, counts[b],
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


@njit(parallel=True, cache=True)
def neuron_layer(cur, charge, hard, nc, spk_out, counts):
    """Neurons fed by a materialised current ``float32 [B, T, N]`` (a merge's output):
    spikes into ``spk_out`` ``int8 [B, T, N]``; ``counts[b, t, SPIKES]`` per step."""
    B = cur.shape[0]
    T = cur.shape[1]
    N = cur.shape[2]
    for b in prange(B):
        u = np.full(N, nc[5], np.float32)
        for t in range(T):
            row = cur[b, t]
            out = spk_out[b, t]
            fired = 0
            for j in range(N):
                s, v = _fire(_charge(charge, u[j], row[j], nc), hard, nc)
                u[j] = v
                out[j] = s
                fired += s
            counts[b, t, SPIKES] = fired
