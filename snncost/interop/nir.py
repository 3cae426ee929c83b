"""NIR (Neuromorphic Intermediate Representation, PyPI ``nir``) export and import.

>>> from snncost.interop import to_nir, from_nir, save_nir, load_nir   # doctest: +SKIP
>>> save_nir(to_nir(snn_model), "net.nir")                             # doctest: +SKIP
>>> graph = from_nir("net.nir")       # a LayerGraph, ready for snncost.simulate   # doctest: +SKIP
>>> report = snncost.evaluate("net.nir", data=(x, y))                   # doctest: +SKIP

NIR describes neurons in continuous time; snncost's neuron is discrete
(:mod:`snncost.nn.functional`)::

    h[t] = leak * u[t-1] + I[t];   s[t] = h[t] >= theta;   u[t] = h[t] - s[t] * theta

The two are tied by the forward-Euler step of length ``dt`` that snntorch's
``export_to_nir``/``import_from_nir`` use (``dt = 1e-4``, :data:`DEFAULT_DT`).
For ``tau dv/dt = (v_leak - v) + r I``, one step is
``v[t] = (1 - dt/tau) v[t-1] + (r dt / tau) I[t]`` (with ``v_leak = 0``), so

- ``nir.LIF``: ``leak = 1 - dt/tau``; the input gain ``k = r*dt/tau``.
  Export writes ``tau = dt/(1 - leak)`` and ``r = tau/dt`` (so ``k = 1``),
  exactly what snntorch writes for ``snn.Leaky(beta)``: a snntorch network
  exported to NIR imports to ``leak = beta`` (``beta = 1`` arrives as
  ``tau = r = inf``: leak 1, gain 1).
- ``nir.IF`` (``dv/dt = r I``, no time constant): ``leak = 1`` and the gain
  is ``k = r`` per step, independent of ``dt`` (snntorch and norse take
  ``r = 1`` as the plain per-step integrator; the SpiNNaker 2 mapping scales
  by ``r`` per step). Export writes ``r = 1``.
- ``nir.CubaLIF``: the synaptic current ``I[t] = alpha I[t-1] + (w_in dt/tau_syn) S[t]``
  with ``alpha = 1 - dt/tau_syn`` has no memory only when ``tau_syn == dt``
  (``alpha = 0``); then it is an LIF with ``leak = 1 - dt/tau_mem`` and gain
  ``k = (w_in dt/tau_syn) * (r dt/tau_mem)``. Any other ``tau_syn`` is refused.
- ``nir.Threshold`` (stateless Heaviside) is an LIF with ``leak = 0``.

A gain ``k != 1`` is folded into the threshold (``theta = v_threshold / k``,
the membrane is scaled by ``1/k``): the spikes are the same, so are the counts.

Assumptions, stated once (also in ``docs/nir.md``):

- **Reset**: NIR has no reset-mechanism field (its equations reset to
  ``v_reset`` at once from nir 1.0.6; up to 1.0.5 they subtract the threshold).
  snncost uses the *subtractive* (soft) reset
  ``u = h - theta``, applied in the step that spikes, snntorch's default
  ``reset_mechanism`` for ``Leaky``; an imported ``v_reset`` must be 0 and is
  read as "subtract the threshold". snntorch's ``Leaky`` also has
  ``reset_delay`` (default ``True``): it subtracts the threshold one step
  later, *after* the leak (``m[t] = beta m[t-1] + I[t] - theta s[t-1]``),
  where snncost leaks the reset membrane (``h[t] = beta (h[t-1] - theta s[t-1]) + I[t]``).
  The two are identical for IF (``beta = 1``); for ``beta < 1`` snncost
  matches ``Leaky(reset_delay=False)`` except for neurons whose membrane is
  still above threshold after a reset. NIR records neither, so an imported
  snntorch ``Leaky(beta < 1)`` is replayed with snncost's reset. (snntorch's
  own ``import_from_nir`` rebuilds ``reset_mechanism="zero"``.)
- **Spike condition**: NIR writes ``v > v_threshold``; snncost fires on
  ``h >= theta``. They differ only when the membrane lands exactly on the
  threshold.
- **Leak voltage**: ``v_leak`` must be 0 (a non-zero rest potential would be
  a constant input current).
- **Per-neuron parameters**: snncost's neurons have one leak and one threshold
  per layer, so array parameters are accepted only when all entries are equal
  (relative tolerance 1e-6); export writes arrays of the layer's shape, as NIR
  type checking needs.
- **Read-out**: snncost's output layer is not spiking: logits are the mean over
  ``T`` of the last weight layer's current. Export connects that last
  ``Affine``/``Linear`` straight to ``nir.Output`` and says so in the
  metadata; import needs the same (a graph ending in a spiking layer is
  refused, since its cost and its predictions would differ).
- **Input**: NIR has no input encoding or number of steps; export stores them
  (with ``dt``, weight bit widths and the original names) in the graph's
  ``metadata["snncost"]``, the one metadata every nir version from 1.0.4 on
  keeps (:mod:`snncost.interop.nir_compat`); import reads them back, or takes
  ``timesteps=``/``encoding=`` from the caller for graphs written elsewhere.

Refused (each error names the NIR node id and type, or the LayerGraph node):
max pooling (NIR 1.0 has no max-pool node), ReLU/ANN graphs, non-chain
graphs, sub-graphs and recurrence, ``Conv1d``, ``LI``/``I``/``CubaLI``,
``Scale``, ``Delay``, pooling with padding or ``stride != kernel``, grouped
or dilated convolutions, and the neuron cases above.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from snncost.graph.layergraph import LayerGraph
from snncost.graph.mapping import Rule, RuleTable
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    LinearNode,
    Node,
    OutputNode,
    PoolNode,
    ReLUNode,
    Shape,
    WeightNode,
)
from snncost.interop.nir_compat import META, accepts_keyword, read_from_newer_nir

#: Euler step (seconds) between NIR's continuous time constants and snncost's
#: per-step leak; snntorch's NIR export and import use the same value.
DEFAULT_DT = 1e-4
#: File suffixes read as NIR (HDF5) files by :func:`snncost.evaluate`.
NIR_SUFFIXES = (".nir", ".h5", ".hdf5")
_RTOL = 1e-6  # "all per-neuron values equal"
_GAIN_RTOL = 1e-5  # an input gain this close to 1 is 1 (float32 round-off in tau, r)

READOUT = (
    "logits = mean over T of the input current of the last weight layer (non-spiking integrator)"
)
NEURON = (
    "h[t] = leak*u[t-1] + I[t]; s[t] = h[t] >= theta; u[t] = h[t] - s[t]*theta (subtractive reset)"
)


class NIRConversionError(ValueError):
    """A node that cannot be converted; ``node`` is its id (NIR key or LayerGraph name)."""

    def __init__(self, node: str, node_type: str, why: str, *, side: str = "NIR") -> None:
        self.node = node
        self.node_type = node_type
        super().__init__(f"{side} node {node!r} of type {node_type}: {why}")


def _export_error(node: Node, why: str) -> NIRConversionError:
    return NIRConversionError(node.name, node.type_name, why, side="LayerGraph")


# ---------------------------------------------------------------------- helpers
def _check_dt(dt: Any) -> float:
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a positive number (seconds), got {dt!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"dt must be a positive number (seconds), got {dt!r}")
    return value


def is_nir_path(x: Any) -> bool:
    """True for a ``str``/``Path`` ending in ``.nir``, ``.h5`` or ``.hdf5``."""
    return isinstance(x, (str, Path)) and Path(x).suffix.lower() in NIR_SUFFIXES


def _plain(value: Any) -> Any:
    """A metadata value read back from HDF5 as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _meta(obj: Any) -> dict:
    md = getattr(obj, "metadata", None)
    if not isinstance(md, dict):
        return {}
    ours = md.get(META)
    return _plain(ours) if isinstance(ours, dict) else {}


def _f32(x: float) -> float:
    """Round to float32: the precision of the replay and of the torch layers."""
    return float(np.float32(x))


# ---------------------------------------------------------------------- export
def _as_layergraph(graph_or_model: Any, input_shape: tuple[int, ...] | None = None) -> LayerGraph:
    if isinstance(graph_or_model, LayerGraph):
        return graph_or_model
    from torch import nn

    if isinstance(graph_or_model, nn.Module):
        from snncost.graph.build import build_graph

        return build_graph(graph_or_model, input_shape=input_shape)
    raise TypeError(
        f"expected a LayerGraph or a torch nn.Module, got {type(graph_or_model).__name__}"
    )


def _full(shape: Shape, value: float) -> np.ndarray:
    return np.full(tuple(shape), value, dtype=np.float64)


def _effective_weight(node: WeightNode) -> np.ndarray:
    """The float weights the layer applies (``codes * scale`` for a quantized layer)."""
    w = getattr(node, "effective_weight", node.weight)
    return np.ascontiguousarray(w, np.float32)


def _weight_meta(node: WeightNode) -> dict:
    md: dict[str, Any] = {
        "name": node.name,
        "bias": node.bias is not None,
        "weight_bits": int(node.weight_bits),
        "number_format": str(node.number_format),
    }
    if node.weight_scale is not None:
        scale = node.weight_scale
        md["weight_scale"] = (
            np.asarray(scale, np.float64) if isinstance(scale, np.ndarray) else float(scale)
        )
    return md


def _export_node(node: Node, dt: float) -> tuple[nir.NIRNode, dict[str, Any]]:
    """The NIR node for ``node`` and snncost's metadata entry for it (kept in the graph's)."""
    if isinstance(node, InputNode):
        md: dict[str, Any] = {
            "name": node.name,
            "encoding": node.encoding,
            "timesteps": int(node.timesteps),
        }
        if node.gain is not None:
            md["gain"] = float(node.gain)
        return nir.Input(input_type={"input": np.array(node.shape)}), md
    if isinstance(node, ConvNode):
        weight = _effective_weight(node)
        bias = np.zeros(weight.shape[0], np.float32) if node.bias is None else node.bias
        return nir.Conv2d(
            input_shape=tuple(int(s) for s in node.in_shape[1:]),
            weight=weight,
            stride=np.array(node.stride),
            padding=np.array(node.padding),
            dilation=np.array([1, 1]),
            groups=1,
            bias=np.ascontiguousarray(bias, np.float32),
        ), _weight_meta(node)
    if isinstance(node, LinearNode):
        weight = _effective_weight(node)
        md = _weight_meta(node)
        if node.bias is None:
            return nir.Linear(weight=weight), md
        return nir.Affine(weight=weight, bias=np.ascontiguousarray(node.bias, np.float32)), md
    if isinstance(node, PoolNode):
        if node.kind != "avg":
            raise _export_error(
                node, "max pooling has no NIR node (NIR 1.0 has AvgPool2d and SumPool2d only)"
            )
        k = int(node.kernel)
        return nir.AvgPool2d(
            kernel_size=np.array([k, k]),
            stride=np.array([k, k]),
            padding=np.array([0, 0]),
        ), {"name": node.name}
    if isinstance(node, FlattenNode):
        # NIR shapes have no batch axis: flatten every axis of the (C, H, W) sample
        return nir.Flatten(
            input_type={"input": np.array(node.in_shape)},
            start_dim=0,
            end_dim=-1,
        ), {"name": node.name}
    if isinstance(node, LIFNode):
        if node.charge != "leak" or node.reset != "soft":
            # NIR's LIF is one ODE discretised by dt; SpikingJelly's charge rules and a hard
            # reset have no exact NIR form that reads back bit for bit, so they are refused
            raise _export_error(
                node, f"charge {node.charge!r} with a {node.reset} reset: to_nir exports snncost's "
                "own LIF/IF (charge 'leak', soft reset) only",
            )  # fmt: skip
        leak, theta = float(node.leak), float(node.threshold)
        if not 0.0 <= leak <= 1.0:
            raise _export_error(node, f"leak {leak} outside [0, 1]")
        if not theta > 0:
            raise _export_error(node, f"threshold {theta} must be > 0")
        md = {"name": node.name, "leak": leak, "threshold": theta, "reset": "subtract"}
        shape = tuple(node.shape)
        if leak == 1.0:
            return nir.IF(
                r=_full(shape, 1.0),
                v_threshold=_full(shape, theta),
            ), md
        tau = dt / (1.0 - leak)
        return nir.LIF(
            tau=_full(shape, tau),
            r=_full(shape, tau / dt),
            v_leak=_full(shape, 0.0),
            v_threshold=_full(shape, theta),
        ), md
    if isinstance(node, OutputNode):
        if node.reduce != "mean":
            raise _export_error(node, "an ANN read-out (reduce='none'): to_nir exports SNNs")
        return nir.Output(
            output_type={"output": np.array(node.shape)},
        ), {"name": node.name, "readout": READOUT}
    if isinstance(node, ReLUNode):
        raise _export_error(node, "ReLU (an ANN layer) has no NIR node; to_nir exports SNNs")
    raise _export_error(node, "no NIR mapping for this node type")


def to_nir(
    graph_or_model: Any,
    input_shape: tuple[int, ...] | None = None,
    *,
    dt: float | None = None,
) -> nir.NIRGraph:
    """Convert a spiking :class:`LayerGraph` (or a torch SNN, via :func:`build_graph`) to NIR.

    Node ids are the LayerGraph names, except the ``Input`` and ``Output``
    nodes (``"input"``/``"output"`` unless taken). ``dt`` (default
    :data:`DEFAULT_DT`) sets the LIF time constants (``tau = dt/(1-leak)``,
    ``r = tau/dt``); leak 1 layers become ``nir.IF`` with ``r = 1``. Encoding,
    ``T``, Poisson gain, ``dt`` go into the graph's ``metadata["snncost"]``;
    each node's entry (original name, weight bit width and scale, leak and
    threshold) into its ``metadata["snncost"]["nodes"][id]``: the graph is
    the one place every nir version (1.0.4 on) keeps metadata. Raises
    :class:`NIRConversionError` naming a node that has no NIR form (max pool,
    ReLU) and ``ValueError`` for non-chain or non-spiking graphs.
    """
    graph = _as_layergraph(graph_or_model, input_shape)
    dt = _check_dt(DEFAULT_DT if dt is None else dt)
    if not graph.is_chain():
        raise ValueError("to_nir exports chain graphs only (one path from input to output)")
    if not graph.is_spiking:
        raise ValueError("to_nir exports spiking graphs (LIF layers); this graph has none")
    names = {n.name for n in graph}
    nodes: dict[str, nir.NIRNode] = {}
    node_meta: dict[str, dict[str, Any]] = {}
    keys: list[str] = []
    for node in graph:
        if isinstance(node, InputNode):
            key = "input" if "input" not in names or node.name == "input" else node.name
        elif isinstance(node, OutputNode):
            key = "output" if "output" not in names or node.name == "output" else node.name
        else:
            key = node.name
        if key in nodes:
            raise _export_error(node, f"NIR id {key!r} is used twice")
        nodes[key], node_meta[key] = _export_node(node, dt)
        keys.append(key)
    inp = graph.input
    from snncost import __version__

    md: dict[str, Any] = {
        "producer": f"snncost {__version__}",
        "name": graph.name,
        "encoding": inp.encoding,
        "timesteps": int(inp.timesteps),
        "dt": dt,
        "reset": "subtract",
        "spike_condition": "v >= v_threshold",
        "neuron": NEURON,
        "readout": READOUT,
        "nodes": node_meta,
    }
    if inp.gain is not None:
        md["gain"] = float(inp.gain)
    edges = list(zip(keys, keys[1:], strict=False))
    # nir >= 1.0.5 checks the types of every edge here; 1.0.4 has no such check
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META: md})


# ---------------------------------------------------------------------- files
def save_nir(
    graph: Any,
    path: str | Path,
    *,
    dt: float | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Path:
    """Write ``graph`` (a ``nir.NIRGraph``, a LayerGraph or a torch SNN) to ``path`` with ``nir.write``.

    The file is written next to ``path`` and renamed into place, so a failed
    write leaves no partial file. Errors name the file.
    """
    path = Path(path)
    if not isinstance(graph, nir.NIRGraph):
        graph = to_nir(graph, input_shape, dt=dt)
    if path.parent and not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write NIR file {path}: no directory {path.parent}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(f"cannot write NIR file {path}: {exc}") from exc
        raise ValueError(f"cannot write NIR file {path}: {type(exc).__name__}: {exc}") from exc
    return path


def load_nir(path: str | Path) -> nir.NIRGraph:
    """Read a NIR file with ``nir.read``; errors name the file.

    Falls back to ``type_check=False`` for files whose shapes NIR cannot infer
    (:func:`from_nir` tracks the shapes itself), and, on a nir older than the
    file's writer, to leaving out the fields the installed nir has no place for
    (:func:`~snncost.interop.nir_compat.read_from_newer_nir`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIR file")
    try:
        return nir.read(path)
    except Exception as first:
        fallbacks = [read_from_newer_nir]
        if accepts_keyword(nir.read, "type_check"):
            fallbacks.insert(0, lambda p: nir.read(p, type_check=False))
        for fallback in fallbacks:
            try:
                return fallback(path)
            except Exception:
                pass
        raise ValueError(
            f"{path}: not a readable NIR file ({type(first).__name__}: {first})"
        ) from None


# ---------------------------------------------------------------------- import
def _type(node: Any) -> str:
    name = type(node).__name__
    return (
        f"{name} (a sub-graph, e.g. a recurrent layer)" if isinstance(node, nir.NIRGraph) else name
    )


def _chain(g: nir.NIRGraph) -> list[str]:
    """The node ids from the Input to the Output; raises naming a node off the chain."""
    nodes = g.nodes
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in g.edges:
        a, b = str(a), str(b)
        if a not in nodes or b not in nodes:
            raise ValueError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the graph")
        succ[a].append(b)
        pred[b].append(a)
    for k, n in nodes.items():
        if len(succ[k]) > 1:
            raise NIRConversionError(
                k, _type(n),
                f"has {len(succ[k])} outgoing edges (to {', '.join(map(repr, succ[k]))}); "
                "snncost imports chain graphs only (one path from Input to Output)",
            )  # fmt: skip
        if len(pred[k]) > 1:
            raise NIRConversionError(
                k, _type(n),
                f"has {len(pred[k])} incoming edges (from {', '.join(map(repr, pred[k]))}); "
                "snncost imports chain graphs only (no merges, no recurrence)",
            )  # fmt: skip
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(
            f"the NIR graph must have exactly one Input node, it has {len(inputs)}: {inputs}"
        )
    order = [inputs[0]]
    seen = {inputs[0]}
    while succ[order[-1]]:
        nxt = succ[order[-1]][0]
        if nxt in seen:
            raise NIRConversionError(
                nxt, _type(nodes[nxt]), "closes a cycle; snncost imports chain graphs only"
            )
        order.append(nxt)
        seen.add(nxt)
    for k, n in nodes.items():
        if k not in seen:
            raise NIRConversionError(
                k, _type(n), "is not on the path from the Input; snncost imports chain graphs only"
            )
    last = order[-1]
    if not isinstance(nodes[last], nir.Output):
        raise NIRConversionError(last, _type(nodes[last]), "the chain must end in an Output node")
    return order


def _pair(key: str, node: Any, value: Any, what: str) -> tuple[int, int]:
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.array([a[0], a[0]])
    if a.size != 2 or not np.all(np.equal(np.mod(a, 1), 0)):
        raise NIRConversionError(key, _type(node), f"{what}={value!r} (need one or two integers)")
    return int(a[0]), int(a[1])


def _uniform(
    key: str, node: Any, what: str, value: Any, shape: Shape, allow_inf: bool = False
) -> float:
    """The one value of a per-neuron parameter (all entries equal), checked against the layer shape.

    ``allow_inf``: ``+inf`` is a valid (uniform) value, e.g. ``tau`` of a neuron without leak.
    """
    a = np.asarray(value, dtype=np.float64)
    size = int(np.prod(shape)) if shape else 1
    if a.size == 0:
        raise NIRConversionError(key, _type(node), f"{what} is empty")
    if a.size != 1 and a.size != size:
        raise NIRConversionError(
            key, _type(node), f"{what} has shape {a.shape} but the layer has shape {tuple(shape)}"
        )
    first = float(a.reshape(-1)[0])
    if np.isinf(first) and first > 0 and allow_inf:
        if not np.all(a == first):
            raise NIRConversionError(key, _type(node), f"per-neuron {what} differ (some are inf)")
        return first
    if not np.all(np.isfinite(a)):
        raise NIRConversionError(key, _type(node), f"{what} has non-finite values")
    if a.size > 1 and not np.allclose(a, first, rtol=_RTOL, atol=0.0):
        raise NIRConversionError(
            key, _type(node),
            f"per-neuron {what} differ (min {a.min():.6g}, max {a.max():.6g}); snncost's "
            "neurons share one value per layer",
        )  # fmt: skip
    return first


def _zero(key: str, node: Any, what: str, value: Any, shape: Shape, why: str) -> None:
    if value is None:
        return
    a = np.asarray(value, dtype=np.float64)
    if a.size and not np.allclose(a, 0.0, rtol=0.0, atol=1e-12):
        raise NIRConversionError(key, _type(node), f"{what} is not 0 ({why})")


def _neuron(key: str, node: Any, shape: Shape, dt: float) -> tuple[float, float]:
    """``(leak, threshold)`` of an imported neuron node (see the module docstring)."""
    t = _type(node)
    if isinstance(node, nir.Threshold):
        return 0.0, _uniform(key, node, "threshold", node.threshold, shape)
    if isinstance(node, nir.IF):
        leak = 1.0
        gain = _uniform(key, node, "r", node.r, shape)
    elif isinstance(node, nir.LIF):
        _zero(
            key, node, "v_leak", node.v_leak, shape, "a rest potential is a constant input current"
        )
        tau = _uniform(key, node, "tau", node.tau, shape, allow_inf=True)
        r = _uniform(key, node, "r", node.r, shape, allow_inf=True)
        if not tau > 0:
            raise NIRConversionError(key, t, f"tau={tau} must be > 0")
        leak = 1.0 - dt / tau
        if np.isinf(r) and np.isinf(tau):  # no leak, r = tau/dt (snntorch's Leaky(beta=1)): gain 1
            gain = 1.0
        elif np.isinf(r):
            raise NIRConversionError(key, t, f"r=inf with tau={tau:.6g} (an infinite input gain)")
        else:
            gain = r * dt / tau
    elif isinstance(node, nir.CubaLIF):
        _zero(
            key, node, "v_leak", node.v_leak, shape, "a rest potential is a constant input current"
        )
        tau_syn = _uniform(key, node, "tau_syn", node.tau_syn, shape)
        tau_mem = _uniform(key, node, "tau_mem", node.tau_mem, shape)
        r = _uniform(key, node, "r", node.r, shape)
        w_in = _uniform(key, node, "w_in", node.w_in, shape)
        if not (tau_syn > 0 and tau_mem > 0):
            raise NIRConversionError(key, t, f"tau_syn={tau_syn}, tau_mem={tau_mem} must be > 0")
        alpha = 1.0 - dt / tau_syn
        if abs(alpha) > 1e-6:
            raise NIRConversionError(
                key, t,
                f"has synaptic memory: alpha = 1 - dt/tau_syn = {alpha:.6g} with dt={dt:g}, "
                f"tau_syn={tau_syn:.6g}; snncost's neuron has no synaptic current state "
                "(only tau_syn == dt, i.e. alpha = 0, reduces to an LIF)",
            )  # fmt: skip
        leak = 1.0 - dt / tau_mem
        gain = (w_in * dt / tau_syn) * (r * dt / tau_mem)
    else:  # pragma: no cover - callers dispatch on the type
        raise NIRConversionError(key, t, "not a neuron")
    _zero(key, node, "v_reset", getattr(node, "v_reset", None), shape,
          "snncost uses the subtractive reset u -= threshold, read from v_reset = 0")  # fmt: skip
    vthr = _uniform(key, node, "v_threshold", node.v_threshold, shape)
    if leak < -1e-9 or leak > 1.0 + 1e-9:
        raise NIRConversionError(
            key,
            t,
            f"leak = 1 - dt/tau = {leak:.6g} outside [0, 1] with dt={dt:g} (tau < dt?); pass dt=",
        )
    leak = min(1.0, max(0.0, leak))
    if not gain > 0:
        raise NIRConversionError(key, t, f"input gain {gain:.6g} must be > 0")
    if np.isclose(gain, 1.0, rtol=_GAIN_RTOL, atol=0.0):
        gain = 1.0
    theta = vthr / gain
    if not theta > 0:
        raise NIRConversionError(key, t, f"threshold {theta:.6g} must be > 0")
    return leak, theta


def _node_meta(graph_meta: dict, key: str, node: Any) -> dict:
    """snncost's entry for node ``key``: in the graph's metadata, else on the node itself.

    snncost writes node entries in the graph's metadata (every nir version has
    it); files written by earlier snncost versions (nir >= 1.0.5) hold them on
    the nodes.
    """
    entries = graph_meta.get("nodes")
    entry = entries.get(key) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) else _meta(node)


def _snap(value: float, md: dict, field: str) -> float:
    """Prefer the exact value snncost stored in the metadata when it agrees."""
    stored = md.get(field)
    if isinstance(stored, (int, float)) and np.isclose(stored, value, rtol=1e-6, atol=1e-9):
        return float(stored)
    return _f32(value)


def _restore_quant(node: WeightNode, md: dict) -> None:
    """Give back a quantized layer's integer codes and per-channel scale from the metadata.

    NIR stores the float weights the layer applies (``codes * scale``); when
    snncost's metadata names ``number_format="int"`` and a ``weight_scale``
    that divides the weights into integers, the node holds the codes and the
    scale again (what the replay and the cost model use). Otherwise the
    weights stay float, priced at ``weight_bits`` when the metadata gives it.
    """
    if md.get("number_format") != "int" or md.get("weight_bits") is None:
        return
    bits = int(md["weight_bits"])
    node.weight_bits = bits
    node.number_format = "int"
    scale = md.get("weight_scale")
    if scale is None or not hasattr(node, "effective_weight"):
        return
    o = node.weight.shape[0]
    s = np.asarray(scale, np.float32).reshape(-1)
    if s.size == 1:
        s = np.full(o, s[0], np.float32)
    if s.size != o or not np.all(s > 0):
        return
    codes = node.weight.astype(np.float64) / s.astype(np.float64).reshape(
        -1, *([1] * (node.weight.ndim - 1))
    )
    rounded = np.round(codes)
    if np.allclose(codes, rounded, rtol=0.0, atol=1e-3) and np.abs(rounded).max(initial=0) <= 2 ** (
        bits - 1
    ):
        node.weight = np.ascontiguousarray(rounded, np.float32)
        node.weight_scale = np.ascontiguousarray(s)


def _conv_padding(
    key: str, node: Any, kh: int, kw: int, stride: tuple[int, int]
) -> tuple[int, int]:
    pad = node.padding
    if isinstance(pad, bytes):
        pad = pad.decode("utf8")
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "USO" and pad.size == 1:
        pad = str(pad.reshape(-1)[0])
    if isinstance(pad, str):
        if pad == "valid":
            return 0, 0
        if pad == "same" and kh % 2 == 1 and kw % 2 == 1 and stride == (1, 1):
            return kh // 2, kw // 2
        raise NIRConversionError(
            key, _type(node), f"padding={pad!r} with kernel {kh}x{kw}, stride {stride}"
        )
    return _pair(key, node, pad, "padding")


@dataclass
class _Import:
    """What the node importers share while walking the chain: the shape so far, the nodes
    built, the pending ``SumPool2d`` factor (folded into the next weight layer), ``dt``."""

    dt: float
    shape: Shape
    nodes: list[Node]
    used: set[str] = field(default_factory=set)
    scale: float = 1.0
    scale_from: str = ""

    def name(self, key: str, node: Any, md: dict) -> str:
        cand = md.get("name")
        out = cand if isinstance(cand, str) and cand and cand not in self.used else key
        if out in self.used:
            raise NIRConversionError(key, _type(node), f"name {out!r} is used twice")
        self.used.add(out)
        return out

    def take_scale(self) -> float:
        scale, self.scale = self.scale, 1.0
        return scale


def _import_output(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, prev = _type(n), st.nodes[-1]
    if isinstance(prev, LIFNode):
        raise NIRConversionError(
            key, t,
            f"follows the spiking layer {prev.name!r}: snncost's read-out is a non-spiking "
            "integrator of the last weight layer's current (logits = mean over T), so the "
            "graph must end ... -> Linear/Affine -> Output (drop the last spiking layer)",
        )  # fmt: skip
    if not isinstance(prev, WeightNode):
        raise NIRConversionError(key, t, f"follows {prev.name!r} ({prev.type_name}), not a weight layer")
    return OutputNode(st.name(key, n, md), shape=st.shape, reduce="mean")


def _import_conv(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, shape = _type(n), st.shape
    w = np.ascontiguousarray(np.asarray(n.weight, dtype=np.float32))
    if w.ndim != 4:
        raise NIRConversionError(key, t, f"weight has shape {w.shape} (need [O, C, kh, kw])")
    if len(shape) != 3:
        raise NIRConversionError(key, t, f"needs a (C, H, W) input, gets shape {shape}")
    if int(np.asarray(n.groups).reshape(-1)[0]) != 1:
        raise NIRConversionError(key, t, f"groups={n.groups} (only 1)")
    if _pair(key, n, n.dilation, "dilation") != (1, 1):
        raise NIRConversionError(key, t, f"dilation={n.dilation} (only 1)")
    o, c, kh, kw = w.shape
    if c != shape[0]:
        raise NIRConversionError(key, t, f"weight expects {c} input channels, the input has {shape[0]}")
    if n.input_shape is not None:
        declared = tuple(int(s) for s in np.asarray(n.input_shape).reshape(-1))
        if declared != tuple(shape[1:]):
            raise NIRConversionError(key, t, f"input_shape {declared} but receives {shape[1:]}")
    stride = _pair(key, n, n.stride, "stride")
    pad = _conv_padding(key, n, kh, kw, stride)
    h, wd = shape[1], shape[2]
    ho, wo = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise NIRConversionError(key, t, f"a {h}x{wd} input gives an empty output")
    bias = _import_bias(key, n, md, o, "channels")
    scale = st.take_scale()
    node = ConvNode(
        st.name(key, n, md), weight=w * np.float32(scale) if scale != 1.0 else w, bias=bias,
        in_shape=shape, out_shape=(o, ho, wo), stride=stride, padding=pad,
    )  # fmt: skip
    _restore_quant(node, md)
    return node


def _import_bias(key: str, n: Any, md: dict, o: int, what: str) -> np.ndarray | None:
    """The bias, or ``None`` when snncost's metadata says the layer had none and it is all zero."""
    if getattr(n, "bias", None) is None:
        return None
    bias = np.ascontiguousarray(np.asarray(n.bias, np.float32).reshape(-1))
    if bias.size != o:
        raise NIRConversionError(key, _type(n), f"bias has {bias.size} entries for {o} {what}")
    if md.get("bias") is False and not np.any(bias):
        return None
    return bias


def _import_linear(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, shape = _type(n), st.shape
    w = np.ascontiguousarray(np.asarray(n.weight, dtype=np.float32))
    if w.ndim != 2:
        raise NIRConversionError(key, t, f"weight has shape {w.shape} (need [out, in])")
    if len(shape) != 1 or shape[0] != w.shape[1]:
        raise NIRConversionError(
            key, t, f"weight expects {w.shape[1]} inputs, receives shape {shape} (flatten first)"
        )
    bias = _import_bias(key, n, md, int(w.shape[0]), "outputs") if isinstance(n, nir.Affine) else None
    scale = st.take_scale()
    node = LinearNode(
        st.name(key, n, md), weight=w * np.float32(scale) if scale != 1.0 else w, bias=bias,
        in_shape=shape, out_shape=(int(w.shape[0]),),
    )  # fmt: skip
    _restore_quant(node, md)
    return node


def _import_pool(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, shape = _type(n), st.shape
    k = _pair(key, n, n.kernel_size, "kernel_size")
    s = _pair(key, n, n.stride if n.stride is not None else n.kernel_size, "stride")
    p = _pair(key, n, n.padding if n.padding is not None else 0, "padding")
    if k[0] != k[1] or s != k or p != (0, 0):
        raise NIRConversionError(
            key, t, f"kernel {k}, stride {s}, padding {p} (need square, stride == kernel, no padding)"
        )
    if len(shape) != 3 or shape[1] < k[0] or shape[2] < k[0]:
        raise NIRConversionError(key, t, f"a {k[0]}x{k[0]} pool on an input of shape {shape}")
    c, h, wd = shape
    node = PoolNode(st.name(key, n, md), kind="avg", kernel=k[0], in_shape=shape,
                    out_shape=(c, h // k[0], wd // k[0]))  # fmt: skip
    if isinstance(n, nir.SumPool2d):  # sum = k*k * average: scale the next weights
        st.scale *= float(k[0] * k[1])
        st.scale_from = key
    return node


def _import_flatten(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, shape = _type(n), st.shape
    declared = n.input_type.get("input") if isinstance(n.input_type, dict) else None
    if declared is not None and int(np.prod(declared)) != int(np.prod(shape)):
        raise NIRConversionError(key, t, f"declares input shape {tuple(declared)}, receives {shape}")
    nd = len(shape)
    start = int(n.start_dim) + (nd if int(n.start_dim) < 0 else 0)
    end = int(n.end_dim) + (nd if int(n.end_dim) < 0 else 0)
    if not 0 <= start <= end < nd:
        raise NIRConversionError(key, t, f"start_dim={n.start_dim}, end_dim={n.end_dim} on shape {shape}")
    out = shape[:start] + (int(np.prod(shape[start : end + 1])),) + shape[end + 1 :]
    if len(out) != 1:
        raise NIRConversionError(
            key, t,
            f"start_dim={n.start_dim}, end_dim={n.end_dim} turn {shape} into {out}; snncost "
            "flattens the whole sample (NIR shapes have no batch axis: start_dim=0)",
        )  # fmt: skip
    return FlattenNode(st.name(key, n, md), in_shape=shape, out_shape=out)


def _import_neuron(key: str, n: Any, md: dict, st: _Import) -> Node:
    t, prev = _type(n), st.nodes[-1]
    if st.scale != 1.0:
        raise NIRConversionError(
            st.scale_from, "SumPool2d", "is not followed by a weight layer to fold its scale into"
        )
    if not isinstance(prev, WeightNode):
        raise NIRConversionError(
            key, t, f"follows {prev.name!r} ({prev.type_name}); a spiking layer must follow a weight layer"
        )
    leak, theta = _neuron(key, n, st.shape, st.dt)
    return LIFNode(st.name(key, n, md), leak=_snap(leak, md, "leak"),
                   threshold=_snap(theta, md, "threshold"), shape=st.shape)  # fmt: skip


def _nir_rules() -> RuleTable:
    """NIR node type -> importer: the NIR side of snncost's one mapping table (:mod:`snncost.graph.mapping`)."""
    table = RuleTable("NIR node")
    for cls, build, text in (
        (nir.Output, _import_output, "output (mean over T), after a Linear/Affine"),
        (nir.Conv2d, _import_conv, "conv"),
        (nir.Linear, _import_linear, "linear"),
        (nir.Affine, _import_linear, "linear with bias"),
        (nir.AvgPool2d, _import_pool, "pool avg"),
        (nir.SumPool2d, _import_pool, "pool avg, k*k folded into the next weights"),
        (nir.Flatten, _import_flatten, "flatten"),
        (nir.LIF, _import_neuron, "lif, leak = 1 - dt/tau"),
        (nir.IF, _import_neuron, "lif, leak 1"),
        (nir.CubaLIF, _import_neuron, "lif (tau_syn == dt only)"),
        (nir.Threshold, _import_neuron, "lif, leak 0"),
    ):
        table.register(cls, Rule("node", build, maps_to=text))
    return table


#: NIR node types snncost imports, and how.
NIR_NODES = _nir_rules()


def from_nir(
    source: nir.NIRGraph | str | Path,
    timesteps: int | None = None,
    encoding: str | None = None,
    *,
    dt: float | None = None,
    gain: float | None = None,
    name: str | None = None,
) -> LayerGraph:
    """Turn a NIR graph (or a NIR file) into a :class:`LayerGraph` snncost can replay.

    The graph must be a chain ``Input -> ... -> Output``; nodes map one by one
    (``Conv2d``, ``Linear``/``Affine``, ``AvgPool2d``/``SumPool2d``,
    ``Flatten``, ``LIF``/``IF``/``CubaLIF`` without synaptic memory/``Threshold``,
    ``Output`` after the last weight layer). ``timesteps``, ``encoding``
    (``"direct"``/``"poisson"``), ``dt`` and the Poisson ``gain`` default to
    what snncost stored in the metadata, then to ``"direct"``,
    :data:`DEFAULT_DT` and 1; ``timesteps`` must be given for graphs without
    it. Raises :class:`NIRConversionError` naming the node id and type of
    anything it cannot map, and ``ValueError`` for a non-chain graph.
    """
    if isinstance(source, (str, Path)):
        g = load_nir(source)
        default_name = Path(source).stem
    elif isinstance(source, nir.NIRGraph):
        g = source
        default_name = "nir"
    else:
        raise TypeError(
            f"expected a nir.NIRGraph or the path of a NIR file, got {type(source).__name__}"
        )
    gmd = _meta(g)
    order = _chain(g)
    inp_key = order[0]
    imd = _node_meta(gmd, inp_key, g.nodes[inp_key])

    dt = _check_dt(dt if dt is not None else gmd.get("dt", DEFAULT_DT))
    enc = encoding if encoding is not None else gmd.get("encoding", imd.get("encoding", "direct"))
    if enc not in ("direct", "poisson"):
        raise ValueError(f"encoding must be 'direct' or 'poisson', got {enc!r}")
    T = timesteps if timesteps is not None else gmd.get("timesteps", imd.get("timesteps"))
    if T is None:
        raise ValueError(
            "the NIR graph does not say how many timesteps to run (no snncost metadata): "
            "pass timesteps="
        )
    if int(T) != T or int(T) < 1:
        raise ValueError(f"timesteps must be a positive integer, got {T!r}")
    T = int(T)
    g_gain = gain if gain is not None else gmd.get("gain", imd.get("gain"))
    if enc == "poisson":
        g_gain = 1.0 if g_gain is None else float(g_gain)
        if not g_gain > 0:
            raise ValueError(f"Poisson gain must be > 0, got {g_gain}")
    else:
        g_gain = None

    inp = g.nodes[inp_key]
    in_type = inp.input_type.get("input") if isinstance(inp.input_type, dict) else None
    if in_type is None:
        raise NIRConversionError(inp_key, "Input", "has no shape")
    shape: Shape = tuple(int(s) for s in np.asarray(in_type).reshape(-1))
    if not shape or any(s < 1 for s in shape):
        raise NIRConversionError(inp_key, "Input", f"shape {shape} (need (C, H, W) or (F,))")
    st = _Import(dt=dt, shape=shape, nodes=[])
    st.nodes.append(InputNode(st.name(inp_key, inp, imd), shape=shape, encoding=enc, timesteps=T, gain=g_gain))
    for key in order[1:]:
        n = g.nodes[key]
        rule = NIR_NODES.lookup(n)
        if rule is None:
            raise NIRConversionError(key, _type(n), "no snncost mapping for this NIR node type")
        node = rule.build(key, n, _node_meta(gmd, key, n), st)
        st.nodes.append(node)
        st.shape = tuple(node.out_shape)
    if st.scale != 1.0:
        raise NIRConversionError(
            st.scale_from, "SumPool2d", "is not followed by a weight layer to fold its scale into"
        )
    label = name or gmd.get("name") or default_name
    return LayerGraph(st.nodes, name=str(label))


# ---------------------------------------------------------------------- torch form
def _safe(name: str, module: Any, taken: set[str]) -> str:
    base = name.replace(".", "_") or "node"
    out = base
    i = 0
    while out in taken or hasattr(module, out):
        i += 1
        out = f"{base}_{i}"
    taken.add(out)
    return out


class _NotNestable(Exception):
    pass


def _nest(items: list[tuple[str, Any]]):
    """A SpikingSequential whose module paths are the dotted names (``features.0`` ...)."""
    import snncost.nn as sn

    seq = sn.SpikingSequential()
    i = 0
    while i < len(items):
        head, _, rest = items[i][0].partition(".")
        if not head or head in seq._modules or hasattr(seq, head):
            raise _NotNestable
        if not rest:
            seq.add_module(head, items[i][1])
            i += 1
            continue
        group = []
        while i < len(items):
            h, _, r = items[i][0].partition(".")
            if h != head or not r:
                break
            group.append((r, items[i][1]))
            i += 1
        seq.add_module(head, _nest(group))
    return seq


def graph_to_module(graph: LayerGraph):
    """A :class:`~snncost.nn.SpikingSequential` computing ``graph`` (for :func:`snncost.evaluate`).

    The encoder, conv/linear (weights copied, ``weight_bits``/``weight_scale``
    attached when quantized), pooling, flatten, :class:`~snncost.nn.LIF`
    (fixed leak and threshold) and :class:`~snncost.nn.OutputIntegrator`
    layers; module paths are the node names where they form a valid nesting.
    :func:`~snncost.graph.build_graph` on the result gives back ``graph``.
    """
    import torch
    from torch import nn

    import snncost.nn as sn

    if not graph.is_chain():
        raise ValueError("graph_to_module needs a chain graph")
    items: list[tuple[str, nn.Module]] = []
    for node in graph:
        if isinstance(node, InputNode):
            if node.encoding == "direct":
                m: nn.Module = sn.DirectEncoder(node.timesteps)
            elif node.encoding == "poisson":
                m = sn.PoissonEncoder(node.timesteps, gain=node.gain or 1.0)
            else:
                raise _export_error(node, f"input encoding {node.encoding!r} is not spiking")
        elif isinstance(node, ConvNode):
            o, c, kh, kw = node.weight.shape
            m = nn.Conv2d(
                c, o, (kh, kw), stride=node.stride, padding=node.padding, bias=node.bias is not None
            )
        elif isinstance(node, LinearNode):
            m = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=node.bias is not None)
        elif isinstance(node, PoolNode):
            m = nn.AvgPool2d(node.kernel) if node.kind == "avg" else nn.MaxPool2d(node.kernel)
        elif isinstance(node, FlattenNode):
            m = nn.Flatten()
        elif isinstance(node, LIFNode):
            if node.threshold < sn.LIF.min_threshold:
                raise _export_error(
                    node,
                    f"threshold {node.threshold:.6g} below snncost's minimum {sn.LIF.min_threshold}",
                )
            m = sn.LIF(
                threshold=node.threshold, leak=node.leak, learn_threshold=False, learn_leak=False
            )
        elif isinstance(node, OutputNode):
            if node.reduce != "mean":
                raise _export_error(node, "an ANN read-out")
            m = sn.OutputIntegrator()
        else:
            raise _export_error(node, "no torch module for this node type")
        if isinstance(node, WeightNode):
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(_effective_weight(node)))
                if node.bias is not None:
                    m.bias.copy_(torch.from_numpy(np.ascontiguousarray(node.bias, np.float32)))
            if node.number_format == "int":
                # the attributes build_graph reads back (snncost.nn.quant's interface)
                m.weight_bits = int(node.weight_bits)
                if node.weight_scale is not None:
                    m.weight_codes = torch.from_numpy(np.ascontiguousarray(node.weight, np.float32))
                    m.weight_scale = torch.from_numpy(
                        np.ascontiguousarray(np.asarray(node.weight_scale, np.float32).reshape(-1))
                    )
                else:  # float weights priced at weight_bits: build_graph needs a scale to see them
                    m.weight_scale = torch.tensor(1.0)
        items.append((node.name, m))
    try:
        model = _nest(items)
    except (_NotNestable, KeyError, TypeError):
        model = sn.SpikingSequential()
        taken: set[str] = set()
        for nm, m in items:
            model.add_module(_safe(nm, model, taken), m)
    model.input_shape = tuple(graph.input.shape)
    model.nir_graph_name = graph.name
    return model.eval()


def module_from_nir(
    source: nir.NIRGraph | str | Path, timesteps: int | None = None
) -> tuple[Any, str]:
    """``(torch SNN, name)`` for a NIR graph or file: :func:`from_nir` then :func:`graph_to_module`."""
    graph = from_nir(source, timesteps=timesteps)
    return graph_to_module(graph), graph.name


__all__ = [
    "DEFAULT_DT",
    "NIRConversionError",
    "NIR_NODES",
    "NIR_SUFFIXES",
    "from_nir",
    "graph_to_module",
    "is_nir_path",
    "load_nir",
    "module_from_nir",
    "save_nir",
    "to_nir",
]
