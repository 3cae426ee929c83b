"""LayerGraph: a torch model as a networkx DiGraph of typed layer specs."""

from snncost.graph.build import UnsupportedModuleError, build_graph
from snncost.graph.layergraph import LayerGraph
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
    LinearNode,
    MergeNode,
    Node,
    OutputNode,
    PoolNode,
    ReLUNode,
    WeightNode,
)
from snncost.graph.trace import graph_of, trace_graph

__all__ = [
    "ConvNode",
    "FlattenNode",
    "InputNode",
    "LIFNode",
    "LayerGraph",
    "LinearNode",
    "MergeNode",
    "Node",
    "OutputNode",
    "PoolNode",
    "ReLUNode",
    "UnsupportedModuleError",
    "WeightNode",
    "build_graph",
    "graph_of",
    "trace_graph",
]
