"""Training configuration: typed sections, paper defaults, layered overrides, saved in the run.

Resolution order: dataclass defaults < ``pipelines/train/<model>.yaml`` (the paper's settings for
that model) < ``--config FILE.yaml`` < ``--set KEY=VALUE`` (dotted keys, YAML values).  Every key is
checked against the dataclasses (and the model's own settings dataclass) before any work starts, so
a typo is an error that lists the known keys, not a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import SetupError
from .batch import MODALITIES


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 5e-4
    batch_size: int = 32
    grad_clip: float = 2.0
    """Maximum gradient norm (0 turns clipping off)."""
    epochs: int = 60
    patience: int = 8
    """Stop after this many epochs without a better validation average F1 (0: never stop early)."""
    weight_decay: float = 0.0
    text_lr_scale: float = 1.0
    """The text branch's learning rate is ``lr * text_lr_scale`` (the paper's end-to-end models: 0.1)."""


@dataclass(frozen=True)
class DataConfig:
    shuffle_buffer: int = 1024
    """Rows held by the streaming shuffle buffer (per loader worker)."""
    workers: int = 0
    """DataLoader worker processes; 0 reads in the training process."""
    max_len: int = 500
    """Longest sequence fed to a model per modality; longer ones keep their first positions."""
    min_token_count: int = 1
    """Tokens seen fewer times in the training split map to <unk> (learned-embedding text only)."""
    lowercase_tokens: bool = True
    """Lower-case tokens before the vocabulary lookup (learned-embedding text only)."""


@dataclass(frozen=True)
class InputsConfig:
    """Which shard column feeds each branch; ``auto`` takes the best one the shards hold."""

    text: str = "auto"
    """``auto`` (glove when written, else tokens), ``glove``, ``tokens``."""
    acoustic: str = "auto"
    """``auto`` (= acoustic), ``acoustic`` (142 DisVoice), ``egemaps_lld``, ``compare_lld``."""
    visual: str = "auto"
    """``auto`` (aus when written, else face_mesh), ``aus``, ``face_mesh`` (normalised landmarks)."""


@dataclass(frozen=True)
class TrainConfig:
    model: str
    seed: int = 0
    modalities: tuple[str, ...] = MODALITIES
    task: str = "auto"
    """``auto`` (single-label when every labelled training row has exactly one class, as IEMOCAP),
    ``singlelabel`` (report Acc and F1) or ``multilabel`` (report WAcc and F1, as MOSEI)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    settings: dict[str, Any] = field(default_factory=dict)
    """The model's hyper-parameters (see its settings dataclass); resolved in full before training."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = list(self.modalities)
        return d


SECTIONS = {"optim": OptimConfig, "data": DataConfig, "inputs": InputsConfig}


def model_defaults_file(model: str) -> dict[str, Any]:
    """``pipelines/train/<model>.yaml`` (empty when the model has none)."""
    try:
        text = resources.files("emoprep.pipelines").joinpath("train", f"{model}.yaml").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return yaml.safe_load(text) or {}


def parse_sets(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["optim.lr=1e-3", "modalities=[text,acoustic]"]`` -> a nested mapping with YAML-typed values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SetupError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise SetupError(f"--set {item!r}: value is not valid YAML ({exc})") from exc
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SetupError(f"--set {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return out


def _coerce(value: Any, default: Any, key: str) -> Any:
    """YAML gives ints for ``1`` and strings for ``1e-3``; make values the type of the default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SetupError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SetupError(f"{key} must be a number, got {value!r}") from None
        if isinstance(default, int):
            if number != int(number):
                raise SetupError(f"{key} must be an integer, got {value!r}")
            return int(number)
        return number
    if isinstance(default, str) and not isinstance(value, str):
        raise SetupError(f"{key} must be a string, got {value!r}")
    return value


def _apply_section(cls: type, current: dict[str, Any], values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise SetupError(f"{where} must be a mapping of settings, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SetupError(f"unknown setting(s) {', '.join(f'{where}.{k}' for k in unknown)}; known: {', '.join(sorted(known))}")
    out = dict(current)
    for key, value in values.items():
        out[key] = _coerce(value, _field_default(known[key]), f"{where}.{key}")
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def resolve_config(model: str, config_file: Path | None = None, sets: dict[str, Any] | None = None,
                   seed: int | None = None) -> TrainConfig:
    """The full configuration of a run of ``model``; unknown keys and bad values are SetupErrors."""
    from .models import get_model

    entry = get_model(model)
    layers = [model_defaults_file(model)]
    if config_file is not None:
        layers.append(yaml.safe_load(Path(config_file).read_text()) or {})
    layers.append(sets or {})
    if seed is not None:
        layers.append({"seed": seed})

    top: dict[str, Any] = {"seed": 0, "modalities": list(MODALITIES), "task": "auto"}
    sections = {name: dataclasses.asdict(cls()) for name, cls in SECTIONS.items()}
    settings = dataclasses.asdict(entry.settings())
    for layer in layers:
        layer = dict(layer)
        named = layer.pop("model", model)
        if named != model:
            raise SetupError(f"configuration is for model {named!r}, but {model!r} was asked for")
        for name, cls in SECTIONS.items():
            if name in layer:
                sections[name] = _apply_section(cls, sections[name], layer.pop(name) or {}, name)
        if "settings" in layer:
            settings = _apply_section(entry.settings, settings, layer.pop("settings") or {}, "settings")
        unknown = sorted(set(layer) - set(top))
        if unknown:
            raise SetupError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted([*top, 'model', 'settings', *SECTIONS]))}"
            )
        top.update(layer)

    modalities = tuple(top["modalities"] if isinstance(top["modalities"], (list, tuple)) else [top["modalities"]])
    bad = sorted(set(modalities) - set(MODALITIES))
    if bad or not modalities:
        raise SetupError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, got {list(modalities)}")
    if top["task"] not in ("auto", "singlelabel", "multilabel"):
        raise SetupError(f"task must be auto, singlelabel or multilabel, got {top['task']!r}")
    cfg = TrainConfig(
        model=model,
        seed=_coerce(top["seed"], 0, "seed"),
        modalities=tuple(m for m in MODALITIES if m in modalities),
        task=top["task"],
        optim=OptimConfig(**sections["optim"]),
        data=DataConfig(**sections["data"]),
        inputs=InputsConfig(**sections["inputs"]),
        settings=settings,
    )
    _check_ranges(cfg)
    return cfg


def _check_ranges(cfg: TrainConfig) -> None:
    o, d = cfg.optim, cfg.data
    checks = [
        (o.lr > 0, "optim.lr must be positive"),
        (o.batch_size >= 1, "optim.batch_size must be at least 1"),
        (o.epochs >= 1, "optim.epochs must be at least 1"),
        (o.patience >= 0, "optim.patience must be >= 0"),
        (o.grad_clip >= 0, "optim.grad_clip must be >= 0"),
        (o.text_lr_scale > 0, "optim.text_lr_scale must be positive"),
        (d.shuffle_buffer >= 1, "data.shuffle_buffer must be at least 1"),
        (d.workers >= 0, "data.workers must be >= 0"),
        (d.max_len >= 1, "data.max_len must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise SetupError(message)


def load_run_config(path: Path) -> TrainConfig:
    """The resolved configuration saved in a run folder (``config.yaml``)."""
    d = yaml.safe_load(Path(path).read_text())
    return TrainConfig(
        model=d["model"],
        seed=d["seed"],
        modalities=tuple(d["modalities"]),
        task=d["task"],
        optim=OptimConfig(**d["optim"]),
        data=DataConfig(**d["data"]),
        inputs=InputsConfig(**d["inputs"]),
        settings=dict(d["settings"]),
    )
