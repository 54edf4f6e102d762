"""Typed settings: a mapping of raw values made into a frozen dataclass, checked before any work.

Every configuration of emoprep is a dataclass: the extraction config and its sections
(:mod:`emoprep.extraction.config`), the reader options (:mod:`emoprep.extraction.config.reader_options`),
the trainer's configuration and each model's settings (:mod:`emoprep.train.config`,
:mod:`emoprep.train.models`).  Values arrive as YAML gives them (``1`` an int, ``1e-3`` a string,
``true`` a bool) or as strings from the command line (``--option keep_unlabelled=yes``).
:func:`build` turns such a mapping into the dataclass, one way for all of them:

* a key that is no field is refused, naming the known ones;
* each value is coerced to its field's annotated type: ``bool`` (true/false, yes/no, on/off, 1/0
  as words), ``int`` (``2.0`` or ``"1e3"`` are whole numbers too), ``float`` (finite), ``str``,
  ``Literal[...]`` or a field's ``choices`` (matched case-insensitively, given back as declared),
  ``tuple[X, ...]`` (a list, or one comma-separated string), ``tuple[tuple[str, str], ...]``
  (key/value pairs: a mapping becomes its sorted pairs), ``X | None`` (``None`` or an empty string
  is None) and a nested dataclass (a mapping, built the same way on top of the field's default);
* the result's own ``validate()`` (when it has one) checks ranges and combinations.

Every failure is a :class:`~emoprep.errors.SetupError` that names the dotted key (``optim.lr``,
``visual.face_size``, ``option classes``), the bad value and what is expected, e.g.
``optim.lr='fast': use a number`` or ``unknown setting(s) optim.lrr; known: amp, batch_size, ...``.

This module imports nothing of emoprep but its errors; the layers above all use it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from .errors import SetupError

T = TypeVar("T")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
PAIRS = tuple[tuple[str, str], ...]
"""Type of a field holding free-form key/value settings as sorted pairs (hashable, unlike a dict)."""


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, choices: tuple[Any, ...] = (),
            hint: str | None = None, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its documentation, for a closed set of values the allowed ones (checked
    after the value is coerced to the field's type) and the ``hint`` an error about a bad value gives
    instead of what the type allows."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"doc": doc, "choices": tuple(choices), "hint": hint})


def build(cls: type[T], values: Mapping[str, Any] | None, *, prefix: str = "", base: T | None = None,
          validate: bool = True) -> T:
    """``cls`` from the raw ``values`` on top of ``base`` (default: the field defaults), coerced and
    validated (``validate=False``: coerced only, nested sections too, e.g. to read back what a run
    recorded).  ``prefix`` is put before every field name in messages (``"optim."``, ``"option "``)."""
    values = {} if values is None else values
    if not isinstance(values, Mapping):
        where = prefix.rstrip(". ") or cls.__name__
        raise SetupError(f"{where} must be a mapping of settings, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in values if k not in fields)
    if unknown:
        raise SetupError(f"unknown setting(s) {', '.join(prefix + k for k in unknown)}; "
                         f"known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        f = fields[name]
        current = getattr(base, name) if base is not None else _default(f)
        kwargs[name] = coerce(value, hints[name], prefix + name, choices=f.metadata.get("choices", ()),
                              hint=f.metadata.get("hint"), current=current, validate=validate)
    try:
        out = dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except TypeError as exc:  # a field without a default that nobody gave
        raise SetupError(f"{prefix.rstrip('. ') or cls.__name__}: {exc}") from None
    if validate:
        check = getattr(out, "validate", None)
        if callable(check):
            check()
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def coerce(value: Any, kind: Any, key: str, *, choices: tuple[Any, ...] = (), hint: str | None = None,
           current: Any = None, validate: bool = True) -> Any:
    """``value`` as a ``kind``; a SetupError naming ``key``, the value and what is expected when it
    is not one.  ``current`` is the value being replaced (the base of a nested dataclass)."""
    try:
        return _coerce(value, kind, key, choices, current, validate)
    except _Bad as bad:
        raise SetupError(f"{key}={value!r}: {hint or bad.expected}") from None


class _Bad(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _coerce(value: Any, kind: Any, key: str, choices: tuple[Any, ...], current: Any, validate: bool = True) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and not value.strip()):
            if len(inner) < len(args):
                return None
        if len(inner) != 1:
            raise TypeError(f"{key}: only X | None unions are supported, not {kind}")
        return _coerce(value, inner[0], key, choices, current, validate)
    if value is None:
        raise _Bad("give a value or leave the setting out for its default")
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        return build(kind, value, prefix=f"{key}.", base=current if isinstance(current, kind) else None,
                     validate=validate)
    if origin is Literal:
        return _choose(_coerce(value, type(args[0]), key, (), None), args)
    if origin in (tuple, list):
        return _sequence(value, kind, origin, args, key, choices)
    if kind is bool:
        out: Any = _bool(value)
    elif kind is int:
        out = _int(value)
    elif kind is float:
        out = _float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise _Bad("use a string")
        out = value
    else:
        raise TypeError(f"{key}: settings of type {kind} are not supported")
    return _choose(out, choices) if choices else out


def _choose(value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` when it is one of ``choices`` (words compared case-insensitively: the declared one)."""
    for choice in choices:
        if value == choice or (isinstance(value, str) and isinstance(choice, str) and value.lower() == choice.lower()):
            return choice
    raise _Bad(f"use {', '.join(str(c) for c in choices)}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _Bad("use true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad("use a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Bad("use a whole number") from None
    if not math.isfinite(number) or number != int(number):
        raise _Bad("use a whole number")
    return int(number)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad("use a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _Bad("use a number") from None
    if not math.isfinite(number):
        raise _Bad("use a number")
    return number


def _sequence(value: Any, kind: Any, origin: type, args: tuple[Any, ...], key: str,
              choices: tuple[Any, ...]) -> Any:
    if kind == PAIRS:
        return _pairs(value)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise _Bad("use a list")
    if origin is list or (len(args) == 2 and args[1] is Ellipsis):
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]", choices, None) for i, v in enumerate(value)]
    else:
        if len(value) != len(args):
            raise _Bad(f"use a list of {len(args)} values")
        items = [_coerce(v, a, f"{key}[{i}]", (), None) for i, (v, a) in enumerate(zip(value, args))]
    return list(items) if origin is list else tuple(items)


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """Key/value settings: a mapping as its sorted (key, str(value)) pairs; pairs kept in their order."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return tuple((str(k), str(v)) for k, v in value)
    raise _Bad("use a mapping of KEY: VALUE")
