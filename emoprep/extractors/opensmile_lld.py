"""The ``opensmile`` extractor: eGeMAPSv02 / ComParE_2016 descriptors per analysis window + functionals.

Enabled per backend by ``acoustic.backends`` (``egemaps``, ``compare``); columns of a backend that is
not enabled are null.  For each enabled backend:

* ``<backend>_lld``: openSMILE's low-level descriptors (10 ms hop) averaged over the same analysis
  windows as the ``acoustic`` column (:func:`~emoprep.extractors.windows.window_bounds`); an LLD frame
  belongs to the window that holds its centre.  A window that holds no LLD frame (possible only for
  an utterance shorter than openSMILE's first frame, which openSMILE answers with NaN) is a null
  element.
* ``<backend>_functionals``: openSMILE's own functionals over the whole utterance (88 eGeMAPS
  parameters, 6373 ComParE parameters); null when openSMILE gives no finite value (too short).

openSMILE does not produce NaN on silence (its F0 is 0 when unvoiced), but any NaN/inf it returns is
written as a null value, never as a number.  The ``opensmile`` wheel ships the native library: no
binary to install.  One ``Smile`` object per feature set and level is built per worker.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from typing import Any, ClassVar

import numpy as np

from ..config import ExtractConfig
from ..errors import SetupError, UtteranceError
from ..media.segment import UtteranceMedia
from .base import Extractor
from .windows import window_bounds

FEATURE_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
"""emoprep backend name -> openSMILE feature set."""
DIMENSIONS: dict[str, tuple[int, int]] = {"egemaps": (25, 88), "compare": (65, 6373)}
"""(LLDs, functionals) per backend; the schema's fixed_size_list sizes."""


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
                    df = lld.process_signal(audio, sr)
                    fdf = fun.process_signal(audio, sr)
            except Exception as exc:  # openSMILE raises RuntimeError/audinterface errors
                raise UtteranceError(self.name, f"openSMILE {FEATURE_SETS[b]} failed: {exc}") from exc
            out[f"{b}_lld"] = self._window_means(df, bounds, sr)
            if len(fdf):
                out[f"{b}_functionals"] = _rows(fdf.to_numpy(dtype=np.float64)[:1])[0]
        return out

    @staticmethod
    def _window_means(df: Any, bounds: list[tuple[int, int]], sr: int) -> Any:
        """``(n_windows, n_lld)`` float32 when every window has finite means, else rows with nulls."""
        values = df.to_numpy(dtype=np.float64)
        starts = df.index.get_level_values("start").total_seconds().to_numpy()
        ends = df.index.get_level_values("end").total_seconds().to_numpy()
        centres = (starts + ends) / 2.0
        result: list[Any] = []
        for lo, hi in bounds:
            sel = (centres >= lo / sr) & (centres < hi / sr)
            if not sel.any():
                result.append(None)
                continue
            with np.errstate(all="ignore"):
                result.append(_rows(values[sel].mean(axis=0, keepdims=True))[0])
        if all(isinstance(r, np.ndarray) for r in result):
            return np.stack(result).astype(np.float32) if result else np.zeros((0, values.shape[1]), np.float32)
        return result
