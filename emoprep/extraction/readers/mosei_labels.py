"""MOSEI label sources: raw Mechanical Turk batch CSVs and the CMU SDK's ``CMU_MOSEI_Labels.csd``.

Both come down to one :class:`~emoprep.extraction.records.Labels` per segment in emoprep's label order
(anger, disgust, fear, happiness, sadness, surprise).  The two sources are keyed differently:

* MTurk rows name the segment by ``(Input.VIDEO_ID, Input.CLIP)``, which is the transcript's clip id,
  one row per annotator: we aggregate (multi-hot = any annotator > 0, intensity and sentiment = mean).
  Some batches write the video id with a path or URL prefix (``pom/xyz123``); as in the MESM
  authors' preprocessing (``split('/')[-1]``) only the last path component is the video id, so
  those rows label the same clips instead of being dropped (see :func:`video_key`).
* The SDK file holds per-video arrays indexed by *position*, which does not follow clip ids or the
  transcript's line order: it can only be joined on the interval (see :func:`match_intervals`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import DatasetError
from ..records import Labels, ReaderIssue

LABEL_NAMES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
"""Emotion order of every MOSEI row (``emotions``/``emotion_intensity``)."""

MTURK_EMOTION_COLUMNS: tuple[str, ...] = tuple(f"Answer.{n}" for n in LABEL_NAMES)
MTURK_SENTIMENT_COLUMN = "Answer.sentiment"
MTURK_VIDEO_COLUMN = "Input.VIDEO_ID"
MTURK_CLIP_COLUMN = "Input.CLIP"

SDK_ORDER: tuple[str, ...] = ("sentiment", "happiness", "sadness", "anger", "surprise", "disgust", "fear")
"""Column order of the SDK's ``features`` arrays (N x 7)."""


def clip_key(clip: str) -> str:
    """Canonical clip id: ``"03"``/``"3.0"``/``" 3"`` all mean clip 3 (spreadsheets re-type them)."""
    c = clip.strip()
    try:
        f = float(c)
    except ValueError:
        return c
    return str(int(f)) if f.is_integer() else c


def video_key(value: str) -> str:
    """Video id of an ``Input.VIDEO_ID`` cell: its last ``/``-separated component.

    ``pom/xyz123``, ``https://host/videos/xyz123`` and ``xyz123`` all name video ``xyz123``.  A
    trailing ``/`` is ignored (the authors' ``split('/')[-1]`` would give an empty id there).
    MOSEI video ids never contain ``/``, so a plain id is returned unchanged.
    """
    return value.strip().rstrip("/").rsplit("/", 1)[-1].strip()


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        return None


@dataclass
class _Votes:
    sums: list[float]
    counts: list[int]
    sentiment_sum: float = 0.0
    sentiment_count: int = 0

    def labels(self) -> Labels | None:
        if not any(self.counts) and not self.sentiment_count:
            return None
        intensity = tuple(s / c if c else 0.0 for s, c in zip(self.sums, self.counts))
        return Labels(
            emotions=tuple(int(s > 0) for s in self.sums),
            emotion_intensity=intensity,
            sentiment=self.sentiment_sum / self.sentiment_count if self.sentiment_count else None,
        )


def read_mturk(paths: list[Path]) -> tuple[dict[tuple[str, str], Labels], list[ReaderIssue], int]:
    """Aggregate all annotator rows of all batch CSVs into ``{(video_id, clip): Labels}``.

    Robust to what real batches contain: a UTF-8 BOM, quoted fields with commas and newlines,
    extra columns (Turk exports ~30), rejected/empty answers (skipped per field, not per row),
    and the same clip spread over several batch files.  Returns (labels, issues, annotator rows).
    """
    votes: dict[tuple[str, str], _Votes] = {}
    issues: list[ReaderIssue] = []
    rows_used = 0
    for path in paths:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        needed = [MTURK_VIDEO_COLUMN, MTURK_CLIP_COLUMN]
        missing = [c for c in needed if c not in header]
        answer_cols = [c for c in (*MTURK_EMOTION_COLUMNS, MTURK_SENTIMENT_COLUMN) if c in header]
        if missing or not answer_cols:
            issues.append(
                ReaderIssue(
                    "malformed",
                    f"not a MOSEI label batch: missing column(s) {missing or list(MTURK_EMOTION_COLUMNS)}",
                    source=f"{path}:1",
                )
            )
            continue
        for row in reader:
            line = reader.line_num
            video = video_key(row.get(MTURK_VIDEO_COLUMN) or "")
            clip = (row.get(MTURK_CLIP_COLUMN) or "").strip()
            if not video or not clip:
                issues.append(
                    ReaderIssue("malformed", "row without Input.VIDEO_ID/Input.CLIP", source=f"{path}:{line}")
                )
                continue
            values = [_number(row.get(c)) for c in MTURK_EMOTION_COLUMNS]
            sentiment = _number(row.get(MTURK_SENTIMENT_COLUMN))
            if all(v is None for v in values) and sentiment is None:
                continue  # an annotator who answered nothing (rejected or abandoned HIT)
            key = (video, clip_key(clip))
            v = votes.setdefault(key, _Votes([0.0] * len(LABEL_NAMES), [0] * len(LABEL_NAMES)))
            for i, value in enumerate(values):
                if value is not None:
                    v.sums[i] += value
                    v.counts[i] += 1
            if sentiment is not None:
                v.sentiment_sum += sentiment
                v.sentiment_count += 1
            rows_used += 1
    labels = {k: lab for k, v in votes.items() if (lab := v.labels()) is not None}
    return labels, issues, rows_used


@dataclass(frozen=True)
class SdkSegment:
    """One labelled interval of the SDK file."""

    start: float
    end: float
    labels: Labels


def sdk_labels(row: list[float]) -> Labels:
    """SDK feature row [sentiment, happy, sad, anger, surprise, disgust, fear] → emoprep order."""
    by_name = dict(zip(SDK_ORDER, (float(x) for x in row)))
    intensity = tuple(by_name[n] for n in LABEL_NAMES)
    return Labels(
        emotions=tuple(int(x > 0) for x in intensity),
        emotion_intensity=intensity,
        sentiment=by_name["sentiment"],
    )


def read_sdk(path: Path) -> dict[str, list[SdkSegment]]:
    """Read a CMU SDK computational sequence of labels: ``<root>/data/<vid>/{features,intervals}``.

    The SDK (``computational_sequence/file_ops.py``) takes the file's first top-level group as the
    root (``All Labels`` for MOSEI), whatever it is called; so do we.
    """
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py ships with tensorflow here
        raise DatasetError("reading CMU_MOSEI_Labels.csd needs h5py (pip install h5py)") from exc
    out: dict[str, list[SdkSegment]] = {}
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not an HDF5 computational sequence ({exc})") from None
    with handle:
        roots = list(handle.keys())
        if not roots or "data" not in handle[roots[0]]:
            raise DatasetError(
                f"{path}: expected '<root>/data/<video_id>/features' (CMU SDK .csd), found {roots}"
            )
        data = handle[roots[0]]["data"]
        for vid in data:
            group = data[vid]
            features = group["features"][()]
            intervals = group["intervals"][()]
            if features.ndim != 2 or features.shape[1] != len(SDK_ORDER) or len(features) != len(intervals):
                raise DatasetError(
                    f"{path}: {vid}: features {features.shape} / intervals {intervals.shape}; expected N x 7 and N x 2"
                )
            # keys of SDK files aligned to segments read "<vid>[<n>]": same video, joined by interval too
            key = re.sub(r"\[\d+\]$", "", str(vid))
            out.setdefault(key, []).extend(
                SdkSegment(float(iv[0]), float(iv[1]), sdk_labels(list(row)))
                for row, iv in zip(features, intervals)
            )
    return out


def match_intervals(
    segments: list[tuple[float, float]], labelled: list[SdkSegment], tolerance: float
) -> tuple[dict[int, int], list[int]]:
    """Pair transcript segments with SDK intervals of the same video, one-to-one.

    Distance is ``max(|Δstart|, |Δend|)``; pairs within ``tolerance`` are taken closest first, so
    two overlapping segments with similar times cannot both grab the same label row.  Returns
    ``{segment index: label index}`` and the label indices left unmatched.
    """
    candidates: list[tuple[float, int, int]] = []
    for i, (s, e) in enumerate(segments):
        for j, lab in enumerate(labelled):
            # a negative transcript start may be kept raw or clamped to 0 in the label file
            ds = min(abs(s - lab.start), abs(max(s, 0.0) - lab.start))
            d = max(ds, abs(e - lab.end))
            if d <= tolerance:
                candidates.append((d, i, j))
    candidates.sort()
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in candidates:
        if i in pairs or j in used:
            continue
        pairs[i] = j
        used.add(j)
    return pairs, [j for j in range(len(labelled)) if j not in used]
