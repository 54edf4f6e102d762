"""Reader options (``--option KEY=VALUE``, ``dataset_options:`` in a spec): typed, declared once.

Each reader has one frozen dataclass here whose fields are its options: the type, the default and
a docstring (``doc=``) per option.  Options arrive as strings (the CLI, or YAML values turned into
strings by :func:`emoprep.extraction.config.build_config`); :func:`parse_options` turns them into the dataclass
once, before any work, with :func:`emoprep.settings.build` (the coercion every configuration of
emoprep uses), and fails with a :class:`~emoprep.errors.SetupError` that names the option, the bad
value, what is allowed, and (for an unknown key) every known option.

The defaults live only here.  :func:`default_option_strings` renders them as the strings the YAML
specs used to hold (``str(False)`` is ``"False"``, ``str(0.05)`` is ``"0.05"``), and the config
records them in ``dataset_options``: so a run's config, its ``manifest.json`` and its config hash
name the effective options, and changing a default here changes the hash.

This module imports nothing heavy: :mod:`emoprep.extraction.config` and the README table use it without
importing any reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from ...errors import SetupError
from ...settings import build, setting

option = setting
"""A dataclass field for one reader option: its default, its documentation (``doc``), for a closed
set of values the allowed ones (``choices``, compared after the value is converted to the field's
type) and the ``hint`` an error about a bad value gives (default: what the type allows)."""


@dataclass(frozen=True)
class ReaderOptions:
    """Base of the per-reader option classes: conversion from strings and validation."""

    dataset: ClassVar[str] = ""
    """The ``--dataset`` name, for error messages."""
    passthrough: ClassVar[type[ReaderOptions] | None] = None
    """Options of another reader this one forwards as given (the demo forwards MOSEI's)."""

    def validate(self) -> None:
        """Checks that involve more than one option or more than the type (overridden)."""

    @classmethod
    def known(cls) -> tuple[str, ...]:
        own = tuple(f.name for f in dataclasses.fields(cls))
        return own + (cls.passthrough.known() if cls.passthrough is not None else ())

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> ReaderOptions:
        """The options of ``values`` (string values; absent keys take the defaults), validated by
        :func:`emoprep.settings.build` (errors name ``option KEY``); an empty string is no value."""
        unknown = sorted(set(values) - set(cls.known()))
        if unknown:
            raise SetupError(
                f"unknown option(s) {', '.join(unknown)} for --dataset {cls.dataset}; "
                f"known: {', '.join(sorted(cls.known()))}"
            )
        own = {f.name: f for f in dataclasses.fields(cls)}
        given = {k: str(v).strip() for k, v in values.items() if k in own}
        for key, text in given.items():
            if not text and own[key].default is not None:
                hint = own[key].metadata.get("hint") or "give a value or leave the option out for its default"
                raise SetupError(f"option {key}='': {hint}")
        parsed = build(cls, given, prefix="option ")
        if cls.passthrough is not None:
            cls.passthrough.from_strings({k: v for k, v in values.items() if k not in own})
        return parsed

    @classmethod
    def docs(cls) -> list[tuple[str, str, str]]:
        """(option, default, description) per own option, for the README and ``--help``."""
        return [
            (f.name, _shown(f.default), f.metadata["doc"]) for f in dataclasses.fields(cls)
        ]


def _shown(default: Any) -> str:
    """A default as a user would type it (``false``, not ``False``; nothing for None)."""
    if default is None:
        return ""
    return str(default).lower() if isinstance(default, bool) else str(default)


def parse_split_value(value: str) -> tuple[str, int | None, int | None]:
    """IEMOCAP's ``split``: ``random`` | ``mesm`` | ``none`` | ``session:N`` | ``session:N:M`` |
    anything else = a split file or folder (kind, test session, valid session)."""
    v = value.strip()
    if v.lower() in ("random", "mesm", "none"):
        return v.lower(), None, None
    if v.lower().startswith("session:"):
        parts = v.split(":")
        try:
            test = int(parts[1])
            valid = int(parts[2]) if len(parts) > 2 else test % 5 + 1
        except (ValueError, IndexError):
            raise SetupError(f"split={value!r}: use session:N or session:N:M with N, M in 1..5") from None
        if not (1 <= test <= 5 and 1 <= valid <= 5) or test == valid or len(parts) > 3:
            raise SetupError(f"split={value!r}: N and M must be different sessions in 1..5")
        return "session", test, valid
    return "file", None, None


@dataclass(frozen=True)
class MoseiOptions(ReaderOptions):
    """Options of ``--dataset mosei`` (see :mod:`emoprep.extraction.readers.mosei`)."""

    dataset: ClassVar[str] = "mosei"

    labels: str = option(
        "auto",
        "`auto` (the SDK `CMU_MOSEI_Labels.csd` when found, else the MTurk CSVs), `sdk`, `mturk`",
        choices=("auto", "sdk", "mturk"),
    )
    labels_file: str | None = option(
        None,
        "path of the `.csd`; default: `CMU_MOSEI_Labels.csd` in the root, `Labels/` or `Raw/Labels/`",
    )
    splits: str = option(
        "standard",
        "`standard` (CMU folds, 2249/300/678 videos), `mesm` (the paper's utterance lists, "
        "14,524/1,765/4,188), `none`, a split file (JSON `{\"train\": [...], ...}` or `id,split` lines) "
        "or a folder of `train_split.txt`, `valid_split.txt` (or `dev_split.txt`), `test_split.txt` id lists",
    )
    keep_unlabelled: bool = option(False, "`true`: keep segments without labels (labels all null); `false`: skip and count them")
    label_tolerance: float = option(0.05, "seconds between a `.csd` interval and a transcript segment for them to match")

    def validate(self) -> None:
        if self.label_tolerance < 0:
            raise SetupError(f"option label_tolerance={self.label_tolerance}: use seconds >= 0, e.g. 0.05")


@dataclass(frozen=True)
class IemocapOptions(ReaderOptions):
    """Options of ``--dataset iemocap`` (see :mod:`emoprep.extraction.readers.iemocap`)."""

    dataset: ClassVar[str] = "iemocap"

    classes: int = option(
        6, "`6` (ang, exc, fru, hap, neu, sad: the paper's), `4` (ang, hap+exc, neu, sad)", choices=(6, 4)
    )
    split: str = option(
        "random",
        "`random` (seeded; the paper's proportions 5162/737/1481, not its turns), `mesm` (the paper's turn "
        "lists), `session:N` or `session:N:M` (leave one session out; M: the valid session, default N mod 5 + 1), "
        "`none`, a split file or a folder of id lists",
    )
    seed: int = option(0, "seed of the `random` split")

    def validate(self) -> None:
        parse_split_value(self.split)


@dataclass(frozen=True)
class RecordingsOptions(ReaderOptions):
    """Options of ``--dataset recordings`` (and of its old name ``manifest``; see docs/recordings.md)."""

    dataset: ClassVar[str] = "recordings"

    label_names: str | None = option(
        None,
        "fix the order of the emotion columns (and reject other names), e.g. `anger,happy,sad`; "
        "default: the sorted names found in the file",
    )

    @property
    def label_name_tuple(self) -> tuple[str, ...] | None:
        """``label_names`` split on commas, or None when it is not set."""
        if not self.label_names:
            return None
        return tuple(n.strip() for n in self.label_names.split(",") if n.strip())


DEMO_MIN_VIDEOS = 6
"""The fewest videos that still give every split a video of its own (4/1/1)."""


@dataclass(frozen=True)
class DemoOptions(ReaderOptions):
    """Options of ``--dataset demo``; every MOSEI option is forwarded to the MOSEI reader, with the
    demo's own defaults ``labels=mturk`` and ``splits=`` the tree's ``splits.json``."""

    dataset: ClassVar[str] = "demo"
    passthrough: ClassVar[type[ReaderOptions] | None] = MoseiOptions

    videos: int = option(
        12,
        "how many videos (4 clips each) the corpus has, at least 6; 60 gives a corpus to train on",
        hint=f"use a whole number of videos, at least {DEMO_MIN_VIDEOS} (default 12)",
    )

    def validate(self) -> None:
        if self.videos < DEMO_MIN_VIDEOS:
            raise SetupError(
                f"option videos={self.videos!r}: use a whole number of videos, at least {DEMO_MIN_VIDEOS} (default 12)"
            )


OPTIONS: dict[str, type[ReaderOptions]] = {
    "mosei": MoseiOptions,
    "iemocap": IemocapOptions,
    "recordings": RecordingsOptions,
    "demo": DemoOptions,
}
OPTIONS["manifest"] = RecordingsOptions  # the old name of `recordings`: same options, same hash

T = TypeVar("T", bound=ReaderOptions)


@lru_cache(maxsize=64)
def _parse(cls: type[T], pairs: tuple[tuple[str, str], ...]) -> T:
    return cls.from_strings(dict(pairs))  # type: ignore[return-value]


def parse_options(cls: type[T], pairs: Iterable[tuple[str, str]]) -> T:
    """``pairs`` (a config's ``dataset_options``) as ``cls``; parsed once per distinct set."""
    return _parse(cls, tuple(sorted(pairs)))


def default_option_strings(dataset: str) -> dict[str, str]:
    """The defaults of ``dataset``'s own options as the config records them (None: not recorded).

    ``str()`` of the typed default is what the YAML specs gave when they still repeated the
    defaults, so the config hash of a run with default options is unchanged.
    """
    cls = OPTIONS.get(dataset)
    if cls is None:
        return {}
    return {f.name: str(f.default) for f in dataclasses.fields(cls) if f.default is not None}


def validate_dataset_options(dataset: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Fail now (SetupError) on an unknown option or a bad value; unknown datasets are left to
    :func:`emoprep.extraction.readers.get_reader`."""
    cls = OPTIONS.get(dataset)
    if cls is not None:
        parse_options(cls, pairs)


def options_markdown() -> str:
    """The README's table of reader options, generated from the dataclasses above."""
    rows = ["| dataset | option | default | values |", "|---|---|---|---|"]
    for name, cls in OPTIONS.items():
        if name != cls.dataset:
            continue  # an old name of another dataset
        for opt, default, doc in cls.docs():
            rows.append(f"| {name} | `{opt}` | {f'`{default}`' if default else '(none)'} | {doc} |")
    rows.append("| demo | every mosei option | `labels=mturk`, `splits=` the tree's `splits.json` | forwarded to the MOSEI reader |")
    return "\n".join(rows)
