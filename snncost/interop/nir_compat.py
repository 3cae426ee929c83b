"""What the installed ``nir`` can do, asked of its code rather than of its version string.

snncost supports nir 1.0.4 (the newest that sinabs 3.x allows, ``nir<=1.0.4``)
up to the newest release. The differences that matter to
:mod:`snncost.interop.nir`:

- nir 1.0.4's ``Input``, ``Output``, ``Conv2d``, ``Linear``, ``AvgPool2d`` and
  ``Scale`` have no ``metadata`` field (1.0.5 added it); the graph and the
  other nodes have one in every version. snncost therefore writes its entries
  in the *graph's* metadata only.
- ``IF``, ``LIF`` and ``CubaLIF`` have a ``v_reset`` field from nir 1.0.6 on
  (default 0, written to every file); up to 1.0.5 their equations subtract the
  threshold on a spike, and there is no such field.
- ``nir.read`` and ``NIRGraph`` take ``type_check`` from 1.0.5 on (1.0.4 checks
  no types when it builds or reads a graph).

So a file written with nir 1.0.4 reads in any newer nir as it is, while one
written with a newer nir can hold fields that 1.0.4's ``nir.read`` rejects
(``TypeError: IF.__init__() got an unexpected keyword argument 'v_reset'``):
:func:`read_from_newer_nir` reads it anyway where nothing is lost.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np

#: Key of snncost's entries in NIR ``metadata`` dicts.
META = "snncost"


@functools.cache
def accepts_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` (a function or class of the installed nir) takes the keyword ``name``."""
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # no signature to read: assume the old form
        return False


#: Fields a newer nir writes that an older one has no place for, each with
#: whether leaving the value out loses nothing snncost reads. Node metadata
#: is handled before (snncost's part moves to the graph's metadata).
_DROPPABLE: dict[str, Callable[[Any], bool]] = {
    # nir 1.0.4's IF/LIF subtract the threshold on a spike; snncost reads v_reset = 0 the same way
    "v_reset": lambda value: not np.any(np.asarray(value)),
    "metadata": lambda value: True,
}


def _fit_to_installed_nir(graph: dict[str, Any]) -> None:
    """Leave out of a graph dict (``nir.serialization.hdf2dict``) the fields this nir lacks.

    snncost's part of a node's metadata (``metadata["snncost"]`` of node
    ``key``) moves to the graph's ``metadata["snncost"]["nodes"][key]``, where
    import looks first; other tools' node metadata has no place in this nir.
    A field not in :data:`_DROPPABLE`, or a value that would be lost (a
    non-zero ``v_reset``), is kept, so that nir's own error names it.
    """
    moved: dict[str, Any] = {}
    for key, node in graph.get("nodes", {}).items():
        if node.get("type") == "NIRGraph":
            _fit_to_installed_nir(node)
            continue
        node_type = getattr(nir, str(node.get("type")), None)
        if node_type is None:
            continue
        for field, lossless in _DROPPABLE.items():
            if field not in node or accepts_keyword(node_type, field) or not lossless(node[field]):
                continue
            value = node.pop(field)
            if field == "metadata" and isinstance(value.get(META), dict):
                moved[key] = value[META]
    if moved:
        ours = graph.setdefault("metadata", {}).setdefault(META, {})
        ours["nodes"] = {**moved, **ours.get("nodes", {})}


def read_from_newer_nir(path: str | Path) -> nir.NIRGraph:
    """``nir.read`` for a file written by a newer nir, leaving out what this nir lacks.

    nir's own HDF5-to-dict reader, then :func:`_fit_to_installed_nir`, then
    nir's own dict-to-graph builder.
    """
    import h5py
    from nir.serialization import hdf2dict

    with h5py.File(path, "r") as f:
        data = hdf2dict(f["node"])
    _fit_to_installed_nir(data)
    return nir.dict2NIRNode(data)
