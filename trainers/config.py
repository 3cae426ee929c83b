"""Run configuration: typed, validated, with presets and ``key=value`` overrides.

A run is fully described by one :class:`RunConfig`. It is resolved as
``preset (or YAML file) <- overrides``, validated at once (unknown keys and
bad values fail with the dotted key and the allowed values), and written to
the run directory so a re-run can check it is resuming the same run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from snncost.models import ARCHS
from snncost.nn import SURROGATES
from snncost.paths import require_file
from snncost.yamlio import YAMLParseError, parse_yaml
from trainers.presets import PRESETS

#: a run name is one directory under runs_dir: no separators, no "..", no hidden or empty name
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,254}")

STAGES = ("ann", "convert", "snn", "spatial", "temporal", "quantize", "evaluate")
Stage = Literal["ann", "convert", "snn", "spatial", "temporal", "quantize", "evaluate"]


class ConfigError(ValueError):
    """A configuration problem; the message names the key, the value and the choices."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    name: Literal["digits", "synthetic", "fashion-mnist", "cifar10", "cifar100", "imagefolder"] = "digits"
    root: str | None = Field(None, description="data directory or archive; None = search the usual places")
    download: bool = False
    subset: int | None = Field(None, gt=0, description="train on this many images (stratified, drawn after the validation split)")
    test_subset: int | None = Field(None, gt=0)
    val_fraction: float = Field(
        0.1, gt=0, lt=1,
        description="validation split carved from the training set (stratified, seeded by seed; at least 1 per class): "
        "every choice of a run reads it, never the test split",
    )  # fmt: skip
    augment: bool = False
    batch_size: int = Field(64, gt=0)
    cache_dir: str = ".cache/snncost"


class ModelConfig(_Section):
    arch: str = "vgg-tiny"
    features: list[int | Literal["P"]] | None = Field(None, description="custom conv widths, 'P' = pool")
    classifier: list[int] | None = Field(None, description="custom hidden FC widths")
    widths: list[int] | None = Field(None, description="ResNets: [stem, stage 1, ..., stage n] widths (None = the arch's)")
    pool: Literal["avg", "max"] = "avg"
    bias: bool = False
    dropout: float = Field(0.2, ge=0.0, lt=1.0)

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, v: str) -> str:
        if v not in ARCHS and v != "custom":
            raise ValueError(f"unknown arch {v!r}; choose one of {', '.join([*ARCHS, 'custom'])}")
        return v


class OptimConfig(_Section):
    epochs: int = Field(10, ge=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "step", "none"] = "cosine"
    milestones: list[float] = Field([0.5, 0.75], description="step schedule: fractions of the epochs")
    gamma: float = Field(0.1, gt=0)


class ConvertConfig(_Section):
    percentile: float = Field(99.9, gt=0, le=100)
    batches: int = Field(4, gt=0, description="training batches used to set each threshold")
    timesteps: int | None = Field(None, gt=0, description="T for threshold balancing (default snn.timesteps)")


class SNNConfig(OptimConfig):
    epochs: int = Field(5, ge=0)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    timesteps: int = Field(25, gt=0)
    encoding: Literal["direct", "poisson"] = "direct"
    surrogate: str = "piecewise_linear"
    slope: float | None = Field(None, gt=0)
    leak: float = Field(1.0, ge=0, le=1)
    learn_leak: bool = True
    learn_threshold: bool = True
    detach_reset: bool = True

    @field_validator("surrogate")
    @classmethod
    def _known_surrogate(cls, v: str) -> str:
        if v not in SURROGATES:
            raise ValueError(f"unknown surrogate {v!r}; choose one of {', '.join(SURROGATES)}")
        return v


class SpatialConfig(_Section):
    threshold: float = Field(0.999, gt=0, le=1, description="cumulative explained variance kept per layer")
    overrides: dict[str, int | float] = Field({}, description="per-layer threshold (<=1) or fixed width (>1), by layer name")
    batches: int = Field(8, gt=0, description="training batches whose membrane potentials feed the PCA")
    init: Literal["scratch", "warm"] = Field(
        "scratch", description="scratch: train the narrow ANN, convert, BPTT (the paper); warm: keep the wide SNN's top channels"
    )
    epochs: int | None = Field(None, ge=0, description="SNN retraining epochs (default snn.epochs)")
    ann_epochs: int | None = Field(None, ge=0, description="init=scratch: ANN epochs (default ann.epochs)")


class TemporalConfig(_Section):
    schedule: list[int] = Field([25, 20, 15, 10, 5, 3, 2, 1], description="T values, each stage from the last")
    epochs: int = Field(2, ge=0, description="fine-tuning epochs per T")
    tolerance: float | None = Field(None, ge=0, description="stop when validation accuracy drops more than this below the first T's")

    @field_validator("schedule")
    @classmethod
    def _decreasing(cls, v: list[int]) -> list[int]:
        if not v or any(t < 1 for t in v) or any(a <= b for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"must be a non-empty, strictly decreasing list of T >= 1, got {v}")
        return v


class QuantizeConfig(_Section):
    bits: int = Field(5, ge=2, le=16, description="weight bits of the final quantized model")
    sweep: list[int] = Field([8, 7, 6, 5, 4, 3, 2], description="post-training bit widths evaluated")
    per_channel: bool = True
    qat_epochs: int = Field(0, ge=0, description="quantization-aware fine-tuning epochs (straight-through estimator)")
    qat_lr: float = Field(1e-4, gt=0)

    @field_validator("sweep")
    @classmethod
    def _bits_range(cls, v: list[int]) -> list[int]:
        bad = [b for b in v if not 2 <= b <= 16]
        if bad:
            raise ValueError(f"bit widths must be in 2..16, got {bad}")
        return v


class EvaluateConfig(_Section):
    profile: str = "45nm"
    dataflow: str | None = Field(None, description="cost dataflow (None = the profile's default; docs/cost_model.md)")
    samples: int = Field(256, gt=0, description="test images replayed by the simulator")
    verify_samples: int = Field(64, ge=0, description="costed images also checked spike for spike against PyTorch (0 = skip)")
    accuracy_tolerance: float = Field(1.0, ge=0, description="points below the ANN at which a claim still counts as matched accuracy")
    noise_stds: list[float] = Field([0.0, 0.05, 0.1, 0.2, 0.3], description="Gaussian input noise levels ([] = skip)")
    noise_samples: int | None = Field(2000, gt=0, description="test images for the noise table (None = all)")


class RunConfig(_Section):
    name: str = Field("digits", description="run directory name under runs_dir (letters, digits, - _ . +)")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(
        None, description="run once per seed in <name>/seed-<k>/, then aggregate (mean ± std); --seeds N: seed..seed+N-1"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = Field(
        False,
        description="conv weights and images channels-last (oneDNN's native layout: faster convs on x86 CPUs); "
        "floats are summed in another order, so results differ in the last bits, as with another thread count",
    )
    runs_dir: str = "runs"
    progress: bool = True
    stages: list[Stage] = list(STAGES)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    ann: OptimConfig = OptimConfig()
    convert: ConvertConfig = ConvertConfig()
    snn: SNNConfig = SNNConfig()
    spatial: SpatialConfig = SpatialConfig()
    temporal: TemporalConfig = TemporalConfig()
    quantize: QuantizeConfig = QuantizeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not _SAFE_NAME.fullmatch(v):
            raise ValueError(
                "must be a plain directory name of at most 255 characters: letters, digits, '-', '_', '.', '+', "
                "not starting with '.'"
            )
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError(f"must be a non-empty list of distinct seeds, got {v}")
        return v

    @field_validator("stages")
    @classmethod
    def _ordered(cls, v: list[str]) -> list[str]:
        if [s for s in STAGES if s in v] != v:
            raise ValueError(f"stages must keep the pipeline order {list(STAGES)}, got {v}")
        return v

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            section, allowed = _section_keys(err["loc"][:-1])
            where = f" in {'.'.join(map(str, section))}" if section else ""
            lines.append(f"unknown config key {key!r}{where}; allowed keys: {', '.join(allowed)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"config key {key!r}: {msg} (got {_short_repr(err.get('input'))})")
    return f"{origin}: " + "; ".join(lines)


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened to ``limit`` characters (and safe for e.g. huge ints)."""
    try:
        shown = repr(value)
    except Exception:  # noqa: BLE001 - repr of user data must not break the error message
        return f"<{type(value).__name__} too large to print>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _section_keys(loc: tuple) -> tuple[tuple, list[str]]:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            break
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    return loc, list(model.model_fields)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"snn.timesteps=8"`` -> ``(["snn", "timesteps"], 8)`` (values parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. snn.epochs=3)")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has an empty key")
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"override {text!r}: the key {key.strip()!r} has an empty part")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
        value = raw  # not a YAML scalar (e.g. a date like 2020-13-45): keep the text
    return path, value


def _apply(data: dict, path: list[str], value: Any, text: str) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {text!r}: {'.'.join(path[: i + 1])} is not a section")
        node = child
    node[path[-1]] = value


def resolve_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: list[str] = ()
) -> RunConfig:
    """Build and validate the config: preset or YAML file, then overrides."""
    if preset is not None and config_file is not None:
        raise ConfigError("give either --preset or --config, not both")
    origin = "config"
    if config_file is not None:
        data = load_yaml_mapping(config_file)
        origin = str(config_file)
    else:
        name = preset or "digits"
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        data = _deep_copy(PRESETS[name])
        data.setdefault("name", name)
        origin = f"preset {name!r}"
    for text in overrides:
        path, value = parse_override(text)
        _apply(data, path, value, text)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin)) from None


def load_yaml_mapping(path: str | Path) -> dict:
    """Read a YAML file that must hold a mapping; errors name the file."""
    path = require_file(path, "config file", ConfigError)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        data = parse_yaml(text)
    except YAMLParseError as exc:
        raise ConfigError(f"{path}: not valid YAML{exc}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys, got {type(data).__name__}")
    return data


def _deep_copy(data: dict) -> dict:
    return yaml.safe_load(yaml.safe_dump(data))


def describe_keys() -> str:
    """Every config key with its default and choices, for ``--help``."""
    lines = []

    def walk(model: type[BaseModel], prefix: str, instance: BaseModel) -> None:
        for name, field in model.model_fields.items():
            value = getattr(instance, name)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.", value)
                continue
            choices = get_args(ann)
            hint = ""
            if choices and all(isinstance(c, str) for c in choices):
                hint = f"  {{{', '.join(choices)}}}"
            desc = f"  # {field.description}" if field.description else ""
            lines.append(f"  {prefix}{name}={value!r}{hint}{desc}")

    walk(RunConfig, "", RunConfig())
    return "\n".join(lines)
