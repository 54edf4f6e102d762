"""Find the speaker's face in sampled frames, crop it square with a margin, resize and encode it.

Why MediaPipe 0.10.21's legacy ``solutions.face_detection``: it is the only offline detector here
that ships its weights in the wheel *and* runs in a few milliseconds per frame (Haar: ~80 ms,
yuface: ~50 ms, MTCNN needs torchvision).  The short-range model (faces within ~2 m, webcam and
MOSEI framing) runs first; only when it finds nothing does the full-range model (small, distant
faces, IEMOCAP's half frames) get a try, so the common case stays fast and misses get a second look.

Which face: the detection that overlaps the previous frame's chosen box the most (IoU >= 0.3)
keeps the track on the same person when a second face appears; otherwise the largest, most
confident face (area x score) is taken as the speaker.  A frame without a face gets no crop; it is
never replaced by a centre crop, which would silently feed background to a model.

Framing (``visual.face_framing``): ``square`` (default, :func:`crop_face`) keeps the face's aspect
ratio and some context around it; ``paper`` (:func:`crop_face_paper`) cuts the region the MESM
authors' facenet-pytorch ``MTCNN(image_size=48, margin=2)`` cut around its box, for runs that want
the paper's framing.  The detector stays MediaPipe's, whose boxes are not MTCNN's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..format.codecs import MESH_POINTS
from .quiet import silenced_stderr

IOU_KEEP_TRACK = 0.3
"""Minimum overlap with the previous frame's face for a detection to count as the same person."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: ``(x, y, w, h)`` in pixels of the image given to the detector, and its score."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.w) * max(0.0, self.h)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def pick_face(faces: list[FaceBox], previous: FaceBox | None) -> FaceBox | None:
    """The speaker's face among ``faces``: the one that continues ``previous``, else the biggest."""
    if not faces:
        return None
    if previous is not None:
        overlap = max(faces, key=lambda f: iou(f, previous))
        if iou(overlap, previous) >= IOU_KEEP_TRACK:
            return overlap
    return max(faces, key=lambda f: f.area * f.score)


def clip_box(box: FaceBox, width: int, height: int) -> FaceBox:
    """``box`` limited to the image (MediaPipe boxes may stick out of the frame at its edges)."""
    x0, y0 = max(0.0, box.x), max(0.0, box.y)
    x1, y1 = min(float(width), box.x + box.w), min(float(height), box.y + box.h)
    return FaceBox(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0), box.score)


def crop_face(rgb: np.ndarray, box: FaceBox, margin: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop centred on ``box``, ``margin`` x the box side added per side.

    The square keeps the face's aspect ratio; parts of the square outside the frame are black, so
    a face at the frame edge stays centred instead of being shifted or stretched.
    """
    import cv2

    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    s = max(1, int(round(side)))
    h, w = rgb.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
    square = np.zeros((s, s, 3), dtype=np.uint8)
    if sx1 > sx0 and sy1 > sy0:
        square[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp)


FRAMINGS: tuple[str, ...] = ("square", "paper")
"""Values of ``visual.face_framing``."""
PAPER_MARGIN_PX = 2
"""The MESM authors' ``MTCNN(margin=2)``: margin in pixels of the *output* crop, both sides together."""


def paper_crop_region(box: FaceBox, size: int, width: int, height: int,
                      margin_px: int = PAPER_MARGIN_PX) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the frame region the paper's crop resizes, in frame pixels.

    facenet-pytorch's ``extract_face`` semantics, term for term: ``margin_px`` is measured in the
    output image, so the box grows by ``margin_px * w / (size - margin_px)`` in width (half each
    side) and likewise in height; the result is clipped to the frame and truncated to integers.
    At 48 px and margin 2 that is 1 output pixel of context per side, ``w / 46`` frame pixels.
    """
    if size <= margin_px:
        raise ValueError(f"face size {size} must exceed the {margin_px} px margin")
    mx = margin_px * box.w / (size - margin_px)
    my = margin_px * box.h / (size - margin_px)
    x0 = int(max(box.x - mx / 2.0, 0.0))
    y0 = int(max(box.y - my / 2.0, 0.0))
    x1 = int(min(box.x + box.w + mx / 2.0, float(width)))
    y1 = int(min(box.y + box.h + my / 2.0, float(height)))
    # a sub-pixel box would truncate to nothing: keep at least one pixel inside the frame
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def crop_face_paper(rgb: np.ndarray, box: FaceBox, size: int, margin_px: int = PAPER_MARGIN_PX) -> np.ndarray:
    """The MESM authors' framing: :func:`paper_crop_region` resized to ``size`` x ``size``.

    Unlike :func:`crop_face` the region is not made square first, so a tall box is squeezed
    horizontally, exactly as facenet-pytorch does; nothing outside the frame is filled in.
    """
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = paper_crop_region(box, size, w, h, margin_px)
    region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    interp = cv2.INTER_AREA if max(region.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


def frame_face(rgb: np.ndarray, box: FaceBox, framing: str, margin: float, size: int) -> np.ndarray:
    """The crop of ``box`` in the configured framing (``visual.face_framing``)."""
    if framing == "square":
        return crop_face(rgb, box, margin, size)
    if framing == "paper":
        return crop_face_paper(rgb, box, size)
    raise ValueError(f"unknown face framing {framing!r}; use one of {', '.join(FRAMINGS)}")


def _warm_up_face() -> np.ndarray:
    """A ``MESH_INPUT`` square crop of a real face (scikit-image's public-domain astronaut photo)."""
    import cv2
    from skimage import data

    face = np.ascontiguousarray(data.astronaut()[10:270, 110:370])
    return cv2.resize(face, (MESH_INPUT, MESH_INPUT), interpolation=cv2.INTER_AREA)


LAZY_MEDIAPIPE_PACKAGES = {"mediapipe.python.solutions": ("face_detection", "face_mesh"), "mediapipe.tasks.python": ()}
"""MediaPipe packages whose ``__init__`` imports every submodule, replaced by lazy packages while
:func:`import_mediapipe` runs ``import mediapipe``: the submodules named here are imported at once,
the others on first use (``package.name`` or ``import package.name``)."""


class _LazyPackages:
    """An import hook (``sys.meta_path``) that loads :data:`LAZY_MEDIAPIPE_PACKAGES` without running
    their ``__init__.py``: the package gets its folder as ``__path__`` (so ``import package.sub`` works
    as usual), a module ``__getattr__`` that imports a submodule on first access, and the submodules
    named in the table imported right away.  Everything else is left to the normal finders."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in LAZY_MEDIAPIPE_PACKAGES or not path:
            return None
        import importlib.util

        folder = str(Path(next(iter(path)), fullname.rpartition(".")[2]))
        if not Path(folder, "__init__.py").is_file():
            return None
        spec = importlib.util.spec_from_loader(fullname, self, is_package=True)
        assert spec is not None
        spec.submodule_search_locations = [folder]
        return spec

    def create_module(self, spec: Any) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        import importlib

        name = module.__name__

        def __getattr__(attr: str) -> Any:
            if attr == "BaseOptions" and name == "mediapipe.tasks.python":  # the one name its __init__ defines
                return importlib.import_module(f"{name}.core.base_options").BaseOptions
            if attr.startswith("__"):
                raise AttributeError(attr)
            try:
                return importlib.import_module(f"{name}.{attr}")
            except ModuleNotFoundError as exc:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from exc

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__doc__ = f"{name}, loaded lazily by emoprep.extraction.faces.import_mediapipe"
        for sub in LAZY_MEDIAPIPE_PACKAGES[name]:
            importlib.import_module(f"{name}.{sub}")


def import_mediapipe() -> ModuleType:
    """``mediapipe``, imported without TensorFlow, matplotlib and the solutions emoprep does not use.

    TensorFlow: MediaPipe does not need it, but ``mediapipe.tasks.python.core.optional_dependencies``
    (reached from ``import mediapipe``) tries ``from tensorflow.tools.docs import doc_controls`` for
    its API-doc generator and falls back to a no-op when that raises ``ModuleNotFoundError``.
    TensorFlow is installed here (disvoice and phonet declare it), so that line alone cost ~4.7 CPU-s
    per process, plus TensorFlow's start-up chatter.  A ``None`` entry in ``sys.modules`` makes the
    import system raise ``ModuleNotFoundError`` for ``tensorflow`` and its submodules: MediaPipe then
    takes its own without-TensorFlow path.  The entry is removed afterwards, so the process can still
    import TensorFlow later; when TensorFlow is already imported nothing is blocked (MediaPipe uses it).

    The rest: ``mediapipe/__init__.py`` imports ``mediapipe.python.solutions`` (every legacy solution,
    and ``drawing_utils``, which imports ``matplotlib.pyplot``: ~1 CPU-s with the other solutions) and
    ``mediapipe.tasks.python`` (every Tasks API, ~0.25 CPU-s); emoprep uses two solutions.  Those two
    packages are loaded as lazy packages over their own folders while ``import mediapipe`` runs
    (:class:`_LazyPackages`, :data:`LAZY_MEDIAPIPE_PACKAGES`), so ``import mediapipe`` runs its own
    ``__init__`` (bindings, ``__version__``) but loads a solution or a task only when it is used -
    ``mp.solutions.face_mesh``, ``import mediapipe.tasks.python.vision`` and ``mp.tasks.BaseOptions``
    all still work.  When ``mediapipe`` is already imported it is returned as it is.
    ``tests/integration/test_worker_imports.py`` checks that an extraction imports no TensorFlow,
    matplotlib, numba or librosa module; ``tests/unit/test_face.py`` that the lazy packages behave.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    block = "tensorflow" not in sys.modules
    if block:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    hook = _LazyPackages()
    sys.meta_path.insert(0, hook)
    try:
        import mediapipe
        import mediapipe.python.solutions.face_detection  # noqa: F401 - every module we use, now
        import mediapipe.python.solutions.face_mesh  # noqa: F401
    finally:
        sys.meta_path.remove(hook)
        if block and sys.modules.get("tensorflow", False) is None:
            del sys.modules["tensorflow"]
    return mediapipe


class FaceDetector:
    """MediaPipe face detection, short-range model first, full-range model when it finds nothing."""

    def __init__(self, min_confidence: float = 0.5, full_range_fallback: bool = True) -> None:
        mp = import_mediapipe()

        self.min_confidence = min_confidence
        self.version = getattr(mp, "__version__", "unknown")
        fd = mp.solutions.face_detection
        with silenced_stderr():  # build and warm up: the native start-up logs happen here
            self._short = fd.FaceDetection(model_selection=0, min_detection_confidence=min_confidence)
            self._full = (
                fd.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
                if full_range_fallback
                else None
            )
            # on a real face: MediaPipe logs more the first time a graph finds one
            face = _warm_up_face()
            for model in (self._short, self._full):
                if model is not None:
                    model.process(face)
        self.fallback_used = 0

    def describe(self) -> dict[str, Any]:
        return {
            "detector": "mediapipe.solutions.face_detection",
            "mediapipe": self.version,
            "models": ["face_detection_short_range"]
            + (["face_detection_full_range_sparse (fallback)"] if self._full else []),
            "min_confidence": self.min_confidence,
            "iou_keep_track": IOU_KEEP_TRACK,
        }

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face in an RGB uint8 image, boxes in that image's pixels."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        faces = self._run(self._short, rgb)
        if not faces and self._full is not None:
            faces = self._run(self._full, rgb)
            if faces:
                self.fallback_used += 1
        return faces

    @staticmethod
    def _run(model: Any, rgb: np.ndarray) -> list[FaceBox]:
        h, w = rgb.shape[:2]
        with silenced_stderr():  # a new image size re-initialises the graph, which logs (emoprep.extraction.quiet)
            result = model.process(rgb)
        out: list[FaceBox] = []
        for det in result.detections or ():
            rb = det.location_data.relative_bounding_box
            out.append(FaceBox(rb.xmin * w, rb.ymin * h, rb.width * w, rb.height * h, float(det.score[0])))
        return out

    def close(self) -> None:
        for model in (self._short, self._full):
            if model is not None:
                model.close()


MESH_MARGIN = 0.5
MESH_INPUT = 256


def _restart(solution: Any) -> None:
    """``solution.reset()``, returning only once the restarted graph has opened its calculators.

    ``SolutionBase.reset`` closes the graph and starts a new run without waiting for it: the
    calculators open (and log, see :mod:`emoprep.extraction.quiet`) on MediaPipe's threads, after the caller's
    silenced block has ended.  Waiting until the graph is idle keeps that inside the block;
    ``SolutionBase.process`` itself ends with the same wait.
    """
    solution.reset()
    graph = getattr(solution, "_graph", None)  # mediapipe 0.10.21 (pinned) keeps it there
    if graph is not None:
        graph.wait_until_idle()


class FaceMesher:
    """MediaPipe's 468-point face mesh, run on a square crop around an already chosen face.

    Why on a crop: the mesh solution finds its own face, which could be the other person in a
    two-person frame; cropping around the chosen box ties the mesh to the same face as the crop.

    Two modes.  *Static* (``track=False``): every call finds the face in the crop afresh, right for
    frames sampled far apart (2 fps).  *Tracking* (``track=True``, MediaPipe's video mode): the
    landmarks of the previous call place the next one, which skips the mesh's own face detector
    (the mesh step 1.35x faster on real clips at their own frame rate, benchmarks/bench_visual.py;
    landmarks 1.5 px from static mode's on average).  The
    crop is centred on each frame's detected box, so the face sits where the tracker expects it.
    Tracking carries state from call to call: :meth:`reset` it at every utterance and after a gap,
    so a row's mesh never depends on what the mesher saw before.
    """

    def __init__(self, tracking: bool = True) -> None:
        mp = import_mediapipe()

        warm_up = _warm_up_face()

        def build(static: bool) -> Any:
            mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.3
            )
            # Twice, on a real face: MediaPipe logs once per graph when it first meets a face and,
            # tracking, when it first follows one; both must happen here, with stderr silenced.
            for _ in range(2):
                mesh.process(warm_up)
            return mesh

        with silenced_stderr():
            self._mesh = build(static=True)
            self._tracker = build(static=False) if tracking else None
            if self._tracker is not None:
                _restart(self._tracker)  # forget the warm-up face
        self._tracker_used = False
        self.tracked_calls = 0
        """Calls answered by the tracker (for run statistics)."""

    def reset(self) -> None:
        """Forget the tracked face (a no-op when nothing was tracked since the last reset)."""
        if self._tracker is not None and self._tracker_used:
            with silenced_stderr():  # restarting the graph logs its calculators' start-up again
                _restart(self._tracker)
            self._tracker_used = False

    def landmarks(self, rgb: np.ndarray, box: FaceBox, track: bool = False) -> np.ndarray | None:
        """``(468, 3)`` float32 points in ``rgb`` pixels (z: depth, same scale as x), or None.

        ``track=True``: ``rgb`` is the frame right after the one of the previous call (or the first
        since :meth:`reset`); the tracker answers.  Otherwise the static mesh does.
        """
        side = max(box.w, box.h) * (1.0 + 2.0 * MESH_MARGIN)
        x0 = int(round(box.x + box.w / 2.0 - side / 2.0))
        y0 = int(round(box.y + box.h / 2.0 - side / 2.0))
        s = max(1, int(round(side)))
        crop = crop_face(rgb, box, MESH_MARGIN, MESH_INPUT)
        model = self._mesh
        if track and self._tracker is not None:
            self._tracker_used = True
            self.tracked_calls += 1
            model = self._tracker
        with silenced_stderr():  # the tracker's first call after a reset logs (emoprep.extraction.quiet)
            result = model.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)
        pts[:, 0] = x0 + pts[:, 0] * s
        pts[:, 1] = y0 + pts[:, 1] * s
        pts[:, 2] = pts[:, 2] * s
        return pts[:MESH_POINTS]

    def close(self) -> None:
        self._mesh.close()
        if self._tracker is not None:
            self._tracker.close()


__all__ = [
    "FRAMINGS",
    "FaceBox",
    "FaceDetector",
    "FaceMesher",
    "clip_box",
    "crop_face",
    "crop_face_paper",
    "frame_face",
    "import_mediapipe",
    "iou",
    "paper_crop_region",
    "pick_face",
]
