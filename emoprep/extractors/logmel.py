"""The ``logmel`` extractor: the end-to-end models' audio input, cut into 400 ms chunks.

Matches the MESM authors' ``torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400,
n_fft=400)`` (hop 200, 128 mel bins, power 2, HTK mel scale without filter normalisation, centred
frames with reflect padding, periodic Hann window), computed with librosa so no torch is needed.
Then, unlike the authors (they fed raw power), emoprep stores ``ln(max(power, log_floor))``: the
log makes float16 storage safe (power spans ~20 orders of magnitude) and is what CNNs are usually fed.

Chunks: 32 frames (400 ms at a 12.5 ms hop) each, flattened mel-major (``index = mel * 32 + frame``,
so ``np.reshape(chunk, (128, 32))`` restores the image).  The last chunk is padded to 32 frames with
``ln(log_floor)`` - the value of digital silence - not with 0 (0 would be a loud power of 1.0 in the
log domain); ``logmel_frames`` holds the valid length of every chunk.  An utterance shorter than one
frame hop still gives one chunk (centred framing yields at least one frame).

Long utterances are processed in blocks of whole chunks (with the STFT context each block needs), so
memory stays bounded while the result is identical to one pass over the whole signal.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from typing import Any, ClassVar

import numpy as np

from ..config import ExtractConfig, LogmelConfig
from ..errors import SetupError, UtteranceError
from ..media.segment import UtteranceMedia
from .base import Extractor

BLOCK_CHUNKS = 64
"""Chunks (64 x 400 ms = 25.6 s) per STFT block."""


class LogmelComputer:
    """Mel filterbank built once; :meth:`chunks` turns a signal into padded log-mel chunks."""

    def __init__(self, cfg: LogmelConfig, sample_rate: int = 16000) -> None:
        import librosa

        if cfg.win_length > cfg.n_fft:
            raise SetupError(f"logmel.win_length ({cfg.win_length}) must not exceed logmel.n_fft ({cfg.n_fft})")
        if cfg.log_floor <= 0 or cfg.chunk_frames < 1 or cfg.hop_length < 1:
            raise SetupError("logmel.log_floor must be > 0, chunk_frames and hop_length >= 1")
        self.cfg = cfg
        self.sample_rate = sample_rate
        self._librosa = librosa
        with warnings.catch_warnings():
            # 128 HTK mel bands over 201 FFT bins leave the lowest few bands without a bin: librosa
            # (and torchaudio, for the authors) warn about it.  Those rows are always ln(log_floor).
            warnings.simplefilter("ignore", UserWarning)
            self.mel_basis = librosa.filters.mel(
                sr=sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, htk=True, norm=None
            ).astype(np.float64)
        self.empty_bands = int((self.mel_basis.sum(axis=1) == 0).sum())
        self.pad_value = float(np.log(cfg.log_floor))

    def _power_mel(self, y: np.ndarray) -> np.ndarray:
        """``(n_mels, frames)`` power mel spectrogram of ``y`` with centred, reflect-padded frames."""
        cfg = self.cfg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_fft too large" for sub-window utterances
            spec = self._librosa.stft(
                y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                window="hann", center=True, pad_mode="reflect",
            )
        return self.mel_basis @ (np.abs(spec) ** 2)

    def frames(self, n_samples: int) -> int:
        """Number of (centred) STFT frames of a signal of ``n_samples``."""
        return 1 + n_samples // self.cfg.hop_length

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """``(n_mels, frames)`` log-mel of a whole signal, computed in bounded blocks."""
        cfg = self.cfg
        y = np.asarray(audio, dtype=np.float64)
        n_frames = self.frames(len(y))
        half = cfg.n_fft // 2
        if len(y) <= half or n_frames <= BLOCK_CHUNKS * cfg.chunk_frames:
            if len(y) <= half:  # reflect padding needs more samples than half a window
                y = np.pad(y, (0, half + 1 - len(y)))
            return np.log(np.maximum(self._power_mel(y)[:, :n_frames], cfg.log_floor))
        # Frame t of the centred STFT covers y[t*hop - half : t*hop + half] of the reflect-padded signal:
        # pad once, then take each block's frames from a slice that holds exactly their samples.
        padded = np.pad(y, half, mode="reflect")
        out = np.empty((cfg.n_mels, n_frames), dtype=np.float64)
        step = BLOCK_CHUNKS * cfg.chunk_frames
        for t0 in range(0, n_frames, step):
            t1 = min(t0 + step, n_frames)
            seg = padded[t0 * cfg.hop_length : (t1 - 1) * cfg.hop_length + cfg.n_fft]
            spec = self._librosa.stft(
                seg, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                window="hann", center=False,
            )
            out[:, t0:t1] = np.log(np.maximum(self.mel_basis @ (np.abs(spec) ** 2), cfg.log_floor))
        return out

    def chunks(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n_chunks, n_mels * chunk_frames)`` float16 chunks and their valid frame counts (int16)."""
        cfg = self.cfg
        lm = self.log_mel(audio)
        n_frames = lm.shape[1]
        n_chunks = -(-n_frames // cfg.chunk_frames)
        full = np.full((cfg.n_mels, n_chunks * cfg.chunk_frames), self.pad_value)
        full[:, :n_frames] = lm
        # (mels, chunks, frames) -> (chunks, mels, frames): mel-major inside each chunk
        cube = full.reshape(cfg.n_mels, n_chunks, cfg.chunk_frames).transpose(1, 0, 2)
        valid = np.full(n_chunks, cfg.chunk_frames, dtype=np.int16)
        valid[-1] = n_frames - (n_chunks - 1) * cfg.chunk_frames
        return cube.reshape(n_chunks, -1).astype(np.float16), valid


class LogmelExtractor(Extractor):
    """``logmel`` (n_chunks x 4096 float16) and ``logmel_frames`` (valid frames per chunk)."""

    name: ClassVar[str] = "logmel"
    columns: ClassVar[tuple[str, ...]] = ("logmel", "logmel_frames")

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.check()
        self._computer = LogmelComputer(config.logmel, config.sample_rate)

    def check(self) -> None:
        cfg = self.config.logmel
        if cfg.n_mels * cfg.chunk_frames != 4096:
            raise SetupError(
                f"logmel column is fixed_size_list[4096] (schema v1): n_mels x chunk_frames must be 4096, "
                f"got {cfg.n_mels} x {cfg.chunk_frames}"
            )

    def describe(self) -> dict[str, Any]:
        cfg = self.config.logmel
        return {
            "backend": "librosa",
            "librosa": version("librosa"),
            "sample_rate": self.config.sample_rate,
            "n_mels": cfg.n_mels, "n_fft": cfg.n_fft, "win_length": cfg.win_length, "hop_length": cfg.hop_length,
            "window": "hann (periodic)", "center": True, "pad_mode": "reflect", "mel_scale": "htk",
            "mel_norm": None, "power": 2.0, "transform": "ln(max(power, log_floor))",
            "log_floor": cfg.log_floor, "chunk_frames": cfg.chunk_frames,
            "pad_value": self._computer.pad_value, "layout": "mel-major (mel * chunk_frames + frame)",
            "dtype": "float16", "empty_mel_bands": self._computer.empty_bands,
        }

    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        audio = media.audio()
        if audio.size == 0:
            raise UtteranceError(self.name, "decoded audio is empty")
        chunks, valid = self._computer.chunks(audio)
        if not np.all(np.isfinite(chunks)):  # decode_audio rejects non-finite samples; belt and braces
            raise UtteranceError(self.name, "non-finite log-mel value")
        return {"logmel": chunks, "logmel_frames": valid}  # (n_chunks, 4096) float16, (n_chunks,) int16
