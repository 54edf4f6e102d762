"""CMU-MOSEI from its raw release tree (``Raw/...``), one utterance per transcript segment.

The layout of the raw release is declared in :class:`emoprep.extraction.readers.layouts.MoseiLayout`.

The transcripts define the segments (times, text, clip ids); labels are attached to them, and
segments without labels are skipped (and counted) unless ``keep_unlabelled=true``.

Options: :class:`emoprep.extraction.config.reader_options.MoseiOptions` (types, defaults, one docstring each).
``labels=auto`` prefers the SDK ``.csd`` because it is the published, curated label set every
benchmark uses.  ``splits``: ``standard`` is shipped in ``pipelines/splits/mosei_std_folds.json``,
``mesm`` in ``pipelines/splits/MOSEI_split/`` (every other segment is in split ``none``); ids in a
split file are video ids or utterance ids; a relative path is looked up under the dataset root
first, then the current folder.

Ids in a split list that match no segment read are counted (``listed_ids_not_found``): with
``mesm`` that is how many of the paper's utterances this copy of the corpus lacks.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DatasetError, SetupError
from ..config import ExtractConfig
from ..config.reader_options import MoseiOptions, parse_options
from ..records import Labels, ReaderIssue, Utterance
from .base import ReadResult
from .layouts import MoseiLayout
from .media_index import LocalMedia, MediaIndex
from .mosei_labels import LABEL_NAMES, clip_key, match_intervals, read_mturk, read_sdk
from .segments import SegmentCleaner
from .splitfiles import SplitMap, load_packaged_split, load_split_file

STANDARD_FOLDS_FILE = "mosei_std_folds.json"
MESM_SPLIT_FOLDER = "MOSEI_split"
"""The MESM authors' ``<video_id>_<clip>`` lists (``data split/MOSEI_split/`` of their repository)."""


@dataclass(frozen=True)
class Segment:
    """One transcript line, parsed but not yet validated or labelled."""

    video_id: str
    clip: str
    start: float
    end: float
    text: str
    source: str


def parse_transcript(path: Path, video_id: str) -> tuple[list[Segment], list[ReaderIssue]]:
    """Parse one segmented transcript.

    Lines are split on ``\\n`` only (``str.splitlines`` would also break on form feeds and Unicode
    line separators, which do occur inside YouTube captions) and a trailing ``\\r`` is dropped.
    When a line starts with the file's own video id plus ``___`` that prefix is removed first, so an
    id ending in ``_`` cannot shift the fields; otherwise ``split('___', 4)`` is used.
    """
    segments: list[Segment] = []
    issues: list[ReaderIssue] = []
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    sep = MoseiLayout.FIELD_SEP
    prefix = f"{video_id}{sep}"
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if line.startswith(prefix):
            vid, rest = video_id, line[len(prefix) :].split(sep, 3)
        else:
            parts = line.split(sep, 4)
            vid, rest = parts[0].strip(), parts[1:]
        if len(rest) < 4:
            issues.append(
                ReaderIssue(
                    "malformed", f"expected <vid>___<clip>___<start>___<end>___<text>: {line[:80]!r}", where
                )
            )
            continue
        clip, start_s, end_s, utter_text = rest
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            issues.append(ReaderIssue("malformed", f"start/end not numbers: {start_s!r}, {end_s!r}", where))
            continue
        if not (math.isfinite(start) and math.isfinite(end)):
            issues.append(ReaderIssue("malformed", f"start/end not finite: {start_s!r}, {end_s!r}", where))
            continue
        if vid != video_id:
            issues.append(
                ReaderIssue("malformed", f"line names video {vid!r} in the transcript of {video_id!r}", where)
            )
            continue
        segments.append(Segment(video_id, clip.strip(), start, end, utter_text.strip(), where))
    return segments, issues


def find_sdk_labels(layout: MoseiLayout, explicit: str | None) -> Path | None:
    """The ``.csd`` to read: ``labels_file`` (relative to the root when it exists there), else the
    first of the layout's candidates that exists, else None."""
    root = layout.root
    if explicit:
        path = Path(explicit).expanduser()
        path = path if path.is_absolute() else (root / path if (root / path).exists() else path)
        if not path.is_file():
            raise SetupError(f"labels_file {explicit!r} not found (looked at {path})")
        return path
    return next((p for p in layout.sdk_label_candidates() if p.is_file()), None)


def load_splits(root: Path, value: str) -> SplitMap:
    """The ``splits`` option as a map: a named scheme, a file, or a folder of id lists."""
    if value == "standard":
        return load_packaged_split(STANDARD_FOLDS_FILE)
    if value == "mesm":
        return load_packaged_split(MESM_SPLIT_FOLDER)
    if value == "none":
        return SplitMap({}, "none")
    return load_split_file(value, root)


@dataclass
class _Run:
    """The state of one ``read``: options, label source, media index, and what was found."""

    layout: MoseiLayout
    media: MediaIndex
    keep_unlabelled: bool
    tolerance: float
    splits: SplitMap
    use_sdk: bool = False
    mturk: dict[tuple[str, str], Labels] = field(default_factory=dict)
    sdk: dict = field(default_factory=dict)
    videos: set[str] = field(default_factory=set)
    audios: set[str] = field(default_factory=set)
    issues: list[ReaderIssue] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    segments: SegmentCleaner = field(init=False)

    def __post_init__(self) -> None:
        self.segments = SegmentCleaner(self.issues, self.counts, self.media.end_s)

    def issue(self, kind: str, message: str, source: str, utterance_id: str | None = None) -> None:
        self.issues.append(ReaderIssue(kind, message, source, utterance_id))
        self.counts[kind] += 1

    def media_of(self, vid: str) -> tuple[str | None, str | None]:
        """Where video ``vid``'s recording and its WAV are (None for one that is absent)."""
        video = self.media.location(self.layout.video(vid)) if vid in self.videos else None
        audio = self.media.location(self.layout.audio(vid)) if vid in self.audios else None
        return video, audio


class MoseiReader:
    """Reader for the raw CMU-MOSEI release; see the module docstring for layout and options."""

    name = "mosei"
    label_names = LABEL_NAMES

    metadata = MoseiLayout.METADATA
    """The files read (all but the media): what a URL root's metadata mirror holds."""

    def read(self, root: Path, config: ExtractConfig, media: MediaIndex | None = None) -> ReadResult:
        """The utterances of the tree at ``root``; ``media`` says where its recordings are (default:
        the files under ``root``; a URL root's mirror gives its :class:`RemoteMedia`)."""
        options = parse_options(MoseiOptions, config.dataset_options)  # fails before any file is read
        layout = MoseiLayout(Path(root).expanduser().resolve())
        if not layout.transcript_dir.is_dir():
            raise DatasetError(
                f"{layout.root}: no {MoseiLayout.TRANSCRIPT_DIR}/ folder; "
                "is this the raw CMU-MOSEI tree (the folder holding Raw/)?"
            )
        run = _Run(
            layout=layout,
            media=media or LocalMedia(),
            keep_unlabelled=options.keep_unlabelled,
            tolerance=options.label_tolerance,
            splits=load_splits(layout.root, options.splits),
        )
        self._load_labels(run, options)
        run.videos = run.media.stems(layout.video_dir, MoseiLayout.VIDEO_SUFFIX)
        run.audios = run.media.stems(layout.audio_dir, MoseiLayout.AUDIO_SUFFIX)

        utterances: list[Utterance] = []
        transcripts = layout.transcripts()
        run.segments.probe_ahead(path for t in transcripts for path in run.media_of(t.stem))
        for tpath in transcripts:
            utterances += self._read_video(run, tpath)

        label_videos = set(run.sdk) if run.use_sdk else {v for v, _ in run.mturk}
        run.counts["labelled_videos_without_transcript"] = len(label_videos - {t.stem for t in transcripts})
        run.counts["utterances"] = len(utterances)
        for u in utterances:
            run.counts[f"split_{u.split}"] += 1
        if len(run.splits):
            found = run.splits.unmatched({u.utterance_id for u in utterances}, {u.video_id for u in utterances})
            run.counts["listed_ids_not_found"] = len(found)
        return ReadResult(utterances=utterances, label_names=LABEL_NAMES, issues=run.issues, counts=dict(run.counts))

    @staticmethod
    def _load_labels(run: _Run, options: MoseiOptions) -> None:
        """Pick the label source (``labels`` option) and read it."""
        label_mode = options.labels
        sdk_path = find_sdk_labels(run.layout, options.labels_file) if label_mode in ("auto", "sdk") else None
        if label_mode == "sdk" and sdk_path is None:
            raise SetupError(
                f"labels=sdk but none of {', '.join(MoseiLayout.SDK_LABEL_CANDIDATES)} in {run.layout.root}; "
                "pass labels_file=PATH"
            )
        if sdk_path is not None:
            run.use_sdk = True
            run.sdk = read_sdk(sdk_path)
            run.counts["label_source_sdk"] = 1
            return
        csvs = run.layout.label_csvs()
        if not csvs and not run.keep_unlabelled:
            raise DatasetError(
                f"{run.layout.root}: no labels: neither {MoseiLayout.LABEL_DIR}/{MoseiLayout.LABEL_CSV_GLOB} "
                f"(MTurk batches) nor a {MoseiLayout.SDK_LABEL_NAME}; pass labels_file=PATH or keep_unlabelled=true"
            )
        run.mturk, label_issues, rows = read_mturk(csvs)
        run.issues.extend(label_issues)
        run.counts["label_source_mturk"] = 1
        run.counts["annotator_rows"] = rows

    def _read_video(self, run: _Run, tpath: Path) -> list[Utterance]:
        """The utterances of one transcript file, with everything skipped or repaired reported."""
        vid = tpath.stem
        run.counts["transcripts"] += 1
        segments, seg_issues = parse_transcript(tpath, vid)
        run.issues.extend(seg_issues)
        run.counts["malformed"] += len(seg_issues)
        run.counts["segments"] += len(segments)
        labels = self._labels_for(vid, segments, run.mturk, run.sdk, run.use_sdk, run.tolerance, run.counts, run.issues)
        video_path, audio_path = run.media_of(vid)
        if video_path is None and audio_path is None and segments:
            run.issues.append(
                ReaderIssue("missing_media", f"no {vid}.mp4 nor {vid}.wav: its segments are skipped", str(tpath))
            )
        out: list[Utterance] = []
        ids_here: set[str] = set()
        unlabelled_here = 0
        for seg, lab in zip(segments, labels):
            uid = f"{vid}_{seg.clip}"
            if uid in ids_here:
                run.issue("invalid", f"duplicate clip id {seg.clip!r}; first one kept", seg.source, uid)
                continue
            ids_here.add(uid)
            times = run.segments.times(uid, seg.start, seg.end, seg.source, (video_path, audio_path))
            if times is None:
                continue
            start, end = times
            if lab is None:
                unlabelled_here += 1
                if not run.keep_unlabelled:
                    run.counts["unlabelled_skipped"] += 1
                    continue
                run.counts["unlabelled_kept"] += 1
                lab = Labels()
            if video_path is None and audio_path is None:
                run.issue("missing_media", f"no media for video {vid!r}", seg.source, uid)
                continue
            out.append(
                Utterance(
                    utterance_id=uid,
                    dataset=self.name,
                    video_id=vid,
                    start_s=start,
                    end_s=end,
                    text=seg.text,
                    split=run.splits.lookup(uid, vid),
                    video_path=video_path,
                    audio_path=audio_path,
                    audio_channel=0 if audio_path is not None else None,
                    labels=lab,
                )
            )
        if unlabelled_here:
            run.issues.append(
                ReaderIssue("unlabelled", f"{unlabelled_here} of {len(segments)} segments have no labels", str(tpath))
            )
        if video_path is None and audio_path is not None and out:
            run.issues.append(
                ReaderIssue("missing_media", f"no video {vid}.mp4: visual features will be missing", str(tpath))
            )
            run.counts["missing_video"] += 1
        return out

    @staticmethod
    def _labels_for(
        vid: str,
        segments: list[Segment],
        mturk: dict[tuple[str, str], Labels],
        sdk: dict,
        use_sdk: bool,
        tolerance: float,
        counts: Counter,
        issues: list[ReaderIssue],
    ) -> list[Labels | None]:
        """Labels of each segment of one video, by clip id (MTurk) or by interval (SDK)."""
        if not use_sdk:
            return [mturk.get((vid, clip_key(s.clip))) for s in segments]
        rows = sdk.get(vid, [])
        pairs, unmatched = match_intervals([(s.start, s.end) for s in segments], rows, tolerance)
        if unmatched:
            counts["sdk_labels_unmatched"] += len(unmatched)
            spans = ", ".join(f"[{rows[j].start:g}, {rows[j].end:g}]" for j in unmatched[:5])
            issues.append(
                ReaderIssue(
                    "unlabelled",
                    f"{len(unmatched)} labelled interval(s) of {vid!r} match no transcript segment: {spans}",
                    vid,
                )
            )
        return [rows[pairs[i]].labels if i in pairs else None for i in range(len(segments))]
