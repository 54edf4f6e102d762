"""``--dataset recordings``: your own recordings, one row per utterance in a CSV or JSON Lines file.

The format is documented with an example in docs/recordings.md.  The root given to the reader is the
manifest file itself; media paths in it are relative to the file's folder (or absolute).

Errors in the file's *syntax* (missing columns, unparseable numbers, unknown split names, duplicate
ids) stop the run before anything is extracted, all of them listed with ``file:line``; problems of
the *data* (a media file that does not exist, ``end <= start``, a start at or beyond the end of the
media) are reported as issues and the row is left out, like the corpus readers do, so one missing
clip never blocks the rest.  Times are repaired and counted by the clean-up every reader shares
(:mod:`emoprep.extraction.readers.segments`): a negative start becomes 0 (``clamped``), an end beyond the media
becomes the media's end (``clamped_end``), so ``end_s`` always says where the row's features stop.

The list and its media may live on object storage: ``--root s3://bucket/list.csv``, cells that are
URLs (``s3://bucket/v01.mp4``) or relative to the list's URL.  The reader then reads the list, checks
that each recording exists and probes its header (ranged reads) through fsspec with the run's storage
options; the recordings themselves are fetched by the workers (:mod:`emoprep.extraction.media.fetch`).

Default ``video_id``: the media file's path relative to the list's folder, without extension
(``Raw/v01/0.mp4`` -> ``Raw/v01/0``; absolute for files outside that folder), so clips of
different recordings that share a file name (``0.mp4``, ``1.mp4`` in every folder) do not share an
id; files that differ only in extension keep it.  Explicit ids are kept as given, but one id may
not name two different files.

Options: :class:`emoprep.extraction.config.reader_options.RecordingsOptions`; ``label_names=a,b,c`` fixes the
emotion order (and rejects other names); without it the order is the sorted set of names found in
the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
from collections import Counter
from collections.abc import Mapping
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import DatasetError
from ...format.storage import RemoteFile, is_file, is_url, join_url, redact
from ..config import ExtractConfig
from ..config.reader_options import RecordingsOptions, parse_options
from ..media.probe import media_end_s
from ..records import Labels, ReaderIssue, Utterance
from .base import ReadResult
from .segments import SegmentCleaner, concurrently
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


def _rows(path: Path | RemoteFile) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
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


def _media_path(value: Any, base: Path | str) -> Path | str:
    """A media cell as a normalised absolute path or a URL (relative cells: relative to the list's
    folder, which is a URL prefix when the list is on object storage)."""
    cell = str(value).strip()
    if is_url(cell):
        return cell
    p = Path(cell).expanduser()
    if isinstance(base, str) and not p.is_absolute():
        return join_url(base, cell)
    return Path(os.path.normpath(p if p.is_absolute() else base / p))


def _relative_id(path: Path | str, base: Path | str) -> str:
    """``path`` relative to ``base`` with '/' separators (through symlinks if only that puts it
    inside ``base``); the absolute path for a file outside ``base``, which is as unique and more
    readable than a chain of ``..``.  URLs: relative to a URL ``base`` they lie under, else whole."""
    if isinstance(path, str) or isinstance(base, str):
        shown, prefix = (redact(path) if isinstance(path, str) else path.as_posix()), f"{base}/"
        return shown[len(prefix):] if isinstance(base, str) and str(path).startswith(prefix) else shown
    for candidate in (path, path.resolve()):
        try:
            rel = Path(os.path.relpath(candidate, base))
        except ValueError:  # another drive (Windows): no relative path exists
            continue
        if rel.parts[:1] != ("..",):
            return rel.as_posix()
    return path.as_posix()


def _without_suffix(rel: str) -> str:
    if is_url(rel):  # PurePosixPath would fold the '//' after the scheme
        return posixpath.splitext(rel)[0]
    return str(PurePosixPath(rel).with_suffix("")) if PurePosixPath(rel).suffix else rel


def default_video_ids(files: list[Path | str], base: Path | str) -> dict[Path | str, str]:
    """Default ``video_id`` of each media file: its path relative to ``base`` without extension,
    with the extension kept for files whose ids would otherwise coincide (``a.mp4``, ``a.mov``)."""
    rel = {f: _relative_id(f, base) for f in dict.fromkeys(files)}
    stem = {f: _without_suffix(r) for f, r in rel.items()}
    users = Counter(stem.values())
    return {f: (stem[f] if users[stem[f]] == 1 else rel[f]) for f in rel}


def _video_ids(parsed: list[tuple[str, dict[str, Any]]], base: Path | str, errors: list[str]) -> list[str]:
    """Each row's ``video_id``: its explicit one, else the default of its file (the row's video,
    else its audio, as written, found or not).  One id naming two different files is an error in
    ``errors``: two recordings would look like one to anything that groups rows by video."""
    rows = [(where, row) for where, row in parsed if not all(_blank(row.get(m)) for m in MEDIA)]
    files = [_media_path(row["video"] if not _blank(row.get("video")) else row["audio"], base) for _, row in rows]
    defaults = default_video_ids(files, base)
    ids: list[str] = []
    first: dict[str, tuple[Path | str, str, bool]] = {}
    for (where, row), f in zip(rows, files):
        explicit = not _blank(row.get("video_id"))
        vid = str(row["video_id"]).strip() if explicit else defaults[f]
        ids.append(vid)
        seen = first.setdefault(vid, (f, where, explicit))
        if seen[0] != f and (explicit or seen[2]):
            errors.append(
                f"{where}: video_id {vid!r} names {f} here but {seen[0]} at {seen[1]}; "
                "give each recording its own video_id"
            )
    return ids


class RecordingsReader:
    """Reader for a list of the user's own recordings (CSV or JSONL); see docs/recordings.md.

    Registered as ``recordings`` and, under its old name, ``manifest``; rows record the name the
    run was given (``config.dataset``), so runs under the old name keep their output.
    """

    name = "recordings"
    reads_urls = True
    """The list and its media may be URLs (``s3://bucket/list.csv``; cells ``s3://...`` or relative)."""

    def read(self, root: Path | str, config: ExtractConfig, storage_options: Mapping[str, Any] | None = None
             ) -> ReadResult:
        options = parse_options(RecordingsOptions, config.dataset_options)  # fails before the file is read
        self._storage = dict(storage_options or {})
        path: Path | RemoteFile = (RemoteFile(str(root), self._storage) if is_url(str(root))
                                   else Path(root).expanduser().resolve())
        if not path.is_file():
            raise DatasetError(
                f"{path}: recordings list not found (give the .csv or .jsonl file itself as the root)"
            )
        rows, errors = _rows(path)
        if rows and path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
            missing = [c for c in REQUIRED if c not in rows[0][1]]
            if missing or not any(m in rows[0][1] for m in MEDIA):
                raise DatasetError(
                    f"{path}:1: header lacks {missing or []}{' and a video or audio column' if not any(m in rows[0][1] for m in MEDIA) else ''}; "
                    f"required: {', '.join(REQUIRED)} and video and/or audio (see docs/recordings.md)"
                )
        label_names = options.label_name_tuple
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
        video_ids = _video_ids(parsed, path.parent, errors)
        if errors:
            shown = "\n  ".join(errors[:50])
            more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
            raise DatasetError(f"{len(errors)} error(s) in the recordings list:\n  {shown}{more}")
        names_order = label_names if label_names is not None else tuple(sorted(found))
        return self._build(path, parsed, names_order, video_ids, config.dataset)

    def _build(
        self, path: Path | RemoteFile, parsed: list[tuple[str, dict[str, Any]]], names: tuple[str, ...], video_ids: list[str],
        dataset: str,
    ) -> ReadResult:
        base = path.parent
        issues: list[ReaderIssue] = []
        counts: Counter[str] = Counter()
        utterances: list[Utterance] = []
        segments = SegmentCleaner(issues, counts, media_end=partial(media_end_s, options=self._storage))
        # each recording looked up once, however many rows cut it, several at a time (a URL's is a request)
        paths = list(dict.fromkeys(_media_path(row[key], base) for _, row in parsed for key in MEDIA
                                   if not _blank(row.get(key))))
        exists = dict(zip(paths, concurrently(partial(is_file, options=self._storage), paths)))
        segments.probe_ahead(str(p) for p in paths if exists[p])
        for (where, row), video_id in zip(parsed, video_ids):
            uid = str(row["utterance_id"]).strip()
            start, end = float(row["start"]), float(row["end"])
            media: dict[str, str | None] = {}
            missing = []
            for key in MEDIA:
                if _blank(row.get(key)):
                    media[key] = None
                    continue
                p = _media_path(row[key], base)
                if exists[p]:
                    media[key] = str(p)
                else:
                    media[key] = None
                    missing.append(redact(str(p)))
            if missing:
                issues.append(ReaderIssue("missing_media", f"not found: {', '.join(missing)}", where, uid))
                counts["missing_media"] += 1
                if media["video"] is None and media["audio"] is None:
                    continue
            times = segments.times(uid, start, end, where, (media["video"], media["audio"]))
            if times is None:
                continue
            start, end = times
            emo = _names(row.get("emotions"))
            labels = Labels(
                emotions=None if emo is None else tuple(int(n in emo) for n in names),
                sentiment=_opt_float(row, "sentiment"),
                valence=_opt_float(row, "valence"),
                arousal=_opt_float(row, "arousal"),
                dominance=_opt_float(row, "dominance"),
                category=None if _blank(row.get("category")) else str(row["category"]).strip(),
            )
            text = row.get("text")
            utterances.append(
                Utterance(
                    utterance_id=uid,
                    dataset=dataset,
                    video_id=video_id,
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

