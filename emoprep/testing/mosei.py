"""A miniature CMU-MOSEI release tree (transcripts, MTurk label CSVs, the SDK labels file, media), in
the real layout with its irregularities, for reader and extraction tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..extraction.readers.layouts import MoseiLayout
from .media import write_tone_video, write_tone_wav

MOSEI_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


@dataclass(frozen=True)
class MoseiSegment:
    """One transcript segment of a mini MOSEI tree and, optionally, its annotator votes.

    ``votes``: one mapping per annotator (MTurk row) with any of the six emotion names and
    ``sentiment``; a value of ``None`` writes an empty cell (a missing answer).  ``None`` for
    ``votes`` means the clip is unlabelled.  ``start_text``/``end_text`` override how the times
    are written (the raw release's precision varies: ``0.0``, ``8.025``, ``12.3900000001``).
    """

    video_id: str
    clip: str
    start: float
    end: float
    text: str
    votes: tuple[Mapping[str, float | None], ...] | None = None
    start_text: str | None = None
    end_text: str | None = None

    @property
    def utterance_id(self) -> str:
        return f"{self.video_id}_{self.clip}"

    def line(self) -> str:
        s = self.start_text if self.start_text is not None else repr(float(self.start))
        e = self.end_text if self.end_text is not None else repr(float(self.end))
        return MoseiLayout.transcript_line(self.video_id, self.clip, s, e, self.text)


def _votes(*rows: Mapping[str, float | None]) -> tuple[Mapping[str, float | None], ...]:
    return tuple(rows)


DEFAULT_MOSEI_STD_SPLITS: dict[str, str] = {
    "-3g5yACwYnA": "train",
    "_0efYOjQYRc": "test",
    "81406": "train",
    "--qXJuDtHPw": "valid",
    "zzLocalVid01": "none",
}
"""Split of each video of :func:`default_mosei_segments` in the CMU standard folds (facts about the
SDK's lists, for assertions)."""


def default_mosei_segments() -> list[MoseiSegment]:
    """A small corpus that contains every irregularity of the raw release we know of.

    * ``-3g5yACwYnA`` (std train fold; id starts with ``-``): CRLF file, overlapping segments,
      text containing ``___``, a trailing-space line, one unlabelled clip;
    * ``_0efYOjQYRc`` (std test; starts with ``_``): negative start, text with a Unicode line
      separator and a form feed (``str.splitlines`` would break them), a missing answer;
    * ``81406`` (std train; numeric id): an ``end <= start`` segment and no WAV;
    * ``--qXJuDtHPw`` (std valid): clip ids written ``3``/``10``;
    * ``zzLocalVid01`` (in no fold): split ``none``.
    """
    S = MoseiSegment
    return [
        S(
            "-3g5yACwYnA",
            "0",
            0.0,
            1.5,
            "Deloitte announced that ___ profits rose.",
            _votes(
                {"happiness": 2, "sentiment": 2},
                {"happiness": 1, "surprise": 1, "sentiment": 1},
                {"sentiment": 0},
            ),
        ),
        S(
            "-3g5yACwYnA",
            "1",
            1.2,
            2.6,
            "overlaps the first one  ",
            _votes(
                {"anger": 3, "disgust": 1, "sentiment": -3},
                {"anger": 2, "sentiment": -2},
                {"anger": 1, "sentiment": -1},
            ),
        ),
        S("-3g5yACwYnA", "2", 2.6, 3.4, "this clip was never annotated", None),
        S(
            "-3g5yACwYnA",
            "3",
            3.4,
            4.0,
            'so | it , goes "quoted"',
            _votes({"sadness": 1, "sentiment": -0.5}, {"fear": 2, "sentiment": 0.5}),
        ),
        S(
            "_0efYOjQYRc",
            "0",
            -0.042,
            1.0,
            "negative\u2028start and a\x0cform feed",
            _votes({"happiness": 3, "sentiment": 3}, {"happiness": None, "sentiment": 2}),
        ),
        S(
            "_0efYOjQYRc",
            "1",
            1.0,
            2.25,
            "plain",
            _votes({"sentiment": 0}, {"sentiment": 1}),
            start_text="1.0000000001",
            end_text="2.25",
        ),
        S("81406", "0", 0.5, 1.75, "numeric id", _votes({"disgust": 2, "sentiment": -1})),
        S("81406", "1", 2.0, 2.0, "zero length", _votes({"anger": 1, "sentiment": 0})),
        S("--qXJuDtHPw", "3", 0.0, 1.0, "clip three", _votes({"surprise": 3, "sentiment": 1})),
        S("--qXJuDtHPw", "10", 1.0, 2.5, "clip ten", _votes({"fear": 1, "sadness": 2, "sentiment": -2})),
        S("zzLocalVid01", "0", 0.25, 1.25, "not in any fold", _votes({"happiness": 1, "sentiment": 1})),
    ]


MTURK_EXTRA_COLUMNS: tuple[str, ...] = (
    "HITId",
    "HITTypeId",
    "Title",
    "WorkerId",
    "AssignmentStatus",
    "Input.START",
    "Input.END",
    "Answer.comments",
)


def write_mturk_csvs(
    label_dir: Path, segments: Iterable[MoseiSegment], batches: int = 2, bom: bool = True
) -> list[Path]:
    """Write MTurk batch CSVs like the raw release's: one row per annotator, extra columns,
    quoted free-text comments (with commas, quotes and newlines), empty cells for missing answers,
    a UTF-8 BOM, and rows of one clip spread over several batch files."""
    label_dir.mkdir(parents=True, exist_ok=True)
    answer_cols = [f"Answer.{e}" for e in MOSEI_EMOTIONS] + ["Answer.sentiment"]
    # columns in a scrambled order, as in real exports
    header = [
        "HITId",
        "Input.VIDEO_ID",
        *MTURK_EXTRA_COLUMNS[1:5],
        "Answer.sentiment",
        "Input.CLIP",
        *[f"Answer.{e}" for e in reversed(MOSEI_EMOTIONS)],
        "Input.START",
        "Input.END",
        "Answer.comments",
    ]
    rows: list[list[dict[str, str]]] = [[] for _ in range(batches)]
    n = 0
    for seg in segments:
        for k, vote in enumerate(seg.votes or ()):
            row = {h: "" for h in header}
            row.update(
                {
                    "HITId": f"3X{n:06d}",
                    "HITTypeId": "3ABC",
                    "Title": "Rate the emotions, please",
                    "WorkerId": f"A{k:04d}",
                    "AssignmentStatus": "Approved",
                    "Input.VIDEO_ID": seg.video_id,
                    "Input.CLIP": seg.clip,
                    "Input.START": str(seg.start),
                    "Input.END": str(seg.end),
                    "Answer.comments": 'she said "no, never",\nthen left' if n % 3 == 0 else "",
                }
            )
            for col in answer_cols:
                name = col.split(".", 1)[1]
                if name in vote:
                    value = vote[name]
                    row[col] = "" if value is None else f"{value:g}"
                elif name != "sentiment":
                    row[col] = "0"  # Turk writes 0 for an emotion left at "not present"
            rows[n % batches].append(row)
            n += 1
    paths = []
    for b, batch in enumerate(rows):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(batch)
        path = label_dir / f"Batch_{2801000 + b}_batch_results.csv"
        path.write_bytes((("\ufeff" if bom else "") + buf.getvalue()).encode("utf-8"))
        paths.append(path)
    return paths


SDK_MOSEI_ORDER: tuple[str, ...] = (
    "sentiment",
    "happiness",
    "sadness",
    "anger",
    "surprise",
    "disgust",
    "fear",
)


def write_mosei_csd(
    path: Path,
    rows: Mapping[str, Sequence[tuple[float, float, Sequence[float]]]],
    root_name: str = "All Labels",
) -> Path:
    """Write labels as a CMU SDK computational sequence (HDF5), as ``write_CSD`` of the SDK does:
    ``<root_name>/data/<video_id>/{features (N x 7), intervals (N x 2)}`` plus ``metadata``.

    ``rows[vid]`` holds ``(start, end, features)`` with features in the SDK order
    [sentiment, happy, sad, anger, surprise, disgust, fear], in the order they are to be stored.
    """
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        root = f.create_group(root_name)
        data = root.create_group("data")
        for vid, items in rows.items():
            g = data.create_group(vid)
            g.create_dataset(
                "features", data=np.asarray([list(r[2]) for r in items], dtype=np.float32).reshape(-1, 7)
            )
            g.create_dataset(
                "intervals", data=np.asarray([[r[0], r[1]] for r in items], dtype=np.float64).reshape(-1, 2)
            )
        meta = root.create_group("metadata")
        for key, value in (("root name", root_name), ("dimension names", list(SDK_MOSEI_ORDER))):
            ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = __import__("json").dumps(value)
    return path


def sdk_features_from_votes(votes: Sequence[Mapping[str, float | None]]) -> list[float]:
    """Mean annotator scores in the SDK's column order (what the SDK file would hold).

    An emotion an annotator did not mention counts as 0 (as in the MTurk CSVs written here); an
    explicit ``None`` is a missing answer and is left out of the mean.
    """

    def mean(name: str) -> float:
        default = None if name == "sentiment" else 0.0
        vals = [float(x) for v in votes if (x := v.get(name, default)) is not None]
        return sum(vals) / len(vals) if vals else 0.0

    return [mean(n) for n in SDK_MOSEI_ORDER]


@dataclass
class MoseiTree:
    """What :func:`build_mosei_tree` wrote (paths and the specs, for assertions)."""

    root: Path
    segments: list[MoseiSegment]
    videos: list[str]
    wav_videos: set[str] = field(default_factory=set)
    csd_path: Path | None = None
    label_csvs: list[Path] = field(default_factory=list)


def build_mosei_tree(
    root: Path,
    segments: Sequence[MoseiSegment] | None = None,
    *,
    media: bool = False,
    no_wav: Iterable[str] = ("81406",),
    no_video: Iterable[str] = (),
    crlf: Iterable[str] = ("-3g5yACwYnA",),
    extra_lines: Mapping[str, Sequence[str]] | None = None,
    line_order: Mapping[str, Sequence[int]] | None = None,
    mturk: bool = True,
    csd: bool = False,
    stereo_wav: bool = True,
) -> MoseiTree:
    """Write a raw-layout CMU-MOSEI tree under ``root``.

    ``segments`` defaults to :func:`default_mosei_segments`.  ``extra_lines[vid]`` are raw lines
    appended to that video's transcript (irregular lines for parser tests); ``line_order[vid]``
    permutes the video's lines.  Media (``media=True``) are an mp4 per video (tone + frames) and a
    16 kHz WAV (stereo by default, tone 440 Hz left / 880 Hz right) except for ``no_wav`` videos;
    without ``media`` the files are still created, empty, so that media checks see them.
    ``csd=True`` also writes ``CMU_MOSEI_Labels.csd`` at the root from the votes' means.
    """
    root = Path(root)
    segments = list(default_mosei_segments() if segments is None else segments)
    extra_lines = extra_lines or {}
    line_order = line_order or {}
    crlf, no_wav, no_video = set(crlf), set(no_wav), set(no_video)
    videos = list(dict.fromkeys(s.video_id for s in segments))  # in order of first appearance
    layout = MoseiLayout(root)
    for d in (layout.transcript_dir, layout.video_dir, layout.audio_dir):
        d.mkdir(parents=True, exist_ok=True)
    wav_videos: set[str] = set()
    for vid in videos:
        segs = [s for s in segments if s.video_id == vid]
        lines = [s.line() for s in segs]
        if vid in line_order:
            lines = [lines[i] for i in line_order[vid]]
        # the first line of a CRLF file also gets trailing spaces, as some raw lines have
        lines = [ln + ("   " if i == 0 else "") for i, ln in enumerate(lines)] + list(
            extra_lines.get(vid, ())
        )
        nl = "\r\n" if vid in crlf else "\n"
        layout.transcript(vid).write_bytes((nl.join(lines) + nl).encode("utf-8"))
        seconds = max(s.end for s in segs) + 0.5
        if vid not in no_video:
            if media:
                write_tone_video(layout.video(vid), seconds)
            else:
                layout.video(vid).write_bytes(b"")
        if vid not in no_wav:
            if media:
                write_tone_wav(layout.audio(vid), seconds, (440.0, 880.0) if stereo_wav else (440.0,))
            else:
                layout.audio(vid).write_bytes(b"")
            wav_videos.add(vid)
    tree = MoseiTree(root=root, segments=segments, videos=videos, wav_videos=wav_videos)
    if mturk:
        tree.label_csvs = write_mturk_csvs(layout.label_dir, segments)
    if csd:
        rows: dict[str, list[tuple[float, float, list[float]]]] = {}
        for s in segments:
            if s.votes is not None:
                rows.setdefault(s.video_id, []).append((s.start, s.end, sdk_features_from_votes(s.votes)))
        # stored in reverse order: the SDK indexes by position, which must not be relied upon
        tree.csd_path = write_mosei_csd(layout.sdk_labels, {v: r[::-1] for v, r in rows.items()})
    return tree
