"""Timed transcripts (SubRip ``.srt``, WebVTT ``.vtt``) as utterances: each cue's times and text.

Why cues and not windows: a transcript's cue is what a person said between two times, the unit the
models were trained on (a MOSEI or IEMOCAP utterance), so it is the better segmentation whenever one
exists.  Only the timing line and the text lines of a cue are read; cue numbers, VTT headers, NOTE and
STYLE blocks and inline tags (``<i>``, ``<v Speaker>``, ``{\\an8}``) are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SetupError

TRANSCRIPT_SUFFIXES = (".srt", ".vtt")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")


@dataclass(frozen=True)
class Cue:
    """One timed line of a transcript (seconds from the start of the media)."""

    start: float
    end: float
    text: str


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def read_transcript(path: str | Path) -> list[Cue]:
    """The cues of an ``.srt`` or ``.vtt`` file, in file order; a file with no timing line is an error."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: cannot read the transcript ({exc})") from None
    cues: list[Cue] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        match = _CUE.match(lines[i])
        i += 1
        if not match:
            continue
        g = match.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        body = []
        while i < len(lines) and lines[i].strip() and not _CUE.match(lines[i]):
            body.append(_TAG.sub("", lines[i]).strip())
            i += 1
        cues.append(Cue(start, end, " ".join(b for b in body if b)))
    if not cues:
        raise SetupError(f"{path}: no timed cue found (expected lines like '00:00:01,000 --> 00:00:03,500')")
    return cues


def transcript_beside(media: str | Path) -> Path | None:
    """The ``.srt`` or ``.vtt`` with the media file's name beside it (``talk.mp4`` -> ``talk.srt``)."""
    media = Path(media)
    for suffix in TRANSCRIPT_SUFFIXES:
        candidate = media.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None
