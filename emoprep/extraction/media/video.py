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

Display rotation: phones store portrait video as landscape pixels plus a display matrix (the
``rotate`` tag of older tools), and players turn the picture before showing it.  Faces in the stored
pixels lie on their side, where the face detector finds few of them and crops would be sideways, so
frames are turned (and, rarely, mirrored) exactly as FFmpeg's own players do (ffplay/ffmpeg
``autorotate``, :func:`display_transform`).  Everything downstream sees the *displayed* frame: its
height is what ``max_height`` bounds, regions are halves of it, and ``Frame.to_source_box`` maps to
its full-size pixels.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...errors import MediaError

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

NEAR_TARGET_FRAMES = 1.5
"""Frames within this many frame durations of a target time are always decoded (the nearest frame
to a target is at most half a frame away; the margin covers irregular timestamps)."""

SKIPPED_FRAMES = "NONREF"
"""FFmpeg's ``skip_frame`` level for frames far from every target: skip frames no other frame
refers to.  Recorded in the visual backend's parameters (``decode``)."""

TRANSFORMS: dict[str, Any] = {
    "clock": lambda a: np.rot90(a, -1),
    "cclock": lambda a: np.rot90(a, 1),
    "cclock_flip": lambda a: a.transpose(1, 0, 2),
    "clock_flip": lambda a: np.rot90(a, -1)[::-1],
    "hflip": lambda a: a[:, ::-1],
    "vflip": lambda a: a[::-1],
    "hflip,vflip": lambda a: a[::-1, ::-1],
}
"""Display transforms by the names of FFmpeg's ``transpose``/``hflip``/``vflip`` filters."""

TRANSPOSING = frozenset({"clock", "cclock", "cclock_flip", "clock_flip"})
"""Transforms that swap width and height."""


def display_transform(matrix: tuple[int, ...] | None) -> str | None:
    """The transform a player applies for a display matrix (9 int32, 16.16 fixed point), or None.

    The same decision as FFmpeg's ``autorotate`` (fftools, ffplay): the rotation angle (clockwise,
    rounded) picks a quarter turn, and the signs of the matrix entries pick the mirrored variants.
    Raises :class:`MediaError` for an angle that is not a quarter turn (no player-like result
    without interpolating the picture; no such file has been seen in practice).
    """
    if matrix is None:
        return None
    a, b, _, c, d = matrix[:5]
    scale0, scale1 = math.hypot(a, c), math.hypot(b, d)
    if scale0 == 0 or scale1 == 0:
        return None  # a degenerate matrix: FFmpeg's angle is NaN and its players apply nothing
    # av_display_rotation_get() is the counter-clockwise angle -atan2(b, a); players negate it.
    theta = float(round(math.degrees(math.atan2(b / scale1, a / scale0))))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return "cclock_flip" if c > 0 else "clock"
    if abs(theta - 180) < 1:
        ops = [name for name, flip in (("hflip", a < 0), ("vflip", d < 0)) if flip]
        return ",".join(ops) or None
    if abs(theta - 270) < 1:
        return "clock_flip" if c < 0 else "cclock"
    if abs(theta) < 1:
        return "vflip" if d < 0 else None
    raise MediaError(STAGE, f"display rotation of {theta:.0f} degrees is not a quarter turn; not supported")


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    """The frame's display matrix side data as 9 int32 values, or None.

    FFmpeg's decoders copy the container's matrix onto every decoded frame (the FFmpeg bundled with
    the PyAV this project pins does; tests/unit/test_video_rotation.py fails where it would not).
    """
    for side in getattr(frame, "side_data", ()) or ():
        if "DISPLAYMATRIX" in str(getattr(side, "type", "")):
            raw = bytes(side)
            if len(raw) >= 36:
                return tuple(int(v) for v in np.frombuffer(raw[:36], dtype=np.int32))
    return None


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its exact source time and its RGB pixels, restricted to the region.

    ``offset_xy`` is where ``rgb``'s top-left pixel lies in the (possibly downscaled) full frame and
    ``scale`` is source pixels per ``rgb`` pixel; :meth:`to_source_box` uses both.  "Source" is
    the frame as a player displays it: ``display`` names the turn/mirror applied to the stored
    pixels (:func:`display_transform`; None when they are shown as stored).  ``frame_duration_s``
    is the stream's nominal frame duration, so consumers (the face mesh's tracking) can tell the
    video's consecutive frames from sparsely sampled ones.
    """

    t_s: float
    rgb: np.ndarray = field(repr=False)
    offset_xy: tuple[int, int] = (0, 0)
    scale: float = 1.0
    display: str | None = None
    frame_duration_s: float | None = None

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
        self._packets: Iterator[Any] | None = None
        self._decoded: list[Any] = []
        self.decoded = 0
        self.targets: list[float] = []
        """Times the caller wants frames nearest to (sorted); frames far from all of them may be skipped."""
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
        # One decoding thread: emoprep runs one single-threaded worker process per core, and decoder
        # threads would only compete with the other workers for the same cores.
        self.stream.thread_type = "SLICE"
        self.stream.codec_context.thread_count = 1
        self.time_base = self.stream.time_base

    def close(self) -> None:
        self._packets = None
        self._decoded = []
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
        self._packets = None
        self._decoded = []

    def needed(self, packet: Any) -> bool:
        """Whether ``packet``'s frame could be the nearest to a target: within 1.5 frame durations
        of one (or of unknown time).  Only such frames are decoded when they are not references."""
        if packet.pts is None or not self.targets:
            return True
        t = float(packet.pts * self.time_base)
        i = bisect.bisect_left(self.targets, t - NEAR_TARGET_FRAMES * self.frame_dur)
        return i < len(self.targets) and self.targets[i] <= t + NEAR_TARGET_FRAMES * self.frame_dur

    def _decode_more(self) -> bool:
        """Send packets to the decoder until it returns frames; False at the end of the stream.

        A packet whose frame is far from every target is decoded with ``skip_frame = NONREF``: the
        decoder still decodes it when later frames refer to it (I, P and reference B frames), and
        drops it unread otherwise.  Frames near a target are always decoded, so the frame picked
        for a target is the same as with full decoding; skipping the rest (about half the frames
        of H.264 with B-frames) is most of the decoding time saved at 2 fps.
        """
        if self._packets is None:
            self._packets = self.container.demux(self.stream)
        context = self.stream.codec_context
        for packet in self._packets:
            if packet.size:  # the empty packet at the end flushes the decoder's delayed frames
                context.skip_frame = "DEFAULT" if self.needed(packet) else SKIPPED_FRAMES
            self._decoded = list(packet.decode())
            self.decoded += len(self._decoded)
            if self._decoded:
                return True
        return False

    def next_frame(self) -> bool:
        """Decode one more frame into ``cur`` (the old ``cur`` becomes ``prev``); False at EOF."""
        if self.eof:
            return False
        try:
            if not self._decoded and not self._decode_more():
                self.eof = True
                return False
        except Exception as exc:  # av.error.* on corrupt or truncated data
            if self.cur is None:
                raise MediaError(STAGE, f"cannot decode video of {self.path}: {exc}") from exc
            self.eof = True  # truncated file: keep what decoded, the caller judges coverage
            return False
        frame = self._decoded.pop(0)
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
        self.frames_decoded = 0
        """Frames the decoder returned so far (the others were skipped: far from every target)."""

    @classmethod
    def from_config(cls, config: Any) -> "VideoFrameSource":
        """Build from an :class:`~emoprep.extraction.config.ExtractConfig` (its ``visual.max_frame_height``)."""
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
        return [self._convert(t, frame, region, video.frame_dur) for t, frame in picked]

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
        video.targets = targets
        decoded_before = video.decoded
        try:
            return self._pick_targets(video, targets)
        finally:
            self.frames_decoded += video.decoded - decoded_before

    def _pick_targets(self, video: _OpenVideo, targets: list[float]) -> list[tuple[float, Any]]:
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

    def _convert(self, t: float, frame: Any, region: str | None, frame_dur: float | None = None) -> Frame:
        display = display_transform(_display_matrix(frame))
        turned = display in TRANSPOSING
        # Sizes of the displayed picture; max_height bounds what a player shows, not what is stored.
        width, height = (frame.height, frame.width) if turned else (frame.width, frame.height)
        scale = 1.0
        if self.max_height is not None and height > self.max_height:
            scale = height / self.max_height
            width = max(2, int(round(width / scale)) // 2 * 2)
            height = self.max_height
            out_w, out_h = (height, width) if turned else (width, height)
            rgb = frame.reformat(width=out_w, height=out_h, format="rgb24", interpolation="AREA").to_ndarray()
        else:
            rgb = frame.to_ndarray(format="rgb24")
        if display is not None:
            rgb = TRANSFORMS[display](rgb)
        x0 = 0
        if region == "left":
            rgb = rgb[:, : width // 2]
        elif region == "right":
            x0 = width // 2
            rgb = rgb[:, x0:]
        return Frame(
            t_s=t,
            rgb=np.ascontiguousarray(rgb),
            offset_xy=(x0, 0),
            scale=scale,
            display=display,
            frame_duration_s=frame_dur,
        )


__all__ = ["Frame", "VideoFrameSource", "display_transform"]
