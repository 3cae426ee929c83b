"""Typed layer specs: the nodes of a :class:`~snncost.graph.LayerGraph`.

Each node is a small dataclass holding what the simulator and the cost
model need (shapes per sample, weights as numpy, LIF constants), in the
spirit of NIR's node types. Shapes never include the batch or time axes:
``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

from collections.abc import Callable
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
        """Multiply-accumulates of one dense pass counting every kernel tap, padding included
        (what a dense array that multiplies padded zeros performs)."""
        raise NotImplementedError

    @property
    def real_macs(self) -> int:
        """Multiply-accumulates of one dense pass on real inputs only (border-exact: taps
        that land in the padding are not counted, exactly as the replay counts ACs)."""
        return int(self.out_features * self.valid_taps().sum())

    @property
    def nonzero_weight_macs(self) -> int:
        """:attr:`real_macs` whose weight is nonzero (a weight-sparse datapath skips the rest)."""

        def count() -> int:
            nz = (np.asarray(self.weight) != 0).reshape(self.weight.shape[0], -1)
            return int((nz * self.valid_taps().reshape(1, -1)).sum())

        return self._weight_stat("nonzero_weight_macs", count)

    @property
    def zero_weights(self) -> int:
        """How many weights are exactly zero."""
        return self._weight_stat("zero_weights", lambda: int((np.asarray(self.weight) == 0).sum()))

    def _weight_stat(self, key: str, compute: Callable[[], int]) -> int:
        """``compute()``, remembered while ``weight`` is the same array object (a graph's
        arrays are its own copies: :func:`snncost.graph.mapping.to_numpy`)."""
        memo = self.__dict__.setdefault("_weight_stats", {})
        hit = memo.get(key)
        if hit is None or hit[0] is not self.weight:
            hit = memo[key] = (self.weight, compute())
        return hit[1]

    def valid_taps(self) -> np.ndarray:
        """Per input-side tap ``(c, ky, kx)`` (flattened), how many output positions it
        reaches inside the real input; a linear layer's taps each reach one output."""
        return np.ones(int(np.prod(self.weight.shape[1:])), np.int64)


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

    def valid_taps(self) -> np.ndarray:
        _, c, kh, kw = self.weight.shape
        _, h, w = self.in_shape
        _, ho, wo = self.out_shape
        rows = _axis_taps(kh, ho, h, self.stride[0], self.padding[0])
        cols = _axis_taps(kw, wo, w, self.stride[1], self.padding[1])
        per_tap = np.outer(rows, cols).reshape(1, kh, kw)
        return np.broadcast_to(per_tap, (c, kh, kw)).reshape(-1).astype(np.int64)

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
    """Average or max pooling with ``kernel == stride`` and no padding.

    A global average pool is the one whose kernel is the whole (square) map:
    :meth:`global_average`.
    """

    kind: Literal["avg", "max"] = "avg"
    kernel: int = 2
    in_shape: Shape = ()
    out_shape: Shape = ()  # type: ignore[assignment]
    type_name: ClassVar[str] = "pool"

    @classmethod
    def global_average(cls, name: str, in_shape: Shape) -> PoolNode:
        """Average over the whole ``(C, H, W)`` map (``kernel = H = W``), giving ``(C, 1, 1)``."""
        if len(in_shape) != 3 or in_shape[1] != in_shape[2]:
            raise ValueError(
                f"{name}: a global average pool is a PoolNode with kernel = H = W; the map {tuple(in_shape)} "
                "is not square (kernel == stride pooling cannot cover it)"
            )
        c, h, _ = in_shape
        return cls(name, kind="avg", kernel=int(h), in_shape=tuple(in_shape), out_shape=(c, 1, 1))

    def describe(self) -> str:
        return f"{self.kind} {self.kernel}x{self.kernel}"


@dataclass
class FlattenNode(Node):
    """``(C, H, W) -> (C*H*W,)`` in row-major order."""

    in_shape: Shape = ()
    out_shape: Shape = ()  # type: ignore[assignment]
    type_name: ClassVar[str] = "flatten"


Charge = Literal["leak", "decay-input", "no-decay-input", "plif-decay-input", "plif-no-decay-input"]
Reset = Literal["soft", "hard"]


@dataclass
class LIFNode(Node):
    """Spiking layer; one step is charge, fire, reset, all in float32, left to right.

    Charge (``u``: membrane after the last reset, ``I``: input current,
    ``vr``: ``reset_value`` for a hard reset, ``0.0`` for a soft one):

    ======================= ======================================  ==========================
    ``charge``              ``h =``                                 as in
    ======================= ======================================  ==========================
    ``leak``                ``leak * u + I``                        snncost's LIF (IF: leak 1)
    ``decay-input``         ``u + (I - (u - vr)) / tau``            SpikingJelly LIFNode
    ``no-decay-input``      ``u - (u - vr) / tau + I``              LIFNode(decay_input=False)
    ``plif-decay-input``    ``u + (I - (u - vr)) * decay``          ParametricLIFNode
    ``plif-no-decay-input`` ``u - (u - vr) * decay + I``            (``decay = sigmoid(w)``)
    ======================= ======================================  ==========================

    Fire: ``s = h >= threshold``. Reset: ``soft``: ``u = h - s * threshold``;
    ``hard``: ``u = reset_value`` where ``s`` else ``h``. The membrane starts
    at ``reset_value`` for a hard reset and at 0 for a soft one. The defaults
    are snncost's own LIF.
    """

    leak: float = 1.0
    threshold: float = 1.0
    shape: Shape = ()
    charge: Charge = "leak"
    tau: float = 1.0
    decay: float = 1.0
    reset: Reset = "soft"
    reset_value: float = 0.0
    type_name: ClassVar[str] = "lif"

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def charge_constant(self) -> float:
        """The charge rule's constant: ``leak``, ``tau`` or ``decay`` (what :mod:`snncost.nn` calls ``p``)."""
        fields = {
            "leak": self.leak,
            "decay-input": self.tau,
            "no-decay-input": self.tau,
            "plif-decay-input": self.decay,
            "plif-no-decay-input": self.decay,
        }
        if self.charge not in fields:
            raise ValueError(f"{self.name}: unknown charge {self.charge!r}; choose one of {', '.join(fields)}")
        return float(fields[self.charge])

    def describe(self) -> str:
        rules = {
            "leak": f"leak={self.leak:.4g}",
            "decay-input": f"tau={self.tau:.4g} decay_input",
            "no-decay-input": f"tau={self.tau:.4g}",
            "plif-decay-input": f"plif decay={self.decay:.4g} decay_input",
            "plif-no-decay-input": f"plif decay={self.decay:.4g}",
        }
        text = f"{rules[self.charge]} theta={self.threshold:.4g}"
        return text + (f" hard reset to {self.reset_value:g}" if self.reset == "hard" else "")


MergeOp = Literal["add", "and", "iand", "concat"]


@dataclass
class MergeNode(Node):
    """Where branches join: ``op`` applied to ``inputs`` (node names, in this order).

    ``add``: element-wise sum (spikes + spikes gives spike counts, a SEW-ResNet
    ADD; anything + a current gives a current, a membrane/pre-activation
    shortcut); ``and``: ``inputs[0] AND inputs[1]`` on spikes; ``iand``:
    ``(NOT inputs[0]) AND inputs[1]`` (SEW-ResNet's IAND, ``inputs[0]`` the
    residual branch); ``concat``: along channels, in ``inputs`` order. The
    order is stored here because graph edges do not keep it.
    """

    op: MergeOp = "add"
    inputs: tuple[str, ...] = ()
    shape: Shape = ()
    type_name: ClassVar[str] = "merge"

    @property
    def out_shape(self) -> Shape:
        return self.shape

    def describe(self) -> str:
        return f"{self.op}({', '.join(self.inputs)})"


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


def _axis_taps(k: int, n_out: int, n_in: int, stride: int, pad: int) -> np.ndarray:
    """For each kernel offset along one axis, the output positions whose tap is a real input."""
    pos = np.arange(n_out)[None, :] * stride - pad + np.arange(k)[:, None]
    return ((pos >= 0) & (pos < n_in)).sum(axis=1)


WeightNode = _WeightNode

__all__ = [
    "ConvNode",
    "FlattenNode",
    "InputNode",
    "LIFNode",
    "LinearNode",
    "MergeNode",
    "Node",
    "OutputNode",
    "PoolNode",
    "ReLUNode",
    "Shape",
    "WeightNode",
]
