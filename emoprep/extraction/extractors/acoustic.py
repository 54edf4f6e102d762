"""The ``acoustic`` extractor: DisVoice's 142 features per analysis window (MESM's hand-crafted audio).

The computation is in :mod:`emoprep.extraction.extractors.features142` (definition, speed-ups and edge cases are
documented there); this module adapts it to the :class:`~emoprep.extraction.extractors.base.Extractor`
protocol.  phonet's network (in PyTorch, :mod:`emoprep.extraction.extractors.phonet_torch`, with phonet's own
weights; TensorFlow is never imported) loads once, in ``__init__`` (once per worker process).

Runs only when ``acoustic.backends`` contains ``disvoice`` (the default); otherwise its columns are
null, nothing heavy is imported, and the openSMILE backends (a separate extractor,
:mod:`emoprep.extraction.extractors.opensmile_lld`) may still run.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import numpy as np

from ...errors import SetupError, UtteranceError
from ..config import ExtractConfig
from ..media.segment import UtteranceMedia
from .base import Extractor

def check_acoustic_config(config: ExtractConfig) -> None:
    """Fail fast on settings the acoustic extractors cannot honour."""
    config.acoustic.validate()  # the backends and the window sizes (emoprep.extraction.config)


class AcousticExtractor(Extractor):
    """``acoustic`` (n_windows x 142), ``acoustic_onset_frames`` and ``acoustic_valid`` per window."""

    name: ClassVar[str] = "acoustic"
    columns: ClassVar[tuple[str, ...]] = ("acoustic", "acoustic_onset_frames", "acoustic_valid")

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.enabled = "disvoice" in config.acoustic.backends
        self._features = None
        self._silent_windows = 0
        self._windows = 0
        check_acoustic_config(config)
        if self.enabled:
            self.check()
            from .features142 import Features142

            self._features = Features142(sample_rate=config.sample_rate)

    def check(self) -> None:
        check_acoustic_config(self.config)
        if not self.enabled:
            return
        if self.config.sample_rate != 16000:
            raise SetupError("the DisVoice/phonet acoustic features need sample_rate 16000")
        # phonet is only located (its weights are read), never imported: its import loads TensorFlow
        for module in ("disvoice", "phonet", "pysptk", "python_speech_features", "torch", "h5py"):
            if importlib.util.find_spec(module) is None:
                raise SetupError(
                    f"acoustic backend 'disvoice' needs the Python package {module!r}; install emoprep's "
                    "pinned dependencies (pyproject.toml), or drop 'disvoice' from acoustic.backends"
                )

    def describe(self) -> dict[str, Any]:
        if not self.enabled:
            return {"backend": "disabled", "backends": list(self.config.acoustic.backends)}
        from .features142 import FEATURE_NAMES

        params = self._features.describe() if self._features is not None else {}
        return {
            "backend": "disvoice",
            "window_s": self.config.acoustic.window_s,
            "hop_s": self.config.acoustic.hop_s,
            "n_features": len(FEATURE_NAMES),
            **params,
        }

    def run_stats(self) -> dict[str, Any]:
        stats = {"acoustic_windows": self._windows, "acoustic_invalid_windows": self._silent_windows}
        self._windows = self._silent_windows = 0
        return stats

    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        if not self.enabled or self._features is None:
            return {c: None for c in self.columns}
        audio = media.audio()  # MediaError is recorded by the pipeline under decode_audio
        if audio.size == 0:
            raise UtteranceError(self.name, "decoded audio is empty")
        try:
            res = self._features.compute(audio, self.config.acoustic.window_s, self.config.acoustic.hop_s)
        except (ValueError, RuntimeError, FloatingPointError) as exc:
            raise UtteranceError(self.name, f"DisVoice feature computation failed: {exc}") from exc
        self._windows += len(res.valid)
        self._silent_windows += int((~res.valid).sum())
        return {
            "acoustic": np.asarray(res.values, dtype=np.float32),  # (n_windows, 142)
            "acoustic_onset_frames": res.onset_frames.astype(np.int16),
            "acoustic_valid": res.valid.astype(bool),
        }
