"""The raw layout of each corpus, declared once: where its files are and how they are named.

The readers, ``check-raw``, the demo builder (which writes a MOSEI-layout tree) and the test
factories in :mod:`emoprep.testing` all take their paths from here, so a path can never be read
in one place and written differently in another.  Only paths and names live here; what is inside
the files is the readers' business.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


class _Under:
    """A path of a layout below its root, read as an attribute: ``layout.video_dir`` is
    ``layout.root / VIDEO_DIR`` (a plain class attribute, so the dataclass takes it for no field)."""

    def __init__(self, relative: str) -> None:
        self.relative = relative

    def __get__(self, layout: Any, owner: type | None = None) -> Any:
        return self if layout is None else layout.root / self.relative


@dataclass(frozen=True)
class MoseiLayout:
    """The raw CMU-MOSEI release under ``root`` (the folder holding ``Raw/``)::

        Raw/Videos/Full/Combined/<vid>.mp4
        Raw/Audio/Full/WAV_16000/<vid>.wav            optional; may be stereo -> channel 0
        Raw/Transcript/Segmented/Combined/<vid>.txt   <vid>___<clip>___<start>___<end>___<text>
        Raw/Labels/*.csv                              Mechanical Turk batches, one row per annotator
        CMU_MOSEI_Labels.csd                          optional CMU SDK labels (HDF5)
    """

    root: Path

    VIDEO_DIR: ClassVar[str] = "Raw/Videos/Full/Combined"
    AUDIO_DIR: ClassVar[str] = "Raw/Audio/Full/WAV_16000"
    TRANSCRIPT_DIR: ClassVar[str] = "Raw/Transcript/Segmented/Combined"
    LABEL_DIR: ClassVar[str] = "Raw/Labels"
    VIDEO_SUFFIX: ClassVar[str] = ".mp4"
    AUDIO_SUFFIX: ClassVar[str] = ".wav"
    LABEL_CSV_GLOB: ClassVar[str] = "*.csv"
    SDK_LABEL_NAME: ClassVar[str] = "CMU_MOSEI_Labels.csd"
    SDK_LABEL_CANDIDATES: ClassVar[tuple[str, ...]] = (
        SDK_LABEL_NAME,
        f"Labels/{SDK_LABEL_NAME}",
        f"Raw/Labels/{SDK_LABEL_NAME}",
    )
    """Where the SDK labels are looked for, in this order (copies of the release differ)."""
    FIELD_SEP: ClassVar[str] = "___"
    """Separator of a transcript line's fields: ``<vid>___<clip>___<start>___<end>___<text>``."""
    FOLDERS: ClassVar[tuple[tuple[str, bool], ...]] = (
        (TRANSCRIPT_DIR, True),
        (VIDEO_DIR, False),
        (AUDIO_DIR, False),
        (LABEL_DIR, False),
    )
    """(folder, required) for check-raw: the transcripts define the segments; the rest may be absent."""
    METADATA: ClassVar[tuple[str, ...]] = (
        f"{TRANSCRIPT_DIR}/*.txt",
        f"{LABEL_DIR}/{LABEL_CSV_GLOB}",
        *SDK_LABEL_CANDIDATES,
    )
    """The files the reader reads (everything but the media), as ``/``-separated patterns below the
    root: what a URL root's metadata mirror downloads (:mod:`emoprep.extraction.readers.mirror`)."""

    video_dir = _Under(VIDEO_DIR)
    audio_dir = _Under(AUDIO_DIR)
    transcript_dir = _Under(TRANSCRIPT_DIR)
    label_dir = _Under(LABEL_DIR)
    sdk_labels = _Under(SDK_LABEL_NAME)
    """Where a tree written by emoprep puts the SDK labels (the first candidate)."""

    def video(self, video_id: str) -> Path:
        return self.video_dir / f"{video_id}{self.VIDEO_SUFFIX}"

    def audio(self, video_id: str) -> Path:
        return self.audio_dir / f"{video_id}{self.AUDIO_SUFFIX}"

    def transcript(self, video_id: str) -> Path:
        return self.transcript_dir / f"{video_id}.txt"

    def transcripts(self) -> list[Path]:
        return sorted(self.transcript_dir.glob("*.txt"))

    def video_ids_with_video(self) -> set[str]:
        return {p.stem for p in self.video_dir.glob(f"*{self.VIDEO_SUFFIX}")} if self.video_dir.is_dir() else set()

    def video_ids_with_audio(self) -> set[str]:
        return {p.stem for p in self.audio_dir.glob(f"*{self.AUDIO_SUFFIX}")} if self.audio_dir.is_dir() else set()

    def label_csvs(self) -> list[Path]:
        return sorted(self.label_dir.glob(self.LABEL_CSV_GLOB)) if self.label_dir.is_dir() else []

    def sdk_label_candidates(self) -> Iterator[Path]:
        return (self.root / c for c in self.SDK_LABEL_CANDIDATES)

    @classmethod
    def transcript_line(cls, video_id: str, clip: object, start: str, end: str, text: str) -> str:
        """One transcript line; ``start``/``end`` are written as given (the release's precision varies)."""
        return cls.FIELD_SEP.join((video_id, str(clip), start, end, text))


@dataclass(frozen=True)
class IemocapLayout:
    """``IEMOCAP_full_release`` under ``root``::

        Session<N>/dialog/EmoEvaluation/<dialog>.txt     labels: category + mean V/A/D per turn
        Session<N>/dialog/transcriptions/<dialog>.txt    text (CRLF): "<turn> [start-end]: text"
        Session<N>/dialog/wav/<dialog>.wav               stereo, one actor per channel
        Session<N>/dialog/avi/DivX/<dialog>.avi          both actors side by side
        Session<N>/sentences/wav/<dialog>/<turn>.wav     per-turn audio (not read: see the reader)
    """

    root: Path

    SESSIONS: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 5)
    SESSION_GLOB: ClassVar[str] = "Session[1-5]"
    EMO_EVALUATION: ClassVar[str] = "dialog/EmoEvaluation"
    TRANSCRIPTIONS: ClassVar[str] = "dialog/transcriptions"
    DIALOG_WAV: ClassVar[str] = "dialog/wav"
    DIALOG_AVI: ClassVar[str] = "dialog/avi/DivX"
    SENTENCE_WAV: ClassVar[str] = "sentences/wav"
    SESSION_FOLDERS: ClassVar[tuple[tuple[str, bool], ...]] = (
        (EMO_EVALUATION, True),
        (TRANSCRIPTIONS, False),
        (DIALOG_WAV, False),
        (DIALOG_AVI, False),
    )
    """(folder in a session, required) for check-raw: the EmoEvaluation files define the turns."""
    METADATA: ClassVar[tuple[str, ...]] = (
        f"{SESSION_GLOB}/{EMO_EVALUATION}/*.txt",
        f"{SESSION_GLOB}/{TRANSCRIPTIONS}/*.txt",
    )
    """The files the reader reads (everything but the media), as ``/``-separated patterns below the
    root: what a URL root's metadata mirror downloads; MOCAP, sentence wavs and the rest are not."""

    @staticmethod
    def session_name(number: int) -> str:
        return f"Session{number}"

    def session(self, number: int) -> Path:
        return self.root / self.session_name(number)

    def sessions(self) -> list[Path]:
        """The session folders present, in order."""
        return sorted(p for p in self.root.glob(self.SESSION_GLOB) if p.is_dir())

    @staticmethod
    def session_number(session: Path) -> int:
        return int(session.name[-1])

    @classmethod
    def emo_evaluation_dir(cls, session: Path) -> Path:
        return session / cls.EMO_EVALUATION

    @classmethod
    def emo_evaluations(cls, session: Path) -> list[Path]:
        """The dialogs' EmoEvaluation files, without the macOS ``._`` resource forks some copies ship."""
        return [p for p in sorted(cls.emo_evaluation_dir(session).glob("*.txt")) if not p.name.startswith(".")]

    @classmethod
    def transcription(cls, session: Path, dialog: str) -> Path:
        return session / cls.TRANSCRIPTIONS / f"{dialog}.txt"

    @classmethod
    def dialog_wav(cls, session: Path, dialog: str) -> Path:
        return session / cls.DIALOG_WAV / f"{dialog}.wav"

    @classmethod
    def dialog_avi(cls, session: Path, dialog: str) -> Path:
        return session / cls.DIALOG_AVI / f"{dialog}.avi"

    @classmethod
    def sentence_wav(cls, session: Path, dialog: str, turn: str) -> Path:
        return session / cls.SENTENCE_WAV / dialog / f"{turn}.wav"

    @classmethod
    def folders(cls, sessions: list[str]) -> tuple[tuple[str, bool], ...]:
        """(folder relative to the root, required) of the named sessions, for check-raw."""
        return tuple((f"{s}/{sub}", required) for s in sessions for sub, required in cls.SESSION_FOLDERS)
