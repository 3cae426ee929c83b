"""The :class:`LayerGraph`: a networkx DiGraph of typed layer specs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import networkx as nx
import numpy as np

from snncost.graph.nodes import (
    InputNode,
    LIFNode,
    Node,
    OutputNode,
    WeightNode,
)


class LayerGraph:
    """A feed-forward network as a ``networkx.DiGraph`` whose nodes carry layer specs.

    Node keys are the module paths (``features.0``); each node's attribute
    ``spec`` is a :mod:`snncost.graph.nodes` dataclass. Edges are data flow.
    Iterating yields the specs in forward (topological) order.
    ``skipped`` lists ``(name, type)`` of modules that are identities at
    inference (dropout) and so have no node.
    """

    def __init__(
        self,
        nodes: list[Node],
        edges: list[tuple[str, str]] | None = None,
        skipped: list[tuple[str, str]] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self.skipped = list(skipped or [])
        g = nx.DiGraph()
        for node in nodes:
            if node.name in g:
                raise ValueError(f"duplicate node name {node.name!r}")
            g.add_node(node.name, spec=node)
        if edges is None:
            edges = [(a.name, b.name) for a, b in zip(nodes, nodes[1:], strict=False)]
        for a, b in edges:
            if a not in g or b not in g:
                raise ValueError(f"edge {a!r} -> {b!r} names an unknown node")
            g.add_edge(a, b)
        if not nx.is_directed_acyclic_graph(g):
            raise ValueError("a LayerGraph must be acyclic")
        self.nx = g
        # keep the insertion order where it is a valid topological order
        order = [n.name for n in nodes]
        pos = {n: i for i, n in enumerate(order)}
        if any(pos[a] > pos[b] for a, b in g.edges):
            order = list(nx.topological_sort(g))
        self._order = order

    def same_as(self, other: LayerGraph) -> bool:
        """True when ``other`` describes the same network: name, skipped modules, edges, and
        node by node the same type and field values (arrays equal in dtype, shape and every
        element). What :func:`~snncost.graph.graph_of` checks before reusing a graph."""
        if (self.name, self.skipped, self._order, sorted(self.nx.edges)) != (
            other.name, other.skipped, other._order, sorted(other.nx.edges)
        ):  # fmt: skip
            return False
        return all(_same_node(a, b) for a, b in zip(self, other, strict=True))

    # -- access ---------------------------------------------------------------
    def __iter__(self) -> Iterator[Node]:
        return (self.nx.nodes[n]["spec"] for n in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, name: str) -> Node:
        return self.nx.nodes[name]["spec"]

    def __contains__(self, name: object) -> bool:
        return name in self.nx

    @property
    def nodes(self) -> list[Node]:
        return list(self)

    def successors(self, name: str) -> list[Node]:
        return [self[n] for n in self.nx.successors(name)]

    def predecessors(self, name: str) -> list[Node]:
        return [self[n] for n in self.nx.predecessors(name)]

    def is_chain(self) -> bool:
        g = self.nx
        return all(g.in_degree(n) <= 1 and g.out_degree(n) <= 1 for n in g) and nx.is_weakly_connected(g)

    @property
    def input(self) -> InputNode:
        for node in self:
            if isinstance(node, InputNode):
                return node
        raise ValueError("graph has no input node")

    @property
    def encoding(self) -> str:
        return self.input.encoding

    @property
    def timesteps(self) -> int:
        return self.input.timesteps

    @property
    def is_spiking(self) -> bool:
        return any(isinstance(n, LIFNode) for n in self)

    def weight_layers(self) -> list[WeightNode]:
        """Conv and linear nodes, in forward order."""
        return [n for n in self if isinstance(n, WeightNode)]

    def lif_layers(self) -> list[LIFNode]:
        return [n for n in self if isinstance(n, LIFNode)]

    @property
    def output(self) -> OutputNode | None:
        outs = [n for n in self if isinstance(n, OutputNode)]
        return outs[-1] if outs else None

    @property
    def params(self) -> int:
        return sum(n.params for n in self)

    # -- presentation -----------------------------------------------------------
    def summary(self) -> str:
        """A plain-text table: name, type, output shape, params, leak/threshold, notes."""
        header = ("name", "type", "out shape", "params", "leak", "threshold", "notes")
        rows = []
        for n in self:
            leak = thr = ""
            if isinstance(n, LIFNode):
                leak, thr = f"{n.leak:.4g}", f"{n.threshold:.4g}"
                note = ""
            else:
                note = n.describe()
            shape = "x".join(str(s) for s in n.out_shape) if n.out_shape else "-"
            rows.append((n.name, n.type_name, shape, f"{n.params:,}", leak, thr, note))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        right = {3}

        def fmt(row):
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            return "  ".join(cells).rstrip()

        lines = [fmt(header), "  ".join("-" * w for w in widths)]
        lines += [fmt(r) for r in rows]
        lines.append(f"total params: {self.params:,}")
        if self.skipped:
            lines.append("skipped at inference: " + ", ".join(f"{n} ({t})" for n, t in self.skipped))
        return "\n".join(lines)

    def __repr__(self) -> str:
        kinds = ", ".join(n.type_name for n in self)
        return f"LayerGraph({self.name or 'unnamed'}: {kinds})"

    def draw(self, path: str | Path, dpi: int = 100) -> Path:
        """Draw the graph (networkx layout, matplotlib) and save it as an image (PNG by suffix)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        g = self.nx
        if self.is_chain():
            pos = {name: (0.0, -float(i)) for i, name in enumerate(self._order)}
        else:
            for layer, gen in enumerate(nx.topological_generations(g)):
                for name in gen:
                    g.nodes[name]["_layer"] = layer
            pos = nx.multipartite_layout(g, subset_key="_layer", align="horizontal")
            pos = {k: (float(v[0]), float(v[1])) for k, v in pos.items()}
        colors = {
            "input": "#9ecae1",
            "conv": "#fdae6b",
            "linear": "#fd8d3c",
            "lif": "#a1d99b",
            "relu": "#c7e9c0",
            "pool": "#bcbddc",
            "flatten": "#d9d9d9",
            "output": "#fc9272",
        }
        labels = {}
        for n in self:
            shape = "x".join(str(s) for s in n.out_shape)
            labels[n.name] = f"{n.name} [{n.type_name}] {shape}"
        fig = Figure(figsize=(6, max(3.0, 0.55 * len(self))))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        node_colors = [colors.get(g.nodes[n]["spec"].type_name, "#ffffff") for n in g.nodes]
        nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=10)
        nx.draw_networkx_nodes(g, pos, ax=ax, node_color=node_colors, node_size=180)
        label_pos = {k: (x + 0.04, y) for k, (x, y) in pos.items()}
        nx.draw_networkx_labels(g, label_pos, labels=labels, ax=ax, font_size=8, horizontalalignment="left")
        xs = [p[0] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.1, max(xs) + 1.0)
        ax.set_title(self.name or "LayerGraph", fontsize=10)
        ax.axis("off")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        return path

    def weight_array(self, name: str) -> np.ndarray:
        node = self[name]
        if not isinstance(node, WeightNode):
            raise ValueError(f"{name} is a {node.type_name} node, not a weight layer")
        return node.weight


def _same_node(a: Node, b: Node) -> bool:
    if type(a) is not type(b):
        return False
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
                return False
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                return False
        else:
            try:
                if bool(x != y):
                    return False
            except (TypeError, ValueError):  # e.g. a list holding arrays: not provably equal
                return False
    return True
