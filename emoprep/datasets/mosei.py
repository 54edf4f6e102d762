"""CMU-MOSEI from its raw release tree (``Raw/...``), one utterance per transcript segment.

Layout of the raw release::

    Raw/Videos/Full/Combined/<vid>.mp4
    Raw/Audio/Full/WAV_16000/<vid>.wav            optional; may be stereo -> channel 0
    Raw/Transcript/Segmented/Combined/<vid>.txt   <vid>___<clip>___<start>___<end>___<text>
    Raw/Labels/*.csv                              Mechanical Turk batches, one row per annotator
    CMU_MOSEI_Labels.csd                          optional CMU SDK labels (HDF5)

The transcripts define the segments (times, text, clip ids); labels are attached to them, and
segments without labels are skipped (and counted) unless ``keep_unlabelled=true``.

Options (``dataset_options``):

``labels``           ``auto`` (default): the SDK ``.csd`` when one is found (it is the published,
                     curated label set every benchmark uses), else the MTurk CSVs; or force
                     ``sdk`` / ``mturk``.
``labels_file``      path of the ``.csd``; default: ``CMU_MOSEI_Labels.csd`` in the root, ``Labels/``
                     or ``Raw/Labels/``.
``label_tolerance``  seconds (default 0.05): how far a ``.csd`` interval may be from a transcript
                     segment's (start, end) and still be its label.
``keep_unlabelled``  ``false`` (default) / ``true``: keep segments without labels (labels all None).
``splits``           ``standard`` (default: CMU SDK standard folds, shipped in
                     ``pipelines/splits/mosei_std_folds.json``), ``mesm`` (the MESM paper's exact
                     utterance lists, 14,524 / 1,765 / 4,188, shipped in
                     ``pipelines/splits/MOSEI_split/``; every other segment is in split ``none``),
                     ``none`` (everything in split ``none``), a file (JSON ``{"train": [...],
                     "valid": [...], "test": [...]}`` or ``id,split`` lines; ids are video ids or
                     utterance ids) or a folder of ``train_split.txt`` / ``valid_split.txt`` /
                     ``test_split.txt`` id lists.  A relative path is looked up under the dataset
                     root first, then the current folder.

Ids in a split list that match no segment read are counted (``listed_ids_not_found``): with
``mesm`` that is how many of the paper's utterances this copy of the corpus lacks.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ExtractConfig
from ..errors import DatasetError, SetupError
from ..records import Labels, ReaderIssue, Utterance
from .base import ReadResult
from .mosei_labels import LABEL_NAMES, clip_key, match_intervals, read_mturk, read_sdk
from .splitfiles import SplitMap, load_packaged_split, load_split_file

VIDEO_DIR = Path("Raw/Videos/Full/Combined")
AUDIO_DIR = Path("Raw/Audio/Full/WAV_16000")
TRANSCRIPT_DIR = Path("Raw/Transcript/Segmented/Combined")
LABEL_DIR = Path("Raw/Labels")
SDK_LABEL_CANDIDATES: tuple[Path, ...] = (
    Path("CMU_MOSEI_Labels.csd"),
    Path("Labels/CMU_MOSEI_Labels.csd"),
    Path("Raw/Labels/CMU_MOSEI_Labels.csd"),
)
STANDARD_FOLDS_FILE = "mosei_std_folds.json"
MESM_SPLIT_FOLDER = "MOSEI_split"
"""The MESM authors' ``<video_id>_<clip>`` lists (``data split/MOSEI_split/`` of their repository)."""


def option_bool(value: str | None, default: bool, name: str) -> bool:
    """``true/false/1/0/yes/no`` option values (they arrive as strings from YAML or the CLI)."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise SetupError(f"option {name}={value!r}: use true or false")


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
    prefix = f"{video_id}___"
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if line.startswith(prefix):
            vid, rest = video_id, line[len(prefix) :].split("___", 3)
        else:
            parts = line.split("___", 4)
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


def find_sdk_labels(root: Path, config: ExtractConfig) -> Path | None:
    explicit = config.option("labels_file")
    if explicit:
        path = Path(explicit).expanduser()
        path = path if path.is_absolute() else (root / path if (root / path).exists() else path)
        if not path.is_file():
            raise SetupError(f"labels_file {explicit!r} not found (looked at {path})")
        return path
    for cand in SDK_LABEL_CANDIDATES:
        if (root / cand).is_file():
            return root / cand
    return None


def load_splits(root: Path, config: ExtractConfig) -> SplitMap:
    """The ``splits`` option as a map: a named scheme, a file, or a folder of id lists."""
    value = (config.option("splits") or "standard").strip()
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

    root: Path
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

    def issue(self, kind: str, message: str, source: str, utterance_id: str | None = None) -> None:
        self.issues.append(ReaderIssue(kind, message, source, utterance_id))
        self.counts[kind] += 1


class MoseiReader:
    """Reader for the raw CMU-MOSEI release; see the module docstring for layout and options."""

    name = "mosei"
    label_names = LABEL_NAMES

    def read(self, root: Path, config: ExtractConfig) -> ReadResult:
        root = Path(root).expanduser().resolve()
        tdir = root / TRANSCRIPT_DIR
        if not tdir.is_dir():
            raise DatasetError(
                f"{root}: no {TRANSCRIPT_DIR.as_posix()}/ folder; is this the raw CMU-MOSEI tree (the folder holding Raw/)?"
            )
        try:
            tolerance = float(config.option("label_tolerance") or 0.05)
        except ValueError:
            raise SetupError(f"label_tolerance={config.option('label_tolerance')!r}: use seconds, e.g. 0.05") from None
        run = _Run(
            root=root,
            keep_unlabelled=option_bool(config.option("keep_unlabelled"), False, "keep_unlabelled"),
            tolerance=tolerance,
            splits=load_splits(root, config),
        )
        self._load_labels(run, config)
        run.videos = {p.stem for p in (root / VIDEO_DIR).glob("*.mp4")} if (root / VIDEO_DIR).is_dir() else set()
        run.audios = {p.stem for p in (root / AUDIO_DIR).glob("*.wav")} if (root / AUDIO_DIR).is_dir() else set()

        utterances: list[Utterance] = []
        transcripts = sorted(tdir.glob("*.txt"))
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
    def _load_labels(run: _Run, config: ExtractConfig) -> None:
        """Pick the label source (``labels`` option) and read it."""
        label_mode = (config.option("labels") or "auto").strip().lower()
        if label_mode not in ("auto", "sdk", "mturk"):
            raise SetupError(f"option labels={label_mode!r}: use auto, sdk or mturk")
        sdk_path = find_sdk_labels(run.root, config) if label_mode in ("auto", "sdk") else None
        if label_mode == "sdk" and sdk_path is None:
            raise SetupError(
                f"labels=sdk but no CMU_MOSEI_Labels.csd in {run.root} (or Labels/, Raw/Labels/); pass labels_file=PATH"
            )
        if sdk_path is not None:
            run.use_sdk = True
            run.sdk = read_sdk(sdk_path)
            run.counts["label_source_sdk"] = 1
            return
        label_dir = run.root / LABEL_DIR
        csvs = sorted(label_dir.glob("*.csv")) if label_dir.is_dir() else []
        if not csvs and not run.keep_unlabelled:
            raise DatasetError(
                f"{run.root}: no labels: neither {LABEL_DIR.as_posix()}/*.csv (MTurk batches) nor a "
                "CMU_MOSEI_Labels.csd; pass labels_file=PATH or keep_unlabelled=true"
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
        has_video, has_audio = vid in run.videos, vid in run.audios
        video_path = str(run.root / VIDEO_DIR / f"{vid}.mp4") if has_video else None
        audio_path = str(run.root / AUDIO_DIR / f"{vid}.wav") if has_audio else None
        if not has_video and not has_audio and segments:
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
            start = seg.start
            if start < 0:
                run.issue("clamped", f"start {seg.start} < 0 set to 0", seg.source, uid)
                start = 0.0
            if seg.end <= start:
                run.issue("invalid", f"end {seg.end} <= start {start}", seg.source, uid)
                continue
            if lab is None:
                unlabelled_here += 1
                if not run.keep_unlabelled:
                    run.counts["unlabelled_skipped"] += 1
                    continue
                run.counts["unlabelled_kept"] += 1
                lab = Labels()
            if not has_video and not has_audio:
                run.issue("missing_media", f"no media for video {vid!r}", seg.source, uid)
                continue
            out.append(
                Utterance(
                    utterance_id=uid,
                    dataset=self.name,
                    video_id=vid,
                    start_s=start,
                    end_s=seg.end,
                    text=seg.text,
                    split=run.splits.lookup(uid, vid),
                    video_path=video_path,
                    audio_path=audio_path,
                    audio_channel=0 if has_audio else None,
                    labels=lab,
                )
            )
        if unlabelled_here:
            run.issues.append(
                ReaderIssue("unlabelled", f"{unlabelled_here} of {len(segments)} segments have no labels", str(tpath))
            )
        if not has_video and has_audio and out:
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
