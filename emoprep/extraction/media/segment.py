"""Lazily decoded media of one utterance, shared by all extractors that run on it.

Extractors never open files themselves: they ask the :class:`UtteranceMedia` for ``audio()`` or
``frames()``.  Each is decoded on first use and cached, so an utterance's audio is decoded once
whether one or three audio extractors run, and a run without visual extractors never touches the
video stream.  A decode error is cached too: every extractor that needs the broken stream gets the
same :class:`~emoprep.errors.MediaError`, and the failure is recorded once, under the decode stage.
Media given as URLs are decoded from this worker's local copy (:mod:`emoprep.extraction.media.fetch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ...errors import MediaError
from ...format.storage import redact
from ..records import Utterance
from .audio import decode_audio
from .fetch import MediaAccess, local_media

T = TypeVar("T")

if TYPE_CHECKING:
    from .video import Frame, VideoFrameSource


@dataclass(frozen=True)
class MediaOptions:
    """How media are decoded; part of the run's configuration (and so of its hash)."""

    sample_rate: int = 16000
    frame_interval_s: float = 0.5


class UtteranceMedia:
    """Decoded audio and sampled frames of one utterance, decoded on demand and cached."""

    def __init__(
        self,
        utterance: Utterance,
        options: MediaOptions | None = None,
        video_source: "VideoFrameSource | None" = None,
        access: MediaAccess | None = None,
    ) -> None:
        self.utterance = utterance
        self.options = options or MediaOptions()
        self._video_source = video_source
        self._access = access
        self._audio: np.ndarray | MediaError | None = None
        self._frames: list["Frame"] | MediaError | None = None

    @property
    def audio_path(self) -> str | None:
        u = self.utterance
        return u.audio_path or u.video_path

    def audio(self) -> np.ndarray:
        """Mono float32 samples of the utterance at ``options.sample_rate``."""
        return self._once("_audio", self._decode_audio)

    def frames(self) -> list["Frame"]:
        """RGB frames sampled every ``options.frame_interval_s`` inside the utterance."""
        return self._once("_frames", self._decode_frames)

    def _once(self, slot: str, decode: Callable[[], T]) -> T:
        """``decode()`` on first use, its result (or its :class:`MediaError`) kept in ``slot``: every
        extractor that asks again gets the same answer, and the media is decoded once."""
        if getattr(self, slot) is None:
            try:
                setattr(self, slot, decode())
            except MediaError as exc:
                setattr(self, slot, exc)
        value = getattr(self, slot)
        if isinstance(value, MediaError):
            raise value
        return value

    def _decode_audio(self) -> np.ndarray:
        u = self.utterance
        if self.audio_path is None:
            raise MediaError("decode_audio", f"utterance {u.utterance_id} has no audio or video file")
        path = self.audio_path
        local = local_media(path, self._access, "decode_audio")
        with _named_as(path, local):
            return decode_audio(local, u.start_s, u.end_s, self.options.sample_rate, u.audio_channel)

    def _decode_frames(self) -> list["Frame"]:
        u = self.utterance
        if u.video_path is None:
            raise MediaError("decode_video", f"utterance {u.utterance_id} has no video file")
        if self._video_source is None:
            from .video import VideoFrameSource

            self._video_source = VideoFrameSource()
        local = local_media(u.video_path, self._access, "decode_video")
        with _named_as(u.video_path, local):
            return self._video_source.sample(local, u.start_s, u.end_s, self.options.frame_interval_s, u.video_region)


@contextmanager
def _named_as(path: str, local: str) -> Iterator[None]:
    """Decode errors of a cached copy name the recording's URL, not the worker's cache file."""
    try:
        yield
    except MediaError as exc:
        if local == path:
            raise
        raise MediaError(exc.stage, str(exc).replace(local, redact(path)), exc.partial) from None
