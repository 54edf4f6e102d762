"""Log-mel chunks: the authors' torchaudio transform, chunking/padding, float16 storage readability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _audio_media import SR, ArrayMedia, media_for, tone, voiced, write_video_only

from emoprep.extraction.config import ExtractConfig, LogmelConfig
from emoprep.errors import MediaError, SetupError
from emoprep.extraction.extractors import logmel as logmel_mod
from emoprep.extraction.extractors.logmel import LogmelComputer, LogmelExtractor

FLOOR = np.log(1e-10)


@pytest.fixture(scope="module")
def extractor() -> LogmelExtractor:
    return LogmelExtractor(ExtractConfig(dataset="test", modalities=("logmel",)))


def _torchaudio_like_mel(y: np.ndarray, n_fft=400, hop=200, n_mels=128, sr=SR) -> np.ndarray:
    """Independent re-implementation of torchaudio.transforms.MelSpectrogram(sr, win 400, n_fft 400).

    torchaudio defaults: periodic Hann, center=True with reflect padding, power 2, HTK mel scale,
    triangular filters without normalisation (``melscale_fbanks(norm=None, mel_scale="htk")``).
    """
    pad = np.pad(y.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(pad) - n_fft) // hop
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([pad[i * hop : i * hop + n_fft] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 201)
    def hz_to_mel(f):  # noqa: ANN001, ANN202 - HTK mel scale
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):  # noqa: ANN001, ANN202
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    all_freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))  # (201, n_mels)
    return (power @ fb).T  # (n_mels, frames)


def test_matches_the_authors_transform() -> None:
    y = voiced(1.3, seed=2)
    comp = LogmelComputer(LogmelConfig())
    ours = comp.log_mel(y)
    ref = np.log(np.maximum(_torchaudio_like_mel(y), 1e-10))
    assert ours.shape == ref.shape == (128, 1 + len(y) // 200)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_chunking_padding_and_layout(extractor) -> None:
    y = voiced(1.0)  # 16000 samples -> 81 frames -> 3 chunks (32, 32, 17)
    out = extractor.extract(ArrayMedia(y))
    chunks, frames = out["logmel"], out["logmel_frames"]
    assert chunks.dtype == np.float16 and chunks.shape == (3, 4096)
    assert frames.dtype == np.int16 and frames.tolist() == [32, 32, 17]
    full = LogmelComputer(LogmelConfig()).log_mel(y)
    img = chunks.reshape(3, 128, 32).astype(np.float32)  # mel-major: index = mel * 32 + frame
    np.testing.assert_allclose(img[1], full[:, 32:64], atol=0.02)  # float16: ~3 significant digits
    np.testing.assert_allclose(img[2][:, :17], full[:, 64:81], atol=0.02)
    assert np.all(img[2][:, 17:] == np.float16(FLOOR))  # padding = the log of silence, not 0


def test_tone_lands_in_its_mel_band(extractor) -> None:
    import librosa

    out = extractor.extract(ArrayMedia(tone(1000, 0.8)))
    img = out["logmel"][0].reshape(128, 32).astype(np.float32)
    centres = librosa.mel_frequencies(n_mels=130, fmax=SR / 2, htk=True)[1:-1]
    band = int(np.argmax(img[:, 10:20].mean(axis=1)))
    assert abs(centres[band] - 1000) < 60


def test_level_and_silence(extractor) -> None:
    y = voiced(0.8, seed=4)
    a = extractor.extract(ArrayMedia(y))["logmel"].astype(np.float32)
    b = extractor.extract(ArrayMedia(y * 2))["logmel"].astype(np.float32)
    live = a > FLOOR + 5
    np.testing.assert_allclose((b - a)[live], np.log(4.0), atol=0.02)  # power: x2 amplitude = +ln 4
    silent = extractor.extract(ArrayMedia(np.zeros(8000, np.float32)))
    assert np.all(silent["logmel"] == np.float16(FLOOR))
    assert silent["logmel_frames"].tolist() == [32, 9]


def test_tiny_utterance_gives_one_chunk(extractor) -> None:
    out = extractor.extract(ArrayMedia(tone(300, 0.005)))  # 80 samples: shorter than one hop
    assert out["logmel"].shape == (1, 4096) and out["logmel_frames"].tolist() == [1]
    assert np.all(np.isfinite(out["logmel"].astype(np.float32)))


def test_blocks_equal_one_pass(monkeypatch) -> None:
    """Block-wise output is byte-identical to one block over the whole signal, at block edges too.

    Every frame is its own 1-D FFT and the mel projection is one fixed-shape product per chunk, so no
    number depends on how chunks are grouped into blocks (not even in the last bit)."""
    y = voiced(6.1, seed=7)  # 6.1 s: 489 frames, 16 chunks, the last one partial (9 frames)
    comp = LogmelComputer(LogmelConfig())
    monkeypatch.setattr(logmel_mod, "BLOCK_CHUNKS", 10**6)
    one, one_frames = comp.chunks(y)
    one_lm = comp.log_mel(y)
    for block in (1, 3, 4):
        monkeypatch.setattr(logmel_mod, "BLOCK_CHUNKS", block)
        blocked, frames = comp.chunks(y)
        assert blocked.tobytes() == one.tobytes() and frames.tolist() == one_frames.tolist()
        assert comp.log_mel(y).tobytes() == one_lm.tobytes()
    assert one.shape == (16, 4096) and one_frames.tolist() == [32] * 15 + [9]
    # block edges fall mid-signal (3 chunks = 96 frames per block): frames there use samples of both
    # neighbouring blocks; they equal the frames of an independent whole-signal STFT
    ref = np.log(np.maximum(_torchaudio_like_mel(y), 1e-10))
    for t in (95, 96, 191, 192, 488):
        np.testing.assert_allclose(one_lm[:, t], ref[:, t], atol=1e-4)


def test_config_checks_and_media_errors(extractor, tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="4096"):
        LogmelExtractor(ExtractConfig(dataset="t", logmel=LogmelConfig(n_mels=64)))
    with pytest.raises(SetupError):
        LogmelExtractor(ExtractConfig(dataset="t", logmel=LogmelConfig(log_floor=0.0)))
    with pytest.raises(MediaError):
        extractor.extract(media_for(write_video_only(tmp_path / "v.mp4"), 0.0, 0.5))
    d = extractor.describe()
    assert d["pad_value"] == pytest.approx(FLOOR) and d["mel_scale"] == "htk" and d["empty_mel_bands"] >= 1


def test_float16_parquet_is_readable_everywhere(extractor, tmp_path: Path) -> None:
    """pyarrow, pandas, polars and duckdb all read the float16 fixed-size lists back exactly."""
    from emoprep.format.schema import utterance_schema
    from emoprep.extraction.engine.columns import to_arrow

    schema = utterance_schema()
    out = extractor.extract(ArrayMedia(voiced(0.9)))
    fields = [schema.field("logmel"), schema.field("logmel_frames")]
    table = pa.Table.from_arrays(
        [to_arrow([out[f.name], None], f.type) for f in fields], schema=pa.schema(fields)
    )
    path = tmp_path / "lm.parquet"
    pq.write_table(table, path)
    expected = out["logmel"].astype(np.float32)

    back = pq.read_table(path)
    assert back.schema.field("logmel").type == pa.list_(pa.list_(pa.float16(), 4096))
    np.testing.assert_array_equal(np.array(back.column("logmel")[0].as_py(), dtype=np.float32), expected)

    pdf = pq.read_table(path).to_pandas()
    np.testing.assert_array_equal(np.stack(pdf["logmel"][0]).astype(np.float32), expected)
    assert pdf["logmel"][1] is None

    polars = pytest.importorskip("polars")
    pl_df = polars.read_parquet(path)
    np.testing.assert_array_equal(np.array(pl_df["logmel"][0].to_list(), dtype=np.float32), expected)

    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT logmel, logmel_frames FROM '{path}'").fetchall()
    np.testing.assert_array_equal(np.array(rows[0][0], dtype=np.float32), expected)
    assert rows[0][1] == out["logmel_frames"].tolist() and rows[1][0] is None


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "win"),
                         [(16000, 400, 128, 400), (16000, 512, 64, 400), (22050, 1024, 80, 1024), (8000, 256, 40, 199),
                          (16000, 400, 128, 1)])
def test_filterbank_and_window_are_librosas_bytes(sr: int, n_fft: int, n_mels: int, win: int) -> None:
    """The numpy filterbank and window (no librosa/numba/scipy.signal import in a worker) are the very
    bytes librosa and scipy give, so shards are unchanged by the switch."""
    import warnings

    import librosa

    from emoprep.extraction.extractors.logmel import hann_window, mel_filterbank

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty mel bands
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None)
    ours = mel_filterbank(sr, n_fft, n_mels)
    assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()
    window = librosa.util.pad_center(librosa.filters.get_window("hann", win, fftbins=True), size=n_fft).astype(np.float64)
    assert hann_window(win, n_fft).tobytes() == window.tobytes()
