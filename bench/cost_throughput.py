"""Costing throughput: ``snncost.evaluate`` vs SpikingJelly's op counters vs sinabs' SNNAnalyzer.

Run: ``python bench/cost_throughput.py`` (``--quick`` for a short version).

The VGG9 of ``bench/sim_throughput.py`` (CIFAR shape 3x32x32, 10 classes,
direct encoding, random He weights, every LIF threshold calibrated with its
``calibrate`` so each layer fires at the target activity) is built again,
with the same weights and thresholds, in each peer's own modules:

- SpikingJelly: multi-step ``layer.Conv2d`` / ``layer.AvgPool2d`` /
  ``layer.Flatten`` / ``layer.Linear`` and ``neuron.IFNode(v_reset=None)``
  (soft reset: ``v -= v_threshold`` on a spike; fires on ``v >= v_threshold``),
  input ``[T, B, C, H, W]``, logits the mean over ``T``;
- sinabs: torch ``Conv2d`` / ``AvgPool2d`` / ``Flatten`` / ``Linear`` and
  ``sinabs.layers.IAFSqueeze`` with ``SingleSpike`` (``v >= threshold``) and
  ``MembraneSubtract`` (``v -= threshold``), the same dynamics as snncost's
  IF neuron with soft reset; input ``[B*T, C, H, W]`` (batch-major).

The script checks that all three networks give the same logits, then, per
activity, times on the same batch in the same process (warm-up, then the
median of ``--repeats`` runs, the tools taking turns in each repeat):

(a) ``snncost.evaluate(model, "45nm", data=x, verify=False)``: event-driven
    replay, ANN counts and pricing, the whole report;
(b) SpikingJelly's ``SynOpCounter``, ``ACCounter`` and ``MACCounter`` in one
    ``DispatchCounterMode`` around the forward pass (as its docs run them);
    for reference also its energy estimator ``estimate_simple_energy``
    (the same three counters plus its memory counter and pricing);
(c) sinabs' ``SNNAnalyzer``: hooks attached, forward pass, layer and model
    statistics.

It also prints every tool's count per layer (ACs / synaptic ops per
inference, and the first layer's MACs) with the relative difference to
snncost's, next to a reference computed from the PyTorch forward pass with
snncost's conventions (so float ties of the replay are told apart from
differences of convention). The last lines are ``RESULT cost_vs_spikingjelly
<ratio>`` and ``RESULT cost_vs_sinabs <ratio>``: peer time / snncost time at
10% activity (> 1: snncost is faster).
"""

from __future__ import annotations

import argparse
import os

# see bench/sim_throughput.py: numba's and torch's OpenMP pools share the cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sim_throughput import calibrate  # noqa: E402
from torch import nn  # noqa: E402

import snncost  # noqa: E402
import snncost.nn as sn  # noqa: E402
from snncost.models import NeuronConfig, VGGSpec, build_snn  # noqa: E402


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def weight_layer_names(model: nn.Module) -> list[str]:
    return [n for n, _ in weight_layers(model)]


def flat_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf modules of ``features`` and ``classifier`` in forward order (no encoder/read-out)."""
    return [
        (f"{part}.{i}", m)
        for part in ("features", "classifier")
        for i, m in enumerate(getattr(model, part))
    ]


# ---------------------------------------------------------------------- the peers' networks
def build_spikingjelly(model: nn.Module) -> tuple[nn.Module, dict[str, str]]:
    """The same SNN in SpikingJelly's multi-step modules; returns it and ``{scope: snncost name}``."""
    from spikingjelly.activation_based import layer, neuron

    mods, names = [], {}
    for name, m in flat_layers(model):
        if isinstance(m, nn.Conv2d):
            c = layer.Conv2d(
                m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=False,
                step_mode="m",
            )
        elif isinstance(m, nn.Linear):
            c = layer.Linear(m.in_features, m.out_features, bias=False, step_mode="m")
        elif isinstance(m, sn.LIF):
            leak, theta = m.effective()
            assert leak == 1.0, "the bench network uses IF neurons"
            c = neuron.IFNode(v_threshold=theta, v_reset=None, step_mode="m")
        elif isinstance(m, nn.AvgPool2d):
            c = layer.AvgPool2d(m.kernel_size, m.stride, step_mode="m")
        elif isinstance(m, nn.Flatten):
            c = layer.Flatten(step_mode="m")
        elif isinstance(m, sn.TemporalDropout):
            continue  # identity in eval mode
        else:
            raise TypeError(f"{name}: {type(m).__name__} has no SpikingJelly equivalent here")
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                c.weight.copy_(m.weight)
            names[f"Sequential.{len(mods)}"] = name
        mods.append(c)
    return nn.Sequential(*mods).eval(), names


def build_sinabs(model: nn.Module, batch: int) -> tuple[nn.Module, dict[str, str]]:
    """The same SNN with torch layers and ``sinabs.layers.IAFSqueeze``; returns it and ``{index: name}``."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneSubtract, SingleSpike

    mods, names = [], {}
    for name, m in flat_layers(model):
        if isinstance(m, nn.Conv2d):
            c = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=False)
        elif isinstance(m, nn.Linear):
            c = nn.Linear(m.in_features, m.out_features, bias=False)
        elif isinstance(m, sn.LIF):
            leak, theta = m.effective()
            assert leak == 1.0, "the bench network uses IF neurons"
            c = sl.IAFSqueeze(
                batch_size=batch,
                spike_threshold=torch.tensor(theta),
                spike_fn=SingleSpike,  # one spike per step at most (the default MultiSpike emits several)
                reset_fn=MembraneSubtract(),  # v -= threshold
                min_v_mem=None,
            )
        elif isinstance(m, nn.AvgPool2d):
            c = nn.AvgPool2d(m.kernel_size, m.stride)
        elif isinstance(m, nn.Flatten):
            c = nn.Flatten()
        elif isinstance(m, sn.TemporalDropout):
            continue
        else:
            raise TypeError(f"{name}: {type(m).__name__} has no sinabs equivalent here")
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                c.weight.copy_(m.weight)
            names[str(len(mods))] = name
        mods.append(c)
    return nn.Sequential(*mods).eval(), names


# ---------------------------------------------------------------------- one run of each tool
def run_snncost(model: nn.Module, x: torch.Tensor):
    return snncost.evaluate(model, "45nm", data=x, verify=False, batch_size=len(x))


def run_spikingjelly(net: nn.Module, x: torch.Tensor, timesteps: int):
    """SynOp + AC + MAC counters around one forward pass; returns (logits, counters)."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based import op_counter as oc

    counters = [oc.SynOpCounter(), oc.ACCounter(), oc.MACCounter()]
    functional.reset_net(net)
    with oc.DispatchCounterMode(counters), torch.no_grad():
        logits = net(x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)).mean(0)
    return logits, counters


def run_spikingjelly_energy(net: nn.Module, x: torch.Tensor, timesteps: int):
    """SpikingJelly's simple energy estimator (MAC/AC/SynOp + memory counters, then pricing)."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based import op_counter as oc

    functional.reset_net(net)
    cfg = oc.SimpleEnergyConfig(cost_config=oc.SimpleEnergyCostConfig.fp32())
    return oc.estimate_simple_energy(net, x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1), config=cfg)


def run_sinabs(net: nn.Module, x: torch.Tensor, timesteps: int):
    """SNNAnalyzer around one forward pass; returns (logits, layer statistics, model statistics)."""
    import sinabs

    b = len(x)
    sinabs.reset_states(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "use sinabs.hooks instead"
        analyzer = sinabs.SNNAnalyzer(net)
    try:
        xs = x.unsqueeze(1).expand(b, timesteps, *x.shape[1:]).reshape(b * timesteps, *x.shape[1:])
        with torch.no_grad():
            logits = net(xs).reshape(b, timesteps, -1).mean(1)
        layer_stats = analyzer.get_layer_statistics()
        model_stats = analyzer.get_model_statistics()
    finally:
        for h in analyzer.handles:
            h.remove()
        analyzer.handles = []
    return logits, layer_stats, model_stats


def sinabs_hooks_total(model: nn.Module, x: torch.Tensor, timesteps: int) -> float:
    """sinabs' non-deprecated route (``sinabs.hooks.register_synops_hooks``): total synops per timestep."""
    import sinabs
    from sinabs.hooks import register_synops_hooks

    net, _ = build_sinabs(model, len(x))
    register_synops_hooks(net)
    sinabs.reset_states(net)
    b = len(x)
    with torch.no_grad():
        net(x.unsqueeze(1).expand(b, timesteps, *x.shape[1:]).reshape(b * timesteps, *x.shape[1:]))
    return float(net.hook_data["total_synops_per_timestep"])


# ---------------------------------------------------------------------- counts
def pool_scales(model: nn.Module) -> dict[str, int]:
    """Per weight layer: the product of the areas of the average pools since the previous one."""
    scales, scale = {}, 1
    for name, m in flat_layers(model):
        if isinstance(m, nn.AvgPool2d):
            ks = m.kernel_size
            scale *= ks * ks if isinstance(ks, int) else ks[0] * ks[1]
        elif isinstance(m, nn.Conv2d | nn.Linear):
            scales[name], scale = scale, 1
    return scales


def torch_reference(model: nn.Module, x: torch.Tensor, timesteps: int) -> dict[str, float]:
    """snncost's conventions applied to the spikes of the PyTorch forward pass, per inference.

    ACs of a layer fed by spikes: each spike x its exact (border-respecting)
    fan-out; a pre-pool spike reaches the fan-out of its average-pooled
    position (the pooled value times the pool's area is the spike count).
    MACs of the analog first layer: its real-tap MACs at every step.
    """
    counts: dict[str, float] = {}
    hooks = []
    scales = pool_scales(model)
    for i, (name, m) in enumerate(weight_layers(model)):

        def hook(mod, inp, _out, name=name, scale=scales[name], analog=i == 0):
            s = inp[0].double()
            if isinstance(mod, nn.Conv2d):
                ones = torch.ones(1, mod.in_channels, *mod.kernel_size, dtype=torch.float64)
                src = torch.ones_like(s[:1]) if analog else s * scale
                reach = F.conv2d(src, ones, stride=mod.stride, padding=mod.padding)
                n = float(reach.sum()) * mod.out_channels
                n *= timesteps * len(x) if analog else 1  # analog: one image, every step
            else:
                n = float(s.sum()) * scale * mod.out_features
            counts[name] = n / len(x)

        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return counts


def sj_per_layer(counters, names: dict[str, str], batch: int) -> dict[str, dict[str, float]]:
    synop, _ac, mac = (c.get_counts() for c in counters)
    out = {}
    for scope, name in names.items():
        out[name] = {
            "synop": sum(synop.get(scope, {}).values()) / batch,
            "mac": sum(mac.get(scope, {}).values()) / batch,
        }
    return out


def rel(a: float, b: float) -> str:
    if b == 0:
        return "   n/a" if a else "    0%"
    return f"{(a - b) / b:+7.2%}"


def count_check(model, x, timesteps, report, sj_counters, sj_names, sb_layers, sb_model, sb_names):
    """Print the per-layer counts of every tool and their differences to snncost's; return the totals."""
    b = len(x)
    ref = torch_reference(model, x, timesteps)
    rows = {r.name: r for r in report.snn}
    sj = sj_per_layer(sj_counters, sj_names, b)
    sb = {name: float(sb_layers["parameter"][idx]["synops"]) for idx, name in sb_names.items()}
    print(
        f"  {'layer':<13} {'snncost':>12} {'torch ref':>12} {'ref-snn':>8} "
        f"{'SJ SynOp':>12} {'SJ-snn':>8} {'SJ MAC':>12} "
        f"{'sinabs':>12} {'sinabs-snn':>10}"
    )
    tot = dict.fromkeys(("snn", "ref", "sj_synop", "sj_mac", "sb"), 0.0)
    for i, name in enumerate(weight_layer_names(model)):
        r = rows[name]
        if i == 0:  # the analog first layer: MACs
            ours, what = r.macs, "MAC"
        else:
            ours, what = r.synaptic_ops, "AC"
        s = sj[name]
        sj_val = s["mac"] if i == 0 else s["synop"]
        print(
            f"  {name:<13} {ours:12.4g} {ref[name]:12.4g} {rel(ref[name], ours):>8} "
            f"{sj_val:12.4g} {rel(sj_val, ours):>8} {s['mac']:12.4g} "
            f"{sb[name]:12.4g} {rel(sb[name], ours):>10}  ({what})"
        )
        tot["snn"] += r.synaptic_ops
        tot["ref"] += ref[name] if i else 0.0
        tot["sb"] += sb[name] if i else 0.0
        tot["sj_synop"] += s["synop"]
        tot["sj_mac"] += s["mac"] if i else 0.0
    first = weight_layer_names(model)[0]
    sj_total_ac = sj_counters[1].get_total() / b
    by_op = {str(k).removeprefix("aten."): v / b for k, v in sj_counters[1].get_counts()["Global"].items()}
    print(
        "  SpikingJelly ACCounter per inference by op: "
        + ", ".join(f"{k} {v:.4g}" for k, v in by_op.items())
    )
    sj_total_mac = sj_counters[2].get_total() / b
    print(
        f"  ACs per inference (all spike-fed layers): snncost {tot['snn']:.4g}, torch ref "
        f"{tot['ref']:.4g} ({rel(tot['ref'], tot['snn'])}), SpikingJelly SynOp {tot['sj_synop']:.4g} "
        f"({rel(tot['sj_synop'], tot['snn'])}) + MACs on pooled inputs {tot['sj_mac']:.4g}, "
        f"SpikingJelly AC total {sj_total_ac:.4g} ({rel(sj_total_ac, tot['snn'])}), sinabs layer "
        f"stats {tot['sb']:.4g} ({rel(tot['sb'], tot['snn'])})"
    )
    scales = pool_scales(model)
    unscaled = sum(v / scales[k] for k, v in sb.items())
    print(
        f"  sinabs get_model_statistics synops {float(sb_model['synops']):.4g} = its layer "
        f"statistics with the average-pool factors undone, first layer included: {unscaled:.4g}"
    )
    print(
        f"  first-layer MACs per inference: snncost {rows[first].macs:.4g}, SpikingJelly "
        f"{sj[first]['mac']:.4g} ({rel(sj[first]['mac'], rows[first].macs)}), sinabs (counted as "
        f"synops, weighted by pixel value) {sb[first]:.4g} ({rel(sb[first], rows[first].macs)}); "
        f"SpikingJelly MAC total {sj_total_mac:.4g}"
    )


def spikes_per_layer_sj(net: nn.Module, x: torch.Tensor, timesteps: int) -> list[int]:
    from spikingjelly.activation_based import functional, neuron

    counts, hooks = [], []
    for m in net:
        if isinstance(m, neuron.IFNode):
            hooks.append(m.register_forward_hook(lambda _m, _i, o: counts.append(int(o.sum()))))
    functional.reset_net(net)
    with torch.no_grad():
        net(x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1))
    for h in hooks:
        h.remove()
    return counts


# ---------------------------------------------------------------------- main
def main(argv=None) -> tuple[float, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="10%% activity only, 3 repeats, no energy estimator"
    )
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-energy", action="store_true", help="skip SpikingJelly's energy estimator")
    args = ap.parse_args(argv)

    from importlib.metadata import version

    import sinabs
    import spikingjelly

    activities = [0.10] if args.quick else [0.05, 0.10, 0.15]
    repeats = 3 if args.quick else args.repeats
    T, B = args.timesteps, args.batch
    torch.manual_seed(0)
    spec = VGGSpec.from_arch("vgg9", image_size=32, num_classes=10, in_channels=3)
    model = build_snn(spec, NeuronConfig(timesteps=T, encoding="direct")).eval()
    x = torch.rand(B, 3, 32, 32)
    print(
        f"VGG9 32x32x3, T={T}, batch={B}, cpu cores={os.cpu_count()}, numba threads="
        f"{numba.get_num_threads()}, torch threads={torch.get_num_threads()}; torch "
        f"{torch.__version__}, snncost {snncost.__version__}, spikingjelly "
        f"{getattr(spikingjelly, '__version__', None) or version('spikingjelly')}, sinabs "
        f"{version('sinabs')} ({Path(sinabs.__file__).parent})"
    )

    rows = []
    for act in activities:
        rates = calibrate(model, x, act)
        sj_net, sj_names = build_spikingjelly(model)
        sb_net, sb_names = build_sinabs(model, B)

        tools = {
            "snncost": lambda: run_snncost(model, x),
            "sj": lambda: run_spikingjelly(sj_net, x, T),
            "sinabs": lambda: run_sinabs(sb_net, x, T),
        }
        if not (args.no_energy or args.quick):
            tools["sj_energy"] = lambda: run_spikingjelly_energy(sj_net, x, T)
        results = {k: f() for k, f in tools.items()}  # warm-up (numba compile), and the counts
        times = {k: [] for k in tools}
        for _ in range(repeats):  # the tools take turns: load changes hit all of them
            for k, f in tools.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}

        report = results["snncost"]
        sj_logits, sj_counters = results["sj"]
        sb_logits, sb_layers, sb_model = results["sinabs"]
        with torch.no_grad():
            ref_logits = model(x)
        sj_spikes = spikes_per_layer_sj(sj_net, x, T)
        replay_spikes = [r.spikes * B for r in report.snn if r.neuron == "lif"]
        print(
            f"\nactivity {act:.0%}: mean rate {statistics.mean(rates):.2%} (per layer "
            f"{', '.join(f'{r:.1%}' for r in rates)}); max |logit diff| vs snncost's PyTorch "
            f"forward: SpikingJelly {float((sj_logits - ref_logits).abs().max()):.2g}, sinabs "
            f"{float((sb_logits - ref_logits).abs().max()):.2g}"
        )
        print(
            "  spikes per layer, replay - SpikingJelly: "
            + ", ".join(f"{int(round(a)) - b:+d}" for a, b in zip(replay_spikes, sj_spikes, strict=True))
            + f" (of {', '.join(str(b) for b in sj_spikes)})"
        )
        count_check(model, x, T, report, sj_counters, sj_names, sb_layers, sb_model, sb_names)
        if act == 0.10:
            per_step = sinabs_hooks_total(model, x, T)
            print(
                f"  sinabs.hooks (register_synops_hooks): total_synops_per_timestep {per_step:.4g}, "
                f"x T = {per_step * T:.4g} (SNNAnalyzer layer statistics, summed: "
                f"{sum(float(v['synops']) for v in sb_layers['parameter'].values()):.4g})"
            )
        if "sj_energy" in results:
            e = results["sj_energy"]
            print(
                f"  SpikingJelly simple energy (fp32 preset): {e.energy_total_pj / 1e6:.4g} uJ for the "
                f"batch, counts mac {e.counts['mac']:.4g} ac {e.counts['ac']:.4g} synop "
                f"{e.counts['synop']:.4g}; snncost: {report.snn_total.energy_total_pj / 1e6:.4g} uJ "
                f"per inference (45nm, {report.dataflow})"
            )
        rows.append({"target": act, "rate": statistics.mean(rates), **med})

    print(
        f"\n{'target':>7} {'rate':>7} {'snncost s':>10} {'SJ ops s':>9} {'SJ/snn':>7} "
        f"{'SJ energy s':>11} {'SJe/snn':>8} {'sinabs s':>9} {'sinabs/snn':>10}"
    )
    for r in rows:
        e = r.get("sj_energy")
        print(
            f"{r['target']:7.0%} {r['rate']:7.2%} {r['snncost']:10.3f} {r['sj']:9.3f} "
            f"{r['sj'] / r['snncost']:7.2f} "
            + (f"{e:11.3f} {e / r['snncost']:8.2f} " if e else f"{'-':>11} {'-':>8} ")
            + f"{r['sinabs']:9.3f} {r['sinabs'] / r['snncost']:10.2f}"
        )
    at10 = min(rows, key=lambda r: abs(r["target"] - 0.10))
    sj_ratio = at10["sj"] / at10["snncost"]
    sb_ratio = at10["sinabs"] / at10["snncost"]
    print(f"RESULT cost_vs_spikingjelly {sj_ratio:.2f}")
    print(f"RESULT cost_vs_sinabs {sb_ratio:.2f}")
    return sj_ratio, sb_ratio


if __name__ == "__main__":
    main()
