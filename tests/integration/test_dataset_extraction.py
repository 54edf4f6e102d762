"""End to end over the miniature raw trees: the shards' labels and splits match the sources, and
IEMOCAP rows see the speaker's half of the frame and the speaker's audio channel."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.extraction.config import build_config
from emoprep.extraction.readers import get_reader
from emoprep.extraction import run_extract
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.testing import (
    build_iemocap_tree,
    build_mosei_tree,
    default_iemocap_turns,
    default_mosei_segments,
)

EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
MODALITIES = ["text", "logmel", "visual"]


def _rows(out: Path) -> dict[str, dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {r["utterance_id"]: r for s in manifest["shards"] for r in pq.read_table(out / s["file"]).to_pylist()}


def _std_fold(video_id: str) -> str:
    folds = json.loads(resources.files("emoprep.pipelines").joinpath("splits/mosei_std_folds.json").read_text())
    return next((split for split, ids in folds.items() if video_id in ids), "none")


def test_mosei_tree_labels_and_splits_survive_extraction(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "mosei", media=True)
    out = tmp_path / "shards"
    summary = run_extract(build_config("mosei", {"modalities": MODALITIES, "shard_size": 3}), tree.root, out, synchronous=True)
    assert summary.complete
    rows = _rows(out)
    labelled = [s for s in default_mosei_segments() if s.votes is not None and s.end > s.start]
    assert set(rows) == {f"{s.video_id}_{int(float(s.clip))}" if s.clip.isdigit() else f"{s.video_id}_{s.clip}" for s in labelled}
    for seg in labelled:
        row = rows[f"{seg.video_id}_{seg.clip}"]
        sums = [sum(v.get(e) or 0 for v in seg.votes) for e in EMOTIONS]
        assert row["emotions"] == [int(x > 0) for x in sums]
        # An emotion an annotator did not mark is a 0 in the CSV; an explicit None is a blank cell.
        answered = [[v.get(e, 0) for v in seg.votes if not (e in v and v[e] is None)] for e in EMOTIONS]
        expected_intensity = [np.mean(a) if a else 0.0 for a in answered]
        np.testing.assert_allclose(row["emotion_intensity"], expected_intensity, rtol=1e-6)
        sentiments = [v["sentiment"] for v in seg.votes if v.get("sentiment") is not None]
        assert row["sentiment"] == pytest.approx(np.mean(sentiments))
        assert row["split"] == _std_fold(seg.video_id)
        start = float(seg.start_text) if seg.start_text else seg.start  # times as written in the file
        assert row["start_s"] == max(0.0, start) and row["end_s"] == seg.end
        assert row["text"] == seg.text.strip()
        assert row["logmel"], "the tone audio of every mini video decodes"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["label_names"] == list(EMOTIONS)
    # A miniature tree is not the full release: said as information, in the summary and manifest.
    assert summary.count_differences["utterances"] == {"read": len(rows), "full_release": 23259}
    assert summary.count_differences["split_train"]["full_release"] == 16327
    assert manifest["counts"]["differences_from_full_release"] == summary.count_differences


def _dominant_hz(audio: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


def test_iemocap_speaker_side_selects_half_frame_and_channel(tmp_path: Path) -> None:
    """The mini tree's dialog videos are red on the left, blue on the right; the wav has 300 Hz on
    the left channel and 600 Hz on the right.  Session letter == speaker letter -> left."""
    tree = build_iemocap_tree(tmp_path / "iemocap", media=True)
    cfg = build_config("iemocap")
    result = get_reader("iemocap").read(tree.root, cfg)
    assert result.utterances
    sides = set()
    for u in result.utterances:
        session_letter, speaker_letter = u.utterance_id[5], u.utterance_id.rsplit("_", 1)[1][0]
        left = session_letter == speaker_letter
        sides.add(left)
        media = UtteranceMedia(u, MediaOptions(frame_interval_s=0.5))
        rgb = media.frames()[0].rgb.reshape(-1, 3).mean(axis=0)
        red, blue = rgb[0], rgb[2]
        assert (red > blue) if left else (blue > red), u.utterance_id
        hz = _dominant_hz(media.audio())
        assert abs(hz - (300 if left else 600)) < 20, (u.utterance_id, hz)
    assert sides == {True, False}


def test_iemocap_tree_labels_and_splits_survive_extraction(tmp_path: Path) -> None:
    tree = build_iemocap_tree(tmp_path / "iemocap", media=True)
    out = tmp_path / "shards"
    cfg = build_config("iemocap", {"modalities": MODALITIES, "dataset_options": {"split": "session:5"}})
    summary = run_extract(cfg, tree.root, out, synchronous=True)
    assert summary.complete
    rows = _rows(out)
    classes = ("anger", "excited", "frustrated", "happy", "neutral", "sad")
    code_to_class = {"ang": "anger", "exc": "excited", "fru": "frustrated", "hap": "happy", "neu": "neutral", "sad": "sad"}
    in_set = [t for t in default_iemocap_turns() if t.code in code_to_class]
    assert set(rows) == {t.turn for t in in_set}
    for t in in_set:
        row = rows[t.turn]
        assert row["emotions"] == [int(c == code_to_class[t.code]) for c in classes]
        assert row["emotion_category"] == t.code
        assert (row["valence"], row["arousal"], row["dominance"]) == pytest.approx(t.vad)
        assert row["speaker"] == t.turn[:5] + t.turn.rsplit("_", 1)[1][0]
        session = int(t.turn[4])
        assert row["split"] == {5: "test", 1: "valid"}.get(session, "train")
        assert row["frame_times_s"] and row["logmel"]
    assert json.loads((out / "manifest.json").read_text())["label_names"] == list(classes)


def _mesm_lists() -> dict[str, list[str]]:
    root = resources.files("emoprep.pipelines").joinpath("splits", "MOSEI_split")
    return {s: root.joinpath(f"{s}_split.txt").read_text().split() for s in ("train", "valid", "test")}


def test_mosei_mesm_split_extracts_exactly_the_listed_utterances(tmp_path: Path) -> None:
    """Acceptance (issue 11): a tree whose ids are a sample of the paper's lists, plus clips and
    videos the lists leave out, extracted with ``splits=mesm``: every listed utterance lands in its
    list's split and nothing else does (the standard folds would put two of the extras in train)."""
    import random

    from emoprep.testing import MoseiSegment

    lists = _mesm_lists()
    of = {uid: split for split, ids in lists.items() for uid in ids}
    rng = random.Random(11)
    sample: dict[str, list[str]] = {}
    for split, ids in lists.items():
        by_video: dict[str, list[str]] = {}
        for uid in ids:
            by_video.setdefault(uid.rpartition("_")[0], []).append(uid)
        videos = rng.sample(sorted(by_video), 3)
        sample[split] = [uid for v in videos for uid in sorted(by_video[v])[:3]]
    # left out: a clip of a listed video, a standard-fold video the paper did not use, a video in no fold
    folds = json.loads(resources.files("emoprep.pipelines").joinpath("splits/mosei_std_folds.json").read_text())
    unused = min(set(folds["train"]) - {uid.rpartition("_")[0] for uid in of})
    unlisted = [sample["train"][0].rpartition("_")[0] + "_9999", f"{unused}_0", "zzLocalVid01_0"]
    segments, clock = [], {}
    for uid in [u for ids in sample.values() for u in ids] + unlisted:
        vid, _, clip = uid.rpartition("_")
        start = clock.get(vid, 0.0)
        clock[vid] = start + 1.0
        votes = ({"sadness": 2, "sentiment": -1}, {"anger": 1, "sentiment": 0})
        segments.append(MoseiSegment(vid, clip, start, start + 1.0, f"words of clip {clip}", votes))
    tree = build_mosei_tree(tmp_path / "mosei", segments, media=True, no_wav=())
    out = tmp_path / "shards"
    cfg = build_config("mosei", {"modalities": ["text", "logmel"], "shard_size": 8, "dataset_options": {"splits": "mesm"}})
    summary = run_extract(cfg, tree.root, out, synchronous=True)
    assert summary.complete
    rows = _rows(out)
    assert set(rows) == {u for ids in sample.values() for u in ids} | set(unlisted)
    for split in ("train", "valid", "test"):
        assert sorted(u for u, r in rows.items() if r["split"] == split) == sorted(sample[split])
    for uid, row in rows.items():
        assert row["split"] == of.get(uid, "none"), uid
        assert row["logmel"] and row["text"] == f"words of clip {uid.rpartition('_')[2]}"
    manifest = json.loads((out / "manifest.json").read_text())
    n_listed = sum(len(ids) for ids in sample.values())
    assert manifest["counts"]["reader.listed_ids_not_found"] == 14524 + 1765 + 4188 - n_listed
    # the full release's counts for this option are the paper's: a sample differs, and says so
    assert manifest["counts"]["differences_from_full_release"]["split_train"] == {
        "read": len(sample["train"]), "full_release": 14524}
