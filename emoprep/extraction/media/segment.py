"""Lazily decoded media of one utterance, shared by all extractors that run on it.

Extractors never open files themselves: they ask the :class:`UtteranceMedia` for ``audio()`` or
``frames()``.  Each is decoded on first use and cached, so an utterance's audio is decoded once
whether one or three audio extractors run, and a run without visual extractors never touches the
video stream.  A decode error is cached too: every extractor that needs the broken stream gets the
same :class:`~emoprep.errors.MediaError`, and the failure is recorded once, under the decode stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import MediaError
from ..records import Utterance
from .audio import decode_audio

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
    ) -> None:
        self.utterance = utterance
        self.options = options or MediaOptions()
        self._video_source = video_source
        self._audio: np.ndarray | MediaError | None = None
        self._frames: list["Frame"] | MediaError | None = None

    @property
    def audio_path(self) -> str | None:
        u = self.utterance
        return u.audio_path or u.video_path

    def audio(self) -> np.ndarray:
        """Mono float32 samples of the utterance at ``options.sample_rate``."""
        if self._audio is None:
            u = self.utterance
            try:
                if self.audio_path is None:
                    raise MediaError("decode_audio", f"utterance {u.utterance_id} has no audio or video file")
                self._audio = decode_audio(
                    self.audio_path, u.start_s, u.end_s, self.options.sample_rate, u.audio_channel
                )
            except MediaError as exc:
                self._audio = exc
        if isinstance(self._audio, MediaError):
            raise self._audio
        return self._audio

    def frames(self) -> list["Frame"]:
        """RGB frames sampled every ``options.frame_interval_s`` inside the utterance."""
        if self._frames is None:
            u = self.utterance
            try:
                if u.video_path is None:
                    raise MediaError("decode_video", f"utterance {u.utterance_id} has no video file")
                if self._video_source is None:
                    from .video import VideoFrameSource

                    self._video_source = VideoFrameSource()
                self._frames = self._video_source.sample(
                    u.video_path, u.start_s, u.end_s, self.options.frame_interval_s, u.video_region
                )
            except MediaError as exc:
                self._frames = exc
        if isinstance(self._frames, MediaError):
            raise self._frames
        return self._frames
