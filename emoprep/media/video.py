"""Sample RGB frames of one utterance from a video, at exact source timestamps, with PyAV.

Why not one ffmpeg ``fps`` filter per utterance: an utterance is a few seconds of a recording that
may last many minutes, and a shard holds many utterances of the same recordings, sorted by start
time.  :class:`VideoFrameSource` therefore keeps each video's container *and its decode position*
open between calls: the next utterance of the same video usually starts a little after the previous
one, so decoding simply goes on (no reopen, no seek).  It seeks (to the keyframe before the segment)
only when the next segment starts behind the frames it still holds, or far ahead of them.

Frame choice: the targets are ``start, start + interval, ... < end``; for each one the decoded frame
whose presentation time is nearest is taken, and ``Frame.t_s`` is that frame's *exact* time (not the
target), so features can be aligned with audio or with other tools' per-frame output (OpenFace).
Times are presentation timestamps on the file's own timeline, as for audio (:mod:`.audio`).

Resolution: frames taller than ``max_height`` (720 px by default) are downscaled, keeping the aspect
ratio, while they are converted to RGB.  This bounds memory (a 1080p RGB frame is 6 MB; a minute-long
MOSEI utterance at 2 fps would otherwise hold 700 MB) and costs the face detector nothing (MediaPipe
looks at 128x128 or 192x192 inputs).  720 rather than the MESM authors' 360 keeps IEMOCAP (480 px)
at native resolution, where faces are small, and leaves MOSEI faces big enough for 224 px crops.
Each :class:`Frame` records its offset and scale, so boxes can be mapped back to source pixels.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import MediaError

STAGE = "decode_video"
REGIONS: tuple[str | None, ...] = (None, "left", "right")

FORWARD_DECODE_MAX_S = 4.0
"""Decode forward instead of seeking when the next segment starts at most this far ahead.

Seeking lands on the keyframe before the target, which is typically 1-10 s back in web video, so
decoding a few seconds forward is never slower than a seek and keeps the output independent of GOP
layout."""

SEEK_PREROLL_S = 0.25
"""Seek this far before the first target so that the frame just before it is decoded too."""

MAX_SEEK_RETRIES = 4


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its exact source time and its RGB pixels, restricted to the region.

    ``offset_xy`` is where ``rgb``'s top-left pixel lies in the (possibly downscaled) full frame and
    ``scale`` is source pixels per ``rgb`` pixel; :meth:`to_source_box` uses both.
    """

    t_s: float
    rgb: np.ndarray = field(repr=False)
    offset_xy: tuple[int, int] = (0, 0)
    scale: float = 1.0

    def to_source_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Map ``(x, y, w, h)`` in ``rgb`` pixels to pixels of the full, original-size source frame."""
        x, y, w, h = box
        s = self.scale
        return ((x + self.offset_xy[0]) * s, (y + self.offset_xy[1]) * s, w * s, h * s)


class _OpenVideo:
    """A container plus its decode position: the last two decoded frames and the decode iterator."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._open_container()
        rate = self.stream.average_rate or self.stream.guessed_rate or 25
        self.frame_dur = 1.0 / float(rate)
        self._iter: Iterator[Any] | None = None
        self.prev: tuple[float, Any] | None = None
        self.cur: tuple[float, Any] | None = None
        self.eof = False
        self.at_file_start = True

    def _open_container(self) -> None:
        import av  # local import: workers without video never load PyAV's video side

        try:
            self.container = av.open(self.path)
        except Exception as exc:  # av raises many types (InvalidDataError, FileNotFoundError, ...)
            raise MediaError(STAGE, f"cannot open {self.path}: {exc}") from exc
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(STAGE, f"{self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.time_base = self.stream.time_base

    def close(self) -> None:
        self._iter = None
        self.prev = self.cur = None
        self.container.close()

    def restart_at(self, t_s: float) -> None:
        """Seek to the keyframe at or before ``t_s`` and forget the held frames."""
        self.prev = self.cur = None
        self.eof = False
        self.at_file_start = t_s <= 0
        if t_s <= 0:
            # Reopen rather than seek(0): MPEG program streams (GRID's .mpg) "seek to 0" past the
            # first GOP, while a fresh container always decodes from the first packet.
            self.container.close()
            self._open_container()
        else:
            self.container.seek(int(t_s / self.time_base), stream=self.stream, backward=True)
        self._iter = None

    def next_frame(self) -> bool:
        """Decode one more frame into ``cur`` (the old ``cur`` becomes ``prev``); False at EOF."""
        if self.eof:
            return False
        if self._iter is None:
            self._iter = self.container.decode(self.stream)
        try:
            frame = next(self._iter)
        except StopIteration:
            self.eof = True
            return False
        except Exception as exc:  # av.error.* on corrupt or truncated data
            if self.cur is None:
                raise MediaError(STAGE, f"cannot decode video of {self.path}: {exc}") from exc
            self.eof = True  # truncated file: keep what decoded, the caller judges coverage
            return False
        if frame.pts is not None:
            t = float(frame.pts * self.time_base)
        else:
            t = (self.cur[0] + self.frame_dur) if self.cur else 0.0
        self.prev, self.cur = self.cur, (t, frame)
        return True

    def holds(self, t_s: float) -> bool:
        """Can the nearest frame to ``t_s`` be found from here on, without seeking back?"""
        if self.cur is None:
            return self.at_file_start and t_s < FORWARD_DECODE_MAX_S
        earliest = (self.prev or self.cur)[0]
        return earliest - self.frame_dur / 2 <= t_s <= self.cur[0] + FORWARD_DECODE_MAX_S and not (
            self.eof and t_s > self.cur[0] + 2 * self.frame_dur
        )


class VideoFrameSource:
    """Frames of utterances, reusing open containers and decode positions across calls.

    Create one per shard (or per worker) and :meth:`close` it when done; it is also a context
    manager.  At most ``max_open`` videos stay open (least recently used are closed first).
    """

    def __init__(self, max_height: int | None = 720, max_open: int = 2) -> None:
        self.max_height = max_height if max_height and max_height > 0 else None
        self.max_open = max(1, max_open)
        self._open: OrderedDict[str, _OpenVideo] = OrderedDict()
        self.seeks = 0
        """Number of seeks done so far (tests and benchmarks check that reuse works)."""
        self.opens = 0

    @classmethod
    def from_config(cls, config: Any) -> "VideoFrameSource":
        """Build from an :class:`~emoprep.config.ExtractConfig` (its ``visual.max_frame_height``)."""
        visual = getattr(config, "visual", config)
        return cls(max_height=getattr(visual, "max_frame_height", 720))

    def __enter__(self) -> "VideoFrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every open container."""
        while self._open:
            _, video = self._open.popitem()
            video.close()

    def _video(self, path: str) -> _OpenVideo:
        video = self._open.get(path)
        if video is not None:
            self._open.move_to_end(path)
            return video
        video = _OpenVideo(path)
        self.opens += 1
        self._open[path] = video
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return video

    def _drop(self, path: str) -> None:
        video = self._open.pop(path, None)
        if video is not None:
            video.close()

    def sample(
        self,
        path: str | Path,
        start_s: float,
        end_s: float,
        interval_s: float = 0.5,
        region: str | None = None,
    ) -> list[Frame]:
        """Frames nearest to ``start_s + k * interval_s`` for every such time before ``end_s``.

        Raises :class:`MediaError` (stage ``decode_video``) when the file cannot be opened or decoded,
        or when no frame of the video lies within the segment's targets (segment past the end).
        """
        if region not in REGIONS:
            raise MediaError(STAGE, f"unknown video region {region!r}; expected one of {REGIONS}")
        if not end_s > start_s:
            raise MediaError(STAGE, f"empty segment [{start_s}, {end_s}]")
        if interval_s <= 0:
            raise MediaError(STAGE, f"frame interval must be positive, got {interval_s}")
        n = max(1, math.ceil((end_s - start_s) / interval_s - 1e-9))
        targets = [start_s + k * interval_s for k in range(n)]
        key = str(path)
        video = self._video(key)
        try:
            picked = self._pick(video, targets)
        except MediaError:
            self._drop(key)
            raise
        except Exception as exc:
            self._drop(key)
            raise MediaError(STAGE, f"cannot decode video of {path}: {exc}") from exc
        if not picked:
            raise MediaError(
                STAGE, f"no video frame of {path} lies in the segment [{start_s:.3f}, {end_s:.3f}] s"
            )
        return [self._convert(t, frame, region) for t, frame in picked]

    def _seek(self, video: _OpenVideo, first_target: float) -> None:
        """Seek so that decoding starts at or before ``first_target``; retry earlier if the seek
        lands late (MPEG program streams and some AVIs seek by byte position, imprecisely)."""
        back = SEEK_PREROLL_S
        for attempt in range(MAX_SEEK_RETRIES + 1):
            seek_to = first_target - back if attempt < MAX_SEEK_RETRIES else 0.0
            self.seeks += 1
            video.restart_at(max(0.0, seek_to))
            if not video.next_frame():
                if seek_to <= 0:
                    return
            elif video.cur[0] <= first_target + video.frame_dur / 2 or seek_to <= 0:
                return
            back *= 4

    def _pick(self, video: _OpenVideo, targets: list[float]) -> list[tuple[float, Any]]:
        if not video.holds(targets[0]):
            self._seek(video, targets[0])
        picked: list[tuple[float, Any]] = []
        max_gap = 2 * video.frame_dur
        for tgt in targets:
            while (video.cur is None or video.cur[0] < tgt) and video.next_frame():
                pass
            candidates = [c for c in (video.prev, video.cur) if c is not None]
            if not candidates:
                break
            t, frame = min(candidates, key=lambda c: abs(c[0] - tgt))
            if abs(t - tgt) > max_gap and (video.eof or video.prev is None):
                # Before the first or after the last frame of the file: nothing shows this time.
                if video.eof and t < tgt:
                    break
                continue
            picked.append((t, frame))
        return picked

    def _convert(self, t: float, frame: Any, region: str | None) -> Frame:
        width, height = frame.width, frame.height
        scale = 1.0
        if self.max_height is not None and height > self.max_height:
            scale = height / self.max_height
            width = max(2, int(round(width / scale)) // 2 * 2)
            height = self.max_height
            rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
        else:
            rgb = frame.to_ndarray(format="rgb24")
        x0 = 0
        if region == "left":
            rgb = rgb[:, : width // 2]
        elif region == "right":
            x0 = width // 2
            rgb = rgb[:, x0:]
        return Frame(t_s=t, rgb=np.ascontiguousarray(rgb), offset_xy=(x0, 0), scale=scale)


__all__ = ["Frame", "VideoFrameSource"]
