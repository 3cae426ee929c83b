"""Exchange with other SNN tools: NIR (the Neuromorphic Intermediate Representation).

:mod:`snncost.interop.nir` converts a :class:`~snncost.graph.LayerGraph` (or a
torch model) to a ``nir.NIRGraph`` and back, so networks trained in snntorch,
norse, sinabs, ... can be replayed and costed by snncost. The mapping and its
assumptions are documented in that module and in ``docs/nir.md``.
"""

from snncost.interop.nir import (
    DEFAULT_DT,
    NIRConversionError,
    from_nir,
    graph_to_module,
    is_nir_path,
    load_nir,
    save_nir,
    to_nir,
)

__all__ = [
    "DEFAULT_DT",
    "NIRConversionError",
    "from_nir",
    "graph_to_module",
    "is_nir_path",
    "load_nir",
    "save_nir",
    "to_nir",
]
