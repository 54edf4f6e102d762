"""Models registered by name: the one place ``emoprep train MODEL`` looks them up.

A model module declares a settings dataclass (its hyper-parameters, every field with a default) and
an ``nn.Module`` built as ``Model(inputs, n_classes, settings, context)`` whose ``forward`` takes
``{modality: ModalityInput}`` and returns logits ``(B, n_classes)``.  It registers both with
:func:`register`.  The run resolves ``model:`` settings against the dataclass, so an unknown key is
an error before any work, and the resolved values are saved in the run folder.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..batch import InputSpec


@dataclass(frozen=True)
class ModelContext:
    """Facts about the data a model may need beyond its inputs."""

    label_names: tuple[str, ...]
    label_vectors: torch.Tensor | None = None
    """``(n_classes, dim)`` word vectors of the label names in the text space (EmoEmbs), or None."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    settings: type
    build: Callable[[dict[str, InputSpec], int, Any, ModelContext], nn.Module]
    description: str
    family: str = "handcrafted"
    """Which shard columns it reads: ``handcrafted`` (GloVe/tokens, DisVoice windows, AUs or face
    mesh) or ``end_to_end`` (GloVe/tokens, log-mel chunks, face crops); see train/inputs.py."""


_REGISTRY: dict[str, ModelEntry] = {}
_MODULES = ("lf_lstm", "lf_trans", "mult", "emoembs", "fe2e", "mesm")
"""Modules imported on first lookup; each calls :func:`register`."""


def register(name: str, settings: type, description: str, family: str = "handcrafted") -> Callable[[type], type]:
    """Class decorator: ``@register("lf-lstm", LFLSTMSettings, "...")`` on the nn.Module."""

    def wrap(cls: type) -> type:
        _REGISTRY[name] = ModelEntry(name, settings, cls, description, family)
        return cls

    return wrap


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")


def model_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_model(name: str) -> ModelEntry:
    _load_all()
    if name not in _REGISTRY:
        from ...errors import SetupError

        raise SetupError(f"unknown model {name!r}; choose from {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def settings_fields(name: str) -> dict[str, Any]:
    """Default hyper-parameters of a model, by field name."""
    return {f.name: f.default for f in dataclasses.fields(get_model(name).settings)}
