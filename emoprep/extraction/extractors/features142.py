"""The 142 DisVoice features of one analysis window, computed for all windows of an utterance at once.

Definition (what the MESM authors got by running DisVoice's *static* extraction on each 400 ms chunk;
the agreement test in ``tests/unit/test_acoustic.py`` checks it against DisVoice itself):

* every window is analysed on its own, as DisVoice analyses a chunk file: mean removed, scaled to a
  peak of 1 (DisVoice's ``data / max(abs(data))``);
* **22 Bark-band energies + 12 MFCCs** (``BBEon_*``, ``MFCCon_*``): DisVoice articulation.  The pitch
  track (pysptk RAPT, 20 ms step, 60-350 Hz) marks *onsets* (unvoiced -> voiced); 80 ms around each
  onset is cut into 40 ms frames with a 20 ms step; ``barke`` and pysptk ``mfcc`` are computed per
  frame by DisVoice's own ``extract_transitions``.  The window's value is the mean over its onset
  frames.  **A window with no onset frame gets zeros** - exactly what DisVoice's static extraction
  returns for such a chunk (``dynamic2statict_artic``), so the values stay comparable with the
  authors' features; ``acoustic_onset_frames`` holds the frame count (0 = "no onset, zeros"), so a
  model can mask them instead.
* **108 phonological statistics**: phonet's 18 class posteriors on 10 ms frames, turned into
  projected phonological log-likelihood ratios (PLLR) exactly as ``Phonet.get_PLLR`` does (this is
  what DisVoice's ``Phonological`` feeds its statistics, not the raw posteriors), then mean, std,
  skewness, kurtosis, max, min over the window's frames, class-major.

Why it is fast (the naive route, DisVoice static on each chunk file, runs ~0.65 s per window):
phonet's input features are built per window (as DisVoice does for a chunk file) but the BGRU (in
PyTorch, :mod:`~emoprep.extraction.extractors.phonet_torch`: no TensorFlow start-up in the worker) runs
**once per block of windows** in a single batched call, the unused phoneme model is skipped, and
the formant tracking DisVoice's articulation also does (Praat, not part of the 142) is skipped.
phonet's sequences are 40 frames (400 ms) long and independent, so batching does not change them.

Determinism: pysptk's RAPT dithers its input with Gaussian noise from SPTK's ``nrandom``, whose
cached second deviate (C static variables) carries over from one call to the next, so an odd-length
window shifts the dither of every later window by one sample; f0 and occasionally a voicing decision
(hence the onset frames) then depend on what the process analysed before.  Every RAPT call goes
through :func:`~emoprep.extraction.extractors.disvoice_lib.rapt`, which puts that generator back in its
fresh-process state first (root cause and proof in
:func:`~emoprep.extraction.extractors.disvoice_lib.reset_rapt_noise`): a window's features are those of a fresh
process, whatever ran before, in any order; the agreement test resets DisVoice's own call the same way.
phonet appends 0.4 s of ``0.05 * randn`` noise to every signal (fresh random numbers per
call, so DisVoice itself is not reproducible run to run).  We append the same fixed noise
(``RandomState(0)``) to every window, which is also what DisVoice gives after ``np.random.seed(0)``.

Edge cases (never NaN/inf in the output):

* digital silence (peak of the mean-removed window below :data:`SILENCE_PEAK`; DisVoice divides by
  zero and returns NaN): the window's 142 values are 0 and ``acoustic_valid`` is false;
* zero-variance statistics (skewness/kurtosis of a constant PLLR track, NaN in scipy): 0, as
  DisVoice itself writes for a one-frame articulation track;
* posteriors of exactly 0 or 1 (float32 saturation; PLLR would be +-inf) are clipped to
  :data:`POSTERIOR_CLIP`, which moves no other float32 value;
* anything else non-finite that a library returns: the value is written as 0 and the window is
  marked ``acoustic_valid = false``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .windows import MIN_WINDOW_S, window_bounds

PHON_CLASSES: tuple[str, ...] = (
    "vocalic", "consonantal", "back", "anterior", "open", "close", "nasal", "stop", "continuant",
    "lateral", "flap", "trill", "voice", "strident", "labial", "dental", "velar", "pause",
)
STATISTICS: tuple[str, ...] = ("mean", "std", "skewness", "kurtosis", "max", "min")
N_BBE = 22
N_MFCC = 12
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"BBEon_{i}" for i in range(1, N_BBE + 1))
    + tuple(f"MFCCon_{i}" for i in range(1, N_MFCC + 1))
    + tuple(f"{c}_{s}" for c in PHON_CLASSES for s in STATISTICS)
)
N_FEATURES = len(FEATURE_NAMES)  # 142

SILENCE_PEAK = 1e-6
"""Peak (full scale 1.0) below which a mean-removed window counts as digital silence.

Far below one 16-bit step (3e-5), so every window holding a single non-zero 16-bit sample is still
analysed, as DisVoice would analyse it."""
POSTERIOR_CLIP = (2.0**-126, 1.0 - 2.0**-25)
"""phonet's float32 posteriors are clipped here before the log-odds.  Only exact 0 and 1 (softmax
saturation; DisVoice would give -inf/+inf) are moved: every other float32 value lies inside (subnormals
aside), so the PLLRs stay identical to DisVoice's (PLLR of a saturated posterior: about -37.9 / +7.5)."""

# DisVoice Articulation() defaults
_FRAME_S, _STEP_S = 0.04, 0.02
_MIN_F0, _MAX_F0, _VOICE_BIAS = 60, 350, -0.2
# phonet defaults
_PH_WIN_S, _PH_STEP_S, _PH_NFILT, _PH_NFFT, _PH_SEQ = 0.025, 0.01, 33, 512, 40

BLOCK_WINDOWS = 32
"""Windows analysed per batched phonet call: bounds memory for long utterances (5 min = 750 windows)."""


def articulation(data: np.ndarray, fs: int = 16000) -> tuple[np.ndarray, int]:
    """Mean BBEon (22) + MFCCon (12) over the onset frames of a normalised window, and their count.

    Needs DisVoice's articulation functions and pysptk only (no TensorFlow), loaded once per process.
    """
    from . import disvoice_lib

    af = disvoice_lib.articulation_functions()
    step = _STEP_S * fs
    pcm = np.asarray(data * 2**15, dtype=np.float32)
    # fresh-process RAPT: SPTK's dither generator is reset before the call (module docstring)
    f0 = disvoice_lib.rapt(pcm, fs, int(step), min=_MIN_F0, max=_MAX_F0, voice_bias=_VOICE_BIAS, otype="f0")
    segments = af.get_transition_segments(f0, data, fs, "onset")
    bbe, mfcc = af.extract_transitions(segments, fs, _FRAME_S * fs, step, N_BBE, N_MFCC)
    n = bbe.shape[0]
    if n == 0:
        return np.zeros(N_BBE + N_MFCC), 0
    return np.concatenate([bbe.mean(axis=0), mfcc.mean(axis=0)]), n


def mask_correction(posterior: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """phonet's ``Phonet.mask_correction``, statement for statement (in place, sequential: a frame
    sees its predecessor's corrected value): a lone frame on the other side of ``threshold`` than
    both neighbours gets their mean.  Copied because importing phonet imports TensorFlow."""
    for j in range(1, len(posterior) - 1):
        if posterior[j - 1] >= threshold and posterior[j] < threshold and posterior[j + 1] >= threshold:
            posterior[j] = (posterior[j - 1] + posterior[j + 1]) / 2
        if posterior[j - 1] < threshold and posterior[j] >= threshold and posterior[j + 1] < threshold:
            posterior[j] = (posterior[j - 1] + posterior[j + 1]) / 2
    return posterior


@dataclass
class WindowResult:
    """Output of :meth:`Features142.compute`: arrays of length ``n_windows``."""

    values: np.ndarray  # (n, 142) float32
    onset_frames: np.ndarray  # (n,) int16
    valid: np.ndarray  # (n,) bool
    bounds: list[tuple[int, int]] = field(default_factory=list)


class Features142:
    """Loads phonet's network once (PyTorch, :mod:`~emoprep.extraction.extractors.phonet_torch`) and computes the 142 features of every window of a signal."""

    def __init__(self, sample_rate: int = 16000, threads: int = 1) -> None:
        from . import disvoice_lib

        if sample_rate != 16000:
            raise ValueError("phonet's model is trained on 16 kHz audio: decode at 16000 Hz")
        self.sample_rate = sample_rate
        self._af = disvoice_lib.articulation_functions()
        disvoice_lib.reset_rapt_noise()  # fails fast (SetupError) if the pysptk build lacks nrandom
        import python_speech_features as psf

        self._psf = psf
        self._net = disvoice_lib.load_phonet(threads)
        self._mu = self._net.mu
        self._std = self._net.std
        fill = int(_PH_SEQ * _PH_STEP_S * sample_rate)
        self._noise = 0.05 * np.random.RandomState(0).randn(fill)
        n = len(PHON_CLASSES)
        ones = np.ones((n, n)) / np.sqrt(n)
        self._projection = np.identity(n) - ones.T * ones  # Phonet.get_PLLR(projected=True)
        self._predict(np.zeros((1, _PH_SEQ, self._mu.shape[-1])))  # first call's one-off costs, here

    # -- one window ---------------------------------------------------------------------------
    def articulation(self, data: np.ndarray) -> tuple[np.ndarray, int]:
        """Mean BBEon (22) + MFCCon (12) over the onset frames of a normalised window, and their count."""
        return articulation(data, self.sample_rate)

    def phonet_inputs(self, data: np.ndarray) -> tuple[np.ndarray, int]:
        """Scaled phonet sequences ``(k, 40, 34)`` of a normalised window and its posterior frame count.

        Mirrors ``Phonet.get_feat`` + ``get_phon_wav``: log10 of 33 mel filterbank energies + frame
        energy on 25 ms / 10 ms frames of the signal followed by 0.4 s of noise, cut into 40-frame
        sequences; ``int(len/10 ms - 1)`` posterior frames are kept.
        """
        fs = self.sample_rate
        signal = np.concatenate([data, self._noise])
        fbank, energy = self._psf.fbank(
            signal, samplerate=fs, winlen=_PH_WIN_S, winstep=_PH_STEP_S, nfilt=_PH_NFILT,
            nfft=_PH_NFFT, lowfreq=0, highfreq=None, preemph=0.97,
        )
        feat = np.log10(np.concatenate([fbank, energy[:, None]], axis=1))
        k = feat.shape[0] // _PH_SEQ
        seqs = feat[: k * _PH_SEQ].reshape(k, _PH_SEQ, feat.shape[1])
        n_post = min(int(len(data) / (_PH_STEP_S * fs) - 1), k * _PH_SEQ)
        return (seqs - self._mu) / self._std, n_post

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Posteriors of the 18 classes, ``(batch, 40, 18)``; one call of phonet's network."""
        return self._net(x).astype(np.float64)  # the network computes in its own precision (float32)

    def phonological_stats(self, post: np.ndarray) -> np.ndarray:
        """108 statistics of the projected PLLRs of ``post`` (``(frames, 18)`` posteriors)."""
        import scipy.stats as st

        post = post.copy()
        for c in range(post.shape[1]):
            post[:, c] = mask_correction(post[:, c])
        post = np.clip(post, *POSTERIOR_CLIP)
        pllr = np.log10(post / (1.0 - post)) @ self._projection
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                skew = np.nan_to_num(st.skew(pllr, axis=0), nan=0.0)
                kurt = np.nan_to_num(st.kurtosis(pllr, axis=0), nan=0.0)
        stats = np.stack(
            [pllr.mean(axis=0), pllr.std(axis=0), skew, kurt, pllr.max(axis=0), pllr.min(axis=0)], axis=1
        )
        return stats.reshape(-1)  # class-major: vocalic_mean, vocalic_std, ...

    # -- a whole utterance ----------------------------------------------------------------------
    def compute(self, audio: np.ndarray, window_s: float = 0.4, hop_s: float = 0.4) -> WindowResult:
        """The 142 features of every window (see :func:`~emoprep.extraction.extractors.windows.window_bounds`)."""
        x = np.asarray(audio)  # kept as decoded (float32): each window is converted on its own, so a long
        # utterance never exists as a whole float64 copy (5 min = 37 MB)
        bounds = window_bounds(len(x), self.sample_rate, window_s, hop_s)
        n = len(bounds)
        values = np.zeros((n, N_FEATURES), dtype=np.float64)
        onsets = np.zeros(n, dtype=np.int16)
        valid = np.ones(n, dtype=bool)
        min_len = round(MIN_WINDOW_S * self.sample_rate)
        for start in range(0, n, BLOCK_WINDOWS):
            pending: list[tuple[int, int, int, int]] = []  # window, first seq, n seqs, n posterior frames
            seqs: list[np.ndarray] = []
            n_seq = 0
            for i in range(start, min(start + BLOCK_WINDOWS, n)):
                lo, hi = bounds[i]
                data = x[lo:hi].astype(np.float64)
                if len(data) < min_len:  # only an utterance shorter than MIN_WINDOW_S
                    data = np.concatenate([data, np.zeros(min_len - len(data))])
                data = data - data.mean()
                peak = np.max(np.abs(data))
                if not np.isfinite(peak) or peak < SILENCE_PEAK:
                    valid[i] = False
                    continue
                data = data / peak
                values[i, : N_BBE + N_MFCC], onsets[i] = self.articulation(data)
                s, n_post = self.phonet_inputs(data)
                pending.append((i, n_seq, s.shape[0], n_post))
                seqs.append(s)
                n_seq += s.shape[0]
            if not pending:
                continue
            post = self._predict(np.concatenate(seqs, axis=0))
            for i, first, k, n_post in pending:
                p = post[first : first + k].reshape(k * _PH_SEQ, -1)[:n_post]
                if n_post < 1:
                    valid[i] = False
                    continue
                values[i, N_BBE + N_MFCC :] = self.phonological_stats(p)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            valid[bad] = False
            values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return WindowResult(values.astype(np.float32), onsets, valid, bounds)

    def describe(self) -> dict[str, Any]:
        from .disvoice_lib import disvoice_version

        return {
            "libraries": disvoice_version(),
            "articulation": {"frame_s": _FRAME_S, "step_s": _STEP_S, "f0": "pysptk rapt (dither generator reset per call)", "min_f0": _MIN_F0,
                             "max_f0": _MAX_F0, "voice_bias": _VOICE_BIAS, "transitions": "onset",
                             "no_onset": "zeros (see acoustic_onset_frames)"},
            "phonological": {"features": "projected PLLR of phonet posteriors",
                             # recorded in every shard's footer: the text keeps the module's old place
                             # (emoprep.extractors) so that the output stays byte-identical
                             "network": "phonet's BGRU in PyTorch (emoprep" ".extractors.phonet_torch, float32) "
                                        "with phonet's model.h5 weights",
                             "frame_s": _PH_WIN_S,
                             "step_s": _PH_STEP_S, "noise_pad_seed": 0, "posterior_clip": list(POSTERIOR_CLIP)},
            "normalisation": "per window: mean removed, peak scaled to 1 (DisVoice per-chunk behaviour)",
            "silence_peak": SILENCE_PEAK,
            "block_windows": BLOCK_WINDOWS,
        }
