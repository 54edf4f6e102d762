"""Feature extractors, registered by name and imported only when a run enables them.

``MODALITY_EXTRACTORS`` maps each ``--modalities`` switch to the extractors it runs, in order.
Heavy libraries (PyTorch for phonet's network, mediapipe, gensim) load inside the extractor's
``__init__``, which runs once per worker process (see :func:`emoprep.extraction.engine.worker.extractors_for`).
"""

from __future__ import annotations

from importlib import import_module

from ..config import ExtractConfig
from .base import Extractor

EXTRACTORS: dict[str, str] = {
    "text": "emoprep.extraction.extractors.text:TextExtractor",
    "acoustic": "emoprep.extraction.extractors.acoustic:AcousticExtractor",
    "opensmile": "emoprep.extraction.extractors.opensmile_lld:OpenSmileExtractor",
    "logmel": "emoprep.extraction.extractors.logmel:LogmelExtractor",
    "visual": "emoprep.extraction.extractors.visual:VisualExtractor",
}

MODALITY_EXTRACTORS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    # each acoustic extractor fills its columns only for the backends in acoustic.backends (else null)
    "acoustic": ("acoustic", "opensmile"),
    "logmel": ("logmel",),
    "visual": ("visual",),
}


def extractor_names(config: ExtractConfig) -> list[str]:
    """Names of the extractors a configuration enables, in a fixed order."""
    names: list[str] = []
    for modality in config.modalities:
        names.extend(n for n in MODALITY_EXTRACTORS.get(modality, ()) if n not in names)
    return names


def build_extractor(name: str, config: ExtractConfig) -> Extractor:
    module, _, cls = EXTRACTORS[name].partition(":")
    return getattr(import_module(module), cls)(config)


__all__ = ["EXTRACTORS", "MODALITY_EXTRACTORS", "Extractor", "build_extractor", "extractor_names"]
