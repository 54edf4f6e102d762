"""openSMILE backends: eGeMAPSv02 / ComParE_2016 LLD window means and utterance functionals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _audio_media import SR, ArrayMedia, voiced

from emoprep.extraction.config import AcousticConfig, ExtractConfig
from emoprep.extraction.extractors.opensmile_lld import OpenSmileExtractor
from emoprep.extraction.extractors.windows import window_bounds

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "utterance.v1.json"


def _config(*backends: str) -> ExtractConfig:
    return ExtractConfig(dataset="test", modalities=("acoustic",), acoustic=AcousticConfig(backends=backends))


@pytest.fixture(scope="module")
def both() -> OpenSmileExtractor:
    return OpenSmileExtractor(_config("disvoice", "egemaps", "compare"))


def test_shapes_and_finite(both) -> None:
    out = both.extract(ArrayMedia(voiced(2.2)))
    assert out["egemaps_lld"].shape == (6, 25) and out["compare_lld"].shape == (6, 65)
    assert out["egemaps_lld"].dtype == np.float32
    assert len(out["egemaps_functionals"]) == 88 and len(out["compare_functionals"]) == 6373
    for v in out.values():
        assert np.all(np.isfinite(np.asarray(v, dtype=np.float64)))


def test_window_means_match_the_lld_frames(both) -> None:
    x = voiced(1.5, seed=1)
    out = both.extract(ArrayMedia(x))
    lld, _ = both._smiles["egemaps"]
    df = lld.process_signal(x, SR)
    start = np.round(df.index.get_level_values("start").total_seconds().to_numpy() * SR)
    end = np.round(df.index.get_level_values("end").total_seconds().to_numpy() * SR)
    centre = (start + end) / 2  # in samples: eGeMAPS frames (20 ms) are centred on multiples of 10 ms,
    # some exactly on a window edge, which then belongs to the window that starts there
    for k, (lo, hi) in enumerate(window_bounds(len(x), SR, 0.4, 0.4)):
        sel = (centre >= lo) & (centre < hi)
        assert sel.sum() >= 10
        np.testing.assert_allclose(out["egemaps_lld"][k], df.to_numpy()[sel].mean(axis=0), rtol=1e-5, atol=1e-5)
    # loudness is higher in a voiced window than in a quiet one
    loud = both.feature_names("egemaps")[0].index("Loudness_sma3")
    quiet = both.extract(ArrayMedia(x * 0.01))["egemaps_lld"]
    assert np.all(out["egemaps_lld"][:, loud] > quiet[:, loud])


def test_silence_and_tiny_utterances_never_give_nan(both) -> None:
    out = both.extract(ArrayMedia(np.zeros(int(0.9 * SR), np.float32)))
    assert np.all(np.isfinite(out["egemaps_lld"])) and np.all(np.isfinite(out["compare_functionals"]))
    tiny = both.extract(ArrayMedia(voiced(0.03)))
    for name in ("egemaps_lld", "compare_lld"):
        v = tiny[name]
        assert len(v) == 1  # one window; its element may be null (no complete LLD frame)
        assert v[0] is None or all(e is None or np.isfinite(e) for e in v[0])
    assert tiny["egemaps_functionals"] is None or len(tiny["egemaps_functionals"]) == 88


def test_disabled_backends_are_null() -> None:
    only_egemaps = OpenSmileExtractor(_config("disvoice", "egemaps"))
    out = only_egemaps.extract(ArrayMedia(voiced(0.8)))
    assert out["compare_lld"] is None and out["compare_functionals"] is None
    assert out["egemaps_lld"].shape == (2, 25)
    none = OpenSmileExtractor(_config("disvoice"))
    assert none.extract(ArrayMedia(voiced(0.5))) == {c: None for c in OpenSmileExtractor.columns}
    assert none.describe()["backend"] == "disabled"


def test_feature_names_match_schema_and_arrow_types(both) -> None:
    from emoprep.format.schema import utterance_schema
    from emoprep.extraction.engine.columns import to_arrow

    cols = {c["name"]: c for c in json.loads(SCHEMA.read_text())["columns"]}
    for b in ("egemaps", "compare"):
        lld, fun = both.feature_names(b)
        assert cols[f"{b}_lld"]["feature_names"] == lld
        assert cols[f"{b}_functionals"]["feature_names"] == fun
    schema = utterance_schema()
    out = both.extract(ArrayMedia(voiced(1.0)))
    for name, value in out.items():
        arr = to_arrow([value, None], schema.field(name).type)
        assert arr.null_count == 1
    assert both.describe()["feature_sets"] == {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}


def test_non_finite_values_become_nulls() -> None:
    from emoprep.extraction.extractors.opensmile_lld import _rows

    rows = _rows(np.array([[1.0, 2.0], [np.nan, 3.0], [np.nan, np.inf]]))
    assert isinstance(rows[0], np.ndarray) and rows[1] == [None, 3.0] and rows[2] is None


def test_blocks_equal_one_pass(both, shared, monkeypatch) -> None:
    """LLD window means computed on blocks (with CONTEXT_S of audio around each) are bit-identical to
    one pass over the whole utterance, windows at block edges included."""
    import glob

    from emoprep.extraction.extractors import opensmile_lld
    from emoprep.extraction.media.audio import decode_audio

    files = sorted(glob.glob(str(shared("speech-emotion") / "*.wav")))[:12]
    x = np.concatenate([decode_audio(f, 0.0, 1e6, SR) for f in files])[: 16 * SR]
    bounds = window_bounds(len(x), SR, 0.4, 0.4)
    monkeypatch.setattr(opensmile_lld, "BLOCK_S", 1e9)
    whole = both.extract(ArrayMedia(x))
    monkeypatch.setattr(opensmile_lld, "BLOCK_S", 2.0)  # 5 windows per block: 8 blocks over 16 s
    for b in ("egemaps", "compare"):
        lld, _ = both._smiles[b]
        blocked = both._lld_window_means(lld, x, bounds, SR, opensmile_lld.CONTEXT_S[b])
        assert blocked.shape == whole[f"{b}_lld"].shape == (40, 25 if b == "egemaps" else 65)
        assert blocked.tobytes() == whole[f"{b}_lld"].tobytes(), b
    # the context matters: without it the frames near block edges change (ComParE's RASTA filter, F0)
    lld, _ = both._smiles["compare"]
    assert both._lld_window_means(lld, x, bounds, SR, 0.0).tobytes() != whole["compare_lld"].tobytes()
