"""MoseiReader against miniature raw MOSEI trees written by emoprep.testing (and real ids/intervals)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from emoprep.extraction.config import ExtractConfig
from emoprep.extraction.readers import get_reader
from emoprep.extraction.readers.mosei import MoseiReader, parse_transcript
from emoprep.errors import DatasetError, SetupError
from emoprep.testing import (
    DEFAULT_MOSEI_STD_SPLITS,
    MOSEI_EMOTIONS,
    MoseiSegment,
    build_mosei_tree,
    default_mosei_segments,
    write_mosei_csd,
)

STD_SPLIT = DEFAULT_MOSEI_STD_SPLITS


def cfg(**options: str) -> ExtractConfig:
    return ExtractConfig(dataset="mosei", dataset_options=tuple(sorted(options.items())))


def expected_labels(votes) -> tuple[tuple[int, ...], tuple[float, ...], float]:
    """Aggregate annotator votes the way the issue specifies, written independently of the reader:
    an emotion an annotator left out counts as 0 (Turk writes 0), a None is a missing answer."""
    emotions, intensity = [], []
    for name in MOSEI_EMOTIONS:
        answered = [(v.get(name, 0)) for v in votes if v.get(name, 0) is not None]
        emotions.append(int(sum(answered) > 0))
        intensity.append(sum(answered) / len(answered))
    sentiments = [v["sentiment"] for v in votes if v.get("sentiment") is not None]
    return tuple(emotions), tuple(intensity), sum(sentiments) / len(sentiments)


@pytest.fixture()
def tree(tmp_path: Path):
    return build_mosei_tree(tmp_path / "mosei")


def test_registered_and_parses_every_field(tree) -> None:
    reader = get_reader("mosei")
    assert isinstance(reader, MoseiReader)
    result = reader.read(tree.root, cfg())
    assert result.label_names == MOSEI_EMOTIONS
    by_id = {u.utterance_id: u for u in result.utterances}
    usable = [s for s in tree.segments if s.votes is not None and s.end > max(s.start, 0.0)]
    assert set(by_id) == {s.utterance_id for s in usable}
    for seg in usable:
        u = by_id[seg.utterance_id]
        assert u.dataset == "mosei"
        assert u.video_id == seg.video_id and isinstance(u.video_id, str)
        assert u.start_s == pytest.approx(max(seg.start, 0.0))
        assert u.end_s == pytest.approx(seg.end)
        assert u.text == seg.text.strip()
        assert u.split == STD_SPLIT[seg.video_id]
        assert u.video_path == str(tree.root.resolve() / "Raw/Videos/Full/Combined" / f"{seg.video_id}.mp4")
        if seg.video_id in tree.wav_videos:
            assert u.audio_path == str(
                tree.root.resolve() / "Raw/Audio/Full/WAV_16000" / f"{seg.video_id}.wav"
            )
            assert u.audio_channel == 0
        else:  # no WAV: the decoder falls back to the video's own audio track, mixed down
            assert u.audio_path is None and u.audio_channel is None
        emotions, intensity, sentiment = expected_labels(seg.votes)
        assert u.labels.emotions == emotions
        assert u.labels.emotion_intensity == pytest.approx(intensity)
        assert u.labels.sentiment == pytest.approx(sentiment)
        assert u.labels.category is None and u.labels.valence is None


def test_pitfalls_are_reported_not_hidden(tree) -> None:
    result = MoseiReader().read(tree.root, cfg())
    by_id = {u.utterance_id: u for u in result.utterances}
    # negative start clamped and reported with its utterance id and file:line
    clamped = [i for i in result.issues if i.kind == "clamped"]
    assert [i.utterance_id for i in clamped] == ["_0efYOjQYRc_0"]
    assert clamped[0].source.endswith("_0efYOjQYRc.txt:1")
    assert by_id["_0efYOjQYRc_0"].start_s == 0.0
    # end <= start: an invalid issue (becomes a failures row), not an utterance
    invalid = [i for i in result.issues if i.kind == "invalid"]
    assert [i.utterance_id for i in invalid] == ["81406_1"]
    assert "81406_1" not in by_id
    # unlabelled clip skipped and counted
    assert result.counts["unlabelled_skipped"] == 1
    assert "-3g5yACwYnA_2" not in by_id
    # overlapping segments both kept
    a, b = by_id["-3g5yACwYnA_0"], by_id["-3g5yACwYnA_1"]
    assert a.end_s > b.start_s
    # text keeps '___', quotes, Unicode line separators and form feeds; trailing spaces trimmed
    assert by_id["-3g5yACwYnA_0"].text == "Deloitte announced that ___ profits rose."
    assert by_id["_0efYOjQYRc_0"].text == "negative\u2028start and a\x0cform feed"
    assert by_id["-3g5yACwYnA_1"].text == "overlaps the first one"
    # clip ids are kept as written, numeric video ids stay strings
    assert {"--qXJuDtHPw_3", "--qXJuDtHPw_10", "81406_0"} <= set(by_id)
    # deterministic: same tree, same order
    again = MoseiReader().read(tree.root, cfg())
    assert [u.utterance_id for u in again.utterances] == [u.utterance_id for u in result.utterances]


def test_keep_unlabelled(tree) -> None:
    result = MoseiReader().read(tree.root, cfg(keep_unlabelled="true"))
    u = {u.utterance_id: u for u in result.utterances}["-3g5yACwYnA_2"]
    assert u.labels.emotions is None and u.labels.sentiment is None and u.labels.emotion_intensity is None
    assert result.counts.get("unlabelled_skipped", 0) == 0
    assert result.counts["unlabelled_kept"] == 1
    with pytest.raises(SetupError):
        MoseiReader().read(tree.root, cfg(keep_unlabelled="maybe"))


def test_irregular_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    extra = [
        "",
        "   ",
        "a line without any separator",
        "81406___5___abc___3.0___start is not a number",
        "81406___6___1.0___nan___not finite",
        "someOtherVid___0___0.0___1.0___belongs to another video",
        "81406___7___3.0___3.5___fine again",
    ]
    segs = default_mosei_segments() + [
        MoseiSegment("81406", "7", 3.0, 3.5, "fine again", ({"anger": 1, "sentiment": 0},))
    ]
    tree = build_mosei_tree(tmp_path / "m", segs[:-1], extra_lines={"81406": extra})
    # labels for clip 7 exist in the CSVs only if the segment is in the spec: rebuild labels with it
    from emoprep.testing import write_mturk_csvs

    for p in tree.label_csvs:
        p.unlink()
    write_mturk_csvs(tree.root / "Raw/Labels", segs)
    result = MoseiReader().read(tree.root, cfg())
    malformed = [i for i in result.issues if i.kind == "malformed"]
    n_own = sum(1 for s in segs[:-1] if s.video_id == "81406")
    first_extra = n_own + 1  # lines are 1-based; extras follow the video's own lines
    assert sorted(int(i.source.rsplit(":", 1)[1]) for i in malformed) == [
        first_extra + k for k in (2, 3, 4, 5)
    ]
    assert all(i.source.rsplit(":", 1)[0].endswith("81406.txt") for i in malformed)
    assert result.counts["malformed"] == 4
    assert "81406_7" in {u.utterance_id for u in result.utterances}


def test_video_id_ending_in_underscore_does_not_shift_fields(tmp_path: Path) -> None:
    p = tmp_path / "abc_.txt"
    p.write_text("abc____3___1.5___2.5___text\n")
    segs, issues = parse_transcript(p, "abc_")
    assert not issues
    assert (segs[0].clip, segs[0].start, segs[0].end, segs[0].text) == ("3", 1.5, 2.5, "text")


def test_split_options(tree, tmp_path: Path) -> None:
    # JSON split file, relative to the dataset root
    (tree.root / "my_folds.json").write_text(
        json.dumps({"train": ["_0efYOjQYRc"], "dev": ["81406"], "test": []})
    )
    result = MoseiReader().read(tree.root, cfg(splits="my_folds.json"))
    splits = {u.video_id: u.split for u in result.utterances}
    assert splits["_0efYOjQYRc"] == "train" and splits["81406"] == "valid" and splits["-3g5yACwYnA"] == "none"
    # id,split table with a header; an utterance id overrides its video's entry
    table = tmp_path / "splits.csv"
    table.write_text("id,split\r\n-3g5yACwYnA,test\r\n-3g5yACwYnA_1,train\r\n\r\n")
    result = MoseiReader().read(tree.root, cfg(splits=str(table)))
    by_id = {u.utterance_id: u.split for u in result.utterances}
    assert (
        by_id["-3g5yACwYnA_0"] == "test" and by_id["-3g5yACwYnA_1"] == "train" and by_id["81406_0"] == "none"
    )
    assert result.counts["split_test"] == 2
    # no split scheme
    assert {u.split for u in MoseiReader().read(tree.root, cfg(splits="none")).utterances} == {"none"}
    # errors are actionable
    bad = tmp_path / "bad.csv"
    bad.write_text("a,train\nb,holdout\n")
    with pytest.raises(DatasetError, match=r"bad.csv:2"):
        MoseiReader().read(tree.root, cfg(splits=str(bad)))
    with pytest.raises(SetupError, match="not found"):
        MoseiReader().read(tree.root, cfg(splits="nope.json"))


def test_packaged_standard_folds_are_the_sdk_folds(shared) -> None:
    from emoprep.extraction.readers.splitfiles import load_packaged_split

    folds = load_packaged_split("mosei_std_folds.json")
    counts = {s: sum(1 for v in folds.assignments.values() if v == s) for s in ("train", "valid", "test")}
    assert counts == {"train": 2249, "valid": 300, "test": 678}
    ref = json.loads(shared("mosei", "cmu_mosei_std_folds.json").read_text())
    assert {k: v for k, v in folds.assignments.items()} == {
        vid: split
        for key, split in (
            ("standard_train_fold", "train"),
            ("standard_valid_fold", "valid"),
            ("standard_test_fold", "test"),
        )
        for vid in ref[key]
    }


def test_sdk_labels_join_on_intervals_not_position(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "m", csd=True)
    auto = MoseiReader().read(tree.root, cfg())
    assert auto.counts.get("label_source_sdk") == 1
    forced = MoseiReader().read(tree.root, cfg(labels="mturk"))
    assert forced.counts.get("label_source_mturk") == 1
    a = {u.utterance_id: u.labels for u in auto.utterances}
    m = {u.utterance_id: u.labels for u in forced.utterances}
    assert set(a) == set(m) and len(a) >= 8
    for uid, lab in a.items():  # the .csd (stored in reverse order) holds the vote means: same labels
        assert lab.emotions == m[uid].emotions, uid
        assert lab.emotion_intensity == pytest.approx(m[uid].emotion_intensity, abs=1e-5)
        assert lab.sentiment == pytest.approx(m[uid].sentiment, abs=1e-5)
    with pytest.raises(SetupError):
        MoseiReader().read(build_mosei_tree(tmp_path / "n").root, cfg(labels="sdk"))


def test_sdk_tolerance_and_nearest_match(tmp_path: Path) -> None:
    segs = [
        MoseiSegment("-3g5yACwYnA", "0", 0.0, 1.0, "a"),
        MoseiSegment("-3g5yACwYnA", "1", 0.0, 1.03, "b overlaps a almost exactly"),
        MoseiSegment("-3g5yACwYnA", "2", 2.0, 3.0, "c"),
    ]
    tree = build_mosei_tree(tmp_path / "m", segs, mturk=False)

    def feats(sentiment: float) -> list[float]:  # the sentiment tags the row
        return [sentiment, 0, 0, 0, 0, 0, 0]

    write_mosei_csd(
        tree.root / "CMU_MOSEI_Labels.csd",
        {
            "-3g5yACwYnA": [(2.2, 3.0, feats(3.0)), (0.0, 1.031, feats(2.0)), (0.004, 0.998, feats(1.0))],
        },
    )
    result = MoseiReader().read(tree.root, cfg())
    sent = {u.utterance_id: u.labels.sentiment for u in result.utterances}
    assert sent == {"-3g5yACwYnA_0": 1.0, "-3g5yACwYnA_1": 2.0}  # c is 0.2 s off: unlabelled
    assert result.counts["sdk_labels_unmatched"] == 1
    wide = MoseiReader().read(tree.root, cfg(label_tolerance="0.25"))
    assert {u.utterance_id: u.labels.sentiment for u in wide.utterances}["-3g5yACwYnA_2"] == 3.0


def test_mturk_csv_quirks(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "m")
    # an unrelated CSV in the folder and a batch whose clip ids were re-typed by a spreadsheet
    (tree.root / "Raw/Labels/notes.csv").write_text("a,b\n1,2\n")
    with (tree.root / "Raw/Labels/Batch_extra.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Input.VIDEO_ID", "Input.CLIP", "Answer.anger", "Answer.sentiment", "Answer.surprise"])
        w.writerow(["zzLocalVid01", "0.0", "3", "", "2"])
    result = MoseiReader().read(tree.root, cfg())
    u = {u.utterance_id: u for u in result.utterances}["zzLocalVid01_0"]
    # spec votes: {"happiness": 1, "sentiment": 1} + the extra row (anger 3, surprise 2, no sentiment,
    # and no answer at all for disgust/fear/happiness/sadness)
    assert u.labels.emotions == (1, 0, 0, 1, 0, 1)
    assert u.labels.emotion_intensity == pytest.approx((1.5, 0.0, 0.0, 1.0, 0.0, 1.0))
    assert u.labels.sentiment == pytest.approx(1.0)
    assert any(i.kind == "malformed" and "notes.csv" in i.source for i in result.issues)


def test_missing_media_and_missing_tree(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "m", no_video=("zzLocalVid01",), no_wav=("zzLocalVid01", "81406"))
    result = MoseiReader().read(tree.root, cfg())
    ids = {u.utterance_id for u in result.utterances}
    assert "zzLocalVid01_0" not in ids
    missing = [i for i in result.issues if i.kind == "missing_media" and i.utterance_id]
    assert [i.utterance_id for i in missing] == ["zzLocalVid01_0"]
    with pytest.raises(DatasetError, match="Raw/Transcript"):
        MoseiReader().read(tmp_path / "nothing", cfg())


def test_media_are_decodable(tmp_path: Path) -> None:
    import av

    segs = [s for s in default_mosei_segments() if s.video_id in ("-3g5yACwYnA", "81406")]
    tree = build_mosei_tree(tmp_path / "m", segs, media=True)
    u = next(u for u in MoseiReader().read(tree.root, cfg()).utterances if u.audio_path)
    with av.open(u.audio_path) as f:
        stream = f.streams.audio[0]
        assert stream.codec_context.channels == 2 and stream.rate == 16000
    with av.open(u.video_path) as f:
        frames = sum(1 for _ in f.decode(video=0))
        assert frames >= 10 * u.end_s
        assert f.streams.audio, "the mp4 carries its own audio track (used when a WAV is missing)"


def test_real_ids_and_intervals_join(shared, tmp_path: Path) -> None:
    """30 real videos from CMU_MOSEI_Labels.csv: SDK .csd in the CSV's order, transcripts shuffled
    and with clip ids unrelated to the .csd position, times printed with other precision, plus
    unlabelled segments.  Every labelled segment must get its own row's label and real split."""
    rows = list(csv.DictReader(shared("mosei", "CMU_MOSEI_Labels.csv").open(newline="")))
    by_video: dict[str, list[dict]] = {}
    for r in rows:
        by_video.setdefault(r["file"], []).append(r)
    rng = random.Random(1234)
    vids = sorted(by_video)
    chosen = rng.sample(vids, 26)
    # make sure the pitfalls are in the sample: leading '-'/'_', numeric ids, negative starts
    for pred in (
        lambda v: v.startswith("-"),
        lambda v: v.startswith("_"),
        lambda v: v.isdigit(),
        lambda v: any(float(r["start"]) < 0 for r in by_video[v]),
    ):
        chosen.append(next(v for v in vids if pred(v) and v not in chosen))
    segs, csd, expect = [], {}, {}
    for vid in chosen:
        items = by_video[vid]
        csd[vid] = []
        for k, r in enumerate(items):
            start, end = float(r["start"]), float(r["end"])
            tag = (int(r[""]) % 997 + 1) / 1000.0  # unique-ish per row: catches a wrong join
            feats = [float(r["label7"]), 0, 0, 0, tag, 0, 0]
            csd[vid].append((start, end, feats))
            clip = str(100 + (k * 7) % 53 + k)  # not the position
            segs.append(
                MoseiSegment(
                    vid, clip, start, end, f"segment {k}", start_text=f"{start:.2f}" if k % 2 else repr(start)
                )
            )
            expect[f"{vid}_{clip}"] = (
                float(r["label7"]),
                tag,
                {"0": "train", "1": "valid", "2": "test", "3": "none"}[r["split"]],
            )
        last = max(float(r["end"]) for r in items)
        segs.append(MoseiSegment(vid, "999", last + 5.0, last + 9.0, "never labelled"))
    order = {vid: list(range(sum(1 for s in segs if s.video_id == vid))) for vid in chosen}
    for o in order.values():
        rng.shuffle(o)
    tree = build_mosei_tree(tmp_path / "real", segs, mturk=False, line_order=order, no_wav=())
    write_mosei_csd(tree.root / "CMU_MOSEI_Labels.csd", csd)
    result = MoseiReader().read(tree.root, cfg())
    got = {u.utterance_id: u for u in result.utterances}
    assert result.counts["unlabelled_skipped"] == len(chosen)
    assert result.counts.get("sdk_labels_unmatched", 0) == 0
    assert set(got) == set(expect)
    for uid, (sentiment, tag, split) in expect.items():
        u = got[uid]
        assert u.labels.sentiment == pytest.approx(sentiment), uid
        assert u.labels.emotion_intensity[MOSEI_EMOTIONS.index("surprise")] == pytest.approx(tag, abs=1e-6), (
            uid
        )
        assert u.split == split, uid  # the shipped standard folds agree with the CSV's split column
        assert u.start_s >= 0.0


def test_sdk_files_with_segment_keys_are_joined_by_interval_too(tmp_path: Path) -> None:
    segs = [MoseiSegment("-3g5yACwYnA", "7", 0.0, 1.0, "a"), MoseiSegment("-3g5yACwYnA", "8", 1.0, 2.0, "b")]
    tree = build_mosei_tree(tmp_path / "m", segs, mturk=False)
    write_mosei_csd(
        tree.root / "CMU_MOSEI_Labels.csd",
        {"-3g5yACwYnA[1]": [(1.0, 2.0, [-2, 0, 0, 0, 0, 0, 0])], "-3g5yACwYnA[0]": [(0.0, 1.0, [2, 0, 0, 0, 0, 0, 0])]},
    )
    got = {u.utterance_id: u.labels.sentiment for u in MoseiReader().read(tree.root, cfg()).utterances}
    assert got == {"-3g5yACwYnA_7": 2.0, "-3g5yACwYnA_8": -2.0}


def _listed(split: str, n: int, seed: int = 0) -> list[str]:
    """``n`` utterance ids of the shipped MESM list of ``split`` (a seeded sample)."""
    from importlib import resources

    text = resources.files("emoprep.pipelines").joinpath("splits", "MOSEI_split", f"{split}_split.txt").read_text()
    return random.Random(seed).sample(text.split(), n)


def _segments_for(ids: list[str]) -> list[MoseiSegment]:
    """One labelled 1 s segment per ``<video_id>_<clip>`` id, clips of a video one after another."""
    segs, t = [], {}
    for uid in ids:
        vid, _, clip = uid.rpartition("_")
        start = t.get(vid, 0.0)
        t[vid] = start + 1.0
        segs.append(MoseiSegment(vid, clip, start, start + 1.0, f"clip {clip}", ({"happiness": 1, "sentiment": 1},)))
    return segs


def test_mesm_split_assigns_the_papers_utterances_and_counts_the_rest(tmp_path: Path) -> None:
    listed = {"train": _listed("train", 3), "valid": _listed("valid", 2), "test": _listed("test", 2)}
    # a clip of a listed video that the list leaves out (the paper dropped 4 such segments), and a
    # video in no list at all: both are split none
    vid = listed["train"][0].rpartition("_")[0]
    extra = [f"{vid}_9999", "zzLocalVid01_0"]
    ids = [i for split in listed.values() for i in split] + extra
    tree = build_mosei_tree(tmp_path / "m", _segments_for(ids), no_wav=())
    result = MoseiReader().read(tree.root, cfg(splits="mesm"))
    got = {u.utterance_id: u.split for u in result.utterances}
    assert got == {**{i: s for s, split_ids in listed.items() for i in split_ids}, **{i: "none" for i in extra}}
    assert result.counts["listed_ids_not_found"] == 14524 + 1765 + 4188 - 7
    # the same lists given as a folder (the authors' three-file layout) give the same splits
    folder = tmp_path / "MOSEI_split"
    folder.mkdir()
    for split, split_ids in listed.items():
        (folder / f"{split}_split.txt").write_text("\n".join(split_ids) + "\n")
    by_folder = MoseiReader().read(tree.root, cfg(splits=str(folder)))
    assert {u.utterance_id: u.split for u in by_folder.utterances} == got
    assert by_folder.counts["listed_ids_not_found"] == 0


def test_mturk_video_ids_with_a_path_prefix_keep_their_labels(tmp_path: Path) -> None:
    """The MESM authors keep the last path component of ``Input.VIDEO_ID`` (``split('/')[-1]``):
    rows written ``pom/<id>`` or with a URL prefix label the same clip and are not dropped."""
    segs = [
        MoseiSegment("-3g5yACwYnA", "0", 0.0, 1.0, "a"),
        MoseiSegment("81406", "2", 1.0, 2.0, "b"),
        MoseiSegment("_0efYOjQYRc", "1", 0.0, 1.0, "c"),
    ]
    tree = build_mosei_tree(tmp_path / "m", segs, mturk=False, no_wav=())
    labels = tree.root / "Raw/Labels"
    labels.mkdir(parents=True)
    with (labels / "Batch_prefixed.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Input.VIDEO_ID", "Input.CLIP", "Answer.anger", "Answer.happiness", "Answer.sentiment"])
        w.writerow(["pom/-3g5yACwYnA", "0", "2", "0", "-1"])
        w.writerow(["-3g5yACwYnA", "0", "0", "0", "-2"])  # the same clip without prefix: aggregated
        w.writerow(["https://example.org/videos/81406/", "2", "0", "3", "2"])
        w.writerow(["_0efYOjQYRc", "1", "0", "1", "1"])
    result = MoseiReader().read(tree.root, cfg(labels="mturk"))
    got = {u.utterance_id: u.labels for u in result.utterances}
    assert set(got) == {"-3g5yACwYnA_0", "81406_2", "_0efYOjQYRc_1"}
    assert got["-3g5yACwYnA_0"].emotions == (1, 0, 0, 0, 0, 0)
    assert got["-3g5yACwYnA_0"].sentiment == pytest.approx(-1.5)
    assert got["81406_2"].emotions == (0, 0, 0, 1, 0, 0) and got["81406_2"].sentiment == pytest.approx(2.0)
    assert result.counts.get("unlabelled_skipped", 0) == 0
