"""Action-unit backends, chosen by ``VisualConfig.au_backend`` (CLI ``--au-backend``).

``none`` writes a null ``aus`` column; ``openface`` runs OpenFace 2's ``FeatureExtraction`` or
imports CSVs it wrote; ``pyfeat`` runs py-feat's detector on weights fetched beforehand.  Backends are
imported only when chosen, so py-feat's torch stack never loads for the other two.
"""

from __future__ import annotations

from importlib import import_module

from ....errors import SetupError
from .base import AU_NAMES, AUBackend, AURequest, AUVector

AU_BACKENDS: dict[str, str | None] = {
    "none": None,
    "openface": "emoprep.extraction.extractors.au.openface:OpenFaceBackend",
    "pyfeat": "emoprep.extraction.extractors.au.pyfeat:PyFeatBackend",
}


def build_au_backend(name: str, options: dict[str, str] | None = None) -> AUBackend | None:
    """The backend called ``name`` (``None`` for ``none``); SetupError for an unknown name."""
    if name not in AU_BACKENDS:
        raise SetupError(f"unknown AU backend {name!r}; choose one of {', '.join(AU_BACKENDS)}")
    target = AU_BACKENDS[name]
    if target is None:
        return None
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)(dict(options or {}))


__all__ = ["AU_BACKENDS", "AU_NAMES", "AUBackend", "AURequest", "AUVector", "build_au_backend"]
