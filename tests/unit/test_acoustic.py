"""The DisVoice 142 acoustic extractor: agreement with DisVoice itself, windows, edge cases.

phonet's network (PyTorch) loads once for the module (``extractor`` fixture); ``import disvoice``
(for the reference values) costs 3-40 s and is also paid once (``disvoice_ref`` fixture).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _audio_media import SR, ArrayMedia, media_for, tone, voiced, write_audio, write_video_only

from emoprep.extraction.config import AcousticConfig, ExtractConfig
from emoprep.errors import MediaError, SetupError
from emoprep.extraction.extractors import features142
from emoprep.extraction.extractors.acoustic import AcousticExtractor
from emoprep.extraction.extractors.features142 import FEATURE_NAMES, N_FEATURES
from emoprep.extraction.extractors.windows import window_bounds
from emoprep.extraction.media.audio import decode_audio

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "utterance.v1.json"

# Agreement tolerance with DisVoice's own static extraction on the same 400 ms chunk (see
# test_agrees_with_disvoice_static).  Measured worst case over all 47 speech-emotion files (all windows):
# 3e-5 absolute while emoprep ran phonet's TensorFlow model too; its PyTorch copy differs from that by up
# to 1.2e-4 (tests/unit/test_phonet_torch.py, float32 rounding).  Both sides compute in float64 from the same 16-bit samples and call the same DisVoice /
# phonet functions (DisVoice through phonet's TensorFlow model, emoprep through the same network in
# PyTorch); differences come only from (a) our float32 storage (6e-8 relative), (b) phonet's
# float32 BGRU run as one batch instead of one sequence per call (different GEMM summation order:
# ~1e-7 in a posterior), amplified by the log-odds of the PLLR (x 1/(p(1-p) ln 10)) and by the
# division by a small std in skewness/kurtosis.  1e-3 absolute + 1e-4 relative is several times the
# worst case seen, and 100-1000x below the spread of every feature across windows (BBE ~ -20..5, MFCC ~ -5..5,
# PLLR statistics ~0.05..10), so a real error (wrong frames, order, normalisation, statistic) cannot hide.
ATOL, RTOL = 1e-3, 1e-4


def _config(**acoustic) -> ExtractConfig:
    return ExtractConfig(dataset="test", modalities=("acoustic",), acoustic=AcousticConfig(**acoustic))


@pytest.fixture(scope="module")
def extractor() -> AcousticExtractor:
    return AcousticExtractor(_config())


@pytest.fixture(scope="module")
def disvoice_ref():
    """DisVoice's Articulation and Phonological objects (the reference implementation)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import disvoice

    return disvoice.Articulation(), disvoice.Phonological()


def _speech_files(shared) -> list[Path]:
    d = shared("speech-emotion")
    files = sorted(d.glob("*.wav"))
    if not files:
        pytest.skip("no speech-emotion wav files")
    return files


def _reference(ref, samples_int16: np.ndarray) -> np.ndarray:
    """DisVoice static extraction of one chunk written as a 16-bit wav: the 142 in our order."""
    from scipy.io.wavfile import write

    from emoprep.extraction.extractors.disvoice_lib import reset_rapt_noise

    art, phon = ref
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "chunk.wav")
        write(p, SR, samples_int16)
        # DisVoice calls pysptk's RAPT once per chunk; reset SPTK's dither generator first so that
        # call computes what a fresh process would (see disvoice_lib.reset_rapt_noise), as emoprep does.
        reset_rapt_noise()
        a = art.extract_features_file(p, static=True, plots=False, fmt="dataframe")
        np.random.seed(0)  # phonet pads with randn noise; seed 0 = the fixed noise emoprep uses
        ph = phon.extract_features_file(p, static=True, plots=False, fmt="dataframe")
    art_cols = [f"avg {n}" for n in FEATURE_NAMES[:34]]
    return np.concatenate([a[art_cols].to_numpy()[0], ph[list(FEATURE_NAMES[34:])].to_numpy()[0]])


def _check_agreement(extractor: AcousticExtractor, ref, path: Path, max_windows: int | None) -> tuple[int, float]:
    """Compare every window (up to ``max_windows``) with DisVoice; (windows checked, max abs diff)."""
    audio = decode_audio(path, 0.0, 1e6, SR)
    samples = np.round(audio * 32768).astype(np.int16)  # the file's own 16-bit samples
    out = extractor.extract(ArrayMedia(audio))
    values = out["acoustic"]
    bounds = window_bounds(len(audio), SR, 0.4, 0.4)
    assert values.shape == (len(bounds), N_FEATURES)
    checked, worst = 0, 0.0
    for i, (lo, hi) in enumerate(bounds[:max_windows]):
        expected = _reference(ref, samples[lo:hi])
        if not np.all(np.isfinite(expected)):  # DisVoice's NaN on digital silence: we mask instead
            assert not out["acoustic_valid"][i] and np.all(values[i] == 0)
            continue
        bad = ~np.isclose(values[i], expected, atol=ATOL, rtol=RTOL)
        assert not bad.any(), (
            f"{path.name} window {i}: "
            + ", ".join(f"{FEATURE_NAMES[j]} {values[i, j]:.6g} vs DisVoice {expected[j]:.6g}" for j in np.where(bad)[0][:8])
        )
        checked += 1
        worst = max(worst, float(np.abs(values[i] - expected).max()))
    return checked, worst


def test_feature_names_match_schema_and_disvoice(disvoice_ref) -> None:
    col = {c["name"]: c for c in json.loads(SCHEMA.read_text())["columns"]}["acoustic"]
    assert list(FEATURE_NAMES) == col["feature_names"]
    art, phon = disvoice_ref
    assert list(FEATURE_NAMES[34:]) == list(phon.head_st)  # DisVoice's own order of the 108
    assert [f"avg {n}" for n in FEATURE_NAMES[:34]] == list(art.head_st[:34])


def test_agrees_with_disvoice_static(extractor, disvoice_ref, shared) -> None:
    """Fast version: the first 3 windows of two real utterances, all 142 features each."""
    files = _speech_files(shared)
    results = [_check_agreement(extractor, disvoice_ref, f, 3) for f in (files[0], files[len(files) // 2])]
    assert sum(n for n, _ in results) >= 4


@pytest.mark.slow
def test_agrees_with_disvoice_static_all_files(extractor, disvoice_ref, shared) -> None:
    """Every window of every speech-emotion file (~3-4 min: DisVoice needs ~0.65 s per chunk)."""
    results = [_check_agreement(extractor, disvoice_ref, f, None) for f in _speech_files(shared)]
    print(f"windows compared: {sum(n for n, _ in results)}, max abs difference: {max(w for _, w in results):.3g}")
    assert sum(n for n, _ in results) > 100


def test_shapes_windows_and_masks(extractor) -> None:
    x = voiced(2.2)
    out = extractor.extract(ArrayMedia(x))
    assert set(out) == set(AcousticExtractor.columns)
    v = out["acoustic"]
    assert v.dtype == np.float32 and v.shape == (6, 142)  # 5 full windows + a 0.2 s partial one
    assert np.all(np.isfinite(v))
    assert out["acoustic_valid"].tolist() == [True] * 6
    onsets = out["acoustic_onset_frames"]
    assert onsets.dtype == np.int16 and onsets.shape == (6,)
    # the synthetic 'speech' turns voiced every 400 ms: every full window holds an onset
    assert np.all(onsets[:5] > 0)
    assert np.all(v[onsets > 0, :34] != 0)


def test_window_count_rules() -> None:
    assert [hi - lo for lo, hi in window_bounds(int(1.0 * SR), SR, 0.4, 0.4)] == [6400, 6400, 3200]
    assert len(window_bounds(int(0.85 * SR), SR, 0.4, 0.4)) == 2  # a 50 ms tail is dropped
    assert window_bounds(800, SR, 0.4, 0.4) == [(0, 800)]  # shorter than everything: one window
    over = window_bounds(int(1.0 * SR), SR, 0.4, 0.2)
    assert [lo for lo, _ in over] == [0, 3200, 6400, 9600] and over[-1][1] == SR


def test_short_utterance_gives_one_window(extractor) -> None:
    out = extractor.extract(ArrayMedia(voiced(0.05)))
    assert out["acoustic"].shape == (1, 142)
    assert np.all(np.isfinite(out["acoustic"]))


def test_digital_silence_is_zero_and_masked(extractor) -> None:
    silent = np.zeros(int(1.2 * SR), dtype=np.float32)
    out = extractor.extract(ArrayMedia(silent))
    assert out["acoustic"].shape == (3, 142)
    assert not out["acoustic_valid"].any()
    assert np.all(out["acoustic"] == 0) and np.all(out["acoustic_onset_frames"] == 0)
    # silence then speech: only the silent windows are masked
    x = np.concatenate([silent[: int(0.8 * SR)], voiced(1.2)])
    out = extractor.extract(ArrayMedia(x))
    assert out["acoustic_valid"].tolist() == [False, False, True, True, True]
    assert np.all(np.isfinite(out["acoustic"])) and np.any(out["acoustic"][2:] != 0)
    # a DC offset is silence too (DisVoice removes the mean, then divides by zero)
    dc = np.full(int(0.4 * SR), 0.25, dtype=np.float32)
    assert not extractor.extract(ArrayMedia(dc))["acoustic_valid"].any()


def test_clipped_audio_is_analysed(extractor) -> None:
    x = np.clip(voiced(1.2) * 20, -1, 1)
    out = extractor.extract(ArrayMedia(x))
    assert out["acoustic_valid"].all() and np.all(np.isfinite(out["acoustic"]))
    # peak normalisation: a louder (unclipped) copy gives the same features as the original
    y = voiced(1.2)
    a = extractor.extract(ArrayMedia(y))["acoustic"]
    b = extractor.extract(ArrayMedia(y * 0.25))["acoustic"]
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-4)


def test_stereo_file_uses_the_selected_channel(extractor, tmp_path: Path) -> None:
    speech, other = voiced(1.6, f0=120), tone(3000, 1.6, amp=0.2)
    path = write_audio(tmp_path / "st.wav", np.stack([speech, other]), SR)
    left = extractor.extract(media_for(path, 0.0, 1.6, channel=0))["acoustic"]
    right = extractor.extract(media_for(path, 0.0, 1.6, channel=1))["acoustic"]
    direct = extractor.extract(ArrayMedia(speech))["acoustic"]
    np.testing.assert_allclose(left, direct, atol=2e-2)  # 16-bit quantisation of the file only
    assert np.abs(left - right).max() > 1.0


def test_missing_audio_stream_raises_media_error(extractor, tmp_path: Path) -> None:
    media = media_for(write_video_only(tmp_path / "v.mp4"), 0.0, 0.5)
    with pytest.raises(MediaError) as err:
        extractor.extract(media)
    assert err.value.stage == "decode_audio"


def test_non_finite_library_output_is_zeroed_and_masked(extractor, monkeypatch) -> None:
    feats = extractor._features
    real = feats.phonological_stats
    calls = {"n": 0}

    def flaky(post: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        out = real(post)
        if calls["n"] == 2:
            out[3] = np.nan
            out[7] = np.inf
        return out

    monkeypatch.setattr(feats, "phonological_stats", flaky)
    out = extractor.extract(ArrayMedia(voiced(1.2)))
    assert np.all(np.isfinite(out["acoustic"]))
    assert out["acoustic_valid"].tolist() == [True, False, True]
    assert out["acoustic"][1, 34 + 3] == 0 and out["acoustic"][1, 34 + 7] == 0


def test_saturated_posteriors_and_constant_tracks_stay_finite(extractor) -> None:
    feats = extractor._features
    post = np.ones((39, 18))
    post[:, 5] = 0.0
    stats = feats.phonological_stats(post)
    assert stats.shape == (108,) and np.all(np.isfinite(stats))
    assert stats[2] == 0 and stats[3] == 0  # skewness/kurtosis of a constant track


def test_blocks_do_not_change_results(extractor, monkeypatch) -> None:
    x = voiced(2.0, seed=3)
    whole = extractor.extract(ArrayMedia(x))["acoustic"]
    monkeypatch.setattr(features142, "BLOCK_WINDOWS", 2)
    blocked = extractor.extract(ArrayMedia(x))["acoustic"]
    np.testing.assert_allclose(whole, blocked, atol=1e-5)


def test_overlapping_windows_match_single_chunks(extractor) -> None:
    x = voiced(1.6, seed=5)
    ext = AcousticExtractor.__new__(AcousticExtractor)  # share the loaded model, other windows
    ext.__dict__.update(extractor.__dict__)
    ext.config = _config(window_s=0.4, hop_s=0.2)
    out = ext.extract(ArrayMedia(x))["acoustic"]
    assert out.shape[0] == 7
    third = extractor.extract(ArrayMedia(x[int(0.4 * SR) : int(0.8 * SR)]))["acoustic"][0]
    np.testing.assert_allclose(out[2], third, atol=1e-5)  # window 2 starts at 0.4 s
    assert extractor.extract(ArrayMedia(x))["acoustic"].tolist() == extractor.extract(ArrayMedia(x))["acoustic"].tolist()


def test_arrow_conversion_and_describe(extractor) -> None:
    from emoprep.format.schema import utterance_schema
    from emoprep.extraction.engine.columns import to_arrow

    out = extractor.extract(ArrayMedia(voiced(1.0)))
    schema = utterance_schema()
    for name, value in out.items():
        arr = to_arrow([value, None], schema.field(name).type)
        assert arr.null_count == 1 and len(arr[0]) == len(out["acoustic_valid"])
    d = extractor.describe()
    assert d["backend"] == "disvoice" and "phonet==" in d["libraries"] and d["window_s"] == 0.4


def test_disabled_backend_and_bad_config() -> None:
    off = AcousticExtractor(_config(backends=("egemaps",)))
    assert off.extract(ArrayMedia(voiced(0.5))) == {c: None for c in AcousticExtractor.columns}
    with pytest.raises(SetupError, match="unknown acoustic backend"):
        AcousticExtractor(_config(backends=("disvoice", "wav2vec")))
    with pytest.raises(SetupError, match="positive"):
        AcousticExtractor(replace(_config(backends=("egemaps",)), acoustic=AcousticConfig(backends=("egemaps",), hop_s=0)))
    with pytest.raises(SetupError, match="16000"):
        AcousticExtractor(replace(_config(), sample_rate=8000))


def _normalised_windows(audio: np.ndarray) -> list[np.ndarray]:
    wins = []
    for lo, hi in window_bounds(len(audio), SR, 0.4, 0.4):
        w = audio[lo:hi].astype(np.float64) - audio[lo:hi].mean()
        wins.append(w / np.abs(w).max())
    return wins


_FRESH_CHILD = """
import sys
import numpy as np
from emoprep.extraction.extractors.features142 import articulation
wins = np.load(sys.argv[1])
np.save(sys.argv[2], np.stack([np.append(*articulation(w)) for w in wins]))
"""


def test_window_features_do_not_depend_on_process_history(shared, tmp_path: Path, monkeypatch) -> None:
    """BBE/MFCC (RAPT onsets) of a window: the same computed first in a fresh process, or after other
    audio, in any order.  SPTK's dither generator keeps a cached deviate across RAPT calls, so an
    odd-length signal analysed before shifts the dither of later calls (disvoice_lib.reset_rapt_noise).
    Window 6 of 46.wav is one whose onset frames change under such a shift (2 of 344 windows do)."""
    import subprocess
    import sys

    from emoprep.extraction.extractors import disvoice_lib
    from emoprep.extraction.extractors.features142 import articulation

    path = shared("speech-emotion", "46.wav")
    wins = _normalised_windows(decode_audio(path, 0.0, 1e6, SR))[4:9]  # window 6 is wins[2]
    np.save(tmp_path / "w.npy", np.stack(wins))
    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-c", _FRESH_CHILD, str(tmp_path / "w.npy"), str(tmp_path / "fresh.npy")],
        check=True, cwd=repo, capture_output=True, timeout=300,
    )
    fresh = np.load(tmp_path / "fresh.npy")  # (5, 35): 34 features + onset frame count

    sptk = disvoice_lib.pysptk().sptk
    odd = np.asarray(voiced(0.5, seed=9)[:6401] * 2**15, dtype=np.float32)
    assert len(odd) % 2 == 1  # RAPT draws len + 1280 deviates: an odd number flips the generator

    def other_audio() -> None:
        sptk.rapt(odd, SR, 320, min=60, max=350, voice_bias=-0.2, otype="f0")

    # Without the reset the hidden state is really exercised: window 6 gets other onset frames.
    with monkeypatch.context() as m:
        m.setattr(disvoice_lib, "reset_rapt_noise", lambda: None)
        other_audio()
        assert not np.array_equal(np.append(*articulation(wins[2])), fresh[2])

    other_audio()
    forward = np.stack([np.append(*articulation(w)) for w in wins])
    other_audio()
    backward = np.stack([np.append(*articulation(w)) for w in wins[::-1]])[::-1]
    other_audio()
    shuffled = {i: np.append(*articulation(wins[i])) for i in (2, 0, 4, 1, 3)}
    np.testing.assert_array_equal(forward, fresh)
    np.testing.assert_array_equal(backward, fresh)
    np.testing.assert_array_equal(np.stack([shuffled[i] for i in range(5)]), fresh)
    assert (fresh[:, -1] > 0).sum() >= 3  # speech windows with onset frames: BBE/MFCC really compared
