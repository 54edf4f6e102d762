"""Run configuration: one frozen dataclass per modality, defaults from ``pipelines/<dataset>.yaml``,
overrides from the CLI, and a stable hash of everything that changes the output bytes.

The hash goes into every shard's metadata and into ``manifest.json``; a rerun only skips a shard
whose hash matches, so changing a feature parameter can never silently mix old and new rows.
Paths that do not change the output (output folder, scheduler address, worker count) are kept out of
the hash; resources that do (the GloVe file) enter it by content checksum, not by path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ...errors import SetupError
from ...format.codecs import LOGMEL_FRAMES, LOGMEL_MELS

ALL_MODALITIES: tuple[str, ...] = ("text", "acoustic", "logmel", "visual")
"""Modality switches of ``--modalities``; each maps to one or more extractors (see extractors/)."""


@dataclass(frozen=True)
class TextConfig:
    glove: str | None = None
    """Path to a GloVe text file (``word v1 ... vD``); None writes tokens without vectors."""
    glove_checksum: str | None = None
    """sha256 of the GloVe file, filled in by the pipeline; the part of ``glove`` that is hashed."""
    drop_nonverbal: bool = True
    """Remove bracketed markers such as ``[LAUGHTER]`` from tokens (the raw text keeps them)."""


@dataclass(frozen=True)
class AcousticConfig:
    backends: tuple[str, ...] = ("disvoice",)
    """``disvoice`` (the 142-dim set, columns ``acoustic*``), ``egemaps``, ``compare`` (openSMILE
    eGeMAPSv02 / ComParE_2016 LLD means per window + utterance functionals, ``<backend>_*`` columns)."""
    window_s: float = 0.4
    """Analysis window of the per-window acoustic columns (MESM: 400 ms); see extractors/windows.py."""
    hop_s: float = 0.4
    """Start-to-start distance of the windows; equal to window_s means contiguous, non-overlapping."""


@dataclass(frozen=True)
class LogmelConfig:
    n_mels: int = LOGMEL_MELS
    win_length: int = 400
    hop_length: int = 200
    n_fft: int = 400
    chunk_frames: int = LOGMEL_FRAMES
    """Frames per stored chunk (32 x 12.5 ms = 400 ms); n_mels x chunk_frames must be 4096 (schema v1)."""
    log_floor: float = 1e-10
    """Power floor before the natural log: silence and chunk padding read ln(1e-10) = -23.03."""


@dataclass(frozen=True)
class VisualConfig:
    frame_interval_s: float = 0.5
    face_size: int = 48
    face_margin: float = 0.2
    """Margin of the ``square`` framing, per side, as a fraction of the box's longer side."""
    face_framing: str = "square"
    """How a crop frames the face box: ``square`` (a square around the box centre, side
    ``max(w, h) * (1 + 2 * face_margin)``, black outside the frame) or ``paper`` (the MESM authors'
    framing, facenet-pytorch's ``MTCNN(image_size=face_size, margin=2)``: the box grown so that 2
    pixels of the output are margin, clipped to the frame, stretched to ``face_size`` squared;
    ``face_margin`` is not used).  See emoprep.extraction.faces."""
    image_format: str = "png"
    jpeg_quality: int = 90
    au_backend: str = "none"
    au_options: tuple[tuple[str, str], ...] = ()
    """Backend-specific settings as sorted (key, value) pairs, e.g. (("csv_dir", "..."),)."""
    face_mesh: bool = False
    """Also write MediaPipe's 468-point face mesh of each found face (column ``face_mesh``)."""
    max_frame_height: int = 720
    """Frames taller than this are downscaled before detection (0: never); see emoprep.extraction.media.video."""


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that determines the content of the shards of one run."""

    dataset: str
    modalities: tuple[str, ...] = ALL_MODALITIES
    shard_size: int = 64
    sample_rate: int = 16000
    dataset_options: tuple[tuple[str, str], ...] = ()
    """Reader-specific settings as sorted (key, value) pairs (class set, split scheme, ...)."""
    text: TextConfig = field(default_factory=TextConfig)
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    logmel: LogmelConfig = field(default_factory=LogmelConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)

    def hashed_dict(self) -> dict[str, Any]:
        """The configuration as hashed: the GloVe path is replaced by its checksum."""
        d = dataclasses.asdict(self)
        d["text"].pop("glove")
        return d

    @property
    def config_hash(self) -> str:
        blob = json.dumps(self.hashed_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def config_from_hashed(d: dict[str, Any], glove: str | None = None) -> ExtractConfig:
    """The :class:`ExtractConfig` whose :meth:`~ExtractConfig.hashed_dict` is ``d`` (a shard folder's
    ``manifest.json`` ``config``, or a run's copy of it), with the GloVe file ``glove`` put back where
    the hash left only its checksum.  Lists read from JSON become the tuples the dataclasses hold, so
    the rebuilt configuration hashes the same as the one that wrote the shards."""
    sections = {"text": TextConfig, "acoustic": AcousticConfig, "logmel": LogmelConfig, "visual": VisualConfig}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ExtractConfig):
        if f.name not in d:
            continue
        value = d[f.name]
        if f.name in sections:
            known = {g.name for g in dataclasses.fields(sections[f.name])}
            value = sections[f.name](**{k: _frozen_list(v) for k, v in (value or {}).items() if k in known})
        else:
            value = _frozen_list(value)
        values[f.name] = value
    cfg = ExtractConfig(**{"dataset": "unknown", **values})
    return dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, glove=glove))


def _frozen_list(value: Any) -> Any:
    """JSON lists (and lists of pairs) as the nested tuples a frozen configuration holds."""
    return tuple(_frozen_list(v) for v in value) if isinstance(value, list) else value


def pipeline_defaults(dataset: str) -> dict[str, Any]:
    """The run spec of a dataset from ``pipelines/<dataset>.yaml`` (empty when there is none)."""
    try:
        text = resources.files("emoprep.pipelines").joinpath(f"{dataset}.yaml").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return yaml.safe_load(text) or {}


def _replace_section(section: Any, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(section)}
    unknown = set(values) - names
    if unknown:
        raise SetupError(f"unknown setting(s) {sorted(unknown)} for {type(section).__name__}; known: {sorted(names)}")
    return dataclasses.replace(section, **{k: _frozen(v) for k, v in values.items()})


def _frozen(value: Any) -> Any:
    """YAML/CLI values made hashable: lists -> tuples, mappings -> sorted (key, value) pairs.

    Configurations are hashed (config hash) and used as cache keys (extractors per worker), so
    nested settings such as ``au_options: {csv_dir: ...}`` must be immutable.
    """
    if isinstance(value, dict):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def build_config(dataset: str, overrides: dict[str, Any] | None = None, spec: Path | None = None) -> ExtractConfig:
    """Defaults < ``pipelines/<dataset>.yaml`` < ``spec`` file < CLI ``overrides``.

    Each layer is a mapping with top-level keys (``shard_size``, ``modalities``, ...) and one
    mapping per section (``text``, ``acoustic``, ``logmel``, ``visual``, ``dataset_options``).
    """
    layers = [pipeline_defaults(dataset)]
    if spec is not None:
        layers.append(yaml.safe_load(Path(spec).read_text()) or {})
    layers.append(overrides or {})
    cfg = ExtractConfig(dataset=dataset)
    for layer in layers:
        layer = dict(layer)
        layer.pop("dataset", None)
        layer.pop("expected", None)  # dataset facts for checks, not settings
        for section in ("text", "acoustic", "logmel", "visual"):
            if section in layer and layer[section]:
                cfg = dataclasses.replace(cfg, **{section: _replace_section(getattr(cfg, section), layer.pop(section))})
            else:
                layer.pop(section, None)
        if "dataset_options" in layer:
            merged = dict(cfg.dataset_options) | {k: str(v) for k, v in (layer.pop("dataset_options") or {}).items()}
            cfg = dataclasses.replace(cfg, dataset_options=tuple(sorted(merged.items())))
        if "modalities" in layer:
            mods = tuple(layer.pop("modalities"))
            bad = set(mods) - set(ALL_MODALITIES)
            if bad:
                raise SetupError(f"unknown modalities {sorted(bad)}; choose from {', '.join(ALL_MODALITIES)}")
            cfg = dataclasses.replace(cfg, modalities=mods)
        cfg = _replace_section(cfg, {k: v for k, v in layer.items() if v is not None})
    if cfg.shard_size < 1:
        raise SetupError("shard_size must be at least 1")
    return _with_reader_options(cfg)


def _with_reader_options(cfg: ExtractConfig) -> ExtractConfig:
    """The reader's option defaults under the given options, all validated now (before any work).

    The defaults are declared once, in :mod:`emoprep.extraction.config.reader_options`; recorded here, they make
    the config (and its hash) name the effective options.
    """
    from .reader_options import default_option_strings, validate_dataset_options

    merged = default_option_strings(cfg.dataset) | dict(cfg.dataset_options)
    validate_dataset_options(cfg.dataset, merged.items())
    return dataclasses.replace(cfg, dataset_options=tuple(sorted(merged.items())))
