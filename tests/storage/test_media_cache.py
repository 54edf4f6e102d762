"""The per-worker media cache and the reader's side of media URLs, against moto's real S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoprep.errors import MediaError, SetupError
from emoprep.extraction.config import build_config
from emoprep.extraction.media.fetch import MediaAccess, MediaCache, parse_cache_size
from emoprep.extraction.media.segment import UtteranceMedia
from emoprep.extraction.readers import read_dataset
from emoprep.extraction.records import Utterance
from emoprep.format.storage import filesystem


@pytest.fixture()
def bucket(object_store) -> str:
    return object_store.bucket()


def put(url: str, options, data: bytes) -> str:
    fs, path = filesystem(url, options)
    fs.pipe_file(path, data)
    return url


def test_cache_is_bounded_and_evicts_the_least_recently_used(bucket: str, object_store, tmp_path: Path) -> None:
    opts = object_store.options
    a, b, c = (put(f"{bucket}/{n}.mp4", opts, n.encode() * 1000) for n in "abc")
    cache = MediaCache(tmp_path / "cache", limit_bytes=2500)
    first_a = cache.local_file(a, opts, "decode_video")
    assert Path(first_a).read_bytes() == b"a" * 1000
    cache.local_file(b, opts, "decode_video")
    assert cache.local_file(a, opts, "decode_video") == first_a  # a hit: a is now the most recent
    cache.local_file(c, opts, "decode_video")  # 3000 bytes > 2500: b, the least recently used, goes
    kept = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(kept) == 2 and Path(first_a).exists()
    assert (cache.stats.downloads, cache.stats.hits, cache.stats.evictions) == (3, 1, 1)
    cache.local_file(b, opts, "decode_video")  # fetched again, and a (now the oldest) goes
    assert cache.stats.downloads == 4 and not Path(first_a).exists()
    assert sum(p.stat().st_size for p in (tmp_path / "cache").iterdir()) <= 2500
    assert cache.stats.fetched == {a: 1, b: 2, c: 1}


def test_a_recording_larger_than_the_bound_is_still_decodable(bucket: str, object_store, tmp_path: Path) -> None:
    big = put(f"{bucket}/big.wav", object_store.options, b"x" * 5000)
    cache = MediaCache(tmp_path / "cache", limit_bytes=1000)
    assert Path(cache.local_file(big, object_store.options, "decode_audio")).stat().st_size == 5000


def test_missing_object_is_an_utterance_failure_naming_the_url(bucket: str, object_store, tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "cache", limit_bytes=10_000)
    with pytest.raises(MediaError, match=f"media not found: {bucket}/gone.mp4") as info:
        cache.local_file(f"{bucket}/gone.mp4", object_store.options, "decode_video")
    assert info.value.stage == "decode_video"
    assert list((tmp_path / "cache").iterdir()) == []  # no partial download left to be trusted later


def test_decode_errors_name_the_url_not_the_cache_file(bucket: str, object_store) -> None:
    url = put(f"{bucket}/broken.wav", object_store.options, b"not audio at all")
    u = Utterance("u1", "recordings", "v", 0.0, 1.0, audio_path=url)
    media = UtteranceMedia(u, access=MediaAccess(object_store.options, 10_000))
    with pytest.raises(MediaError) as info:
        media.audio()
    assert url in str(info.value) and "emoprep-media-" not in str(info.value)


def test_reader_records_missing_remote_media_and_keeps_the_rest(bucket: str, object_store, small_demo: Path) -> None:
    opts = object_store.options
    wav = next((small_demo / "Raw" / "Audio").rglob("*.wav"))
    put(f"{bucket}/lists/a.wav", opts, wav.read_bytes())
    put(f"{bucket}/lists/list.csv", opts, (
        "utterance_id,audio,start,end\n"
        "ok,a.wav,0.5,1.5\n"
        "abs,s3://" + bucket.split('://')[1] + "/lists/a.wav,1.0,99.0\n"
        "lost,missing.wav,0,1\n").encode())
    result = read_dataset("recordings", f"{bucket}/lists/list.csv", build_config("recordings", {}), opts)
    got = {u.utterance_id: u for u in result.utterances}
    assert set(got) == {"ok", "abs"} and got["ok"].audio_path == f"{bucket}/lists/a.wav"
    assert got["ok"].video_id == "a" and got["abs"].video_id == "a"  # relative to the list's URL
    assert 0 < got["abs"].end_s < 99.0  # clamped to the end read from the remote header
    missing = [i for i in result.issues if i.kind == "missing_media"]
    assert [i.utterance_id for i in missing] == ["lost"] and f"{bucket}/lists/missing.wav" in missing[0].message


def test_missing_backend_names_the_extra() -> None:
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(SetupError, match=r"pip install 'emoprep\[gcs\]'"):
        read_dataset("recordings", "gs://bucket/list.csv", build_config("recordings", {}))


def test_cache_size_parsing() -> None:
    assert parse_cache_size("500MB", {}) == 500_000_000
    assert parse_cache_size(None, {"EMOPREP_MEDIA_CACHE": "2GiB"}) == 2 * 2**30
    with pytest.raises(SetupError, match="not a size"):
        parse_cache_size("lots", {})


def test_an_object_gone_during_the_run_fails_its_utterance_only(bucket: str, object_store, small_demo: Path) -> None:
    from emoprep.extraction.engine.worker import extract_rows

    wav = next((small_demo / "Raw" / "Audio").rglob("*.wav"))
    kept = put(f"{bucket}/kept.wav", object_store.options, wav.read_bytes())
    utterances = (Utterance("gone", "recordings", "g", 0.0, 1.0, audio_path=f"{bucket}/gone.wav"),
                  Utterance("kept", "recordings", "k", 0.0, 1.0, audio_path=kept))
    config = build_config("recordings", {"modalities": ["logmel"]})
    rows, failures, _ = extract_rows(utterances, config, MediaAccess(object_store.options, 10**8))
    assert [(f.utterance_id, f.stage) for f in failures] == [("gone", "decode_audio")]
    assert f"{bucket}/gone.wav" in failures[0].message
    assert rows[0]["logmel"] is None and rows[1]["logmel"] is not None
