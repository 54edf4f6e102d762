"""Training configuration: typed sections, paper defaults, layered overrides, saved in the run.

Resolution order: dataclass defaults < ``pipelines/train/<model>.yaml`` (the paper's settings for
that model) < the paper's value for the shards' dataset where it depends on the dataset
(:data:`DATASET_DEFAULTS`: MESM's ``p``) < ``--preset paper`` (``pipelines/train/<model>-<dataset>.yaml``)
< ``--config FILE.yaml`` < ``--set KEY=VALUE`` (dotted keys, YAML values).  The layers are merged,
then built into :class:`TrainConfig` and the model's own settings dataclass by
:func:`emoprep.settings.build`: every key is checked against the dataclasses, every value coerced to
its field's type and checked against its range (each dataclass's ``validate()``) before any work
starts, so a typo or a bad value is an error that says what is wrong, not a silently ignored setting
or a failure after the featuriser's pass.  How each dataset-dependent value was chosen is returned
(:class:`Resolved`) and recorded in ``run.json``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import SetupError
from ..settings import build
from . import albert
from .batch import MODALITIES
from .precision import AMP_MODES


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
    """Learning-rate factor of a *pretrained* text encoder: ALBERT's own weights
    (``settings.text_encoder: albert``) train at ``lr * text_lr_scale`` (the paper fine-tunes ALBERT
    at lr/10: 0.1).  Everything that starts from random weights trains at ``lr``: the layers on top
    of ALBERT (its projection to ``d_model`` and the text head), a text transformer over GloVe or
    learned token embeddings, the baselines' text branches.  ``run.json`` records each group's lr."""
    amp: str = "auto"
    """Mixed precision (:mod:`emoprep.train.precision`): ``off`` (float32), ``bf16`` (autocast to
    bfloat16), ``fp16`` (autocast to float16 with a gradient scaler) or ``auto``: off on CPU, bf16
    on a GPU that supports it.  ``run.json`` records what ran."""

    def validate(self) -> None:
        _check([
            (self.lr > 0, f"optim.lr must be positive, got {self.lr}"),
            (self.batch_size >= 1, f"optim.batch_size must be at least 1, got {self.batch_size}"),
            (self.epochs >= 1, f"optim.epochs must be at least 1, got {self.epochs}"),
            (self.patience >= 0, f"optim.patience must be >= 0, got {self.patience}"),
            (self.grad_clip >= 0, f"optim.grad_clip must be >= 0, got {self.grad_clip}"),
            (self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}"),
            (self.text_lr_scale > 0, f"optim.text_lr_scale must be positive, got {self.text_lr_scale}"),
            (self.amp in AMP_MODES, f"optim.amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}"),
        ])


@dataclass(frozen=True)
class DataConfig:
    shuffle_buffer: int = 1024
    """Rows held by the streaming shuffle buffer (per loader worker)."""
    workers: int = 0
    """DataLoader worker processes; 0 reads in the training process."""
    start_method: str = "default"
    """How loader workers start: ``default`` (the platform's: fork on Linux before Python 3.14,
    forkserver from 3.14, spawn on macOS), ``fork``, ``spawn`` or ``forkserver``.  Every one reads
    each row once per epoch; results do not depend on it."""
    max_len: int = 500
    """Longest sequence fed to a model per modality; longer ones keep their first positions."""
    min_token_count: int = 1
    """Tokens seen fewer times in the training split map to <unk> (learned-embedding text only)."""
    lowercase_tokens: bool = True
    """Lower-case tokens before the vocabulary lookup (learned-embedding text only)."""

    def validate(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        _check([
            (self.shuffle_buffer >= 1, f"data.shuffle_buffer must be at least 1, got {self.shuffle_buffer}"),
            (self.workers >= 0, f"data.workers must be >= 0, got {self.workers}"),
            (self.start_method in ("default", *methods),
             f"data.start_method must be default or one of this platform's {', '.join(methods)}, "
             f"got {self.start_method!r}"),
            (self.max_len >= 1, f"data.max_len must be at least 1, got {self.max_len}"),
            (self.min_token_count >= 1, f"data.min_token_count must be at least 1, got {self.min_token_count}"),
        ])


@dataclass(frozen=True)
class InputsConfig:
    """Which shard column feeds each branch; ``auto`` takes the best one the shards hold."""

    text: str = "auto"
    """``auto`` (glove when written, else tokens), ``glove``, ``tokens``."""
    acoustic: str = "auto"
    """``auto`` (= acoustic), ``acoustic`` (142 DisVoice), ``egemaps_lld``, ``compare_lld``."""
    visual: str = "auto"
    """``auto`` (aus when written, else face_mesh), ``aus``, ``face_mesh`` (normalised landmarks)."""

    def validate(self) -> None:
        """Each branch names ``auto`` or a column some model family reads (:data:`.inputs.FAMILIES`);
        whether the run's model reads it is checked with the shards' manifest (``choose_branches``)."""
        from .inputs import FAMILIES

        for name in ("text", "acoustic", "visual"):
            choices = ("auto", *dict.fromkeys(c for family in FAMILIES.values() for c in family[name]))
            value = getattr(self, name)
            if value not in choices:
                raise SetupError(f"inputs.{name} must be one of {', '.join(choices)}, got {value!r}")


TASKS = ("auto", "singlelabel", "multilabel")
"""Values of ``task`` (see :attr:`TrainConfig.task`)."""


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
    settings: Any = None
    """The model's hyper-parameters: an instance of its settings dataclass (see
    :mod:`emoprep.train.models`), resolved in full and validated before training."""

    def validate(self) -> None:
        bad = sorted(set(self.modalities) - set(MODALITIES))
        if bad or not self.modalities:
            raise SetupError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, got {list(self.modalities)}")
        if self.task not in TASKS:
            raise SetupError(f"task must be auto, singlelabel or multilabel, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = list(self.modalities)
        return d


SECTIONS = {"optim": OptimConfig, "data": DataConfig, "inputs": InputsConfig}


def _train_file(name: str) -> dict[str, Any] | None:
    """``pipelines/train/<name>`` as a mapping, None when there is no such file."""
    try:
        text = resources.files("emoprep.pipelines").joinpath("train", name).read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return None
    return yaml.safe_load(text) or {}


def model_defaults_file(model: str) -> dict[str, Any]:
    """``pipelines/train/<model>.yaml`` of a registered model (empty when the model has none).  The
    presets beside them (``mesm-iemocap.yaml``, ...) are not models: asking for one is an unknown model."""
    from .models import get_model

    get_model(model)
    return _train_file(f"{model}.yaml") or {}


PRESETS = ("paper",)
"""``--preset`` names.  ``paper``: ``pipelines/train/<model>-<iemocap|mosei>.yaml``, everything the
paper states for that model on that dataset, picked by the shards' dataset."""
PAPER_DATASET = {"iemocap": "iemocap", "mosei": "mosei", "demo": "mosei"}
"""The paper's dataset whose settings apply to shards of each dataset (``manifest.json``'s
``dataset``).  The demo's shards are MOSEI-shaped (multi-label, MOSEI's six emotions)."""
PAPER_NAMES = {"iemocap": "IEMOCAP", "mosei": "MOSEI"}
DATASET_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "mesm": {"settings.p": {"iemocap": 0.7, "mosei": 0.5}},
}
"""Values the paper gives per dataset, by model and dotted key: used when the user set the key
nowhere (not in ``--preset``, ``--config`` nor ``--set``); other datasets keep the default."""


def preset_file(model: str, preset: str, dataset: str | None) -> tuple[str, dict[str, Any]]:
    """``(path, mapping)`` of ``--preset`` for ``model`` on shards of ``dataset``, or a SetupError."""
    if preset not in PRESETS:
        raise SetupError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    with_presets = [m for m in _models() if _train_file(f"{m}-mosei.yaml") is not None]
    if model not in with_presets:
        raise SetupError(f"--preset {preset} is for {', '.join(with_presets)}, whose paper settings depend on the "
                         f"dataset; {model}'s defaults (pipelines/train/{model}.yaml) already are the paper's "
                         "settings: drop --preset")
    shape = PAPER_DATASET.get(dataset or "")
    if shape is None:
        raise SetupError(f"--preset {preset} holds the paper's settings for IEMOCAP and MOSEI shards (and the "
                         f"MOSEI-shaped demo), but these shards are {dataset!r}: start from "
                         f"pipelines/train/{model}-iemocap.yaml or -mosei.yaml with --config instead")
    name = f"{model}-{shape}.yaml"
    mapping = _train_file(name)
    if mapping is None:
        raise SetupError(f"--preset {preset}: pipelines/train/{name} is missing from this installation")
    return f"pipelines/train/{name}", mapping


def _models() -> list[str]:
    from .models import model_names

    return model_names()


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


@dataclass(frozen=True)
class Resolved:
    """A resolved configuration and how its dataset-dependent values were chosen."""

    config: TrainConfig
    chosen: dict[str, dict[str, Any]]
    """Per dotted key of :data:`DATASET_DEFAULTS` for this model: ``{"value", "reason"}``, e.g.
    ``{"settings.p": {"value": 0.7, "reason": "the paper's value for IEMOCAP shards"}}``."""
    preset: dict[str, Any] | None = None
    """``{"name", "file", "dataset"}`` when ``--preset`` was given."""


def resolve(model: str, config_file: Path | None = None, sets: dict[str, Any] | None = None,
            seed: int | None = None, *, dataset: str | None = None, preset: str | None = None) -> Resolved:
    """The full configuration of a run of ``model`` on shards of ``dataset`` (``manifest.json``'s
    ``dataset``; None when unknown); unknown keys and bad values are SetupErrors.  ``preset`` adds
    ``pipelines/train/<model>-<dataset>.yaml`` above the model's defaults (see :func:`preset_file`)."""
    from .models import get_model

    entry = get_model(model)
    layers: list[tuple[str, dict[str, Any]]] = [(f"pipelines/train/{model}.yaml", model_defaults_file(model))]
    preset_info = None
    if preset is not None:
        path, mapping = preset_file(model, preset, dataset)
        shape = PAPER_DATASET[dataset or ""]
        preset_info = {"name": preset, "file": path, "dataset": dataset}
        layers.append((f"--preset {preset} ({path}: the paper's settings for {PAPER_NAMES[shape]} shards)", mapping))
    if config_file is not None:
        layers.append((f"--config {config_file}", yaml.safe_load(Path(config_file).read_text()) or {}))
    layers.append(("--set", sets or {}))
    if seed is not None:
        layers.append(("--seed", {"seed": seed}))

    nested = (*SECTIONS, "settings")
    merged: dict[str, Any] = {name: {} for name in nested}
    sources: dict[str, str] = {}
    """Dotted key -> the layer that set it last (keys left at the dataclass default are absent)."""
    for source, layer in layers:
        if not isinstance(layer, dict):
            raise SetupError(f"{source}: a configuration must be a mapping of settings, got {layer!r}")
        layer = dict(layer)
        named = layer.pop("model", model)
        if named != model:
            raise SetupError(f"configuration is for model {named!r}, but {model!r} was asked for")
        for key, value in layer.items():
            if key in nested:
                if value is not None and not isinstance(value, dict):
                    raise SetupError(f"{key} must be a mapping of settings, got {value!r}")
                merged[key].update(value or {})
                sources.update({f"{key}.{name}": source for name in value or {}})
            else:
                merged[key] = value
                sources[key] = source

    chosen = {}
    for key, by_dataset in DATASET_DEFAULTS.get(model, {}).items():
        section, name = key.split(".")
        default = entry.settings() if section == "settings" else SECTIONS[section]()
        chosen[key] = _choose(key, merged[section], name, by_dataset, sources.get(key), dataset, getattr(default, name))

    settings = build(entry.settings, merged.pop("settings"), prefix="settings.")
    cfg = build(TrainConfig, {**merged, "model": model, "settings": settings})
    for key, record in chosen.items():  # the value as typed (``p: 1`` is 1.0)
        section, name = key.split(".")
        record["value"] = getattr(getattr(cfg, section), name)
    cfg = dataclasses.replace(cfg, modalities=tuple(m for m in MODALITIES if m in cfg.modalities))
    if preset_info is not None:
        _check_albert_given(cfg, preset)
    return Resolved(cfg, chosen, preset_info)


def resolve_config(model: str, config_file: Path | None = None, sets: dict[str, Any] | None = None,
                   seed: int | None = None, *, dataset: str | None = None, preset: str | None = None) -> TrainConfig:
    """The full configuration of a run of ``model`` (:func:`resolve` without the record of choices)."""
    return resolve(model, config_file, sets, seed, dataset=dataset, preset=preset).config


USER_LAYERS = ("--preset", "--config", "--set")
"""Layers that count as the user's choice: they win over a dataset's paper value."""


def _choose(key: str, values: dict[str, Any], name: str, by_dataset: dict[str, Any], source: str | None,
            dataset: str | None, default: Any) -> dict[str, Any]:
    """Set ``values[name]`` (raw values; ``default`` when absent) to the paper's value for ``dataset``
    unless the user set ``key``; says why."""
    if name not in values:
        values[name] = default
    if source is not None and source.startswith(USER_LAYERS):
        return {"value": values[name], "reason": f"set by {source}"}
    shape = PAPER_DATASET.get(dataset or "")
    if shape in by_dataset:
        values[name] = by_dataset[shape]
        reason = f"the paper's value for {PAPER_NAMES[shape]} shards"
        if dataset != shape:
            reason += f" ({dataset} shards are {PAPER_NAMES[shape]}-shaped)"
        return {"value": values[name], "reason": reason}
    where = f"{source}" if source else "the default"
    why = "the shards' dataset is unknown" if not dataset else f"the paper gives no value for {dataset!r} shards"
    return {"value": values[name], "reason": f"{where} ({why}; it gives "
            + ", ".join(f"{v} for {PAPER_NAMES[d]}" for d, v in by_dataset.items()) + ")"}


def _check_albert_given(cfg: TrainConfig, preset: str) -> None:
    """A preset that trains ALBERT (as the paper did) must be given its folder: otherwise stop now,
    rather than fail later or train something else."""
    if getattr(cfg.settings, "text_encoder", None) != "albert" or "text" not in cfg.modalities:
        return
    if not getattr(cfg.settings, "albert_path", "") and not os.environ.get(albert.ENV):
        raise SetupError(f"--preset {preset} fine-tunes ALBERT as the text encoder, as the paper did, but no ALBERT "
                         f"folder is given (settings.albert_path is empty and {albert.ENV} is not set); to get one, "
                         f"{albert.HOW_TO_GET}")


def _check(checks: list[tuple[bool, str]]) -> None:
    """The message of the first failed check, as a SetupError."""
    for ok, message in checks:
        if not ok:
            raise SetupError(message)


def load_run_config(path: Path) -> TrainConfig:
    """The resolved configuration saved in a run folder (``config.yaml``).  A model setting added after
    the run was saved takes the value the run was built with, which the settings class names in
    ``SAVED_BEFORE`` when it differs from the new default (else the default)."""
    from .models import get_model

    d = yaml.safe_load(Path(path).read_text())
    entry = get_model(d["model"])
    saved_before = getattr(entry.settings, "SAVED_BEFORE", {})
    # Typed, not range-checked again: the run was checked when it started (on its own machine: e.g. its
    # data.start_method), and the model's constructor checks its settings.
    settings = build(entry.settings, {**saved_before, **d["settings"]}, prefix="settings.", validate=False)
    return build(TrainConfig, {**d, "settings": settings}, validate=False)
