"""Offline speech synthesis with the espeak-ng library shipped by the ``espeakng-loader`` wheel.

The wheel carries ``libespeak-ng.so`` and its data but no executable, so we call the C API through
ctypes (synchronous mode, samples collected by a callback).  The library keeps global state, so one
process-wide :class:`Speaker` is used under a lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

_ESPEAK_RATE, _ESPEAK_VOLUME, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 2, 3, 4
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Voice:
    """espeak-ng prosody: words per minute, pitch and pitch range (0-100), volume (0-200)."""

    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100
    name: str = "en-us"


class Speaker:
    """Synthesise text to int16 PCM at the library's native rate (22,050 Hz)."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise (espeakng-loader data missing?)")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        @_CALLBACK
        def _collect(wav, n, _events):  # noqa: ANN001, ANN202 - C callback signature
            if wav and n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _collect  # keep a reference: ctypes does not
        self._lib.espeak_SetSynthCallback(self._callback)

    def say(self, text: str, voice: Voice = Voice()) -> np.ndarray:
        data = text.encode("utf-8")
        with self._lock:
            self._chunks = []
            if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise RuntimeError(f"espeak-ng has no voice {voice.name!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate, 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
            self._lib.espeak_SetParameter(_ESPEAK_RANGE, voice.pitch_range, 0)
            self._lib.espeak_SetParameter(_ESPEAK_VOLUME, voice.volume, 0)
            self._lib.espeak_Synth(ctypes.c_char_p(data), len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
