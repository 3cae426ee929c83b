"""Typed layer specs: the nodes of a :class:`~snncost.graph.LayerGraph`.

Each node is a small dataclass holding what the simulator and the cost
model need (shapes per sample, weights as numpy, LIF constants), in the
spirit of NIR's node types. Shapes never include the batch or time axes:
``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

Shape = tuple[int, ...]


@dataclass
class Node:
    """Base class: every node has a unique ``name`` (the module path)."""

    name: str
    type_name: ClassVar[str] = "node"

    @property
    def out_shape(self) -> Shape:  # overridden by dataclass fields where stored
        raise NotImplementedError

    @property
    def params(self) -> int:
        return 0

    def describe(self) -> str:
        """Short extra text for summaries and drawings."""
        return ""


@dataclass
class InputNode(Node):
    """The network input: ``encoding`` is ``direct``/``poisson`` (SNN) or ``analog`` (ANN)."""

    shape: Shape = ()
    encoding: Literal["direct", "poisson", "analog"] = "direct"
    timesteps: int = 1
    gain: float | None = None  # Poisson gain
    type_name: ClassVar[str] = "input"

    @property
    def out_shape(self) -> Shape:
        return self.shape

    def describe(self) -> str:
        text = f"{self.encoding}, T={self.timesteps}"
        return text + (f", gain={self.gain:g}" if self.gain is not None else "")


@dataclass
class _WeightNode(Node):
    """A conv or linear layer.

    Float layers: ``weight`` holds the float weights and ``weight_scale`` is
    ``None``. Quantized layers (``number_format="int"``, e.g.
    :class:`snncost.nn.QuantConv2d`): ``weight`` holds the integer codes (as
    float32 integer values) and ``weight_scale`` the float32 scale per
    output channel (``[O]``); the layer computes
    ``(sum of inputs x codes) * weight_scale[o] + bias[o]`` and the simulator
    replays it in that order. :attr:`effective_weight` is ``codes * scale``
    in both cases (what an exporter wants).
    """

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    in_shape: Shape = ()
    out_shape: Shape = ()  # type: ignore[assignment]
    weight_bits: int = 32
    weight_scale: float | np.ndarray | None = field(default=None, repr=False)
    number_format: Literal["float", "int"] = "float"

    @property
    def effective_weight(self) -> np.ndarray:
        """The float weights the layer applies: ``weight * weight_scale`` (per output channel)."""
        if self.weight_scale is None:
            return self.weight
        scale = np.asarray(self.weight_scale, np.float32)
        if scale.size != 1:
            scale = scale.reshape(-1, *([1] * (self.weight.ndim - 1)))
        return (self.weight * scale).astype(np.float32)

    @property
    def params(self) -> int:
        return int(self.weight.size + (0 if self.bias is None else self.bias.size))

    @property
    def weight_count(self) -> int:
        return int(self.weight.size)

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dense_macs(self) -> int:
        """Multiply-accumulates of one dense pass (one sample, one step)."""
        raise NotImplementedError


@dataclass
class ConvNode(_WeightNode):
    """2-D convolution (``groups=1``, ``dilation=1``, zero padding); ``weight`` is ``[O, C, kh, kw]``."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    type_name: ClassVar[str] = "conv"

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def dense_macs(self) -> int:
        o, c, kh, kw = self.weight.shape
        return int(o * self.out_shape[1] * self.out_shape[2] * c * kh * kw)

    def describe(self) -> str:
        kh, kw = self.kernel_size
        text = f"k={kh}x{kw} s={self.stride[0]} p={self.padding[0]}"
        if self.number_format == "int":
            text += f" int{self.weight_bits}"
        return text + ("" if self.bias is None else " +b")


@dataclass
class LinearNode(_WeightNode):
    """Fully connected layer; ``weight`` is ``[out, in]``."""

    type_name: ClassVar[str] = "linear"

    @property
    def dense_macs(self) -> int:
        return int(self.weight.size)

    def describe(self) -> str:
        text = f"int{self.weight_bits}" if self.number_format == "int" else ""
        return text + ("" if self.bias is None else " +b")


@dataclass
class PoolNode(Node):
    """Average or max pooling with ``kernel == stride`` and no padding."""

    kind: Literal["avg", "max"] = "avg"
    kernel: int = 2
    in_shape: Shape = ()
    out_shape: Shape = ()  # type: ignore[assignment]
    type_name: ClassVar[str] = "pool"

    def describe(self) -> str:
        return f"{self.kind} {self.kernel}x{self.kernel}"


@dataclass
class FlattenNode(Node):
    """``(C, H, W) -> (C*H*W,)`` in row-major order."""

    in_shape: Shape = ()
    out_shape: Shape = ()  # type: ignore[assignment]
    type_name: ClassVar[str] = "flatten"


@dataclass
class LIFNode(Node):
    """Spiking layer: ``h = leak*u + I; s = h >= threshold; u = h - s*threshold``."""

    leak: float = 1.0
    threshold: float = 1.0
    shape: Shape = ()
    type_name: ClassVar[str] = "lif"

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    def describe(self) -> str:
        return f"leak={self.leak:.4g} theta={self.threshold:.4g}"


@dataclass
class ReLUNode(Node):
    """ANN activation."""

    shape: Shape = ()
    type_name: ClassVar[str] = "relu"

    @property
    def out_shape(self) -> Shape:
        return self.shape


@dataclass
class OutputNode(Node):
    """Read-out: ``reduce="mean"`` averages the input current over T (SNN); ``"none"`` (ANN)."""

    shape: Shape = ()
    reduce: Literal["mean", "none"] = "mean"
    type_name: ClassVar[str] = "output"

    @property
    def out_shape(self) -> Shape:
        return self.shape

    def describe(self) -> str:
        return "mean over T" if self.reduce == "mean" else ""


WeightNode = _WeightNode

__all__ = [
    "ConvNode",
    "FlattenNode",
    "InputNode",
    "LIFNode",
    "LinearNode",
    "Node",
    "OutputNode",
    "PoolNode",
    "ReLUNode",
    "Shape",
    "WeightNode",
]
