"""What a run read against the full release's known counts, said in one line.

The dataset specs (``expected:`` in ``pipelines/<dataset>.yaml``) hold the full release's counts:
utterances and one per split.  A run on a subset (``--limit``, a partial download, a miniature tree)
differs on every one of them, and one line per key repeated the same caveat five times; the
summary, ``emoprep inspect`` and ``check-raw`` say it once.  The structured form, ``{key: {"read":
n, "full_release": m}}``, is what ``manifest.json`` keeps (``counts.differences_from_full_release``).

This module imports nothing from emoprep, so the dataset checker, the pipeline and the terminal
reporting can all use it without import cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

SPLIT_PREFIX = "split_"
CAVEAT = "a subset, other options or missing files"


class Compared(Protocol):
    """One count compared (``emoprep.extraction.readers.check.ExpectedCount``)."""

    key: str
    expected: int
    found: int | None


def count_differences(compared: Iterable[Compared]) -> dict[str, dict[str, int | None]]:
    """``{key: {"read": found, "full_release": expected}}`` for every count that differs, in spec order."""
    return {c.key: {"read": c.found, "full_release": c.expected} for c in compared if c.found != c.expected}


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def describe_count_differences(differences: Mapping[str, Mapping[str, int | None]]) -> str | None:
    """One line, e.g. ``read/full release: utterances 10/23,259 (train 6/16,327, valid 2/1,871, test
    2/4,662); a subset, other options or missing files``; None when nothing differs.

    Per-split counts go in parentheses after the total they divide, so the line reads as one figure.
    """
    if not differences:
        return None

    def pair(key: str) -> str:
        d = differences[key]
        return f"{_n(d.get('read'))}/{_n(d.get('full_release'))}"

    split_keys = [k for k in differences if k.startswith(SPLIT_PREFIX)]
    splits = ", ".join(f"{k[len(SPLIT_PREFIX):]} {pair(k)}" for k in split_keys)
    parts = []
    for key in differences:
        if key.startswith(SPLIT_PREFIX):
            continue
        parts.append(f"{key} {pair(key)}" + (f" ({splits})" if key == "utterances" and splits else ""))
    if splits and "utterances" not in differences:
        parts.append(f"per split {splits}")
    return f"read/full release: {', '.join(parts)}; {CAVEAT}"


def describe_manifest_differences(recorded: Any) -> str | None:
    """The line for a manifest's ``counts.differences_from_full_release``, whichever emoprep wrote
    it: manifests written before this form hold one sentence per count (a list), joined here rather
    than dropped, so readers of old folders (``inspect``, reports) need no version check."""
    if isinstance(recorded, list):
        return "; ".join(str(note) for note in recorded) or None
    return describe_count_differences(recorded or {})
