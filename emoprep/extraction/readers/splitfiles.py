"""Split assignments shared by the readers: a ``{"train": [...], ...}`` JSON file, ``id,split``
text, or a folder of id lists (``train_split.txt``, ``valid_split.txt``, ``test_split.txt``).

A split source maps *ids* to split names.  An id may name a whole recording (MOSEI video id, the
usual case for video-disjoint folds) or one utterance; :meth:`SplitMap.lookup` tries the utterance
id first so that a file may override single utterances of a recording.  Ids are always strings:
MOSEI ids such as ``-3g5yACwYnA`` or ``81406`` must never go through a number parser.

The folder layout is the one the MESM authors published their exact train/valid/test utterance
lists in (``data split/MOSEI_split/`` and ``IEMOCAP_split/`` of their repository, one id per line);
those lists ship in ``pipelines/splits/`` and are what ``splits=mesm`` / ``split=mesm`` read.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ...errors import DatasetError, SetupError
from ...format.names import SPLITS

_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "dev": "valid",
    "validation": "valid",
    "test": "test",
    "testing": "test",
    "none": "none",
    "": "none",
}

_JSON_KEYS: dict[str, str] = {
    # the CMU SDK's variable names, as in cmu_mosei_std_folds.py
    "standard_train_fold": "train",
    "standard_valid_fold": "valid",
    "standard_test_fold": "test",
}


def normalise_split(name: str, where: str = "") -> str:
    """Map ``dev``/``val``/``validation`` etc. to the project's split names; error otherwise."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise DatasetError(f"{where}: unknown split {name!r}; use one of {', '.join(SPLITS)} (or dev/val)")
    return _ALIASES[key]


@dataclass
class SplitMap:
    """Id → split, with where it came from (for messages and the run summary)."""

    assignments: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def lookup(self, utterance_id: str, video_id: str) -> str:
        """Split of an utterance: its own entry, else its recording's, else ``none``."""
        if utterance_id in self.assignments:
            return self.assignments[utterance_id]
        return self.assignments.get(video_id, "none")

    def __len__(self) -> int:
        return len(self.assignments)

    def unmatched(self, utterance_ids: set[str], video_ids: set[str]) -> list[str]:
        """Ids of this map that name none of the given utterances or recordings, sorted.

        Why: a published utterance list is only reproduced when its ids are found; the readers
        report how many are missing (``listed_ids_not_found``) so that a partial copy of a corpus,
        or a list meant for another one, shows in the counts instead of silently shrinking a split.
        """
        return sorted(i for i in self.assignments if i not in utterance_ids and i not in video_ids)


def parse_split_json(text: str, source: str) -> SplitMap:
    """``{"train": [ids], "valid": [ids], "test": [ids]}`` (or the SDK's ``standard_*_fold`` keys)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{source}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{source}: expected a JSON object of split name -> list of ids")
    out: dict[str, str] = {}
    for key, ids in data.items():
        if key.startswith("_") or key in ("source", "licence", "license", "attribution"):
            continue  # room for provenance notes beside the folds
        split = _JSON_KEYS.get(key) or normalise_split(key, source)
        if not isinstance(ids, list):
            raise DatasetError(f"{source}: value of {key!r} must be a list of ids")
        for raw in ids:
            _assign(out, str(raw).strip(), split, source)
    return SplitMap(out, source)


def _assign(out: dict[str, str], ident: str, split: str, where: str) -> None:
    """Record ``ident -> split``; an id listed under two different splits is an error."""
    previous = out.get(ident)
    if previous is not None and previous != split:
        raise DatasetError(f"{where}: id {ident!r} is in both {previous!r} and {split!r}")
    out[ident] = split


def parse_split_table(text: str, source: str) -> SplitMap:
    """``id,split`` per line (comma, tab or whitespace separated); a header line is allowed."""
    out: dict[str, str] = {}
    sample = text[:4096]
    delimiter = "\t" if "\t" in sample else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for lineno, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) == 1 and delimiter == "," and len(cells[0].split()) == 2:
            cells = cells[0].split()
        if len(cells) < 2:
            raise DatasetError(f"{source}:{lineno}: expected 'id,split', got {','.join(row)!r}")
        ident, split_name = cells[0], cells[1]
        if lineno == 1 and split_name.lower() == "split":
            continue  # header
        _assign(out, ident, normalise_split(split_name, f"{source}:{lineno}"), f"{source}:{lineno}")
    return SplitMap(out, source)


LIST_SUFFIX = "_split.txt"
"""Name of each file of a split folder: ``<split>_split.txt`` (the MESM authors' layout)."""


def parse_id_list(text: str, split: str, source: str, out: dict[str, str] | None = None) -> dict[str, str]:
    """One id per line into ``out`` (``id -> split``); blank lines and ``#`` comments are skipped.

    Lines are split on ``\\n`` and stripped (CRLF copies, trailing spaces): an id never contains
    whitespace in any corpus emoprep reads.
    """
    out = {} if out is None else out
    for lineno, raw in enumerate(text.split("\n"), start=1):
        ident = raw.strip()
        if not ident or ident.startswith("#"):
            continue
        if len(ident.split()) > 1:
            raise DatasetError(f"{source}:{lineno}: expected one id per line, got {ident[:80]!r}")
        _assign(out, ident, split, f"{source}:{lineno}")
    return out


def _parse_split_folder(entries: list[tuple[str, Traversable | Path]], source: str) -> SplitMap:
    """``<split>_split.txt`` entries (name, file) of one folder into one map.

    The split name is the part before ``_split.txt`` and goes through :func:`normalise_split`, so
    ``dev_split.txt`` or ``val_split.txt`` also mean ``valid``; other files (a README, licences)
    are ignored.  A folder without any list is an error, not an empty split.
    """
    out: dict[str, str] = {}
    lists = sorted((n, f) for n, f in entries if n.endswith(LIST_SUFFIX) and not n.startswith("."))
    if not lists:
        raise SetupError(
            f"{source}: no split lists; a split folder holds train_split.txt, valid_split.txt (or "
            "dev_split.txt) and test_split.txt, one utterance id per line"
        )
    for name, f in lists:
        split = normalise_split(name[: -len(LIST_SUFFIX)], f"{source}/{name}")
        parse_id_list(f.read_text(encoding="utf-8-sig"), split, f"{source}/{name}", out)
    return SplitMap(out, source)


def load_split_folder(path: Path) -> SplitMap:
    """A folder of ``<split>_split.txt`` id lists (see :func:`_parse_split_folder`)."""
    return _parse_split_folder([(p.name, p) for p in Path(path).iterdir() if p.is_file()], str(path))


def resolve_path(value: str, root: Path) -> Path:
    """An option path: absolute, else relative to the dataset root if it exists there, else to cwd."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    under_root = Path(root) / path
    if under_root.exists():
        return under_root
    return path


def load_split_file(value: str, root: Path) -> SplitMap:
    """Load a split file or folder given as an option value (see :func:`resolve_path`)."""
    path = resolve_path(value, root)
    if path.is_dir():
        return load_split_folder(path)
    if not path.is_file():
        raise SetupError(
            f"splits file {value!r} not found (looked at {path}; relative paths are tried under the dataset root, then the current folder)"
        )
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return parse_split_json(text, str(path))
    return parse_split_table(text, str(path))


def load_packaged_split(name: str) -> SplitMap:
    """A split file or folder shipped in ``pipelines/splits/`` (installed as ``emoprep.pipelines``)."""
    try:
        entry = resources.files("emoprep.pipelines").joinpath("splits", name)
        if entry.is_dir():
            return _parse_split_folder([(f.name, f) for f in entry.iterdir()], f"emoprep.pipelines/splits/{name}")
        text = entry.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise SetupError(
            f"the packaged split file pipelines/splits/{name} is missing from this installation; "
            'pass your own with --option splits=FILE (JSON {"train": [...], "valid": [...], '
            "\"test\": [...]} or 'id,split' lines)"
        ) from None
    return parse_split_json(text, f"emoprep.pipelines/splits/{name}")
