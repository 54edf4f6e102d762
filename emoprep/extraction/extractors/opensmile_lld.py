"""The ``opensmile`` extractor: eGeMAPSv02 / ComParE_2016 descriptors per analysis window + functionals.

Enabled per backend by ``acoustic.backends`` (``egemaps``, ``compare``); columns of a backend that is
not enabled are null.  For each enabled backend:

* ``<backend>_lld``: openSMILE's low-level descriptors (10 ms hop) averaged over the same analysis
  windows as the ``acoustic`` column (:func:`~emoprep.extraction.extractors.windows.window_bounds`); an LLD frame
  belongs to the window that holds its centre.  A window that holds no LLD frame (possible only for
  an utterance shorter than openSMILE's first frame, which openSMILE answers with NaN) is a null
  element.
* ``<backend>_functionals``: openSMILE's own functionals over the whole utterance (88 eGeMAPS
  parameters, 6373 ComParE parameters); null when openSMILE gives no finite value (too short).

Memory.  The LLD window means are computed on blocks of ~20 s (plus context, bit-identical to one
pass; see :meth:`OpenSmileExtractor._lld_window_means`), so they need bounded memory.  The
functionals cannot be: percentiles, regression and peak statistics are taken over the whole
utterance, so openSMILE keeps every level that feeds them (``frameMode = full``, growing buffers)
plus its wave input level for the whole utterance, and its Python wrapper adds an int16 copy of the
input.  Measured (peak RSS of the extraction over the process before it, 16 kHz speech): ComParE_2016
functionals +0.6 MB at 5 s and +182 MB at 5 min (~0.6 MB per second of audio); eGeMAPSv02 functionals
+140 MB at 5 min (~0.47 MB/s).  Both backends are opt-in (``acoustic.backends``); with them, budget
~0.6 MB per second of the longest utterance per worker, or drop them for corpora of very long turns.

openSMILE does not produce NaN on silence (its F0 is 0 when unvoiced), but any NaN/inf it returns is
written as a null value, never as a number.  The ``opensmile`` wheel ships the native library: no
binary to install.  One ``Smile`` object per feature set and level is built per worker.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from typing import Any, ClassVar

import numpy as np

from ...errors import SetupError, UtteranceError
from ..config import ExtractConfig
from ..media.segment import UtteranceMedia
from .base import Extractor
from .windows import window_bounds

FEATURE_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
"""emoprep backend name -> openSMILE feature set."""
LLD_STEP_S = 0.01
"""openSMILE's LLD frame step in both feature sets (10 ms)."""
BLOCK_S = 20.0
"""LLDs of a long utterance are computed on blocks of about this much audio (whole windows)."""
CONTEXT_S: dict[str, float] = {"egemaps": 2.0, "compare": 4.0}
"""Audio added on each side of a block so that the LLD frames inside it are those of one pass over the
whole signal.  Most LLDs depend on a few frames only, but F0 (Viterbi smoothing) and ComParE's
RASTA-filtered auditory spectrum (an IIR filter) remember longer: with 2 s of context ComParE's RASTA
bands differed in the 6th significant digit, with 4 s they are bit-identical (float32) on 5 min of
speech; eGeMAPS was bit-identical from 1 s on."""


def _rows(values: np.ndarray) -> list[Any]:
    """Rows for pyarrow: numpy rows when finite, python lists with None where a value is not, and
    None for a row without any finite value (openSMILE fills too-short input with NaN)."""
    out: list[Any] = []
    for row in values:
        finite = np.isfinite(row)
        if finite.all():
            out.append(row.astype(np.float32))
        elif not finite.any():
            out.append(None)
        else:
            out.append([float(v) if np.isfinite(v) else None for v in row])
    return out


class OpenSmileExtractor(Extractor):
    """openSMILE LLD window means and utterance functionals for the configured feature sets."""

    name: ClassVar[str] = "opensmile"
    columns: ClassVar[tuple[str, ...]] = (
        "egemaps_lld", "egemaps_functionals", "compare_lld", "compare_functionals",
    )

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.backends = tuple(b for b in FEATURE_SETS if b in config.acoustic.backends)
        self._smiles: dict[str, tuple[Any, Any]] = {}
        if self.backends:
            self.check()
            import opensmile

            for b in self.backends:
                fs = getattr(opensmile.FeatureSet, FEATURE_SETS[b])
                lld = opensmile.Smile(feature_set=fs, feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
                fun = opensmile.Smile(feature_set=fs, feature_level=opensmile.FeatureLevel.Functionals)
                self._smiles[b] = (lld, fun)

    def check(self) -> None:
        if not self.backends:
            return
        try:
            import opensmile  # noqa: F401
        except ImportError as exc:
            raise SetupError(
                f"acoustic backends {list(self.backends)} need openSMILE: pip install opensmile==2.6.0 ({exc})"
            ) from exc

    def feature_names(self, backend: str) -> tuple[list[str], list[str]]:
        lld, fun = self._smiles[backend]
        return list(lld.feature_names), list(fun.feature_names)

    def describe(self) -> dict[str, Any]:
        if not self.backends:
            return {"backend": "disabled"}
        return {
            "backend": "opensmile",
            "opensmile": version("opensmile"),
            "feature_sets": {b: FEATURE_SETS[b] for b in self.backends},
            "window_s": self.config.acoustic.window_s,
            "hop_s": self.config.acoustic.hop_s,
            "lld_aggregation": "mean of the LLD frames whose centre lies in the window",
        }

    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        out: dict[str, Any] = {c: None for c in self.columns}
        if not self.backends:
            return out
        audio = np.ascontiguousarray(media.audio(), dtype=np.float32)
        if audio.size == 0:
            raise UtteranceError(self.name, "decoded audio is empty")
        sr = self.config.sample_rate
        bounds = window_bounds(len(audio), sr, self.config.acoustic.window_s, self.config.acoustic.hop_s)
        for b in self.backends:
            lld, fun = self._smiles[b]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "Segment too short, filling with NaN"
                    out[f"{b}_lld"] = self._lld_window_means(lld, audio, bounds, sr, CONTEXT_S[b])
                    fdf = fun.process_signal(audio, sr)
            except Exception as exc:  # openSMILE raises RuntimeError/audinterface errors
                raise UtteranceError(self.name, f"openSMILE {FEATURE_SETS[b]} failed: {exc}") from exc
            if len(fdf):
                out[f"{b}_functionals"] = _rows(fdf.to_numpy(dtype=np.float64)[:1])[0]
        return out

    @staticmethod
    def _lld_window_means(
        lld: Any, audio: np.ndarray, bounds: list[tuple[int, int]], sr: int, context_s: float
    ) -> Any:
        """LLD window means, computed on blocks of whole windows so memory stays bounded.

        openSMILE's Python wrapper holds the whole input several times over (int16 copy, its wave
        level, per-frame Python rows, a pandas frame): ~0.6 MB per second of audio for ComParE.  So
        a block of windows covering samples ``[lo, hi)`` (about :data:`BLOCK_S`) is analysed on its
        own as ``[lo - context_s, hi + context_s]`` (start snapped to the 10 ms frame grid, so its
        frames are the whole signal's frames), and only the frames whose centre lies in the block's
        windows are used.  With the context of :data:`CONTEXT_S` the window means are bit-identical
        to one pass over the whole signal (measured on 2 and 5 min of speech; the unit tests pin it).
        """
        step = round(LLD_STEP_S * sr)
        per_block = max(1, round(BLOCK_S * sr / max(1, bounds[1][0] - bounds[0][0]))) if len(bounds) > 1 else 1
        ctx = round(context_s * sr)
        if len(audio) <= round(BLOCK_S * sr) + 2 * ctx:
            per_block = len(bounds)  # one pass over the whole utterance
        result: list[Any] = []
        n_lld = None
        for i0 in range(0, len(bounds), per_block):
            block = bounds[i0 : i0 + per_block]
            lo, hi = block[0][0], max(h for _, h in block)
            s0 = (max(0, lo - ctx) // step) * step
            s1 = min(len(audio), hi + ctx)
            if i0 + per_block >= len(bounds):
                s1 = len(audio)
            df = lld.process_signal(audio[s0:s1], sr)
            n_lld = df.shape[1]
            result.extend(OpenSmileExtractor._window_means(df, block, sr, offset=s0))
            del df
        if all(isinstance(r, np.ndarray) for r in result):
            return np.stack(result).astype(np.float32) if result else np.zeros((0, n_lld or 0), np.float32)
        return result

    @staticmethod
    def _window_means(df: Any, bounds: list[tuple[int, int]], sr: int, offset: int = 0) -> list[Any]:
        """Per window: the mean LLD row (float32) of the frames whose centre lies in the window, a list
        with None for non-finite values, or None without any frame.  Centres are computed in samples
        (twice the centre, an integer) so the assignment of a frame centred exactly on a window edge
        does not depend on float rounding; ``offset`` is the sample index of ``df``'s time 0."""
        values = df.to_numpy(dtype=np.float64)
        starts = np.round(df.index.get_level_values("start").total_seconds().to_numpy() * sr).astype(np.int64)
        ends = np.round(df.index.get_level_values("end").total_seconds().to_numpy() * sr).astype(np.int64)
        centre2 = starts + ends + 2 * offset
        result: list[Any] = []
        for lo, hi in bounds:
            sel = (centre2 >= 2 * lo) & (centre2 < 2 * hi)
            if not sel.any():
                result.append(None)
                continue
            with np.errstate(all="ignore"):
                result.append(_rows(values[sel].mean(axis=0, keepdims=True))[0])
        return result
