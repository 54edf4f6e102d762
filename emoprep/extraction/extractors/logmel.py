"""The ``logmel`` extractor: the end-to-end models' audio input, cut into 400 ms chunks.

Matches the MESM authors' ``torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400,
n_fft=400)`` (hop 200, 128 mel bins, power 2, HTK mel scale without filter normalisation, centred
frames with reflect padding, periodic Hann window), computed with numpy: librosa's filterbank and
window formulas reproduced bit for bit (:func:`mel_filterbank`, :func:`hann_window`) so that a worker
imports neither torch's audio side nor librosa/numba for them.
Then, unlike the authors (they fed raw power), emoprep stores ``ln(max(power, log_floor))``: the
log makes float16 storage safe (power spans ~20 orders of magnitude) and is what CNNs are usually fed.

Chunks: 32 frames (400 ms at a 12.5 ms hop) each, flattened mel-major (``index = mel * 32 + frame``,
so ``np.reshape(chunk, (128, 32))`` restores the image).  The last chunk is padded to 32 frames with
``ln(log_floor)`` - the value of digital silence - not with 0 (0 would be a loud power of 1.0 in the
log domain); ``logmel_frames`` holds the valid length of every chunk.  An utterance shorter than one
frame hop still gives one chunk (centred framing yields at least one frame).

Long utterances are processed in blocks of whole chunks (with the STFT context each block needs),
straight into the float16 output, so the working memory is bounded (one block) whatever the length,
and the bytes are the same for any block size (see :class:`LogmelComputer`).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar

import numpy as np

from ...errors import UtteranceError
from ..config import ExtractConfig, LogmelConfig
from ..media.segment import UtteranceMedia
from .base import Extractor

BLOCK_CHUNKS = 32
"""Chunks (32 x 400 ms = 12.8 s of audio) computed per block: the STFT of one block (~10 MB of
float64/complex temporaries) is all the working memory, whatever the utterance length."""


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None)``
    (float32, as librosa returns it), computed here with librosa's own operations in its order, so
    the bytes are librosa's (``tests/unit/test_logmel.py`` compares them with librosa 0.11's).

    Why not librosa: importing ``librosa.filters`` imports numba and scipy.signal and loads numba's
    compiled ufuncs from librosa's cache, ~0.5-1 CPU-s of every worker's start-up for a table of
    128 x 201 numbers.
    """
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)  # librosa.fft_frequencies
    # librosa.mel_frequencies(n_mels + 2, fmin=0, fmax=sr / 2, htk=True): hz_to_mel, linspace, mel_to_hz
    min_mel = 2595.0 * np.log10(1.0 + np.asanyarray(0.0) / 700.0)
    max_mel = 2595.0 * np.log10(1.0 + np.asanyarray(float(sample_rate) / 2) / 700.0)
    mel_f = 700.0 * (10.0 ** (np.linspace(min_mel, max_mel, n_mels + 2) / 2595.0) - 1.0)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    return weights  # norm=None: librosa.util.normalize returns the weights unchanged


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """librosa.stft's window for ``window="hann"``: ``scipy.signal.get_window("hann", win_length,
    fftbins=True)`` (periodic: scipy's ``general_cosine`` over ``win_length + 1`` points, the last
    dropped), zero-padded centred to ``n_fft`` (``librosa.util.pad_center``); float64, the same bytes
    as scipy's and librosa's (tested), without importing scipy.signal."""
    if win_length <= 1:
        w = np.ones(win_length)
    else:
        fac = np.linspace(-np.pi, np.pi, win_length + 1)
        w = np.zeros(win_length + 1)
        for k, a in enumerate((0.5, 0.5)):
            w += a * np.cos(k * fac)
        w = w[:-1]
    lpad = (n_fft - win_length) // 2
    return np.pad(w, (lpad, n_fft - win_length - lpad), mode="constant").astype(np.float64)


class LogmelComputer:
    """Mel filterbank built once; :meth:`chunks` turns a signal into padded log-mel chunks.

    Frames are computed block by block, straight into the float16 output: frame ``t`` is the windowed
    ``n_fft`` samples centred on sample ``t * hop`` of the reflect-padded signal, and a block gathers
    exactly the samples its frames need (reflect padding only where a block touches an end of the
    signal).  Every frame's FFT is a separate 1-D transform (numpy's pocketfft) and the mel projection
    is one fixed-shape ``(n_mels, n_freq) @ (n_freq, chunk_frames)`` product per chunk, so the result
    does not depend on the block size: blocks of 1 chunk and one block of everything give identical
    bytes (``tests/unit/test_logmel.py``).
    """

    def __init__(self, cfg: LogmelConfig, sample_rate: int = 16000) -> None:
        cfg.validate()
        self.cfg = cfg
        self.sample_rate = sample_rate
        # 128 HTK mel bands over 201 FFT bins leave the lowest few bands without a bin (librosa and
        # torchaudio warn about it).  Those rows are always ln(log_floor).
        self.mel_basis = mel_filterbank(sample_rate, cfg.n_fft, cfg.n_mels).astype(np.float64)
        self.window = hann_window(cfg.win_length, cfg.n_fft)
        self.empty_bands = int((self.mel_basis.sum(axis=1) == 0).sum())
        self.pad_value = float(np.log(cfg.log_floor))

    def frames(self, n_samples: int) -> int:
        """Number of (centred) STFT frames of a signal of ``n_samples``."""
        return 1 + n_samples // self.cfg.hop_length

    def _block_samples(self, y: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Samples of the reflect-padded signal that frames ``t0 .. t1-1`` cover (float64)."""
        cfg = self.cfg
        half, n = cfg.n_fft // 2, len(y)
        a, b = t0 * cfg.hop_length - half, (t1 - 1) * cfg.hop_length + cfg.n_fft - half  # in y's index
        if a >= 0 and b <= n:
            return np.asarray(y[a:b], dtype=np.float64)
        idx = np.arange(a, b)
        idx = np.where(idx < 0, -idx, idx)  # numpy's "reflect" (edge sample not repeated)
        idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
        return y[idx].astype(np.float64)  # a copy of this block's samples only

    def _block(self, y: np.ndarray, c0: int, c1: int, n_frames: int) -> np.ndarray:
        """Log-mel of chunks ``c0 .. c1-1`` as ``(c1 - c0, n_mels, chunk_frames)`` float64; frames past
        the end of the signal hold ``pad_value``."""
        cfg = self.cfg
        cf = cfg.chunk_frames
        t0, t1 = c0 * cf, min(c1 * cf, n_frames)
        seg = self._block_samples(y, t0, t1)
        frames = np.lib.stride_tricks.sliding_window_view(seg, cfg.n_fft)[:: cfg.hop_length]
        power = np.zeros(((c1 - c0) * cf, cfg.n_fft // 2 + 1))
        power[: t1 - t0] = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2
        # one (n_mels, n_freq) @ (n_freq, cf) product per chunk: the same shapes whatever the block size
        mel = np.matmul(self.mel_basis, power.reshape(c1 - c0, cf, -1).transpose(0, 2, 1))
        out = np.log(np.maximum(mel, cfg.log_floor))
        if t1 < c1 * cf:
            out.reshape(-1, cfg.n_mels, cf)[-1, :, t1 - (c1 - 1) * cf :] = self.pad_value
        return out

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """``(n_mels, frames)`` float64 log-mel of a whole signal (tests and small signals; the extractor
        uses :meth:`chunks`, which never holds the whole float64 spectrogram)."""
        cube = self._all_blocks(np.asarray(audio), np.float64)[0]
        n_frames = self.frames(len(audio))
        return cube.transpose(1, 0, 2).reshape(self.cfg.n_mels, -1)[:, :n_frames]

    def _all_blocks(self, audio: np.ndarray, dtype: Any) -> tuple[np.ndarray, int]:
        cfg = self.cfg
        y = audio
        half = cfg.n_fft // 2
        if len(y) <= half:  # reflect padding needs more samples than half a window
            y = np.pad(np.asarray(y, dtype=np.float64), (0, half + 1 - len(y)))
        n_frames = self.frames(len(audio))
        n_chunks = -(-n_frames // cfg.chunk_frames)
        out = np.empty((n_chunks, cfg.n_mels, cfg.chunk_frames), dtype=dtype)
        for c0 in range(0, n_chunks, BLOCK_CHUNKS):
            c1 = min(c0 + BLOCK_CHUNKS, n_chunks)
            out[c0:c1] = self._block(y, c0, c1, n_frames)
        return out, n_frames

    def chunks(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n_chunks, n_mels * chunk_frames)`` float16 chunks and their valid frame counts (int16)."""
        cfg = self.cfg
        cube, n_frames = self._all_blocks(np.asarray(audio), np.float16)  # (chunks, mels, frames)
        n_chunks = cube.shape[0]
        valid = np.full(n_chunks, cfg.chunk_frames, dtype=np.int16)
        valid[-1] = n_frames - (n_chunks - 1) * cfg.chunk_frames
        return cube.reshape(n_chunks, -1), valid  # mel-major inside each chunk


class LogmelExtractor(Extractor):
    """``logmel`` (n_chunks x 4096 float16) and ``logmel_frames`` (valid frames per chunk)."""

    name: ClassVar[str] = "logmel"
    columns: ClassVar[tuple[str, ...]] = ("logmel", "logmel_frames")

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.check()
        self._computer = LogmelComputer(config.logmel, config.sample_rate)

    def check(self) -> None:
        self.config.logmel.validate()  # the ranges, and n_mels x chunk_frames = the schema's 4096

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
