"""Numba kernels of the event-driven replay.

One kernel call processes one weight layer (and its neurons) for a chunk of
``B`` samples over all ``T`` steps. Linear layers are run as 1x1
convolutions on a ``(F, 1, 1)`` map, so the same two kernels serve both kinds:

- :func:`event_layer`: spike (event) input. For every nonzero input at
  (c, y, x) (after the avg-pool fold map) it adds ``val * W[c, ky, kx, :]``
  (one contiguous weight column over the output channels) to each output
  membrane it reaches. ``val`` is the spike's sign times the fold factor
  (``1/k^2`` per folded average pool). Two phases:

  1. :func:`_count_events` / :func:`_fill_events` (``prange`` over samples):
     the nonzero inputs of each (sample, step), found by skipping zero 8-byte
     words, are grouped by input row ``c*H + y`` (a counting sort, stable, so
     within a row they keep their scan order): ``ptr`` (row offsets), ``evx``
     (column) and ``evs`` (value) hold them;
  2. :func:`_event_tiles` (``prange`` over tiles = sample x output row x
     block of output channels, each tile over all T steps, so one image keeps
     every core busy): a tile's membranes (``Wo x O`` values, a few KB: L1)
     take every event of the input rows that reach its row, then its neurons
     are updated in place and its spikes written out. With stride 1 the taps
     ``kx_lo..kx_hi`` of one weight row land on consecutive membranes (the
     tile stores ``x`` reversed), so each (event, ky) is one contiguous run of
     up to ``kw*O`` weights. Count partials are per tile (no races) and summed.

  Per membrane the events arrive in the order of a plain per-event loop over
  the input (channel, then row, then scan order), so float sums round as they
  always did.
- :func:`dense_layer`: analog input (direct encoding): the dense current is
  computed once per sample and fed to the neurons at every step.

Membrane/current buffers are channels-last ``[Ho*Wo, O]``; spike maps are
``int8 [B, T, C*H*W]`` in row-major CHW order (so ``Flatten`` is free).
Everything is float32 with the operations in the order of
:func:`snncost.nn.functional.lif_step` (no fastmath: no FMA contraction),
so with exactly representable currents the replay is bit-identical to the
PyTorch forward pass.

Quantized layers (:class:`snncost.nn.QuantConv2d`/``QuantLinear``) are
replayed on their integer codes, kept as int8/int16 and summed in int32
where that is exact (:func:`snncost.sim.plan.event_weights`; a quarter or
half of float32's weight traffic): the step's accumulated current ``acc``
(exact: sums of spikes times small integers) becomes
``I = acc * post * scale[o] + bias[o]`` right before the neuron update
(``post`` = the fold factor for integer sums, else 1, and ``x * 1 == x``),
the same float32 operations in the same order as the layer's forward pass,
so the replay of a quantized network is bit-exact. Float layers pass
``scale = 1``.

``mode``: 0 = neurons (spikes out), 1 = output read-out (the current is
summed over T into ``acc_out``; the caller divides by T), 2 = the current
of every step written to ``cur_out`` (it flows into a merge or a pool, and
:func:`neuron_layer` integrates it later).

Neurons follow :class:`snncost.graph.nodes.LIFNode`'s charge table (one
rule per ``charge``, :data:`snncost.nn.neuron_kernels.CHARGE_CODES`), fire at ``h >= theta`` and
reset soft (``h - theta``) or hard (to ``reset_value``).

An input event of value ``s`` is ``|s|`` spikes at one address (a SEW ADD
of two spike maps gives 2): it adds ``s * W`` once (exact) and counts
``|s|`` input events and ``|s|`` times its accumulates, what a chip that
receives ``|s|`` spikes performs.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from snncost.nn.neuron_kernels import charge as neuron_charge
from snncost.nn.neuron_kernels import fire as neuron_fire

# slots of the per-sample, per-step count rows
EVENTS, SYNOPS, SPIKES, SYNOPS_NZ, ACTIVE = 0, 1, 2, 3, 4
N_COUNTS = 5

@njit(cache=True)
def _nonzero_indices(row, idx):
    """Write the indices of the nonzero entries of an int8 row into ``idx``; returns how many.

    Zero 8-byte words are skipped whole (at low activity most of a spike map is
    zero); inside a nonzero word the index is written unconditionally and the
    count advanced by ``s != 0``, so no branch mispredicts on random spikes.
    """
    n_all = row.shape[0]
    n8 = n_all // 8
    words = row[: n8 * 8].view(np.uint64)
    n = 0
    for w in range(n8):
        if words[w] != 0:
            for i in range(w * 8, w * 8 + 8):
                idx[n] = i
                n += row[i] != 0
    for i in range(n8 * 8, n_all):  # the tail
        idx[n] = i
        n += row[i] != 0
    return n


@njit(parallel=True, cache=True)
def _count_events(spk, fkey, keycount, nev):
    """Per sample and step: input events (with multiplicity) and how many land in each input
    row ``fkey[i] = c*H + y`` (``keycount[b*T + t, key + 1]``, so a cumulative sum gives offsets)."""
    B, T, nsrc = spk.shape
    for b in prange(B):
        idx = np.empty(nsrc, np.int32)
        for t in range(T):
            row = spk[b, t]
            kc = keycount[b * T + t]
            m = 0
            for e in range(_nonzero_indices(row, idx)):
                i = idx[e]
                key = fkey[i]
                if key >= 0:
                    kc[key + 1] += 1
                    m += abs(np.int64(row[i]))
            nev[b, t] = m


@njit(parallel=True, cache=True)
def _fill_events(spk, fkey, fx, ptr, evx, evs):
    """Write the events of each (sample, step) grouped by input row (stable: within a row in
    scan order): their column ``x`` into ``evx``, their value into ``evs``."""
    B, T, nsrc = spk.shape
    nkeys = ptr.shape[1] - 1
    for b in prange(B):
        idx = np.empty(nsrc, np.int32)
        for t in range(T):
            row = spk[b, t]
            cursor = ptr[b * T + t, :nkeys].copy()
            for e in range(_nonzero_indices(row, idx)):
                i = idx[e]
                key = fkey[i]
                if key >= 0:
                    c = cursor[key]
                    evx[c] = fx[i]
                    evs[c] = row[i]
                    cursor[key] = c + 1


@njit(cache=True)
def _apply_events(tile, touched, pt, evx, evs, vtab, H, wt, nzc, O, kh, kw, sh, sw, ph, pw, Wo, oy, o0, o1):
    """Add every event of one step that reaches output row ``oy`` to the tile; returns
    ``(ACs, ACs on nonzero weights)`` (counted by the tile that holds channel 0 only).

    Per membrane the events arrive in the order of the old per-event loop (input
    channel, then input row, then scan order), so float sums round as before.
    """
    C = (pt.shape[0] - 1) // H
    ob = o1 - o0
    runs = ob == O and sw == 1  # a weight row's taps land on consecutive (reversed) membranes
    counted = o0 == 0
    nsyn = 0
    nsyn_nz = 0
    ky_lo = max(0, ph - oy * sh)
    ky_hi = min(kh, H + ph - oy * sh)
    for c in range(C):
        for ky in range(ky_lo, ky_hi):
            key = c * H + oy * sh - ph + ky
            tapb = (c * kh + ky) * kw
            for e in range(pt[key], pt[key + 1]):
                x = np.int64(evx[e])
                s = evs[e]
                m = abs(np.int64(s))
                val = vtab[s + 128]
                unit = val == 1
                if runs:
                    kx_lo = max(0, x + pw - (Wo - 1))
                    kx_hi = min(kw - 1, x + pw)
                    if kx_lo > kx_hi:
                        continue
                    q0 = Wo - 1 - (x + pw - kx_lo)
                    ntap = kx_hi - kx_lo + 1
                    n = ntap * O
                    dst = tile[q0 * O : q0 * O + n]
                    col = wt[(tapb + kx_lo) * O : (tapb + kx_lo) * O + n]
                    if unit:
                        for k in range(n):
                            dst[k] += col[k]
                    else:
                        for k in range(n):
                            dst[k] += val * col[k]
                    for k in range(ntap):
                        touched[q0 + k] = True
                        nsyn_nz += nzc[tapb + kx_lo + k] * m
                    nsyn += n * m
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
                    q = Wo - 1 - ox
                    dst = tile[q * ob : q * ob + ob]
                    col = wt[(tapb + kx) * O + o0 : (tapb + kx) * O + o1]
                    if unit:
                        for k in range(ob):
                            dst[k] += col[k]
                    else:
                        for k in range(ob):
                            dst[k] += val * col[k]
                    touched[q] = True
                    if counted:
                        nsyn += O * m
                        nsyn_nz += nzc[tapb + kx] * m
    return nsyn, nsyn_nz


@njit(cache=True, inline="always")
def _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, charge, hard, nc):
    """The update loop of one charge rule: ``charge`` is a literal at each call site of
    :func:`_tile_neurons`, so the rule's branch folds away and the loop vectorises."""
    fired = 0
    for q in range(nq):
        tb = q * ob
        for k in range(ob):
            o = o0 + k
            i = np.float32(tile[tb + k]) * post * scale[o] + bias[o]
            h = neuron_charge(charge, u[tb + k], i, nc)
            f = h >= nc[4]
            u[tb + k] = (nc[5] if hard else h - nc[4]) if f else h
            sp[tb + k] = f
            fired += f
    return fired


@njit(cache=True)
def _tile_neurons(tile, post, u, sp, scale, bias, o0, ob, nq, npos, pbase, pdir, charge, hard, nc, spk_row):
    """Neuron update of a tile of ``nq`` positions x ``ob`` channels (from ``o0``) held
    channels-last: ``I = acc * post * scale + bias`` (float32, in that order), the charge
    rule, fire and reset. Tile position ``q`` is map position ``pbase + pdir * q``.

    The spikes go to ``sp`` (length a multiple of 8, zero past the tile) first, then only
    its nonzero 8-byte words are written out in CHW order into ``spk_row``, which must
    arrive zeroed; returns the spikes.
    """
    if charge == 0:
        fired = _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, 0, hard, nc)
    elif charge == 1:
        fired = _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, 1, hard, nc)
    elif charge == 2:
        fired = _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, 2, hard, nc)
    elif charge == 3:
        fired = _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, 3, hard, nc)
    else:
        fired = _neuron_rows(tile, post, u, sp, scale, bias, o0, ob, nq, 4, hard, nc)
    if fired:
        words = sp.view(np.uint64)
        for w in range(words.shape[0]):
            if words[w] != 0:
                for j in range(w * 8, min(w * 8 + 8, nq * ob)):
                    if sp[j]:
                        q = j // ob
                        spk_row[(o0 + j - q * ob) * npos + pbase + pdir * q] = 1
    return fired


@njit(cache=True)
def _tile_currents(tile, post, scale, bias, o0, ob, nq, npos, pbase, pdir, acc, cur_row, mode):
    """Read-out (mode 1: the current summed over T in ``acc``, tile order) or materialised
    current (mode 2: written to ``cur_row`` in CHW order) of a tile (see :func:`_tile_neurons`)."""
    for q in range(nq):
        p = pbase + pdir * q
        tb = q * ob
        for k in range(ob):
            o = o0 + k
            i = np.float32(tile[tb + k]) * post * scale[o] + bias[o]
            if mode == 1:
                acc[tb + k] += i
            else:
                cur_row[o * npos + p] = i


@njit(cache=True)
def _tile_readout(acc, o0, ob, nq, npos, pbase, pdir, acc_row):
    """The read-out sums of a tile into ``acc_row`` in CHW order."""
    for q in range(nq):
        p = pbase + pdir * q
        for k in range(ob):
            acc_row[(o0 + k) * npos + p] = acc[q * ob + k]


@njit(parallel=True, cache=True)
def _event_tiles(
    ptr, evx, evs, vtab, post, H, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T, charge, hard, nc,
    mode, obs, spk_out, acc_out, cur_out, part,
):  # fmt: skip
    """``prange`` over tiles (sample, output row, output-channel block), each over all T steps:
    a tile's membranes stay in L1 while the events that reach its row are applied."""
    nob = (O + obs - 1) // obs
    npos = Ho * Wo
    per_sample = Ho * nob
    for item in prange(part.shape[0]):
        b = item // per_sample
        oy = (item % per_sample) // nob
        o0 = (item % nob) * obs
        o1 = min(O, o0 + obs)
        ob = o1 - o0
        tile = np.empty(Wo * ob, vtab.dtype)
        u = np.full(Wo * ob, nc[5], np.float32)
        acc = np.zeros(Wo * ob if mode == 1 else 1, np.float32)
        touched = np.empty(Wo, np.bool_)
        sp = np.zeros(-(-Wo * ob // 8) * 8 if mode == 0 else 8, np.int8)
        last = oy * Wo + Wo - 1  # tile position q is output column Wo - 1 - q
        for t in range(T):
            tile[:] = 0
            touched[:] = False
            nsyn, nsyn_nz = _apply_events(
                tile, touched, ptr[b * T + t], evx, evs, vtab, H, wt, nzc, O, kh, kw, sh, sw, ph, pw, Wo, oy, o0, o1
            )
            fired = 0
            if mode == 0:
                fired = _tile_neurons(tile, post, u, sp, scale, bias, o0, ob, Wo, npos, last, -1, charge, hard, nc,
                                      spk_out[b, t])  # fmt: skip
            else:
                _tile_currents(tile, post, scale, bias, o0, ob, Wo, npos, last, -1, acc,
                               cur_out[b if mode == 2 else 0, t], mode)  # fmt: skip
            part[item, t, 0] = nsyn
            part[item, t, 1] = fired
            part[item, t, 2] = nsyn_nz
            part[item, t, 3] = touched.sum() * O if o0 == 0 else 0
        if mode == 1:
            _tile_readout(acc, o0, ob, Wo, npos, last, -1, acc_out[b])


def output_block(B: int, Ho: int, O: int, threads: int) -> int:
    """Output channels per tile: all of them, unless samples x rows are too few to keep every
    thread busy (a linear layer on one image), then blocks of at least 32 channels."""
    if B * Ho >= 2 * threads or O < 64:
        return O
    nob = min(O // 32, -(-2 * threads // (B * Ho)))
    return -(-O // nob)


def event_layer(
    spk_in,  # int8 [B, T, Nsrc]
    fkey,  # int32 [Nsrc]: input row c*H + y of each source index (after the pool fold), -1 = dropped
    fx,  # int32 [Nsrc]: its input column x
    vtab,  # [256]: the value an event of spike value s adds, at vtab[s + 128] (accumulator dtype)
    post,  # float32: factor from the accumulator to the current (1, or fval for integer codes)
    C,
    H,
    W,
    wt,  # [C*kh*kw*O]: weights (float32) or integer codes (int8/int16) as [C, kh, kw, O]
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
    nc,  # float32 [6]: neuron constants (see snncost.nn.neuron_kernels.charge)
    mode,
    spk_out,  # int8 [B, T, O*Ho*Wo] (mode 0)
    acc_out,  # float32 [B, O*Ho*Wo] (mode 1): sum over T of the current
    cur_out,  # float32 [B, T, O*Ho*Wo] (mode 2): the current of every step
    counts,  # int64 [B, T, N_COUNTS]
):
    """Event-driven layer over a chunk: events indexed by input row, then ``prange`` over tiles."""
    B, T, _ = spk_in.shape
    # int32 offsets and int16 columns: a chunk holds under 2^28 events (SPIKE_MAP_BUDGET)
    ptr = np.zeros((B * T, C * H + 1), np.int32)
    nev = np.zeros((B, T), np.int64)
    _count_events(spk_in, fkey, ptr, nev)
    np.cumsum(ptr.reshape(-1), out=ptr.reshape(-1))  # counts -> offsets, in place
    n = int(ptr[-1, -1]) if ptr.size else 0
    evx = np.empty(max(n, 1), np.int16)
    evs = np.empty(max(n, 1), np.int8)
    _fill_events(spk_in, fkey, fx, ptr, evx, evs)
    obs = output_block(B, Ho, O, numba.get_num_threads())
    part = np.zeros((B * Ho * (-(-O // obs)), T, 4), np.int64)
    _event_tiles(ptr, evx, evs, vtab, post, H, wt, nzc, scale, bias, O, kh, kw, sh, sw, ph, pw, Ho, Wo, T,
                 charge, hard, nc, mode, obs, spk_out, acc_out, cur_out, part)  # fmt: skip
    per_sample = part.reshape(B, -1, T, 4).sum(axis=1)
    counts[:, :, EVENTS] = nev
    counts[:, :, SYNOPS] = per_sample[..., 0]
    counts[:, :, SPIKES] = per_sample[..., 1]
    counts[:, :, SYNOPS_NZ] = per_sample[..., 2]
    counts[:, :, ACTIVE] = per_sample[..., 3]


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
    sp = np.zeros(-(-npos * O // 8) * 8 if mode == 0 else 8, np.int8)
    one = np.float32(1.0)
    for t in range(T):
        fired = 0
        if mode == 0:
            fired = _tile_neurons(cur, one, u, sp, scale, bias, 0, O, npos, npos, 0, 1, charge, hard, nc, spk_out[t])
        else:
            _tile_currents(cur, one, scale, bias, 0, O, npos, npos, 0, 1, acc, cur_out[t], mode)
        counts[t, EVENTS] = 0
        counts[t, SYNOPS] = 0
        counts[t, SPIKES] = fired
        counts[t, SYNOPS_NZ] = 0
        counts[t, ACTIVE] = npos * O  # a dense input reaches every neuron
    if mode == 1:
        _tile_readout(acc, 0, O, npos, npos, 0, 1, acc_out)


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
    read-add-write the membranes); ``bench/sim_throughput.py`` runs it on the
    layers' own arrays (streaming bound) and on 16 KB blocks (L1 bound).
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
                s, v = neuron_fire(neuron_charge(charge, u[j], row[j], nc), hard, nc)
                u[j] = v
                out[j] = s
                fired += s
            counts[b, t, SPIKES] = fired
