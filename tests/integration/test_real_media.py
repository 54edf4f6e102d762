"""The whole pipeline on real recordings (``../shared/data``; skipped when absent), through the
``manifest`` reader as a user's own data would go: MPEG-1 video with MP2 audio (GRID), H.264 + AAC
(a silent track included), HEVC + AAC with a face that disappears, and audio-only WAV speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.extraction.config import build_config
from emoprep.extraction import run_extract

GRID = ("bbaf2n", "swwp2s", "lbax4n")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory, shared) -> tuple[Path, dict]:  # noqa: ANN001
    grid = {g: shared("grid", f"{g}.mpg" if g != "swwp2s" else "id2_vcd_swwp2s.mpg") for g in GRID}
    align = shared("grid", "swwp2s.align")
    faces = shared("faces")
    speech = shared("speech-emotion")
    rows = ["utterance_id,video,audio,start,end,text,split"]
    # swwp2s: one utterance per half of the sentence, cut at the word times of its .align file
    words = [line.split() for line in align.read_text().split("\n") if line.strip()]
    t = {w: (int(a) / 25000, int(b) / 25000) for a, b, w in words if w != "sil"}
    rows.append(f"swwp2s_0,{grid['swwp2s']},,{t['set'][0]},{t['with'][1]},set white with,train")
    rows.append(f"swwp2s_1,{grid['swwp2s']},,{t['p'][0]},{t['soon'][1]},p two soon,train")
    rows.append(f"bbaf2n_0,{grid['bbaf2n']},,0.0,2.9,bin blue at f two now,train")
    rows.append(f"lbax4n_0,{grid['lbax4n']},,0.2,2.8,lay blue at x four now,test")
    rows.append(f"single_0,{faces / 'single_face.mp4'},,0.0,2.3,,test")
    rows.append(f"noface_0,{faces / 'face_noface.mov'},,0.0,6.3,,test")
    rows.append(f"wolfgang_0,{faces / 'WolfgangLanger_Pexels.mp4'},,4.0,9.0,,valid")
    rows.append(f"speech_00,,{speech / '00.wav'},0.0,1.4,,valid")
    manifest = tmp_path_factory.mktemp("real") / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = manifest.parent / "shards"
    summary = run_extract(build_config("manifest", {"shard_size": 3}), manifest, out, synchronous=True)
    assert summary.complete
    table = pq.read_table([out / s["file"] for s in json.loads((out / "manifest.json").read_text())["shards"]])
    return out, {r["utterance_id"]: r for r in table.to_pylist()}


def test_only_the_audio_only_row_fails_and_only_for_video(extracted) -> None:  # noqa: ANN001
    out, rows = extracted
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    assert [(f["utterance_id"], f["stage"]) for f in failures] == [("speech_00", "decode_video")]
    assert len(rows) == 8


def test_grid_rows_have_every_modality(extracted) -> None:  # noqa: ANN001
    _, rows = extracted
    for uid in ("swwp2s_0", "swwp2s_1", "bbaf2n_0", "lbax4n_0"):
        r = rows[uid]
        duration = r["end_s"] - r["start_s"]
        assert len(r["acoustic"]) == pytest.approx(duration / 0.4, abs=1)
        assert any(r["acoustic_valid"]), "real speech has analysable windows"
        assert sum(r["logmel_frames"]) == pytest.approx(duration / 0.0125, abs=2)
        assert len(r["frame_times_s"]) == pytest.approx(duration / 0.5, abs=1)
        assert all(c is not None for c in r["face_crops"]), uid
        assert r["tokens"] == r["text"].split()


def test_frame_times_lie_inside_the_utterance(extracted) -> None:  # noqa: ANN001
    _, rows = extracted
    for r in rows.values():
        if r["frame_times_s"]:
            times = np.asarray(r["frame_times_s"])
            assert np.all(np.diff(times) > 0)
            assert times[0] >= r["start_s"] - 0.05 and times[-1] <= r["end_s"]


def test_face_that_disappears_and_silent_audio(extracted) -> None:  # noqa: ANN001
    _, rows = extracted
    noface = rows["noface_0"]
    reasons = [m for m in noface["face_missing"] if m is not None]
    assert reasons and len(reasons) < len(noface["face_missing"])
    for crop, box, missing in zip(noface["face_crops"], noface["face_boxes"], noface["face_missing"]):
        assert (crop is None) == (missing is not None)
        assert (missing is not None) == all(v is None for v in box)
    wolfgang = rows["wolfgang_0"]  # its AAC track is silent: defined values, flagged windows
    assert wolfgang["acoustic"] is not None and len(wolfgang["acoustic_valid"]) > 0
    assert all(c is not None for c in wolfgang["face_crops"])


def test_audio_only_speech_keeps_its_audio_features(extracted) -> None:  # noqa: ANN001
    _, rows = extracted
    r = rows["speech_00"]
    assert r["acoustic"] is not None and r["logmel"] is not None
    assert r["frame_times_s"] is None and r["face_crops"] is None
