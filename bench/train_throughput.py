"""Training throughput of one spiking VGG in snncost, snntorch and SpikingJelly (CPU).

The three nets are the same network: the conv/linear stack of a
:class:`~snncost.models.vgg.VGGSpec` (no bias, 2x2 average pooling, no
dropout), IF neurons (leak 1) with threshold 1 and soft (subtract) reset
with a detached reset term, the ArcTan surrogate with ``alpha = 2`` (the
only surrogate all three libraries define identically:
``f'(x) = alpha / (2 * (1 + (pi/2 * alpha * x)^2))``), direct input (the
image at every step) and a non-spiking read-out: logits are the mean over
``T`` of the last linear layer's output. All three start from the same
weights (copied from the snncost net; the script checks that the first
forward passes agree), see the same random batches and train with Adam on
the cross-entropy of those logits.

* snncost: :func:`snncost.models.vgg.build_snn`, thresholds and leaks fixed
  (``learn_threshold=learn_leak=False``) as in the peers.
* snntorch: a hand-written net with ``snntorch.Leaky(beta=1,
  reset_mechanism="subtract", spike_grad=surrogate.atan(2))`` and the
  explicit time loop of the snntorch tutorials (every layer runs once per
  step, membranes carried in the loop).
* SpikingJelly: ``neuron.IFNode(v_reset=None, detach_reset=True,
  surrogate_function=surrogate.ATan(2))`` in multi-step mode
  (``step_mode="m"``), the stateless layers folded over time with
  ``layer.SeqToANNContainer``, the input fed as
  ``x.unsqueeze(0).expand(T, ...)`` as its Fashion-MNIST example does, and
  ``functional.reset_net`` after every step.

Rows besides the three defaults: ``snncost (channels-last)`` is the
trainer's ``channels_last=true`` (conv weights and images channels-last,
oneDNN's native layout); ``snntorch (channels-last)`` gives snntorch the
same layout, so the layout's share of the gain can be told from
snncost's own; ``snncost (torch neurons)`` runs the fused neuron as torch
tensor passes instead of the numba kernels of
:mod:`snncost.nn.neuron_kernels` (what snncost did before them).

Each framework runs ``--warmup`` untimed optimizer steps, then ``--steps``
timed ones; images/s = steps * batch / seconds. With ``--rounds > 1`` the
frameworks are timed in turn that many times and the best round of each
counts. The last lines are ``RESULT train_vs_snntorch <ratio>`` (snncost
with ``channels_last`` over snntorch as its tutorials run it),
``RESULT train_vs_snntorch_default_layout`` (both channels-first) and
``RESULT train_vs_snntorch_same_layout`` (both channels-last).

Run: ``python bench/train_throughput.py`` (see ``--help``; defaults take a
few minutes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import snncost.nn as sn  # noqa: E402
from snncost.models.vgg import CFGS, NeuronConfig, VGGSpec, build_snn, weight_layers  # noqa: E402
from snncost.nn.functional import neuron_backend  # noqa: E402

ALPHA = 2.0  # ArcTan surrogate slope, identical in all three libraries


def make_spec(args: argparse.Namespace) -> VGGSpec:
    return VGGSpec.from_arch(
        args.arch, image_size=args.image_size, num_classes=args.classes, pool="avg", bias=False, dropout=0.0
    )


def stateless_layers(spec: VGGSpec) -> list[list[nn.Module]]:
    """The conv/pool/linear layers of ``spec`` in order, split at every neuron.

    Group ``i`` is followed by a neuron for every group but the last (the
    read-out). Same construction as :func:`snncost.models.vgg._layers`.
    """
    groups: list[list[nn.Module]] = [[]]
    channels, k = spec.in_channels, spec.kernel_size
    for w in spec.features:
        if w == "P":
            groups[-1].append(nn.AvgPool2d(2))
        else:
            groups[-1].append(nn.Conv2d(channels, w, k, padding=k // 2, bias=False))
            groups.append([])
            channels = w
    groups[-1].append(nn.Flatten())
    width = channels * spec.feature_map_size() ** 2
    for w in spec.classifier:
        groups[-1].append(nn.Linear(width, w, bias=False))
        groups.append([])
        width = w
    groups[-1].append(nn.Linear(width, spec.num_classes, bias=False))
    return groups


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy conv/linear weights in forward order (both nets list them in the same order)."""
    src_w = [m for _, m in weight_layers(src)]
    dst_w = [m for m in dst.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(src_w) == len(dst_w), (len(src_w), len(dst_w))
    with torch.no_grad():
        for a, b in zip(src_w, dst_w, strict=False):
            b.weight.copy_(a.weight)


# --------------------------------------------------------------------------- snncost


class RepeatedDirectEncoder(sn.DirectEncoder):
    """Direct input materialised as ``[T, B, ...]`` (no stride-0 view): the first conv runs T times."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).contiguous()


def build_snncost(spec: VGGSpec, timesteps: int, learn: bool = False, reuse_input: bool = True) -> nn.Module:
    neurons = NeuronConfig(
        timesteps=timesteps,
        encoding="direct",
        threshold=1.0,
        leak=1.0,
        learn_threshold=learn,
        learn_leak=learn,
        surrogate="arctan",
        slope=ALPHA,
        detach_reset=True,
    )
    model = build_snn(spec, neurons)
    if not reuse_input:
        model.encoder = RepeatedDirectEncoder(timesteps)
    return model


# --------------------------------------------------------------------------- snntorch


class SnnTorchVGG(nn.Module):
    """The VGG with snntorch.Leaky neurons and the tutorials' explicit time loop."""

    def __init__(self, spec: VGGSpec, timesteps: int) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.timesteps = timesteps
        groups = stateless_layers(spec)
        self.blocks = nn.ModuleList(nn.Sequential(*g) for g in groups)
        self.lifs = nn.ModuleList(
            snn.Leaky(
                beta=1.0,
                threshold=1.0,
                spike_grad=surrogate.atan(alpha=ALPHA),
                reset_mechanism="subtract",
            )
            for _ in groups[:-1]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [lif.init_leaky() for lif in self.lifs]
        out = []
        for _step in range(self.timesteps):
            cur = x
            for i, lif in enumerate(self.lifs):
                cur, mems[i] = lif(self.blocks[i](cur), mems[i])
            out.append(self.blocks[-1](cur))
        return torch.stack(out).mean(0)


# --------------------------------------------------------------------------- SpikingJelly


class SpikingJellyVGG(nn.Module):
    """The VGG in SpikingJelly's multi-step mode (IFNode, SeqToANNContainer)."""

    def __init__(self, spec: VGGSpec, timesteps: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        self.timesteps = timesteps
        self._reset_net = functional.reset_net
        modules: list[nn.Module] = []
        groups = stateless_layers(spec)
        for g in groups[:-1]:
            modules.append(layer.SeqToANNContainer(*g))
            modules.append(
                neuron.IFNode(
                    v_threshold=1.0,
                    v_reset=None,
                    surrogate_function=surrogate.ATan(alpha=ALPHA),
                    detach_reset=True,
                    step_mode="m",
                )
            )
        modules.append(layer.SeqToANNContainer(*groups[-1]))
        self.net = nn.Sequential(*modules)
        functional.set_step_mode(self.net, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0).expand(self.timesteps, *x.shape)
        out = self.net(x_seq).mean(0)
        self._reset_net(self.net)
        return out


# --------------------------------------------------------------------------- timing


class ChannelsLast(nn.Module):
    """``model`` with channels-last weights, fed channels-last images (what ``channels_last=true`` does)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def make_batches(args: argparse.Namespace, spec: VGGSpec) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(args.seed)
    shape = (args.batch, spec.in_channels, spec.image_size, spec.image_size)
    return [
        (torch.rand(shape, generator=g), torch.randint(0, spec.num_classes, (args.batch,), generator=g))
        for _ in range(args.num_batches)
    ]


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, batches, n: int, start: int = 0) -> float:
    loss = torch.zeros(())
    for i in range(n):
        x, y = batches[(start + i) % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return float(loss.detach())


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="vgg5", choices=sorted(CFGS))
    p.add_argument("--timesteps", "-T", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed optimizer steps per framework and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first")
    p.add_argument("--rounds", type=int, default=1, help="time every framework this many times; keep the best")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--num-batches", type=int, default=4, help="distinct random batches, cycled")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--variants",
        action="store_true",
        help="also time snncost with learnable threshold/leak and without first-conv reuse (information only)",
    )
    args = p.parse_args(argv)

    import snntorch  # the RESULT line needs it: fail loudly if missing

    spec = make_spec(args)
    T = args.timesteps
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")
    print(f"snntorch {snntorch.__version__}", end="")
    try:
        from importlib.metadata import version

        import spikingjelly  # noqa: F401

        sj_version = version("spikingjelly")
        print(f", spikingjelly {sj_version}")
    except Exception as exc:  # noqa: BLE001 - any import failure means: skip it
        sj_version = None
        print(f"\nspikingjelly unavailable ({type(exc).__name__}: {exc}); skipping it")
    print(
        f"config: {args.arch} {spec.features} fc {spec.classifier}, {spec.image_size}x{spec.image_size}x"
        f"{spec.in_channels}, T={T}, batch={args.batch}, IF (leak 1), threshold 1, soft reset, ArcTan(alpha={ALPHA}), "
        f"avg pool, no bias, Adam lr={args.lr}; warmup {args.warmup}, timed {args.steps} steps x {args.rounds} round(s)"
    )

    torch.manual_seed(args.seed)
    reference = build_snncost(spec, T)
    builders: dict[str, Callable[[], nn.Module]] = {
        "snncost": lambda: build_snncost(spec, T),
        "snncost (channels-last)": lambda: ChannelsLast(build_snncost(spec, T)),
        "snncost (torch neurons)": lambda: build_snncost(spec, T),
        "snntorch": lambda: SnnTorchVGG(spec, T),
        "snntorch (channels-last)": lambda: ChannelsLast(SnnTorchVGG(spec, T)),
    }
    backends = {
        "snncost (torch neurons)": "torch"
    }  # every other row: the default ("auto": numba on the CPU)
    if sj_version is not None:
        builders["spikingjelly"] = lambda: SpikingJellyVGG(spec, T)
    if args.variants:
        builders["snncost (learnable threshold+leak)"] = lambda: build_snncost(spec, T, learn=True)
        builders["snncost (no first-conv reuse)"] = lambda: build_snncost(spec, T, reuse_input=False)

    batches = make_batches(args, spec)
    models, opts = {}, {}
    with torch.no_grad():
        ref_out = reference(batches[0][0])
    for name, build in builders.items():
        model = build()
        copy_weights(reference, model)
        model.train()
        with torch.no_grad(), neuron_backend(backends.get(name, "auto")):
            diff = (model(batches[0][0]) - ref_out).abs().max().item()
        print(f"  {name:<36} first-forward max |logit diff| vs snncost: {diff:.2e}")
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        with neuron_backend(backends.get(name, "auto")):
            train_steps(model, opt, batches, args.warmup)
        models[name], opts[name] = model, opt

    best: dict[str, float] = {}
    for r in range(args.rounds):
        for name in builders:
            with neuron_backend(backends.get(name, "auto")):
                start = time.perf_counter()
                loss = train_steps(models[name], opts[name], batches, args.steps, start=args.warmup)
                elapsed = time.perf_counter() - start
            ips = args.steps * args.batch / elapsed
            best[name] = max(best.get(name, 0.0), ips)
            print(f"  round {r + 1}: {name:<36} {ips:8.1f} images/s  ({elapsed / args.steps * 1e3:7.1f} ms/step, loss {loss:.3f})")

    print("\nimages/s (best round):")
    for name, ips in best.items():
        print(f"  {name:<36} {ips:8.1f}")
    ratio = best["snncost (channels-last)"] / best["snntorch"]
    default_layout = best["snncost"] / best["snntorch"]
    same_layout = best["snncost (channels-last)"] / best["snntorch (channels-last)"]
    print(f"snncost channels-last / snntorch:                 {ratio:.2f}x")
    print(f"snncost / snntorch (both channels-first):         {default_layout:.2f}x")
    print(f"snncost / snntorch (both channels-last):          {same_layout:.2f}x")
    print(
        f"numba neurons / torch neurons (snncost):          {best['snncost'] / best['snncost (torch neurons)']:.2f}x"
    )
    if "spikingjelly" in best:
        print(
            f"snncost / spikingjelly (both channels-first):     {best['snncost'] / best['spikingjelly']:.2f}x"
        )
        print(
            f"snncost channels-last / spikingjelly:             {best['snncost (channels-last)'] / best['spikingjelly']:.2f}x"
        )
    print(f"RESULT train_vs_snntorch {ratio:.3f}")
    print(f"RESULT train_vs_snntorch_default_layout {default_layout:.3f}")
    print(f"RESULT train_vs_snntorch_same_layout {same_layout:.3f}")
    return ratio


if __name__ == "__main__":
    main()
