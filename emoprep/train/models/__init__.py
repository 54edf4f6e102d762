"""Models registered by name: the one place ``emoprep train MODEL`` looks them up.

A model module declares a frozen settings dataclass (its hyper-parameters, every field with a
default) and an ``nn.Module`` built as ``Model(inputs, n_classes, settings, context)`` whose
``forward`` takes ``{modality: ModalityInput}`` and returns logits ``(B, n_classes)``.  It registers
both with :func:`register`.  The run builds the ``settings:`` of its configuration into that
dataclass with :func:`emoprep.settings.build` (an unknown key or a value of the wrong type is an error
before any work), keeps the instance as ``TrainConfig.settings`` and hands it to the model; its values
are saved in the run folder.

The settings dataclass also has a ``validate()`` method that raises a
:class:`~emoprep.errors.SetupError` naming the bad key (``settings.p must be in (0, 1], got 1.5``):
the one place a model's settings are range-checked.  The run's configuration calls it when it
resolves the settings, before any shard is read, and the model's constructor calls it too, so that a
model built directly is refused the same way.  :func:`register` refuses a settings class without it.
The helpers below (:func:`check_positive`, ...) write the messages.
"""

from __future__ import annotations

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

    if not callable(getattr(settings, "validate", None)):
        raise TypeError(f"model {name!r}: its settings class {settings.__name__} needs a validate() method "
                        "(range checks run before any work; see emoprep.train.models)")

    def wrap(cls: type) -> type:
        _REGISTRY[name] = ModelEntry(name, settings, cls, description, family)
        return cls

    return wrap


def _refuse(message: str) -> None:
    from ...errors import SetupError

    raise SetupError(message)


def check_positive(settings: Any, *names: str) -> None:
    """Each named field (a size, a count, a width multiplier) must be > 0."""
    for name in names:
        value = getattr(settings, name)
        if not value > 0:
            _refuse(f"settings.{name} must be positive, got {value!r}")


def check_dropout(settings: Any, *names: str) -> None:
    """Each named field is a dropout probability: in [0, 1)."""
    for name in names:
        value = getattr(settings, name)
        if not 0.0 <= value < 1.0:
            _refuse(f"settings.{name} must be in [0, 1), got {value!r}")


def check_width_heads(settings: Any, width: str = "d_model", heads: str = "heads") -> None:
    """Multi-head attention splits ``width`` evenly among ``heads`` (both checked positive first)."""
    check_positive(settings, width, heads)
    w, h = getattr(settings, width), getattr(settings, heads)
    if w % h:
        _refuse(f"settings.{width} ({w}) must be a multiple of settings.{heads} ({h})")


def check_one_of(settings: Any, name: str, choices: tuple[str, ...] | list[str]) -> None:
    value = getattr(settings, name)
    if value not in choices:
        _refuse(f"settings.{name} must be one of {', '.join(choices)}, got {value!r}")


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
