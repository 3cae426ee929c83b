"""The NIR golden files of ``tests/nir_golden``: one small graph, written by each nir version.

A file written with nir 1.0.4 (snncost's floor, sinabs 3.x's pin) must import
with the newest nir and the other way round; ``tests/test_nir.py`` checks the
committed files with whatever nir is installed, and, given a second
interpreter, files written live by the other version. From the repository root::

    PYTHONPATH=. python tests/make_nir_golden.py          # tests/nir_golden/golden_nir-<nir version>.nir
    PYTHONPATH=. python tests/make_nir_golden.py write PATH [--node-metadata]
    PYTHONPATH=. python tests/make_nir_golden.py check PATH   # exit 0: PATH imports to the golden graph

Run it with the floor nir (``make test-nir-floor`` builds ``.venv-nir-floor``)
and with the newest (``.venv``). ``--node-metadata`` writes snncost's node
entries on the nodes, as snncost did before it supported nir 1.0.4 (needs
nir >= 1.0.5): ``golden_nir-<version>-node-metadata.nir``.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import nir
import numpy as np

from snncost.graph import LayerGraph
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    LinearNode,
    OutputNode,
    PoolNode,
)
from snncost.interop import from_nir, save_nir, to_nir
from snncost.interop.nir_compat import META

DATA = Path(__file__).parent / "nir_golden"


def golden_graph() -> LayerGraph:
    """Poisson input, a 4-bit conv with per-channel scale, LIF, avg pool, flatten,
    a bias-free linear (NIR ``Linear``), IF, a linear with bias (``Affine``), read-out.

    Weights are multiples of 1/8 drawn from a fixed numpy generator, so every
    version and platform builds the same graph exactly.
    """
    rng = np.random.default_rng(2024)
    codes = rng.integers(-7, 8, size=(2, 1, 3, 3)).astype(np.float32)
    scale = np.array([0.125, 0.25], np.float32)
    w2 = (rng.integers(-8, 9, size=(6, 8)) / 8).astype(np.float32)
    w3 = (rng.integers(-8, 9, size=(3, 6)) / 8).astype(np.float32)
    b3 = (rng.integers(-4, 5, size=3) / 8).astype(np.float32)
    return LayerGraph([
        InputNode("pixels", shape=(1, 4, 4), encoding="poisson", timesteps=3, gain=0.75),
        ConvNode("conv", weight=codes, bias=None, in_shape=(1, 4, 4), out_shape=(2, 4, 4),
                 padding=(1, 1), weight_bits=4, weight_scale=scale, number_format="int"),
        LIFNode("lif", leak=0.875, threshold=0.375, shape=(2, 4, 4)),
        PoolNode("pool", kind="avg", kernel=2, in_shape=(2, 4, 4), out_shape=(2, 2, 2)),
        FlattenNode("flat", in_shape=(2, 2, 2), out_shape=(8,)),
        LinearNode("hidden", weight=w2, in_shape=(8,), out_shape=(6,)),
        LIFNode("if", leak=1.0, threshold=0.625, shape=(6,)),
        LinearNode("readout", weight=w3, bias=b3, in_shape=(6,), out_shape=(3,)),
        OutputNode("logits", shape=(3,)),
    ], name="golden")  # fmt: skip


def differences(graph: LayerGraph, expected: LayerGraph | None = None) -> list[str]:
    """Every field in which ``graph`` differs from ``expected`` (default the golden graph)."""
    expected = golden_graph() if expected is None else expected
    out = [f"graph name {graph.name!r} != {expected.name!r}"] if graph.name != expected.name else []
    got, want = list(graph), list(expected)
    if [type(n) for n in got] != [type(n) for n in want]:
        return [*out, f"node types {[n.type_name for n in got]} != {[n.type_name for n in want]}"]
    for a, b in zip(got, want, strict=True):
        for f in fields(b):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                same = va is not None and vb is not None and np.array_equal(va, vb)
                same = same and np.asarray(va).dtype == np.asarray(vb).dtype
            else:
                same = va == vb
            if not same:
                out.append(f"{b.name}.{f.name}: {va!r} != {vb!r}")
    return out


def write(path: Path, node_metadata: bool = False) -> Path:
    graph = to_nir(golden_graph())
    if node_metadata:  # snncost's file layout before it supported nir 1.0.4
        for key, entry in graph.metadata[META].pop("nodes").items():
            graph.nodes[key].metadata = {META: entry}
    return save_nir(graph, path)


def main(argv: list[str]) -> int:
    if not argv:
        print(write(DATA / f"golden_nir-{nir.version}.nir"))
        return 0
    command, path, *rest = argv
    if command == "write":
        print(write(Path(path), node_metadata=rest == ["--node-metadata"]))
        return 0
    if command == "check":
        problems = differences(from_nir(path))
        print("\n".join(problems) or f"{path}: the golden graph (nir {nir.version})")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
