"""Several seeds of one run, and their aggregate: ``--seeds N`` or ``seeds: [..]``.

Layout of ``<runs_dir>/<name>/``::

    seed-<k>/             a complete run directory (:mod:`trainers.rundir`) of seed k:
                          resumable and extensible exactly as a single run
    results.json          every number of the seeds' results.json as {"mean", "std", "n"}
                          (sample std, ddof=1; :mod:`trainers.aggregate`), the seeds, their files
    results.md            the same tables as a single run's, each number as mean ± std
    accuracy_energy.png   the ANN, every variant and the T schedule at their means, x and y error
                          bars of one std, the Pareto front of the means
    robustness.png        accuracy under noise, with error bars

Each seed's run is the single run of that ``seed`` (in its own directory),
so re-running the same command resumes every seed, changed settings of
later stages extend every seed, and adding a seed to the list runs only the
new one; the aggregate is rewritten from the listed seeds' ``results.json``
every time. The accuracy gap to the ANN and the paper's claims at matched
accuracy are computed on the means. The seed sets the initialisation, the
batch order, and the validation split (:func:`trainers.data.load_data`), so
the spread covers all three. A single seed (``seeds`` unset) is a plain run
directory, without ``seed-<k>/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from snncost.checkpoint import atomic_write_text
from trainers import distributed as dist
from trainers.aggregate import aggregate, mean_of
from trainers.config import ConfigError, RunConfig
from trainers.context import Context
from trainers.results import (
    claims_at_matched_accuracy,
    draw_figure,
    plot_accuracy_energy,
    results_markdown,
)
from trainers.robustness import plot_robustness


def seed_dir_name(seed: int) -> str:
    return f"seed-{seed}"


def seed_config(cfg: RunConfig, seed: int) -> RunConfig:
    """The single run of ``seed`` inside the multi-seed run's directory (``<runs_dir>/<name>/seed-<k>``)."""
    return cfg.model_copy(
        update={"seed": seed, "seeds": None, "runs_dir": str(Path(cfg.runs_dir) / cfg.name), "name": seed_dir_name(seed)}
    )


def run_seeds(cfg: RunConfig) -> list[Context]:
    """Run (or resume) the pipeline once per seed of ``cfg.seeds``, then write the aggregate."""
    from trainers.pipeline import run_pipeline

    if not cfg.seeds:
        raise ValueError("run_seeds: the config has no seeds (set seeds=[...] or --seeds N)")
    top = Path(cfg.runs_dir) / cfg.name
    if (top / "config.yaml").exists():
        raise ConfigError(
            f"{top} holds a single-seed run (it has a config.yaml); a multi-seed run keeps its seeds in "
            "seed-<k>/ sub-directories of its own directory: use another name=..."
        )
    contexts = []
    for i, seed in enumerate(cfg.seeds, 1):
        sub = seed_config(cfg, seed)
        _say(f"[seeds] seed {seed} ({i}/{len(cfg.seeds)}): starting in {top / sub.name}")
        t0 = time.perf_counter()
        contexts.append(run_pipeline(sub))
        _say(f"[seeds] seed {seed} ({i}/{len(cfg.seeds)}): finished ({time.perf_counter() - t0:.0f}s)")
    if dist.is_main():
        write_aggregate(top, cfg.seeds)
    return contexts


def _say(text: str) -> None:
    if dist.is_main():
        print(text, flush=True)


def aggregate_results(per_seed: dict[int, dict]) -> dict:
    """The aggregate of the seeds' ``results.json`` (see the module doc), claims recomputed on the means."""
    seeds = list(per_seed)
    results = aggregate([{k: v for k, v in r.items() if k != "claims"} for r in per_seed.values()])
    results["seeds"] = seeds
    results["runs"] = {str(s): f"{seed_dir_name(s)}/results.json" for s in seeds}
    results["claims"] = claims_at_matched_accuracy(results["variants"], mean_of(results["accuracy_tolerance"]))
    return results


def write_aggregate(top: Path, seeds: list[int]) -> dict | None:
    """Write ``results.json``/``results.md`` and the plots of ``top`` from its seeds' ``results.json``.

    Returns the aggregate, or None (said why) when a seed has no results yet
    (e.g. ``stages=[...]`` without evaluate).
    """
    files = {s: top / seed_dir_name(s) / "results.json" for s in seeds}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        _say(f"[seeds] no aggregate: {', '.join(missing)} missing (the evaluate stage has not run for every seed)")
        return None
    results = aggregate_results({s: json.loads(f.read_text(encoding="utf-8")) for s, f in files.items()})
    atomic_write_text(top / "results.json", json.dumps(results, indent=2))
    text = results_markdown(results)
    atomic_write_text(top / "results.md", text)

    def skipped(what: str):
        return lambda exc: _say(f"[seeds] {what} plot skipped: {exc}")

    draw_figure(lambda: plot_accuracy_energy(results, top / "accuracy_energy.png"), skipped("accuracy-energy"))
    if results.get("robustness"):
        draw_figure(lambda: plot_robustness(results["robustness"], top / "robustness.png"), skipped("robustness"))
    _say(text)
    _say(f"[seeds] aggregate of seeds {', '.join(map(str, seeds))}: {top / 'results.md'}")
    return results
