"""Throughput of the event-driven replay vs a dense PyTorch replay vs a single-core bound.

Run: ``python bench/sim_throughput.py`` (``--quick`` for a short version).

VGG9 (CIFAR shape 3x32x32, 10 classes, direct encoding) with random He
weights; the threshold of every LIF layer is calibrated, layer by layer with
a torch run, so that its mean spike rate hits the target activity. Then,
for each activity:

(a) ``simulate``: the numba event-driven replay (all cores, ``prange`` over
    the batch);
(b) dense: the PyTorch forward pass of the same SNN with forward hooks that
    count synaptic ops the way sinabs/syops do (nonzero inputs x fan-out),
    here with the exact per-position fan-out so the count equals (a)'s;
(c) bounds, compared with (a) run on one thread (``numba.set_num_threads(1)``):
    *streaming*: a minimal single-core numba loop (``stream_columns``) that
    accumulates the same number of weight columns per layer, from the layer's
    own weights into a membrane array of the layer's size at random events;
    *L1*: the same loop and column count on a 16 KB weight block into a 16 KB
    membrane block (both resident in L1): what accumulating costs when no
    byte comes from further away, the ceiling for any tiling.

Throughput is synaptic ops (ACs) per second of wall time for the whole
replay. Timings are medians of a few repeats after a warm-up (compile).
The last lines are ``RESULT sim_vs_dense_at_10pct <ratio>`` and
``RESULT sim_vs_dense_at_15pct <ratio>``.
"""

from __future__ import annotations

import argparse
import os

# Numba's and torch's OpenMP pools share the cores: with libgomp's default
# (active) waiting, threads left spinning by one pool slow the other by up to
# 8x for seconds after each switch (measured: dense replay 155 ms -> 1.7 s
# right after a simulate call). Passive waiting makes both timings stable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import snncost.nn as sn  # noqa: E402
from snncost.graph import build_graph  # noqa: E402
from snncost.models import NeuronConfig, VGGSpec, build_snn, spiking_layers  # noqa: E402
from snncost.sim import kernels as K  # noqa: E402
from snncost.sim import simulate  # noqa: E402
from snncost.sim.replay import compile_plan  # noqa: E402


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def calibrate(model: nn.Module, x: torch.Tensor, target: float) -> list[float]:
    """Set every LIF threshold (in forward order) so its mean spike rate is ``target``."""
    rates = []
    for _name, lif in spiking_layers(model):
        captured = {}
        h = lif.register_forward_hook(lambda _m, inp, _o: captured.__setitem__("i", inp[0].detach()))
        with torch.no_grad():
            model(x)
        h.remove()
        cur = captured["i"].contiguous()
        leak = torch.tensor(lif.effective()[0])

        def rate(theta: float) -> float:
            s = sn.lif_multistep(cur, leak, torch.tensor(theta), lif.surrogate)
            return float(s.mean())

        lo, hi = 1e-4, float(cur.abs().max()) * cur.shape[0] + 1.0
        for _ in range(40):  # bisection on log(theta): rate decreases with theta
            mid = (lo * hi) ** 0.5
            if rate(mid) > target:
                lo = mid
            else:
                hi = mid
        theta = hi if abs(rate(hi) - target) <= abs(rate(lo) - target) else lo
        with torch.no_grad():
            lif.threshold.fill_(theta)
        rates.append(rate(theta))
    return rates


class DenseCounter:
    """Forward hooks counting synaptic ops of the torch SNN: nonzero events x fan-out.

    An event is a nonzero output of a LIF (or Poisson encoder) that reaches the
    layer; average pools are folded (a pre-pool spike reaches the next layer's
    fan-out of its pooled position), max pools are counted after pooling.
    """

    def __init__(self, model: nn.Module, graph) -> None:
        self.synops = 0
        self.handles = []
        modules = dict(model.named_modules())
        nodes = list(graph)
        for i, node in enumerate(nodes):
            if node.type_name not in ("conv", "linear"):
                continue
            # walk back to the event source, folding avg pools
            j, pools = i - 1, []
            while j >= 0 and nodes[j].type_name in ("pool", "flatten"):
                if nodes[j].type_name == "pool":
                    pools.append(nodes[j])
                j -= 1
            src = nodes[j]
            if src.type_name == "input" and src.encoding == "direct":
                continue  # dense MACs, not synaptic ops
            fan = self._fanout(node)  # over the layer's input (C,H,W) or (F,)
            source_module = modules[src.name]
            for p in pools:
                if p.kind == "max":  # count after the max pool instead
                    source_module = modules[p.name]
                    break
                fan = self._unpool(fan, p)
            fan_t = torch.as_tensor(fan.reshape(-1), dtype=torch.float64)
            self.handles.append(source_module.register_forward_hook(self._hook(fan_t)))

    @staticmethod
    def _fanout(node) -> np.ndarray:
        if node.type_name == "linear":
            return np.full(node.in_shape, node.weight.shape[0], np.float64)
        o, c, kh, kw = node.weight.shape
        _, ho, wo = node.out_shape
        _, h, w = node.in_shape
        ones = torch.ones(1, 1, ho, wo, dtype=torch.float64)
        k = torch.ones(1, 1, kh, kw, dtype=torch.float64)
        reach = F.conv_transpose2d(ones, k, stride=node.stride, padding=node.padding)
        full = torch.zeros(h, w, dtype=torch.float64)
        hh, ww = min(h, reach.shape[2]), min(w, reach.shape[3])
        full[:hh, :ww] = reach[0, 0, :hh, :ww]
        return (full * o).expand(c, h, w).numpy().copy()

    @staticmethod
    def _unpool(fan: np.ndarray, pool) -> np.ndarray:
        c, h, w = pool.in_shape
        k = pool.kernel
        fan = fan.reshape(pool.out_shape)
        up = np.zeros((c, h, w), fan.dtype)
        up[:, : fan.shape[1] * k, : fan.shape[2] * k] = fan.repeat(k, axis=1).repeat(k, axis=2)
        return up

    def _hook(self, fan: torch.Tensor):
        def hook(_m, _i, out):
            nz = (out != 0).reshape(-1, fan.numel()).sum(0, dtype=torch.float64)
            self.synops += int(round(torch.dot(nz, fan).item()))

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


L1_BLOCK_BYTES = 16 * 1024  # weights and membranes of the L1-resident bound, each


def bound_kernel_time(plan, synops_per_layer: list[int], repeats: int, rng, l1: bool = False) -> tuple[float, int]:
    """Single-core time to accumulate the same number of weight columns per layer (random
    events): from the layer's weights into its membranes, or (``l1``) within a 16 KB weight
    block and a 16 KB membrane block."""
    work = []
    total = 0
    for st, syn in zip(plan, synops_per_layer, strict=False):
        if syn == 0:
            continue
        (c, h, w, o, kh, kw, sh, sw, ph, pw, ho, wo) = st.geom
        n_cols, n_pos, wt = c * kh * kw, ho * wo, st.wt
        if l1:
            n_pos = max(1, L1_BLOCK_BYTES // (4 * o))
            n_cols = min(n_cols, n_pos)  # the layer's first columns (all of them if fewer)
            wt = np.ascontiguousarray(st.wt[: n_cols * o])
        n = syn // o
        cols = rng.integers(0, n_cols, n).astype(np.int64)
        offs = (rng.integers(0, n_pos, n) * o).astype(np.int64)
        acc = np.zeros(n_pos * o, np.float32)
        work.append((wt, o, cols, offs, acc))
        total += n * o
    for args in work:  # compile + warm
        K.stream_columns(*args)

    def run():
        for args in work:
            K.stream_columns(*args)

    return median_time(run, repeats), total


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10%% and 15%% only, 3 repeats")
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    activities = [0.10, 0.15] if args.quick else [0.01, 0.05, 0.10, 0.15, 0.30]
    repeats = 3 if args.quick else args.repeats
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = VGGSpec.from_arch("vgg9", image_size=32, num_classes=10, in_channels=3)
    model = build_snn(spec, NeuronConfig(timesteps=args.timesteps, encoding="direct")).eval()
    x = torch.rand(args.batch, 3, 32, 32)
    n_threads = numba.get_num_threads()
    print(
        f"VGG9 32x32x3, T={args.timesteps}, batch={args.batch}, cpu cores={os.cpu_count()}, "
        f"numba threads={n_threads} ({numba.threading_layer() if False else numba.config.THREADING_LAYER}), "
        f"torch threads={torch.get_num_threads()}"
    )
    ann_macs = sum(n.dense_macs for n in build_graph(model).weight_layers())
    print(f"dense MACs per sample-step: {ann_macs:,}")

    rows = []
    for act in activities:
        rates = calibrate(model, x, act)
        graph = build_graph(model)
        plan = compile_plan(graph).stages
        simulate(graph, x, batch_size=args.batch)  # warm up / compile
        run = simulate(graph, x, batch_size=args.batch)
        synops = int(sum(lc.synaptic_ops.sum() for lc in run.layers))
        t_sim = median_time(lambda: simulate(graph, x, batch_size=args.batch), repeats)

        counter = DenseCounter(model, graph)

        def dense():
            counter.synops = 0
            with torch.no_grad():
                model(x)

        dense()
        t_dense = median_time(dense, repeats)
        dense_synops = counter.synops
        counter.remove()

        numba.set_num_threads(1)
        try:
            simulate(graph, x, batch_size=args.batch)
            t_sim1 = median_time(lambda: simulate(graph, x, batch_size=args.batch), repeats)
        finally:
            numba.set_num_threads(n_threads)
        per_layer = [int(lc.synaptic_ops.sum()) for lc in run.layers]
        t_bound, bound_ops = bound_kernel_time(plan, per_layer, repeats, rng)
        t_l1, l1_ops = bound_kernel_time(plan, per_layer, repeats, rng, l1=True)

        mean_rate = float(np.mean(rates))
        row = {
            "target": act,
            "rate": mean_rate,
            "synops": synops,
            "dense_synops": dense_synops,
            "sim": synops / t_sim,
            "dense": synops / t_dense,
            "sim1": synops / t_sim1,
            "bound": bound_ops / t_bound,
            "l1": l1_ops / t_l1,
            "t_sim": t_sim,
            "t_dense": t_dense,
        }
        rows.append(row)
        print(
            f"activity {act:5.0%}: achieved mean rate {mean_rate:6.2%} "
            f"(per layer {', '.join(f'{r:.1%}' for r in rates)}); synops {synops:,} "
            f"(dense hooks count {dense_synops:,})"
        )

    print()
    print(
        f"{'target':>7} {'rate':>7} {'sim ev/s':>10} {'dense ev/s':>11} {'sim/dense':>9} "
        f"{'sim1 ev/s':>10} {'bound ev/s':>11} {'sim1/bound':>10} {'L1 ev/s':>10} {'sim1/L1':>8} "
        f"{'t_sim ms':>9} {'t_dense ms':>10}"
    )
    for r in rows:
        print(
            f"{r['target']:7.0%} {r['rate']:7.2%} {r['sim']:10.3g} {r['dense']:11.3g} "
            f"{r['sim'] / r['dense']:9.2f} {r['sim1']:10.3g} {r['bound']:11.3g} "
            f"{r['sim1'] / r['bound']:10.2f} {r['l1']:10.3g} {r['sim1'] / r['l1']:8.2f} "
            f"{r['t_sim'] * 1e3:9.1f} {r['t_dense'] * 1e3:10.1f}"
        )
    ratios = {}
    for pct in (10, 15):
        at = min(rows, key=lambda r, p=pct: abs(r["target"] - p / 100))
        ratios[pct] = at["sim"] / at["dense"]
        print(f"RESULT sim_vs_dense_at_{pct}pct {ratios[pct]:.2f}")
    return ratios[10]


if __name__ == "__main__":
    main()
