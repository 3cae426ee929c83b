"""How far does the SNN-vs-ANN verdict depend on the cost conventions? One table answers it.

Usage::

    python -m trainers.run                              # the digits default (about a minute)
    python examples/dataflow_table.py runs/digits       # costs its models under every dataflow

For each SNN variant a trainer run produced (unpruned, spatio-temporally
pruned, quantized), every dataflow of :data:`snncost.costmodel.DATAFLOWS`
on the ``45nm`` profile, and every baseline the report carries (the
same-precision ANN, the fp32 ANN for a quantized SNN, the zero-skipping
ANN), it prints the SNN's total energy, the ANN/SNN total-energy ratio and
the break-even activity (spikes per synapse per inference) as one Markdown
table. The images costed are the run's own ``eval_batch.pt`` (the test
images its evaluate stage costed), so the figures are reproducible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import snncost
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import snncost
from snncost.checkpoint import load_model, safe_load
from snncost.costmodel import DATAFLOWS
from snncost.report.formatting import fmt_energy, fmt_ratio, md_table

#: (label, checkpoint stem) of the variants, least to most compressed.
VARIANTS = (("unpruned SNN", "snn"), ("spatio-temporal", "temporal"), ("quantized", "quantize"))


def table(run_dir: Path, profile: str = "45nm", samples: int | None = None) -> str:
    """The Markdown table of every variant x dataflow x baseline for one run directory."""
    batch = safe_load(run_dir / "eval_batch.pt")
    x, y = batch["x"], batch["y"]
    if samples is not None:
        x, y = x[:samples], y[:samples]
    header = ["variant", "dataflow", "SNN total", "baseline", "ANN total", "ANN/SNN total",
              "spikes / synapse", "break-even"]  # fmt: skip
    rows = []
    for label, stem in VARIANTS:
        path = run_dir / "checkpoints" / f"{stem}.pt"
        if not path.exists():
            continue
        model = load_model(path)
        for dataflow in DATAFLOWS:
            report = snncost.evaluate(model, profile=profile, data=(x, y), max_samples=len(x),
                                      dataflow=dataflow)  # fmt: skip
            be = report.break_even.network if report.break_even else None
            for b in report.baselines:
                main = b.key == "ann"
                rows.append([
                    f"{label} (T={report.timesteps}, {100 * (report.accuracy or 0):.1f}%)",
                    dataflow,
                    fmt_energy(report.snn_total.energy_total_pj),
                    b.key + (f" ({b.dataflow})" if b.dataflow != dataflow else ""),
                    fmt_energy(b.total.energy_total_pj),
                    fmt_ratio(b.ratios.total_energy),
                    "-" if be is None or be.spikes_per_synapse is None else f"{be.spikes_per_synapse:.3f}",
                    "-" if not main or be is None or be.break_even_spikes_per_synapse is None
                    else f"{be.break_even_spikes_per_synapse:.3f}",
                ])  # fmt: skip
    return md_table(header, rows, "llrlrrrr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a trainer run directory (e.g. runs/digits)")
    parser.add_argument("--profile", default="45nm")
    parser.add_argument("--samples", type=int, default=None, help="cost only the first N images")
    args = parser.parse_args(argv)
    if not (args.run_dir / "eval_batch.pt").exists():
        parser.error(f"{args.run_dir}: no eval_batch.pt (run `python -m trainers.run` first)")
    print(table(args.run_dir, args.profile, args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
