"""Media files -> utterances to predict, as rows of the recordings-list format (docs/recordings.md).

A media file's utterances are its transcript's cues when it has one (``--transcript``, or an ``.srt``
/ ``.vtt`` with the media's name beside it), else fixed windows.  The rows are written as a
recordings list, so extraction reads them with the same reader (and the same time clean-up) as
``emoprep extract --dataset recordings``.

Windows: ``DEFAULT_WINDOW_S`` = 4 s every ``DEFAULT_HOP_S`` = 2 s.  Four seconds is about the median
length of a MOSEI or IEMOCAP utterance (what the models were trained on: a window much shorter or
longer than that is out of their distribution), and half-overlapping windows give every moment two
readings, so the timeline moves in 2 s steps without missing an emotion that straddles a window edge.
The last window ends at the end of the media; a file shorter than a window is one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SetupError
from ..extraction.media.probe import probe_media
from .transcripts import read_transcript, transcript_beside

DEFAULT_WINDOW_S = 4.0
DEFAULT_HOP_S = 2.0


def windows(duration: float, window: float = DEFAULT_WINDOW_S, hop: float = DEFAULT_HOP_S) -> list[tuple[float, float]]:
    """``(start, end)`` of the windows covering ``[0, duration]``: ``window`` long every ``hop``, the
    last one ending at ``duration``."""
    if window <= 0 or hop <= 0:
        raise SetupError(f"--window and --hop must be positive seconds, got {window} and {hop}")
    if duration <= window:
        return [(0.0, float(duration))]
    n = math.ceil((duration - window) / hop - 1e-9) + 1
    return [(round(k * hop, 6), round(min(k * hop + window, duration), 6)) for k in range(n)]


@dataclass
class Segmentation:
    """The recordings-list rows of every utterance, and the media that could not be read at all."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    """Prediction rows of their own (``id``, ``media``, ``error``): files no decoder can open."""


def _ids(media: list[Path]) -> list[str]:
    """A readable id prefix per file: its name, or its position and name when names repeat."""
    names = [m.name for m in media]
    return [n if names.count(n) == 1 else f"{i}:{n}" for i, n in enumerate(names)]


def segment_media(media: list[str | Path], transcript: str | Path | None = None,
                  window: float = DEFAULT_WINDOW_S, hop: float = DEFAULT_HOP_S) -> Segmentation:
    """Utterances of each media file: transcript cues (with their text) or windows (without)."""
    paths = [Path(m).expanduser().resolve() for m in media]
    if transcript is not None and len(paths) != 1:
        raise SetupError("--transcript names the transcript of one media file; give one MEDIA, or put "
                         "each file's .srt/.vtt beside it under the same name")
    out = Segmentation()
    for path, prefix in zip(paths, _ids(paths)):
        info = probe_media(path) if path.is_file() else None
        if info is None or not (info.has_audio or info.has_video):
            why = "no such file" if not path.is_file() else "no decoder can open it as audio or video"
            out.failures.append({"id": prefix, "media": str(path), "error": f"media: {why}"})
            continue
        column = "video" if info.has_video else "audio"
        cues_file = Path(transcript) if transcript is not None else transcript_beside(path)
        if cues_file is not None:
            for k, cue in enumerate(read_transcript(cues_file)):
                out.rows.append({"utterance_id": f"{prefix}/{k:05d}", column: str(path), "start": cue.start,
                                 "end": cue.end, "text": cue.text})
            continue
        if info.end_s is None:
            out.failures.append({"id": prefix, "media": str(path),
                                 "error": "media: its header states no duration, so it cannot be cut into windows"})
            continue
        for k, (start, end) in enumerate(windows(info.end_s, window, hop)):
            out.rows.append({"utterance_id": f"{prefix}/{k:05d}", column: str(path), "start": start, "end": end})
    return out
