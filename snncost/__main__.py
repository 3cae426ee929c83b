"""Command line: ``python -m snncost {evaluate,compare,profiles,export-nir} ...``.

Examples::

    python -m snncost profiles
    python -m snncost export-nir run/snn.pt snn.nir        # NIR file, see docs/nir.md
    python -m snncost evaluate snn.nir --timesteps 8       # a NIR file from any tool
    python -m snncost evaluate run/snn.pt --data digits --samples 256 --format markdown
    python -m snncost evaluate run/snn.pt --data cifar10-jpeg/test --samples all --batch-size 100
    python -m snncost evaluate run/snn.pt --profile loihi --format latex --output table.tex
    python -m snncost compare run/snn.pt --profiles 45nm loihi truenorth spinnaker2

Errors (unreadable checkpoint, unknown profile, bad data...) print one line on
stderr and exit with status 2, without a traceback.

``--data digits`` evaluates on scikit-learn's 8x8 digits, the held-out 20 %
of the stratified 80/20 split with ``random_state=0`` (the split the trainer
uses), scaled to [0, 1] (``x / 16``) and standardised per channel with the
checkpoint's ``mean``/``std`` when it stores them, else with the mean and std
of the training 80 %, as the trainer does. ``--data synthetic`` (the default)
uses a seeded Gaussian batch; ``--data FILE.pt`` / ``FILE.npz`` reads ``x`` (and
``y``) from a file, e.g. the ``eval_batch.pt`` every trainer run writes, so
``python -m snncost evaluate runs/NAME/checkpoints/quantize.pt --data
runs/NAME/eval_batch.pt`` reproduces the run's report on another profile.
``--data DIR`` reads an image folder (``DIR/<class>/<image>``, torchvision's
``ImageFolder`` layout, classes in sorted order), one batch of images at a time:
pixels scaled to [0, 1] and standardised with the checkpoint's ``mean``/``std``
when it stores them (else left in [0, 1], and the report's data line says so).

``--samples all`` replays every input and ``--batch-size`` sets how many are read
and replayed at a time: a full test set streams through in bounded memory, with
a progress bar on stderr when it is a terminal (``--quiet``: none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

FORMATS = ("markdown", "latex", "csv", "json", "summary")


class CLIError(Exception):
    """A user error: reported as one line, exit status 2."""


def _digits_batch(n: int | None, mean: Any = None, std: Any = None) -> tuple[Any, Any, str]:
    """Up to ``n`` held-out sklearn digits as ``([N, 1, 8, 8] float32, [N] int64, description)``.

    The test part of a stratified 80/20 split (``random_state=0``), ``x / 16``
    then ``(x - mean) / std`` with the given statistics, or those of the
    training part (one channel: scalar mean and std, std at least 1e-3).
    """
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=digits.target, random_state=0
    )
    source = "checkpoint"
    if mean is None or std is None:
        train = x[idx_train]
        mean, std = float(train.mean()), max(float(train.std()), 1e-3)
        source = "training split"
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    xt, yt = x[idx_test], y[idx_test]
    if n is not None:
        xt, yt = xt[:n], yt[:n]
    xt = (xt - mean_t) / std_t
    desc = f"sklearn digits test split (x/16, standardised with {source} mean/std)"
    return xt.contiguous(), yt, desc


def _stats_from_checkpoint(record: dict) -> tuple[Any, Any]:
    """``(mean, std)`` stored by the trainer, if any (top level or under 'data'/'normalization')."""
    for holder in (record, record.get("normalization") or {}, record.get("data") or {}):
        if (
            isinstance(holder, dict)
            and holder.get("mean") is not None
            and holder.get("std") is not None
        ):
            return holder["mean"], holder["std"]
    return None, None


def _load(path: str, timesteps: int | None = None):
    if Path(path).suffix.lower() in (".nir", ".h5", ".hdf5"):  # a NIR file (docs/nir.md)
        from snncost.interop.nir import module_from_nir

        return module_from_nir(path, timesteps)[0], {}
    from snncost.checkpoint import load_model, read_checkpoint

    record = read_checkpoint(path)
    model = load_model(path)
    return model, record


def _data_for(args: argparse.Namespace, model: Any, record: dict) -> tuple[Any, str | None]:
    if args.data == "synthetic":
        return None, None
    if args.data == "digits":
        shape = tuple(getattr(model, "input_shape", ()))
        if shape != (1, 8, 8):
            raise CLIError(
                f"--data digits needs a model with input shape (1, 8, 8); "
                f"{args.checkpoint} expects {shape}"
            )
        from snncost.inputs import sample_limit

        mean, std = _stats_from_checkpoint(record)
        x, y, desc = _digits_batch(sample_limit(args.samples), mean, std)
        return (x, y), desc
    if Path(args.data).is_dir():
        return _image_folder(args.data, model, record)
    return _data_file(args.data), f"{args.data}"


def _image_folder(path: str, model: Any, record: dict) -> tuple[Any, str]:
    """An ``ImageFolder`` dataset of ``path`` (decoded item by item as batches are read),
    scaled to [0, 1] and standardised with the checkpoint's mean/std when it stores them."""
    from torchvision import datasets, transforms

    shape = tuple(getattr(model, "input_shape", ()))
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise CLIError(
            f"--data {path}: an image folder needs a model with input shape (1 or 3, H, W); "
            f"the checkpoint expects {shape}"
        )
    steps: list[Any] = [transforms.Grayscale()] if shape[0] == 1 else []
    steps.append(transforms.ToTensor())  # [C, H, W] in [0, 1]
    mean, std = _stats_from_checkpoint(record)
    scaling = "pixels in [0, 1], not standardised (the checkpoint stores no mean/std)"
    if mean is not None:
        steps.append(transforms.Normalize(mean, std))
        scaling = "standardised with the checkpoint's mean/std"
    # ImageFolder would read DIR/train/<class>/x.jpg as two classes, train and test: refuse
    subdirs = sorted(p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("."))
    nested = [d.name for d in subdirs if any(c.is_dir() for c in d.iterdir())]
    if nested:
        raise CLIError(
            f"--data {path}: expected class folders holding images, but {', '.join(nested[:4])} "
            f"hold folders (a split parent? pass {Path(path) / nested[0]} for one of them)"
        )
    try:
        folder = datasets.ImageFolder(path, transform=transforms.Compose(steps))
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders / no image files
        raise CLIError(f"--data {path}: not an image folder <class>/<image> ({exc})") from None
    return folder, f"image folder {path} ({len(folder.classes)} classes, {scaling})"


def _data_file(path: str) -> tuple[Any, Any]:
    """``(x, y)`` from a ``.pt`` file (a tensor, an ``(x, y)`` pair or a dict with ``x``/``y``,
    e.g. the ``eval_batch.pt`` a trainer run writes) or a ``.npz`` file (arrays ``x`` and ``y``)."""
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--data {path}: not 'synthetic', 'digits' or an existing .pt/.npz file")
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p) as arrays:
                if "x" not in arrays:
                    raise CLIError(f"{path}: a .npz data file needs an array named 'x' (and optionally 'y')")
                return arrays["x"], (arrays["y"] if "y" in arrays else None)
        from snncost.checkpoint import safe_load

        data = safe_load(p)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one clear line
        raise CLIError(f"{path}: not a readable .pt/.npz data file ({type(exc).__name__}: {exc})") from None
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, dict) and "x" in data:
        return data["x"], data.get("y")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise CLIError(f"{path}: expected a tensor, an (x, y) pair or a dict with 'x' and 'y'; got {type(data).__name__}")


def _write(text: str, output: str | None) -> None:
    if output:
        from snncost.checkpoint import atomic_write_text

        atomic_write_text(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _render(obj: Any, fmt: str, caption: str | None = None) -> str:
    if fmt == "markdown":
        return obj.to_markdown()
    if fmt == "latex":
        return obj.to_latex(caption=caption)
    if fmt == "csv":
        return obj.to_csv()
    if fmt == "json":
        return obj.to_json() + "\n"
    return obj.summary()


def _stream_options(args: argparse.Namespace) -> dict[str, Any]:
    """How the data are read: batch size, and a progress bar unless --quiet (terminal only)."""
    return {"batch_size": args.batch_size, "progress": False if args.quiet else None}


def _cost_options(args: argparse.Namespace) -> dict[str, Any]:
    """The cost-convention flags as keywords of :func:`snncost.evaluate`."""
    return {
        "dataflow": args.dataflow,
        "ann_dataflow": args.ann_dataflow,
        "count_padding": args.count_padding,
        "analog_input": args.analog_input,
        "skip_zero_weights": args.skip_zero_weights,
        "baseline_precision": args.baseline_precision,
    }


def cmd_evaluate(args: argparse.Namespace) -> int:
    from snncost.evaluation import evaluate

    model, record = _load(args.checkpoint, args.timesteps)
    data, desc = _data_for(args, model, record)
    baseline = _load(args.baseline)[0] if args.baseline else None
    report = evaluate(
        model,
        profile=args.profile,
        data=data,
        timesteps=args.timesteps,
        baseline=baseline,
        max_samples=args.samples,
        verify=args.verify,
        name=args.name or Path(args.checkpoint).stem,
        seed=args.seed,
        cost_model=args.cost_model,
        **_stream_options(args),
        **_cost_options(args),
    )
    if desc:
        report = report.model_copy(update={"data": f"{desc}, {report.batch_size} samples"})
    if report.feasibility is not None and not report.feasibility.fits:
        print(f"warning: the SNN {report.feasibility.summary()}", file=sys.stderr)
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    _write(_render(report, args.format, args.caption), args.output)
    return 0


def cmd_cost_models(args: argparse.Namespace) -> int:
    from snncost.evaluation import compare_cost_models

    model, record = _load(args.checkpoint, args.timesteps)
    data, desc = _data_for(args, model, record)
    comparison = compare_cost_models(
        model, args.cost_models, data=data, profile=args.profile, timesteps=args.timesteps,
        max_samples=args.samples, name=args.name or Path(args.checkpoint).stem, seed=args.seed,
        **_stream_options(args), **_cost_options(args),
    )  # fmt: skip
    if desc:
        comparison = comparison.model_copy(update={"data": f"{desc}, {comparison.batch_size} samples"})
    _write(_render(comparison, args.format, args.caption), args.output)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from snncost.evaluation import compare_profiles

    model, record = _load(args.checkpoint, args.timesteps)
    data, desc = _data_for(args, model, record)
    comparison = compare_profiles(
        model,
        args.profiles or None,
        data=data,
        timesteps=args.timesteps,
        max_samples=args.samples,
        name=args.name or Path(args.checkpoint).stem,
        seed=args.seed,
        **_stream_options(args),
        **_cost_options(args),
    )
    if desc:
        comparison = comparison.model_copy(
            update={"data": f"{desc}, {comparison.batch_size} samples"}
        )
    for rep in comparison.reports:
        if rep.feasibility is not None and not rep.feasibility.fits:
            print(f"warning: the SNN {rep.feasibility.summary()}", file=sys.stderr)
    _write(_render(comparison, args.format, args.caption), args.output)
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from snncost.hardware import available_profiles, load_profile
    from snncost.report.formatting import md_table, text_table

    rows = []
    descriptions = []
    for name in available_profiles():
        p = load_profile(name)
        k = p.key_numbers()
        f32 = p.key_numbers(32, "float")

        def pj(v: float | None) -> str:
            return "-" if v is None else f"{v:g}"

        rows.append(
            [
                name,
                f"{p.default_bits}-bit {p.default_number_format}",
                pj(k["ac_pj"]),
                pj(k["mac_pj"]),
                pj(k["neuron_update_if_pj"]),
                pj(k["neuron_update_leaky_pj"]),
                f"{pj(f32['ac_pj'])} / {pj(f32['mac_pj'])}",
                f"{p.timing.clock_hz:.4g}",
            ]
        )
        descriptions.append((name, " ".join(p.description.split())))
    header = [
        "profile",
        "native",
        "AC pJ",
        "MAC pJ",
        "IF update pJ",
        "LIF update pJ",
        "fp32 AC/MAC pJ",
        "clock Hz",
    ]
    if args.format == "markdown":
        text = md_table(header, rows, "ll" + "r" * 6)
        text += "\n\n" + "\n".join(f"- **{n}**: {d}" for n, d in descriptions)
    else:
        text = text_table(header, rows)
        text += "\n\n" + "\n".join(f"{n}: {d}" for n, d in descriptions)
    text += (
        "\n\nAC/MAC/update energies at each profile's native width; fp32 column for float models.\n"
    )
    _write(text, None)
    return 0


def cmd_export_nir(args: argparse.Namespace) -> int:
    from snncost.interop.nir import save_nir, to_nir

    model, _ = _load(args.checkpoint)
    if args.timesteps is not None:
        if not hasattr(model, "find_encoder"):
            raise CLIError(f"{args.checkpoint} is not an SNN checkpoint (no encoder)")
        model.find_encoder().timesteps = args.timesteps
    graph = to_nir(model, dt=args.dt)
    path = save_nir(graph, args.output)
    print(f"wrote {path} ({len(graph.nodes)} NIR nodes)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m snncost",
        description="Cost spiking neural networks on hardware profiles (energy, latency, spikes).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "checkpoint", help="an SNN checkpoint written by snncost/trainers, or a .nir file"
        )
        p.add_argument(
            "--data",
            default="synthetic",
            help="inputs: 'synthetic' (a seeded Gaussian batch), 'digits' (sklearn's 8x8 test split), "
            "a .pt/.npz file holding x (and y), e.g. a trainer run's eval_batch.pt, "
            "or an image folder DIR/<class>/<image>",
        )
        p.add_argument("--samples", type=_samples, default=256,
                       help="inputs to replay: a count (256) or 'all'")
        p.add_argument("--batch-size", type=_positive, default=64,
                       help="inputs read and replayed at a time (64); memory, not results")
        p.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar (there is none either when stderr is not a terminal)")  # fmt: skip
        p.add_argument("--timesteps", type=_positive, default=None, help="override the model's T")
        p.add_argument("--format", choices=FORMATS, default="markdown")
        p.add_argument("--output", "-o", default=None, help="write here instead of stdout")
        p.add_argument("--caption", default=None, help="LaTeX caption (escaped)")
        p.add_argument("--name", default=None, help="model name in the report")
        p.add_argument("--seed", type=int, default=0, help="seed of synthetic/Poisson inputs")
        cost_conventions(p)

    def cost_conventions(p: argparse.ArgumentParser) -> None:
        from snncost.costmodel import DATAFLOWS

        g = p.add_argument_group("cost conventions (docs/cost_model.md; every report states them)")
        g.add_argument("--dataflow", choices=list(DATAFLOWS), default=None,
                       help="SNN dataflow (default: the profile's default_dataflow)")
        g.add_argument("--ann-dataflow", choices=[d for d in DATAFLOWS if d != "neuromorphic"],
                       default=None, help="the ANN baseline's dataflow (default: as the SNN's)")
        g.add_argument("--count-padding", action="store_true",
                       help="dense MACs count padding taps (default: real taps only)")
        g.add_argument("--analog-input", choices=("every-step", "once"), default="every-step",
                       help="direct-input first layer's MACs: every step (default) or once")
        g.add_argument("--skip-zero-weights", action="store_true",
                       help="weight-sparse hardware: no AC/MAC on zero weights, stored compressed")
        g.add_argument("--baseline-precision", choices=("same", "fp32"), default="same",
                       help="ANN baseline precision: same as the SNN (default) or fp32")  # fmt: skip

    from snncost.costmodel.conventions import COST_MODELS

    ev = sub.add_parser("evaluate", help="cost one checkpoint on one profile")
    common(ev)
    ev.add_argument("--profile", default="45nm", help="built-in name or YAML path (45nm)")
    ev.add_argument("--baseline", default=None, help="ANN checkpoint to compare against")
    ev.add_argument("--plot", default=None, help="save the per-layer figure here (.png/.pdf)")
    ev.add_argument("--verify", action="store_true", help="check the replay against PyTorch")
    ev.add_argument("--cost-model", choices=list(COST_MODELS), default="snncost",
                    help="snncost's dataflow-aware model (default) or a published convention "
                    "(docs/cost_models.md)")  # fmt: skip
    ev.set_defaults(func=cmd_evaluate)

    cm = sub.add_parser("cost-models", help="cost one checkpoint under every published energy convention")
    common(cm)
    cm.add_argument("--profile", default="45nm", help="profile of the snncost row (45nm)")
    cm.add_argument("--cost-models", nargs="+", choices=list(COST_MODELS), default=None,
                    help="which conventions (default: all)")  # fmt: skip
    cm.set_defaults(func=cmd_cost_models)

    cmp = sub.add_parser("compare", help="cost one checkpoint on several profiles")
    common(cmp)
    cmp.add_argument(
        "--profiles", nargs="+", default=None, help="names or YAML paths (default: all built-in)"
    )
    cmp.set_defaults(func=cmd_compare)

    ex = sub.add_parser("export-nir", help="write an SNN checkpoint as a NIR file")
    ex.add_argument("checkpoint", help="an SNN checkpoint written by snncost/trainers")
    ex.add_argument("output", help="the NIR file to write (e.g. snn.nir)")
    ex.add_argument("--timesteps", type=_positive, default=None, help="override the stored T")
    ex.add_argument(
        "--dt",
        type=float,
        default=None,
        help="Euler step for LIF time constants (1e-4, as snntorch)",
    )
    ex.set_defaults(func=cmd_export_nir)

    pr = sub.add_parser("profiles", help="list the built-in hardware profiles")
    pr.add_argument("--format", choices=("text", "markdown"), default="text")
    pr.set_defaults(func=cmd_profiles)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _samples(text: str) -> int | str:
    """``--samples``: a positive count or ``all``."""
    from snncost.inputs import ALL_SAMPLES

    if text.strip().lower() == ALL_SAMPLES:
        return ALL_SAMPLES
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("snncost: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, OSError, KeyError) as exc:
        # CheckpointError and ProfileError are ValueErrors; keep it to one line
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"snncost: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
