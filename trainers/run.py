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
"""

from __future__ import annotations

import argparse
import sys
import time

from snncost.checkpoint import CheckpointError
from trainers import distributed as dist
from trainers.config import ConfigError, describe_keys, resolve_config
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
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. snn.timesteps=8")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from trainers.pipeline import run_pipeline, summary_table

    t0 = time.perf_counter()
    try:
        cfg = resolve_config(args.preset, args.config, args.overrides)
        ctx = run_pipeline(cfg)
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
    print()
    print(summary_table(ctx))
    print(f"\nrun directory: {ctx.run.path}  ({time.perf_counter() - t0:.0f}s)")
    return 0


def _os_error(exc: OSError) -> str:
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(map(str, paths))}: {what}" if paths else f"{type(exc).__name__}: {what}"


if __name__ == "__main__":
    sys.exit(main())
