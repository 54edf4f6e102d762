"""The ``visual`` extractor: sampled frames -> speaker's face crop, box, score, AUs (and mesh).

Per utterance it takes the frames :meth:`UtteranceMedia.frames` sampled (every
``frame_interval_s``, the speaker's half for IEMOCAP), finds the speaker's face in each, and writes
aligned per-frame lists.  Frames without a face keep their place in every list (so lists stay
aligned with ``frame_times_s``) with null crop/box/score/AUs and a reason in ``face_missing``.

Frame of reference of ``face_boxes``: pixels of the *original source frame* as a player shows it
(turned by the container's display rotation; full width, before the IEMOCAP half is cut out and
before any downscale), so a box can be drawn on the video as it is.

Face tracking restarts at every utterance: an utterance's row must not depend on which other
utterances happen to share its shard.  So does the face mesh's tracking: the mesh is tracked from
frame to frame only across consecutive frames of the video (sampled at its own rate, at most
``MESH_TRACK_GAP`` frame durations apart) and restarts at every utterance and after every gap;
sparse frames (2 fps) get MediaPipe's static mode, which finds the face in each frame afresh.

AU backend failures for one utterance (e.g. no OpenFace CSV for that video) leave ``aus`` null but
keep the face columns; they are counted in :meth:`run_stats` with the first messages.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from ...errors import UtteranceError
from ..config import ExtractConfig
from ..faces import (
    PAPER_MARGIN_PX,
    FaceBox,
    FaceDetector,
    FaceMesher,
    clip_box,
    frame_face,
    pick_face,
)
from ...format.codecs import encode_crop
from ..media.segment import UtteranceMedia
from ..media.video import NEAR_TARGET_FRAMES, SKIPPED_FRAMES
from .au import AU_NAMES, AURequest, build_au_backend
from .base import Extractor

NO_FACE = "no_face_detected"
_CROP_DESCRIPTIONS = {
    "square": "square around the box centre, side = max(w, h) * (1 + 2 * margin), black outside the frame",
    "paper": "MESM authors' framing (facenet-pytorch MTCNN extract_face, margin 2 px of the output): box grown by "
    "2 / (face_size - 2) of its width and height, clipped to the frame, stretched to face_size x face_size",
}

MESH_TRACK_GAP = 1.5
"""Frames at most this many frame durations apart are consecutive: the face mesh tracks across them."""


def _follows(frame: Any, previous_t: float | None) -> bool:
    """Is ``frame`` the video's next frame after the one at ``previous_t`` (None: no previous)?"""
    step = frame.frame_duration_s
    return previous_t is not None and step is not None and 0.0 <= frame.t_s - previous_t <= MESH_TRACK_GAP * step


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


class VisualExtractor(Extractor):
    """Face crops, boxes, scores, missing reasons, AUs and (optionally) the face mesh per frame."""

    name: ClassVar[str] = "visual"
    columns: ClassVar[tuple[str, ...]] = (
        "frame_times_s",
        "face_crops",
        "face_boxes",
        "face_scores",
        "face_missing",
        "aus",
        "face_mesh",
    )

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.cfg = config.visual
        self.au_options = dict(self.cfg.au_options)
        self.detector = FaceDetector()
        self.mesher = FaceMesher() if self.cfg.face_mesh else None
        # Backends load their models lazily (first predict), so that check() can explain a missing
        # model instead of __init__ failing with a library's download error.
        self.au_backend = build_au_backend(self.cfg.au_backend, self.au_options)
        self._stats: dict[str, Any] = {}
        self._reset_stats()

    def _reset_stats(self) -> None:
        self._stats = {"frames": 0, "frames_without_face": 0, "aus_failed": 0}

    def check(self) -> None:
        self.cfg.validate()  # sizes, framing, format and quality (emoprep.extraction.config)
        if self.au_backend is not None:
            self.au_backend.check()

    def describe(self) -> dict[str, Any]:
        cfg = self.cfg
        fmt = "jpeg" if cfg.image_format.lower() in ("jpeg", "jpg") else "png"
        return {
            "backend": "mediapipe",
            "versions": {"mediapipe": self.detector.version, "av": _version("av"), "opencv": _version("opencv-contrib-python")},
            "detector": self.detector.describe(),
            "frame_interval_s": cfg.frame_interval_s,
            "max_frame_height": cfg.max_frame_height,
            "decode": (f"frames more than {NEAR_TARGET_FRAMES} frame durations from every sampling time are decoded with "
                       f"FFmpeg skip_frame={SKIPPED_FRAMES} (the same frames are picked as with full decoding)"),
            "face_size": cfg.face_size,
            "face_framing": cfg.face_framing,
            "face_margin": cfg.face_margin if cfg.face_framing == "square" else None,
            "face_margin_px": PAPER_MARGIN_PX if cfg.face_framing == "paper" else None,
            "image_format": fmt,
            "jpeg_quality": cfg.jpeg_quality if fmt == "jpeg" else None,
            "crop": _CROP_DESCRIPTIONS.get(cfg.face_framing),
            "face_boxes_frame": "original source frame pixels as displayed (after display rotation; full width, before region cut and downscale)",
            "display_rotation": "applied: frames are turned/mirrored by the container's display matrix as FFmpeg's players show them",
            "face_mesh": "mediapipe face_mesh 468 points (x, y in source px, z relative)" if self.mesher else None,
            "face_mesh_mode": (
                f"tracking (MediaPipe video mode) across consecutive frames (<= {MESH_TRACK_GAP} frame durations apart), "
                "restarted at every utterance and gap; static image mode for sparser frames"
            )
            if self.mesher
            else None,
            "au_backend": self.cfg.au_backend,
            "aus": self.au_backend.describe() if self.au_backend is not None else None,
            "au_names": list(AU_NAMES),
        }

    def run_stats(self) -> dict[str, Any]:
        stats = dict(self._stats)
        stats["detector_fallback_used"] = self.detector.fallback_used
        self.detector.fallback_used = 0
        self._reset_stats()
        return stats

    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        frames = media.frames()
        cfg = self.cfg
        times: list[float] = []
        crops: list[dict[str, Any] | None] = []
        boxes: list[list[float] | None] = []
        scores: list[float | None] = []
        missing: list[str | None] = []
        meshes: list[list[float] | None] = []
        faces: list[FaceBox | None] = []
        previous: FaceBox | None = None
        meshed_t: float | None = None  # time of the last frame given to the face mesh
        tracked_before = self.mesher.tracked_calls if self.mesher is not None else 0
        for frame in frames:
            h, w = frame.rgb.shape[:2]
            face = pick_face(self.detector.detect(frame.rgb), previous)
            if face is not None and clip_box(face, w, h).area <= 0:
                face = None
            times.append(frame.t_s)
            faces.append(face)
            if face is None:
                crops.append(None)
                boxes.append(None)
                scores.append(None)
                missing.append(NO_FACE)
                meshes.append(None)
                continue
            previous = face
            crop = frame_face(frame.rgb, face, cfg.face_framing, cfg.face_margin, cfg.face_size)
            crops.append(encode_crop(crop, cfg.image_format, cfg.jpeg_quality))
            boxes.append([float(v) for v in frame.to_source_box(clip_box(face, w, h).as_tuple())])
            scores.append(face.score)
            missing.append(None)
            if self.mesher is not None:
                track = _follows(frame, meshed_t)
                if not track:
                    self.mesher.reset()
                pts = self.mesher.landmarks(frame.rgb, face, track=track)
                meshed_t = frame.t_s
                if pts is not None:
                    pts = pts.copy()
                    pts[:, 0] = (pts[:, 0] + frame.offset_xy[0]) * frame.scale
                    pts[:, 1] = (pts[:, 1] + frame.offset_xy[1]) * frame.scale
                    pts[:, 2] = pts[:, 2] * frame.scale
                meshes.append(None if pts is None else pts.reshape(-1).tolist())
        self._stats["frames"] += len(frames)
        self._stats["frames_without_face"] += sum(f is None for f in faces)
        if self.mesher is not None:
            tracked = self.mesher.tracked_calls - tracked_before
            self._stats["face_mesh_tracked_frames"] = self._stats.get("face_mesh_tracked_frames", 0) + tracked
        values = {
            "frame_times_s": times,
            "face_crops": crops,
            "face_boxes": boxes,
            "face_scores": scores,
            "face_missing": missing,
            "aus": None,
            "face_mesh": meshes if self.mesher is not None else None,
        }
        try:
            values["aus"] = self._aus(media, frames, faces)
        except UtteranceError as exc:
            # Recorded in failures.parquet under stage "aus"; the faces found are still kept.
            self._stats["aus_failed"] += 1
            raise UtteranceError("aus", str(exc), partial=values) from exc
        return values

    def _aus(self, media: UtteranceMedia, frames: list, faces: list[FaceBox | None]) -> list | None:
        if self.au_backend is None:
            return None
        u = media.utterance
        request = AURequest(u.utterance_id, u.video_id, u.video_path, u.video_region, frames, faces)
        vectors = self.au_backend.predict(request)
        if len(vectors) != len(frames):
            raise UtteranceError("aus", f"AU backend returned {len(vectors)} rows for {len(frames)} frames")
        # The schema's rule: no face, no AUs, even when the backend (OpenFace's own tracker) has some.
        return [v if f is not None else None for v, f in zip(vectors, faces)]

    def close(self) -> None:
        self.detector.close()
        if self.mesher is not None:
            self.mesher.close()
        if self.au_backend is not None:
            self.au_backend.close()
