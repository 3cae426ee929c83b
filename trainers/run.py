"""``python -m trainers.run``: train, convert and cost an SNN from a preset or YAML config.

Examples::

    python -m trainers.run                                # the digits default
    python -m trainers.run --preset cifar10-vgg9 snn.epochs=5
    python -m trainers.run --config my.yaml data.subset=5000

Re-running the same command resumes the run in ``runs/<name>``; re-running it
with changed settings of later stages (e.g. ``temporal.schedule=[25,10,5]``)
extends it: the finished earlier stages are reused, the changed ones and
those after them rerun, their old outputs kept in ``runs/<name>/superseded/``
(see :mod:`trainers.rundir` for the rule and what is refused).

``--seeds 3`` (or ``seeds=[0,1,2]``) runs the pipeline once per seed in
``runs/<name>/seed-<k>/`` and aggregates them (mean ± std) in
``runs/<name>/results.md`` (see :mod:`trainers.seeds`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from snncost.checkpoint import CheckpointError
from trainers import distributed as dist
from trainers.config import ConfigError, RunConfig, describe_keys, resolve_config
from trainers.data import DataError
from trainers.engine import NonFiniteLossError
from trainers.presets import PRESETS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.run",
        description="Train an ANN, convert it to an SNN, fine-tune with surrogate-gradient BPTT, "
        "and cost the result with snncost. Re-running the same command resumes; re-running it with "
        "changed settings of later stages reuses the finished earlier ones (old outputs kept in "
        "<run>/superseded/).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets: " + ", ".join(PRESETS) + "\n\nconfig keys (override with key=value):\n" + describe_keys(),
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=list(PRESETS), help="a built-in configuration (default: digits)")
    src.add_argument("--config", metavar="FILE", help="a YAML config file")
    parser.add_argument(
        "--seeds", type=_positive_int, metavar="N",
        help="run seeds seed, seed+1, ..., seed+N-1 in runs/<name>/seed-<k>/ and aggregate them (mean ± std)",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. snn.timesteps=8")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from trainers.pipeline import run_pipeline, summary_table
    from trainers.seeds import run_seeds

    t0 = time.perf_counter()
    try:
        cfg = resolve_config(args.preset, args.config, args.overrides)
        if args.seeds is not None:
            cfg = with_seed_count(cfg, args.seeds)
        contexts = run_seeds(cfg) if cfg.seeds else [run_pipeline(cfg)]
        main_rank = dist.is_main()
    except (ConfigError, DataError, CheckpointError, NonFiniteLossError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. runs_dir is a file, a read-only or full disk: one line naming the path
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        dist.shutdown()
    if not main_rank:
        return 0
    for ctx in contexts:
        print()
        print(summary_table(ctx))
        print(f"\nrun directory: {ctx.run.path}")
    if cfg.seeds:
        print(f"\nseeds {', '.join(map(str, cfg.seeds))} aggregated in {Path(cfg.runs_dir) / cfg.name}")
    print(f"({time.perf_counter() - t0:.0f}s)")
    return 0


def with_seed_count(cfg: RunConfig, n: int) -> RunConfig:
    """``--seeds N``: the seeds ``seed, seed+1, ..., seed+N-1``; refused next to ``seeds=[...]``."""
    if cfg.seeds is not None:
        raise ConfigError(f"give --seeds N or seeds={cfg.seeds}, not both")
    return RunConfig.model_validate({**cfg.model_dump(), "seeds": list(range(cfg.seed, cfg.seed + n))})


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--seeds takes a number of seeds >= 1, got {text!r}")
    return value


def _os_error(exc: OSError) -> str:
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(map(str, paths))}: {what}" if paths else f"{type(exc).__name__}: {what}"


if __name__ == "__main__":
    sys.exit(main())
