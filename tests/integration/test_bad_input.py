"""Bad input becomes recorded failures or documented nulls, never a crash, and nothing is lost.

A copy of the small demo corpus is damaged the ways real downloads are: a corrupt video, a video
without an audio track, a truncated video, silent audio, an empty transcript line, a segment with a
negative start (and one that ends before 0), an overlapping segment and unlabelled segments.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.extraction.config import build_config
from emoprep.extraction import run_extract

MODALITIES = ["text", "acoustic", "logmel", "visual"]


def _remux_without_audio(src: Path, dst: Path) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)


@pytest.fixture(scope="module")
def damaged(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("damaged") / "tree"
    shutil.copytree(small_demo, root)
    videos = root / "Raw/Videos/Full/Combined"
    wavs = root / "Raw/Audio/Full/WAV_16000"
    texts = root / "Raw/Transcript/Segmented/Combined"
    ids = sorted(p.stem for p in videos.glob("*.mp4"))
    corrupt, mute, cut, edited = ids
    # 1. corrupt video, and no WAV to fall back on
    (videos / f"{corrupt}.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    (wavs / f"{corrupt}.wav").unlink()
    # 2. a video without an audio track, and no WAV
    _remux_without_audio(videos / f"{mute}.mp4", videos / f"{mute}.tmp.mp4")
    (videos / f"{mute}.tmp.mp4").replace(videos / f"{mute}.mp4")
    (wavs / f"{mute}.wav").unlink()
    # 3. a truncated video (a broken download); its WAV is digital silence
    data = (videos / f"{cut}.mp4").read_bytes()
    (videos / f"{cut}.mp4").write_bytes(data[: len(data) // 3])
    import wave

    with wave.open(str(wavs / f"{cut}.wav"), "rb") as w:
        n, rate = w.getnframes(), w.getframerate()
    with wave.open(str(wavs / f"{cut}.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(b"\0\0" * n)
    # 4. transcript pitfalls: empty text, negative start, a segment entirely before 0, an overlap
    with open(texts / f"{edited}.txt", "a", encoding="utf-8") as f:
        f.write(f"{edited}___7___1.0___2.0___\n")
        f.write(f"{edited}___8___-3.0___-1.0___too early\n")
        f.write(f"{edited}___9___-0.5___1.2___Überlappung: “quoted” naïve café 東京\n")
    labels = next((root / "Raw/Labels").glob("*.csv"))
    with open(labels, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with open(labels, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for clip in (7, 8, 9):
            row = dict.fromkeys(header, "0") | {"Input.VIDEO_ID": edited, "Input.CLIP": str(clip), "Answer.happiness": "2"}
            w.writerow([row[h] for h in header])
    return root, {"corrupt": corrupt, "mute": mute, "cut": cut, "edited": edited}


@pytest.fixture(scope="module")
def run(damaged: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root, _ = damaged
    out = tmp_path_factory.mktemp("damaged-out") / "shards"
    cfg = build_config("demo", {"modalities": MODALITIES, "shard_size": 4, "dataset_options": {"splits": "none"}})
    summary = run_extract(cfg, root, out, synchronous=True)
    return cfg, root, out, summary


def _rows(out: Path) -> dict[str, dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    rows = {}
    for s in manifest["shards"]:
        for r in pq.read_table(out / s["file"]).to_pylist():
            rows[r["utterance_id"]] = r
    return rows


def test_run_completes_and_counts_failures(run) -> None:  # noqa: ANN001
    _, _, out, summary = run
    assert summary.complete and (out / "manifest.json").is_file()
    assert summary.failure_records > 0 and summary.failed_utterances > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["failures"] == pq.read_table(out / "failures.parquet").num_rows == summary.failure_records


def test_corrupt_video_loses_its_media_but_keeps_text_and_labels(run, damaged) -> None:  # noqa: ANN001
    _, _, out, _ = run
    vid = damaged[1]["corrupt"]
    rows = {k: r for k, r in _rows(out).items() if r["video_id"] == vid}
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    assert rows
    for uid, r in rows.items():
        assert r["tokens"] and r["emotions"] is not None
        assert r["acoustic"] is None and r["logmel"] is None and r["frame_times_s"] is None
        stages = {f["stage"] for f in failures if f["utterance_id"] == uid}
        assert {"decode_audio", "decode_video"} <= stages
        assert all(f["message"] for f in failures if f["utterance_id"] == uid)


def test_video_without_audio_keeps_its_faces(run, damaged) -> None:  # noqa: ANN001
    _, _, out, _ = run
    vid = damaged[1]["mute"]
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    for uid, r in _rows(out).items():
        if r["video_id"] != vid:
            continue
        assert r["acoustic"] is None and r["logmel"] is None
        assert r["frame_times_s"] and any(c is not None for c in r["face_crops"])
        msgs = [f["message"] for f in failures if f["utterance_id"] == uid and f["stage"] == "decode_audio"]
        assert msgs and "no audio stream" in msgs[0]


def test_truncated_video_and_silent_audio(run, damaged) -> None:  # noqa: ANN001
    _, _, out, _ = run
    vid = damaged[1]["cut"]
    rows = [r for r in _rows(out).values() if r["video_id"] == vid]
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    failed_video = {f["utterance_id"] for f in failures if f["stage"] == "decode_video"}
    # An mp4 cut short loses its index (moov atom at the end): every utterance either has frames
    # or a recorded decode_video failure, and this one has failures.
    assert any(r["utterance_id"] in failed_video for r in rows)
    for r in rows:
        assert r["frame_times_s"] or r["utterance_id"] in failed_video
    for r in rows:  # digital silence: features exist (finite, validated), never NaN
        assert r["logmel"] is not None and r["acoustic"] is not None


def test_transcript_pitfalls(run, damaged) -> None:  # noqa: ANN001
    _, _, out, _ = run
    vid = damaged[1]["edited"]
    rows = _rows(out)
    empty = rows[f"{vid}_7"]
    assert empty["text"] == "" and empty["tokens"] == []
    overlap = rows[f"{vid}_9"]
    assert overlap["start_s"] == 0.0 and overlap["end_s"] == 1.2  # negative start clamped, overlap kept
    assert "Überlappung" in overlap["text"] and "東京" in overlap["tokens"]
    assert f"{vid}_8" not in rows
    reader = [f for f in pq.read_table(out / "failures.parquet").to_pylist() if f["stage"] == "reader"]
    assert any(f["utterance_id"] == f"{vid}_8" for f in reader)


def test_rerun_resumes_with_the_same_failures(run) -> None:  # noqa: ANN001
    cfg, root, out, first = run
    again = run_extract(cfg, root, out, synchronous=True)
    assert again.written == 0 and again.skipped == first.shards
    assert again.failure_records == first.failure_records
