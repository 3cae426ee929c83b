"""Uniform symmetric k-bit weight quantization (post-training and QAT).

The quantizer, per output channel ``o`` (or once per layer)::

    q_max    = 2^(k-1) - 1
    scale[o] = max |W[o, ...]| / q_max          (1 for an all-zero channel)
    codes    = clamp(round(W / scale), -q_max, q_max)      (integers)
    W_hat    = codes * scale                    (|W_hat - W| <= scale / 2)

The range is symmetric (``-2^(k-1)`` is never used), so zero is exact and
``codes`` fit in ``k`` bits as sign-magnitude or two's complement.

:class:`QuantConv2d` and :class:`QuantLinear` keep the float *master*
weight as their ``weight`` parameter (so ``state_dict`` keys and shapes are
those of ``nn.Conv2d``/``nn.Linear``, optimisers keep training it, and
quantization-aware training works) and quantize it in every forward pass::

    y = conv(x, codes) * scale[o] + bias[o]        (linear: x @ codes.T * scale + bias)

The integer accumulation comes first and the scale is applied after it,
once per output. That order is what makes the event-driven replay
(:func:`snncost.sim.simulate`) bit-exact: inside a spiking network ``x`` is
0/±1 spikes (or multiples of ``1/k^2`` after average pooling), so
``conv(x, codes)`` is a sum of small integers (or dyadic fractions) that
float32 represents exactly in any order of summation, as long as the
partial sums stay below ``2^24`` units of the finest fraction; the replay
then performs the very same two rounded float32 operations ``acc * scale``
and ``+ bias`` per neuron and step. ``conv(x, codes * scale)`` would be
mathematically equal but round every product, in an order PyTorch does not
specify, so it could not be replayed spike for spike.

Gradients: ``round`` uses the straight-through estimator (forward rounds and
clamps, backward is the identity) and ``scale`` is treated as a constant, so
``dL/dW`` is exactly the gradient a float layer would give and ``dL/dx`` is
the one of the dequantized weights ``W_hat``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "QuantConv2d",
    "QuantLinear",
    "apply_quantization",
    "dequantize_model",
    "model_quantization",
    "quantize_model",
    "quantize_tensor",
]

MIN_BITS, MAX_BITS = 2, 16
FLOAT_BITS = 32


def check_bits(bits: int) -> int:
    """``bits`` as an int in ``2..16``; raises ``ValueError`` otherwise."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"weight bits must be an integer in {MIN_BITS}..{MAX_BITS} "
            f"(or None/{FLOAT_BITS} for float weights), got {bits!r}"
        )
    return int(bits)


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _scale(w: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    """``max|w| / q_max`` per output channel (``[O]``) or per layer (0-d); 1 where ``max|w| = 0``."""
    w = w.detach()
    amax = w.abs().reshape(w.shape[0], -1).amax(dim=1) if per_channel else w.abs().amax()
    scale = amax / _qmax(bits)
    return torch.where(amax > 0, scale, torch.ones_like(scale))


def _broadcast(scale: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return scale.reshape(-1, *([1] * (w.dim() - 1))) if scale.dim() else scale


def _round_clamped(q: torch.Tensor, qmax: int) -> torch.Tensor:
    return torch.round(q).clamp_(-qmax, qmax)


def quantize_tensor(
    w: torch.Tensor, bits: int, per_channel: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``w`` (``[O, ...]``) to symmetric ``bits``-bit integer codes.

    Returns ``(codes, scale)``: ``codes`` an ``int32`` tensor shaped like
    ``w`` with values in ``[-(2^(bits-1)-1), 2^(bits-1)-1]``; ``scale`` a
    float tensor, ``[O]`` per output channel (dimension 0) when
    ``per_channel`` else 0-d, equal to ``max|w| / (2^(bits-1)-1)`` (1 for an
    all-zero channel). ``codes * scale`` (broadcast over dimension 0)
    reconstructs ``w`` to within ``scale / 2``. No gradient flows.
    """
    bits = check_bits(bits)
    w = torch.as_tensor(w).detach()
    if not w.is_floating_point():
        w = w.to(torch.float32)
    if w.dim() == 0:
        raise ValueError(
            "quantize_tensor needs a weight tensor with an output dimension, got a scalar"
        )
    if per_channel and w.shape[0] == 0:
        raise ValueError("quantize_tensor: the weight has no output channels")
    scale = _scale(w, bits, per_channel)
    codes = _round_clamped(w / _broadcast(scale, w), _qmax(bits))
    return codes.to(torch.int32), scale


class _RoundSTE(torch.autograd.Function):
    """``clamp(round(q))`` in the forward pass, identity gradient in the backward pass.

    The forward value is exactly the rounded integer (no ``q + (r - q).detach()``
    trick, which can be off by one ulp), so the codes the layer multiplies
    by are the codes the replay reads.
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, qmax: int) -> torch.Tensor:  # type: ignore[override]
        return _round_clamped(q, qmax)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


class _QuantMixin:
    """Shared state and helpers of :class:`QuantConv2d` and :class:`QuantLinear`."""

    weight: nn.Parameter
    weight_bits: int
    per_channel: bool

    def _init_quant(self, weight_bits: int, per_channel: bool) -> None:
        self.weight_bits = check_bits(weight_bits)
        self.per_channel = bool(per_channel)

    @property
    def weight_scale(self) -> torch.Tensor:
        """Scale of the current weight: ``[O]`` per channel, else 0-d (detached)."""
        return _scale(self.weight, self.weight_bits, self.per_channel)

    @property
    def weight_codes(self) -> torch.Tensor:
        """Integer codes (``int32``, shaped like ``weight``) of the current weight."""
        return quantize_tensor(self.weight, self.weight_bits, self.per_channel)[0]

    def dequantized_weight(self) -> torch.Tensor:
        """``codes * scale``: the float weight the layer effectively applies (detached)."""
        codes, scale = quantize_tensor(self.weight, self.weight_bits, self.per_channel)
        return codes.to(self.weight.dtype) * _broadcast(scale, self.weight)

    def _codes_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Float codes with a straight-through gradient to ``weight``, and the (constant) scale."""
        w = self.weight
        scale = _scale(w, self.weight_bits, self.per_channel)
        codes = _RoundSTE.apply(w / _broadcast(scale, w), _qmax(self.weight_bits))
        return codes, scale

    def _quant_repr(self) -> str:
        return f", weight_bits={self.weight_bits}, per_channel={self.per_channel}"


class QuantConv2d(_QuantMixin, nn.Conv2d):
    """``nn.Conv2d`` with symmetric ``weight_bits``-bit weights (float master weight kept).

    ``forward(x) = conv2d(x, codes) * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)``
    with ``codes, scale`` from :func:`quantize_tensor` of the current
    ``weight`` (straight-through rounding): integer accumulation first, the
    scale after, which is what the simulator replays bit for bit (see the
    module docstring). Same constructor as ``nn.Conv2d`` plus
    ``weight_bits`` and ``per_channel``.
    """

    def __init__(self, *args, weight_bits: int = 8, per_channel: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(weight_bits, per_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        codes, scale = self._codes_and_scale()
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        else:
            padding = self.padding
        y = F.conv2d(x, codes, None, self.stride, padding, self.dilation, self.groups)
        y = y * (scale.view(1, -1, 1, 1) if scale.dim() else scale)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()


class QuantLinear(_QuantMixin, nn.Linear):
    """``nn.Linear`` with symmetric ``weight_bits``-bit weights (float master weight kept).

    ``forward(x) = linear(x, codes) * scale + bias`` (``scale`` per output
    feature or per layer): integer accumulation first, then the scale, as in
    :class:`QuantConv2d`.
    """

    def __init__(self, *args, weight_bits: int = 8, per_channel: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(weight_bits, per_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        codes, scale = self._codes_and_scale()
        y = F.linear(x, codes) * scale
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()


_QUANT_TYPES = (QuantConv2d, QuantLinear)


def _float_bits(bits: int | None) -> bool:
    return bits is None or (
        not isinstance(bits, bool) and isinstance(bits, int) and bits == FLOAT_BITS
    )


def _swap(module: nn.Module, bits: int | None, per_channel: bool) -> nn.Module:
    """The replacement of one conv/linear module (sharing its parameters), or the module itself."""
    if isinstance(module, _QUANT_TYPES):
        if bits is not None:
            module.weight_bits, module.per_channel = bits, bool(per_channel)
            return module
        base = nn.Conv2d if isinstance(module, QuantConv2d) else nn.Linear
    elif bits is None:
        return module
    else:
        base = QuantConv2d if type(module) is nn.Conv2d else QuantLinear
    w = module.weight
    factory = {"device": "meta", "dtype": w.dtype}
    quant = {"weight_bits": bits, "per_channel": per_channel} if bits is not None else {}
    if isinstance(module, nn.Conv2d):
        new = base(
            module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
            padding=module.padding, dilation=module.dilation, groups=module.groups,
            bias=module.bias is not None, padding_mode=module.padding_mode, **factory, **quant,
        )  # fmt: skip
    else:
        new = base(
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            **factory,
            **quant,
        )
    # share the Parameter objects: no copy, optimisers and state_dict keys stay valid
    new.weight = module.weight
    new.bias = module.bias
    new.train(module.training)
    return new


def _swappable(module: nn.Module) -> bool:
    return isinstance(module, _QUANT_TYPES) or type(module) in (nn.Conv2d, nn.Linear)


def _convert(model: nn.Module, bits: int | None, per_channel: bool) -> nn.Module:
    if _swappable(model):
        return _swap(model, bits, per_channel)
    targets: list[tuple[nn.Module, str]] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in parent.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if _swappable(child):
                targets.append((parent, name))
            elif isinstance(child, (nn.Conv2d, nn.Linear)):
                if bits is not None:  # checked before anything is swapped
                    base = "nn.Conv2d" if isinstance(child, nn.Conv2d) else "nn.Linear"
                    raise TypeError(
                        f"cannot quantize {path!r}: {type(child).__name__} is a subclass of "
                        f"{base} with its own forward; quantize_model swaps plain "
                        "nn.Conv2d/nn.Linear only"
                    )
            else:
                visit(child, path)

    visit(model, "")
    for parent, name in targets:
        child = getattr(parent, name)
        new = _swap(child, bits, per_channel)
        if new is not child:
            setattr(parent, name, new)
    return model


def quantize_model(model: nn.Module, bits: int | None, per_channel: bool = True) -> nn.Module:
    """Quantize every ``nn.Conv2d``/``nn.Linear`` of ``model`` to ``bits``-bit weights, in place.

    Each layer is replaced at its module path by a :class:`QuantConv2d` /
    :class:`QuantLinear` that shares the original ``weight``/``bias``
    parameters (no copy), so ``state_dict`` keys and shapes are unchanged
    and an optimiser built before the call keeps training them (QAT).
    Already-quantized layers get the new ``bits``/``per_channel``.
    ``bits=None`` or ``32`` means float weights: it undoes a quantization
    (:func:`dequantize_model`). ``bits`` must be an integer in ``2..16``.
    Returns ``model`` (or the replacement, if ``model`` itself is a conv/linear).
    Raises ``TypeError`` for a conv/linear subclass it cannot swap safely.
    """
    if _float_bits(bits):
        return _convert(model, None, per_channel)
    return _convert(model, check_bits(bits), per_channel)


def dequantize_model(model: nn.Module) -> nn.Module:
    """Turn every quantized layer back into a plain ``nn.Conv2d``/``nn.Linear`` (float weights)."""
    return _convert(model, None, True)


def model_quantization(model: nn.Module) -> dict | None:
    """How ``model`` is quantized: ``{"bits": k, "per_channel": bool}``, or ``None`` if float.

    When its layers differ (mixed widths, or some layers left float) the dict
    also has ``"layers"``: module path -> ``{"bits", "per_channel"}`` or
    ``None`` (float), and ``bits``/``per_channel`` are those of the first
    quantized layer. :func:`apply_quantization` restores either form.
    """
    layers: dict[str, dict | None] = {}
    for path, m in model.named_modules():
        if isinstance(m, _QUANT_TYPES):
            layers[path] = {"bits": int(m.weight_bits), "per_channel": bool(m.per_channel)}
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            layers[path] = None
    quantized = [v for v in layers.values() if v is not None]
    if not quantized:
        return None
    record: dict = dict(quantized[0])
    if any(v != quantized[0] for v in layers.values()):
        record["layers"] = layers
    return record


def apply_quantization(model: nn.Module, record: dict | None) -> nn.Module:
    """Re-apply a :func:`model_quantization` record to a freshly built float ``model``, in place."""
    if not record:
        return model
    if not isinstance(record, dict) or "bits" not in record:
        raise ValueError(f"not a quantization record (needs 'bits'): {record!r}")
    layers = record.get("layers")
    if layers is None:
        return quantize_model(model, record["bits"], record.get("per_channel", True))
    if not isinstance(layers, dict):
        raise ValueError(
            f"quantization record: 'layers' must be a dict, got {type(layers).__name__}"
        )
    modules = dict(model.named_modules())
    unknown = [p for p in layers if p not in modules]
    if unknown:
        raise ValueError(f"quantization record names layers this model lacks: {unknown[:3]}")
    for path, q in layers.items():
        if q is None:
            continue
        if not isinstance(q, dict) or "bits" not in q:
            raise ValueError(f"quantization record for {path!r} needs 'bits', got {q!r}")
        if not path:
            raise ValueError("a per-layer quantization record cannot name the root module")
        parent_path, _, name = path.rpartition(".")
        parent = modules[parent_path]
        setattr(parent, name, quantize_model(modules[path], q["bits"], q.get("per_channel", True)))
    return model
