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
from ...format.codecs import CROP_FORMATS, LOGMEL_FRAMES, LOGMEL_MELS
from ...settings import PAIRS, build, coerce, setting

ALL_MODALITIES: tuple[str, ...] = ("text", "acoustic", "logmel", "visual")
"""Modality switches of ``--modalities``; each maps to one or more extractors (see extractors/)."""
ACOUSTIC_BACKENDS: tuple[str, ...] = ("disvoice", "egemaps", "compare")
"""Values of ``acoustic.backends``."""
FACE_FRAMINGS: tuple[str, ...] = ("square", "paper")
"""Values of ``visual.face_framing`` (emoprep.extraction.faces implements them)."""
AU_BACKEND_NAMES: tuple[str, ...] = ("none", "openface", "pyfeat")
"""Values of ``visual.au_backend`` (emoprep.extraction.extractors.au implements them)."""


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
    backends: tuple[str, ...] = setting(("disvoice",), choices=ACOUSTIC_BACKENDS)
    """``disvoice`` (the 142-dim set, columns ``acoustic*``), ``egemaps``, ``compare`` (openSMILE
    eGeMAPSv02 / ComParE_2016 LLD means per window + utterance functionals, ``<backend>_*`` columns)."""
    window_s: float = 0.4
    """Analysis window of the per-window acoustic columns (MESM: 400 ms); see extractors/windows.py."""
    hop_s: float = 0.4
    """Start-to-start distance of the windows; equal to window_s means contiguous, non-overlapping."""

    def validate(self) -> None:
        unknown = set(self.backends) - set(ACOUSTIC_BACKENDS)
        if unknown:
            raise SetupError(f"unknown acoustic backend(s) {sorted(unknown)}; choose from {', '.join(ACOUSTIC_BACKENDS)}")
        if self.window_s <= 0 or self.hop_s <= 0:
            raise SetupError(f"acoustic.window_s and acoustic.hop_s must be positive (got {self.window_s}, {self.hop_s})")


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

    def validate(self) -> None:
        if self.win_length > self.n_fft:
            raise SetupError(f"logmel.win_length ({self.win_length}) must not exceed logmel.n_fft ({self.n_fft})")
        if self.log_floor <= 0 or self.chunk_frames < 1 or self.hop_length < 1 or self.n_mels < 1:
            raise SetupError("logmel.log_floor must be > 0, n_mels, chunk_frames and hop_length >= 1")
        size = LOGMEL_MELS * LOGMEL_FRAMES
        if self.n_mels * self.chunk_frames != size:
            raise SetupError(
                f"logmel column is fixed_size_list[{size}] (schema v1): n_mels x chunk_frames must be {size}, "
                f"got {self.n_mels} x {self.chunk_frames}"
            )


@dataclass(frozen=True)
class VisualConfig:
    frame_interval_s: float = 0.5
    face_size: int = 48
    face_margin: float = 0.2
    """Margin of the ``square`` framing, per side, as a fraction of the box's longer side."""
    face_framing: str = setting("square", choices=FACE_FRAMINGS)
    """How a crop frames the face box: ``square`` (a square around the box centre, side
    ``max(w, h) * (1 + 2 * face_margin)``, black outside the frame) or ``paper`` (the MESM authors'
    framing, facenet-pytorch's ``MTCNN(image_size=face_size, margin=2)``: the box grown so that 2
    pixels of the output are margin, clipped to the frame, stretched to ``face_size`` squared;
    ``face_margin`` is not used).  See emoprep.extraction.faces."""
    image_format: str = setting("png", choices=CROP_FORMATS)
    jpeg_quality: int = 90
    au_backend: str = setting("none", choices=AU_BACKEND_NAMES)
    au_options: PAIRS = ()
    """Backend-specific settings as sorted (key, value) pairs, e.g. (("csv_dir", "..."),)."""
    face_mesh: bool = False
    """Also write MediaPipe's 468-point face mesh of each found face (column ``face_mesh``)."""
    max_frame_height: int = 720
    """Frames taller than this are downscaled before detection (0: never); see emoprep.extraction.media.video."""

    def validate(self) -> None:
        if self.face_size < 8:
            raise SetupError(f"visual.face_size must be at least 8 px, got {self.face_size}")
        if self.face_margin < 0:
            raise SetupError(f"visual.face_margin must be >= 0, got {self.face_margin}")
        if self.face_framing not in FACE_FRAMINGS:
            raise SetupError(f"visual.face_framing must be one of {', '.join(FACE_FRAMINGS)}, got {self.face_framing!r}")
        if self.image_format.lower() not in CROP_FORMATS:
            raise SetupError(f"visual.image_format must be png or jpeg, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise SetupError(f"visual.jpeg_quality must be 1-100, got {self.jpeg_quality}")
        if self.frame_interval_s <= 0:
            raise SetupError(f"visual.frame_interval_s must be positive, got {self.frame_interval_s}")
        if self.max_frame_height < 0:
            raise SetupError(f"visual.max_frame_height must be >= 0 (0: never downscale), got {self.max_frame_height}")


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that determines the content of the shards of one run."""

    dataset: str
    modalities: tuple[str, ...] = setting(ALL_MODALITIES, choices=ALL_MODALITIES)
    shard_size: int = 64
    sample_rate: int = 16000
    dataset_options: PAIRS = ()
    """Reader-specific settings as sorted (key, value) pairs (class set, split scheme, ...)."""
    text: TextConfig = field(default_factory=TextConfig)
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    logmel: LogmelConfig = field(default_factory=LogmelConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)

    def validate(self) -> None:
        """Range checks of the top-level settings (each section checks its own when it is built)."""
        if not self.modalities:
            raise SetupError(f"modalities must name at least one of {', '.join(ALL_MODALITIES)}")
        if self.shard_size < 1:
            raise SetupError(f"shard_size must be at least 1, got {self.shard_size}")
        if self.sample_rate < 1:
            raise SetupError(f"sample_rate must be positive, got {self.sample_rate}")

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


SECTIONS: tuple[str, ...] = ("text", "acoustic", "logmel", "visual")
"""The sections of :class:`ExtractConfig`: a later layer changes the settings it names, keeps the rest."""
NOT_SETTINGS: tuple[str, ...] = ("dataset", "expected")
"""Keys of a spec that are no settings: the dataset (given by ``--dataset``) and its facts for checks."""


def build_config(dataset: str, overrides: dict[str, Any] | None = None, spec: Path | None = None) -> ExtractConfig:
    """Defaults < ``pipelines/<dataset>.yaml`` < ``spec`` file < CLI ``overrides``.

    Each layer is a mapping with top-level keys (``shard_size``, ``modalities``, ...) and one
    mapping per section (``text``, ``acoustic``, ``logmel``, ``visual``, ``dataset_options``).  The
    layers are merged (sections and ``dataset_options`` key by key, a top-level None is no value),
    then made into the typed :class:`ExtractConfig` by :func:`emoprep.settings.build`: an unknown
    key or a bad value anywhere is a SetupError here, before any work.
    """
    layers = [pipeline_defaults(dataset)]
    if spec is not None:
        layers.append(yaml.safe_load(Path(spec).read_text()) or {})
    layers.append(overrides or {})
    merged: dict[str, Any] = {}
    options: dict[str, str] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise SetupError(f"a run spec must be a mapping of settings, got {layer!r}")
        for key, value in layer.items():
            if key in NOT_SETTINGS or value is None:
                continue
            if key == "dataset_options":
                options |= dict(coerce(value, PAIRS, "dataset_options"))
            elif key in SECTIONS and isinstance(value, dict):
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = value
    cfg = build(ExtractConfig, {**merged, "dataset": dataset, "dataset_options": options})
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
