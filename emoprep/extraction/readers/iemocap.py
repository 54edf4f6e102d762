"""IEMOCAP (``IEMOCAP_full_release``): one utterance per turn of the EmoEvaluation files.

The layout of the raw release is declared in :class:`emoprep.extraction.readers.layouts.IemocapLayout`.

Why the *dialog* media and not ``sentences/wav/<dialog>/<turn>.wav``: audio and video then share
one time base (the EmoEvaluation times), so one (start, end) serves both modalities.  The speaker
is picked by channel and frame half: the actor whose gender letter equals the session letter of
the dialog name (``Ses01F_...`` -> F) is ``audio_channel=0`` and ``video_region="left"``, the other
actor channel 1 / ``"right"``.  Speaker ids are session + gender (``Ses01F``): IEMOCAP has exactly
one actor of each gender per session.

Options: :class:`emoprep.extraction.config.reader_options.IemocapOptions` (types, defaults, one docstring each).
Turns with codes outside the class set (dis, fea, oth, sur, xxx) are skipped and counted
(``counts["outside_classes"]``, and per code).  ``split=random`` reproduces the paper's proportions
exactly at full size (5162 / 737 / 1481 of 7380), not its turns; ``mesm`` reads the paper's own
turn lists (``pipelines/splits/IEMOCAP_split/``; a turn not listed is in split ``none``);
``session:N`` makes session N test and the *next* session (N mod 5 + 1) valid, the other three
train (speaker-independent: no actor of valid or test is in train).  Ids of a split list are turn
names or dialog names (see :mod:`emoprep.extraction.readers.splitfiles`); those that match no turn read are
counted (``listed_ids_not_found``).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import DatasetError
from ..config import ExtractConfig
from ..config.reader_options import IemocapOptions, parse_options, parse_split_value
from ..records import Labels, ReaderIssue, Utterance
from .base import ReadResult
from .layouts import IemocapLayout
from .media_index import LocalMedia, MediaIndex
from .segments import SegmentCleaner
from .splitfiles import SplitMap, load_packaged_split, load_split_file

CLASS_SETS: dict[int, dict[str, str]] = {
    # option value -> {IEMOCAP code: label name}; label order = order of first appearance
    6: {
        "ang": "anger",
        "exc": "excited",
        "fru": "frustrated",
        "hap": "happy",
        "neu": "neutral",
        "sad": "sad",
    },
    4: {"ang": "anger", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"},
}
PAPER_SPLIT = (5162, 737, 1481)
"""MESM's random utterance split of the 7380 six-class turns (train, valid, test)."""
MESM_SPLIT_FOLDER = "IEMOCAP_split"
"""The MESM authors' turn lists (``data split/IEMOCAP_split/`` of their repository)."""

_SUMMARY = re.compile(
    r"^\[\s*(?P<start>[-\d.]+)\s*-\s*(?P<end>[-\d.]+)\s*\]\s+(?P<turn>\S+)\s+(?P<code>\S+)\s+"
    r"\[\s*(?P<v>[-\d.]+)\s*,\s*(?P<a>[-\d.]+)\s*,\s*(?P<d>[-\d.]+)\s*\]"
)
_TIMES = re.compile(r"\[\s*([-\d.]+)\s*-\s*([-\d.]+)\s*$")


def label_names(classes: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(CLASS_SETS[classes].values()))


@dataclass(frozen=True)
class Turn:
    """One EmoEvaluation summary line."""

    turn: str
    dialog: str
    start: float
    end: float
    code: str
    vad: tuple[float, float, float]
    source: str


def _lines(path: Path) -> list[str]:
    """File lines without CR/LF; split on ``\\n`` only (CRLF files, stray Unicode separators)."""
    return [ln.rstrip("\r") for ln in path.read_bytes().decode("utf-8", errors="replace").split("\n")]


def parse_emo_evaluation(path: Path) -> tuple[list[Turn], list[ReaderIssue]]:
    """Summary lines ``[start - end]\\tturn\\tcode\\t[V, A, D]``; annotator lines are ignored
    (the summary holds the consensus category and the mean V/A/D)."""
    turns: list[Turn] = []
    issues: list[ReaderIssue] = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.startswith("["):
            continue  # header (%), blank separators, annotator lines (C-E2:, A-F1:)
        m = _SUMMARY.match(line)
        where = f"{path}:{lineno}"
        if not m:
            issues.append(
                ReaderIssue("malformed", f"unparseable EmoEvaluation summary line: {line[:80]!r}", where)
            )
            continue
        try:
            start, end = float(m["start"]), float(m["end"])
            vad = (float(m["v"]), float(m["a"]), float(m["d"]))
        except ValueError:
            issues.append(ReaderIssue("malformed", f"bad number in {line[:80]!r}", where))
            continue
        turns.append(Turn(m["turn"], path.stem, start, end, m["code"].lower(), vad, where))
    return turns, issues


def parse_transcription(path: Path) -> tuple[dict[str, str], int, list[ReaderIssue]]:
    """``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`` -> {turn: text}.

    Split on the *first* ``]:`` (the text itself may contain brackets and colons).  Lines without
    it (``M: Yeah.``) and ids without ``_`` or containing ``XX`` (turns IEMOCAP did not segment)
    are skipped and counted, as the reference prescribes.
    """
    texts: dict[str, str] = {}
    skipped = 0
    issues: list[ReaderIssue] = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        head, sep, text = line.partition("]:")
        if not sep:
            skipped += 1
            continue
        parts = head.split(None, 1)
        turn = parts[0] if parts else ""
        if "_" not in turn or "XX" in turn:
            skipped += 1
            continue
        if len(parts) < 2 or not _TIMES.search(parts[1]):
            issues.append(
                ReaderIssue(
                    "malformed", f"transcription line without [start-end]: {line[:80]!r}", f"{path}:{lineno}"
                )
            )
            continue
        texts[turn] = text.strip()
    return texts, skipped, issues


def random_split(ids: list[str], seed: int) -> dict[str, str]:
    """Seeded shuffle of the sorted ids, cut in the paper's proportions (exact at 7380)."""
    n = len(ids)
    n_valid = math.floor(n * PAPER_SPLIT[1] / sum(PAPER_SPLIT) + 0.5)
    n_test = math.floor(n * PAPER_SPLIT[2] / sum(PAPER_SPLIT) + 0.5)
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    out = {i: "test" for i in order[:n_test]}
    out.update({i: "valid" for i in order[n_test : n_test + n_valid]})
    out.update({i: "train" for i in order[n_test + n_valid :]})
    return out


class IemocapReader:
    """Reader for ``IEMOCAP_full_release``; see the module docstring for layout and options."""

    name = "iemocap"
    metadata = IemocapLayout.METADATA
    """The files read (all but the media): what a URL root's metadata mirror holds."""

    def read(self, root: Path, config: ExtractConfig, media: MediaIndex | None = None) -> ReadResult:
        """The utterances of the release at ``root``; ``media`` says where its recordings are
        (default: the files under ``root``; a URL root's mirror gives its :class:`RemoteMedia`)."""
        options = parse_options(IemocapOptions, config.dataset_options)  # fails before reading anything
        media = media or LocalMedia()
        layout = IemocapLayout(Path(root).expanduser().resolve())
        root = layout.root
        class_map = CLASS_SETS[options.classes]
        names = label_names(options.classes)

        sessions = layout.sessions()
        if not sessions:
            raise DatasetError(f"{root}: no Session1..Session5 folders; is this IEMOCAP_full_release?")

        issues: list[ReaderIssue] = []
        counts: Counter[str] = Counter()
        utterances: list[Utterance] = []
        segments = SegmentCleaner(issues, counts, media.end_s)
        segments.probe_ahead(self._media_locations(sessions, media))
        for session in sessions:
            sess_no = IemocapLayout.session_number(session)
            if not IemocapLayout.emo_evaluation_dir(session).is_dir():
                issues.append(ReaderIssue("malformed", f"no {IemocapLayout.EMO_EVALUATION} folder", str(session)))
                continue
            for emo in IemocapLayout.emo_evaluations(session):
                utterances.extend(self._dialog(session, sess_no, emo, class_map, names, segments, media))

        split_of, split_map = self._splits(root, utterances, options)
        utterances = [replace(u, split=split_of(u)) for u in utterances]
        counts["utterances"] = len(utterances)
        for u in utterances:
            counts[f"split_{u.split}"] += 1
        if split_map is not None:
            found = split_map.unmatched({u.utterance_id for u in utterances}, {u.video_id for u in utterances})
            counts["listed_ids_not_found"] = len(found)
        return ReadResult(utterances=utterances, label_names=names, issues=issues, counts=dict(counts))

    def _dialog(
        self,
        session: Path,
        sess_no: int,
        emo: Path,
        class_map: dict[str, str],
        names: tuple[str, ...],
        segments: SegmentCleaner,
        index: MediaIndex,
    ) -> list[Utterance]:
        """The utterances of one dialog; ``segments`` is the read's (its issues and counts too)."""
        issues, counts = segments.issues, segments.counts
        dialog = emo.stem
        counts["dialogs"] += 1
        turns, emo_issues = parse_emo_evaluation(emo)
        issues.extend(emo_issues)
        counts["malformed"] += len(emo_issues)
        tpath = IemocapLayout.transcription(session, dialog)
        texts: dict[str, str] = {}
        if tpath.is_file():
            texts, skipped, t_issues = parse_transcription(tpath)
            counts["transcript_lines_skipped"] += skipped
            counts["malformed"] += len(t_issues)
            issues.extend(t_issues)
        else:
            issues.append(
                ReaderIssue(
                    "missing_media", f"no transcription for dialog {dialog}: text will be null", str(tpath)
                )
            )
        video, audio = self._dialog_media(session, dialog, issues, index)
        has_video, has_audio = video is not None, audio is not None
        session_letter = dialog[5:6]
        media = (video, audio)
        out: list[Utterance] = []
        for t in turns:
            counts["turns"] += 1
            counts[f"code_{t.code}"] += 1
            if t.code not in class_map:
                counts["outside_classes"] += 1
                continue
            times = segments.times(t.turn, t.start, t.end, t.source, media)
            if times is None:
                continue
            if not has_video and not has_audio:
                issues.append(ReaderIssue("missing_media", f"no media for dialog {dialog}", t.source, t.turn))
                counts["missing_media"] += 1
                continue
            gender = t.turn.rsplit("_", 1)[-1][:1]
            own_side = gender == session_letter
            text = texts.get(t.turn)
            if text is None:
                counts["no_transcript"] += 1
            label = class_map[t.code]
            out.append(
                Utterance(
                    utterance_id=t.turn,
                    dataset=self.name,
                    video_id=dialog,
                    start_s=times[0],
                    end_s=times[1],
                    text=text,
                    speaker=f"Ses{sess_no:02d}{gender}",
                    video_path=video,
                    audio_path=audio,
                    audio_channel=(0 if own_side else 1) if has_audio else None,
                    video_region=("left" if own_side else "right") if has_video else None,
                    labels=Labels(
                        emotions=tuple(int(n == label) for n in names),
                        valence=t.vad[0],
                        arousal=t.vad[1],
                        dominance=t.vad[2],
                        category=t.code,
                    ),
                )
            )
        return out

    @staticmethod
    def _media_locations(sessions: list[Path], index: MediaIndex) -> Iterator[str]:
        """Where every dialog's avi and wav that exist are (what :meth:`_dialog_media` will find)."""
        for session in sessions:
            if IemocapLayout.emo_evaluation_dir(session).is_dir():
                for emo in IemocapLayout.emo_evaluations(session):
                    for path in (IemocapLayout.dialog_avi(session, emo.stem), IemocapLayout.dialog_wav(session, emo.stem)):
                        if index.exists(path):
                            yield index.location(path)

    @staticmethod
    def _dialog_media(session: Path, dialog: str, issues: list[ReaderIssue], index: MediaIndex
                      ) -> tuple[str | None, str | None]:
        """Where the dialog's side-by-side avi and stereo wav are, each None (and reported) when missing."""
        video = IemocapLayout.dialog_avi(session, dialog)
        audio = IemocapLayout.dialog_wav(session, dialog)
        has_video, has_audio = index.exists(video), index.exists(audio)
        if not has_video:
            issues.append(ReaderIssue("missing_media", f"no video {video.name}: visual features will be missing", str(video)))
        if not has_audio:
            issues.append(
                ReaderIssue("missing_media", f"no dialog wav {audio.name}: audio comes from the avi, mixed down", str(audio))
            )
        return (index.location(video) if has_video else None), (index.location(audio) if has_audio else None)

    @staticmethod
    def _splits(
        root: Path, utterances: list[Utterance], options: IemocapOptions
    ) -> tuple[Callable[[Utterance], str], SplitMap | None]:
        """The split function of the ``split`` option (parsed and validated up front), and the
        id map it reads when the split comes from a list (for ``listed_ids_not_found``)."""
        value = options.split
        kind, test, valid = parse_split_value(value)
        if kind == "none":
            return (lambda u: "none"), None
        if kind == "random":
            table = random_split([u.utterance_id for u in utterances], options.seed)
            return (lambda u: table[u.utterance_id]), None
        if kind == "session":

            def by_session(u: Utterance) -> str:
                s = int(u.utterance_id[3:5])
                return "test" if s == test else "valid" if s == valid else "train"

            return by_session, None
        split_map = load_packaged_split(MESM_SPLIT_FOLDER) if kind == "mesm" else load_split_file(value, root)
        return (lambda u: split_map.lookup(u.utterance_id, u.video_id)), split_map
