"""``--dataset manifest``: your own recordings, one row per utterance in a CSV or JSON Lines file.

The format is documented with an example in docs/manifest.md.  The root given to the reader is the
manifest file itself; media paths in it are relative to the file's folder (or absolute).

Errors in the file's *syntax* (missing columns, unparseable numbers, unknown split names, duplicate
ids) stop the run before anything is extracted, all of them listed with ``file:line``; problems of
the *data* (a media file that does not exist, ``end <= start``) are reported as issues and the row is
left out, like the corpus readers do, so one missing clip never blocks the rest.

Option ``label_names=a,b,c`` fixes the emotion order (and rejects other names); without it the
order is the sorted set of names found in the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import ExtractConfig
from ..errors import DatasetError
from ..types import Labels, ReaderIssue, Utterance
from .base import ReadResult
from .splitfiles import _ALIASES as SPLIT_ALIASES

REQUIRED = ("utterance_id", "start", "end")
MEDIA = ("video", "audio")
KNOWN = (
    *REQUIRED,
    *MEDIA,
    "text",
    "speaker",
    "video_id",
    "split",
    "audio_channel",
    "video_region",
    "emotions",
    "category",
    "sentiment",
    "valence",
    "arousal",
    "dominance",
)
NO_EMOTION = "none"
"""``emotions`` value of a labelled utterance that shows none of the emotions (all zeros)."""


def _rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(line number, row) pairs from a CSV (header row) or JSONL file, plus syntax errors."""
    text = path.read_bytes().decode("utf-8-sig")
    errors: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{lineno}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{path}:{lineno}: expected a JSON object per line")
                continue
            rows.append((lineno, obj))
        return rows, errors
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return [], [
            f"{path}:1: empty file; expected a header row ({', '.join(REQUIRED)}, video and/or audio, ...)"
        ]
    reader.fieldnames = [h.strip() for h in reader.fieldnames]
    last = 1
    for row in reader:
        start_line = last + 1
        last = reader.line_num
        if None in row:
            errors.append(f"{path}:{start_line}: more cells than header columns")
            continue
        if not any((v or "").strip() for v in row.values()):
            continue
        rows.append((start_line, {k: v for k, v in row.items() if v is not None}))
    return rows, errors


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _float(row: dict, key: str, where: str, errors: list[str], required: bool = False) -> float | None:
    v = row.get(key)
    if _blank(v):
        if required:
            errors.append(f"{where}: '{key}' is required")
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        errors.append(f"{where}: '{key}' must be a number, got {v!r}")
        return None
    if not math.isfinite(f):
        errors.append(f"{where}: '{key}' must be finite, got {v!r}")
        return None
    return f


def _opt_float(row: dict[str, Any], key: str) -> float | None:
    """A validated optional number (syntax was checked before any utterance is built)."""
    return None if _blank(row.get(key)) else float(row[key])


def _names(value: Any) -> list[str] | None:
    if _blank(value):
        return None
    items = value if isinstance(value, list) else str(value).replace("|", ";").replace(",", ";").split(";")
    names = [str(x).strip() for x in items if str(x).strip()]
    return [] if names == [NO_EMOTION] else names


class ManifestReader:
    """Reader for a user manifest (CSV or JSONL); see docs/manifest.md."""

    name = "manifest"

    def read(self, root: Path, config: ExtractConfig) -> ReadResult:
        path = Path(root).expanduser().resolve()
        if not path.is_file():
            raise DatasetError(
                f"{path}: manifest file not found (give the .csv or .jsonl file itself as the root)"
            )
        rows, errors = _rows(path)
        if rows and path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
            missing = [c for c in REQUIRED if c not in rows[0][1]]
            if missing or not any(m in rows[0][1] for m in MEDIA):
                raise DatasetError(
                    f"{path}:1: header lacks {missing or []}{' and a video or audio column' if not any(m in rows[0][1] for m in MEDIA) else ''}; "
                    f"required: {', '.join(REQUIRED)} and video and/or audio (see docs/manifest.md)"
                )
        fixed = config.option("label_names")
        label_names = tuple(n.strip() for n in fixed.split(",") if n.strip()) if fixed else None
        found: set[str] = set()
        parsed: list[tuple[str, dict[str, Any]]] = []
        seen: dict[str, str] = {}
        for lineno, row in rows:
            where = f"{path}:{lineno}"
            unknown = sorted(set(row) - set(KNOWN))
            if unknown:
                errors.append(f"{where}: unknown column(s) {unknown}; known: {', '.join(KNOWN)}")
            uid = "" if _blank(row.get("utterance_id")) else str(row["utterance_id"]).strip()
            if not uid:
                errors.append(f"{where}: 'utterance_id' is required")
            elif uid in seen:
                errors.append(f"{where}: duplicate utterance_id {uid!r} (first at {seen[uid]})")
            else:
                seen[uid] = where
            if all(_blank(row.get(m)) for m in MEDIA):
                errors.append(f"{where}: give a 'video' or an 'audio' path (or both)")
            for key in ("start", "end"):
                _float(row, key, where, errors, required=True)
            for key in ("sentiment", "valence", "arousal", "dominance"):
                _float(row, key, where, errors)
            split = "none" if _blank(row.get("split")) else str(row["split"]).strip().lower()
            if split not in SPLIT_ALIASES:
                errors.append(f"{where}: unknown split {row.get('split')!r}; use train, valid, test or none")
            channel = row.get("audio_channel")
            if not _blank(channel) and not str(channel).strip().isdigit():
                errors.append(
                    f"{where}: 'audio_channel' must be a channel index (0, 1, ...), got {channel!r}"
                )
            region = row.get("video_region")
            if not _blank(region) and str(region).strip() not in ("left", "right"):
                errors.append(f"{where}: 'video_region' must be left or right, got {region!r}")
            names = _names(row.get("emotions"))
            if names:
                found.update(names)
                if label_names is not None and set(names) - set(label_names):
                    errors.append(
                        f"{where}: emotion(s) {sorted(set(names) - set(label_names))} not in label_names {list(label_names)}"
                    )
            parsed.append((where, row))
        if errors:
            shown = "\n  ".join(errors[:50])
            more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
            raise DatasetError(f"{len(errors)} error(s) in the manifest:\n  {shown}{more}")
        names_order = label_names if label_names is not None else tuple(sorted(found))
        return self._build(path, parsed, names_order)

    def _build(
        self, path: Path, parsed: list[tuple[str, dict[str, Any]]], names: tuple[str, ...]
    ) -> ReadResult:
        base = path.parent
        issues: list[ReaderIssue] = []
        counts: Counter[str] = Counter()
        utterances: list[Utterance] = []
        for where, row in parsed:
            uid = str(row["utterance_id"]).strip()
            start, end = float(row["start"]), float(row["end"])
            media: dict[str, str | None] = {}
            missing = []
            for key in MEDIA:
                if _blank(row.get(key)):
                    media[key] = None
                    continue
                p = Path(str(row[key]).strip()).expanduser()
                p = p if p.is_absolute() else base / p
                if p.is_file():
                    media[key] = str(p)
                else:
                    media[key] = None
                    missing.append(str(p))
            if missing:
                issues.append(ReaderIssue("missing_media", f"not found: {', '.join(missing)}", where, uid))
                counts["missing_media"] += 1
                if media["video"] is None and media["audio"] is None:
                    continue
            if start < 0:
                issues.append(ReaderIssue("clamped", f"start {start} < 0 set to 0", where, uid))
                counts["clamped"] += 1
                start = 0.0
            if end <= start:
                issues.append(ReaderIssue("invalid", f"end {end} <= start {start}", where, uid))
                counts["invalid"] += 1
                continue
            emo = _names(row.get("emotions"))
            labels = Labels(
                emotions=None if emo is None else tuple(int(n in emo) for n in names),
                sentiment=_opt_float(row, "sentiment"),
                valence=_opt_float(row, "valence"),
                arousal=_opt_float(row, "arousal"),
                dominance=_opt_float(row, "dominance"),
                category=None if _blank(row.get("category")) else str(row["category"]).strip(),
            )
            first_media = media["video"] or media["audio"]
            text = row.get("text")
            utterances.append(
                Utterance(
                    utterance_id=uid,
                    dataset=self.name,
                    video_id=str(row["video_id"]).strip()
                    if not _blank(row.get("video_id"))
                    else Path(first_media).stem,
                    start_s=start,
                    end_s=end,
                    text=None if text is None else str(text).strip(),
                    speaker=None if _blank(row.get("speaker")) else str(row["speaker"]).strip(),
                    split=SPLIT_ALIASES[
                        "none" if _blank(row.get("split")) else str(row["split"]).strip().lower()
                    ],
                    video_path=media["video"],
                    audio_path=media["audio"],
                    audio_channel=None
                    if _blank(row.get("audio_channel"))
                    else int(str(row["audio_channel"]).strip()),
                    video_region=None
                    if _blank(row.get("video_region"))
                    else str(row["video_region"]).strip(),
                    labels=labels,
                )
            )
        counts["rows"] = len(parsed)
        counts["utterances"] = len(utterances)
        for u in utterances:
            counts[f"split_{u.split}"] += 1
        return ReadResult(utterances=utterances, label_names=names, issues=issues, counts=dict(counts))
