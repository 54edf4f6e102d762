"""IemocapReader against miniature IEMOCAP_full_release trees written by emoprep.testing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emoprep.extraction.config import ExtractConfig
from emoprep.extraction.readers import get_reader
from emoprep.extraction.readers.iemocap import IemocapReader, random_split
from emoprep.errors import DatasetError, SetupError
from emoprep.testing import build_iemocap_tree

SIX = {"ang": "anger", "exc": "excited", "fru": "frustrated", "hap": "happy", "neu": "neutral", "sad": "sad"}
FOUR = {"ang": "anger", "exc": "happy", "hap": "happy", "neu": "neutral", "sad": "sad"}


def cfg(**options: str) -> ExtractConfig:
    return ExtractConfig(dataset="iemocap", dataset_options=tuple(sorted(options.items())))


@pytest.fixture()
def tree(tmp_path: Path):
    return build_iemocap_tree(tmp_path / "IEMOCAP_full_release")


def test_every_field_of_six_class_turns(tree) -> None:
    result = get_reader("iemocap").read(tree.root, cfg())
    assert result.label_names == ("anger", "excited", "frustrated", "happy", "neutral", "sad")
    got = {u.utterance_id: u for u in result.utterances}
    kept = [t for t in tree.turns if t.code in SIX]
    assert list(got) == [t.turn for t in sorted(kept, key=lambda t: (t.session, t.dialog))]
    for t in kept:
        u = got[t.turn]
        gender = t.turn.split("_")[-1][0]
        own = gender == t.dialog[5]
        session_dir = tree.root.resolve() / f"Session{t.session}" / "dialog"
        assert (u.dataset, u.video_id) == ("iemocap", t.dialog)
        assert (u.start_s, u.end_s) == (pytest.approx(t.start), pytest.approx(t.end))
        assert u.text == (t.text.strip() if t.text is not None else None)
        assert u.speaker == f"Ses{t.session:02d}{gender}"
        assert u.video_path == str(session_dir / "avi/DivX" / f"{t.dialog}.avi")
        assert u.audio_path == str(session_dir / "wav" / f"{t.dialog}.wav")
        assert u.audio_channel == (0 if own else 1)
        assert u.video_region == ("left" if own else "right")
        assert u.labels.category == t.code
        assert u.labels.emotions == tuple(int(n == SIX[t.code]) for n in result.label_names)
        assert (u.labels.valence, u.labels.arousal, u.labels.dominance) == pytest.approx(t.vad)
        assert u.labels.sentiment is None and u.labels.emotion_intensity is None
    outside = [t for t in tree.turns if t.code not in SIX]
    assert result.counts["outside_classes"] == len(outside) > 0
    assert result.counts["turns"] == len(tree.turns)
    assert result.counts["code_xxx"] == sum(t.code == "xxx" for t in tree.turns)


def test_transcription_pitfalls(tree) -> None:
    got = {u.utterance_id: u for u in IemocapReader().read(tree.root, cfg()).utterances}
    # split on the first ']:' only: the rest of the text keeps its brackets and colons
    assert got["Ses01F_impro01_M001"].text == "Okay, [LAUGHTER] that works]: fine"
    # no transcription line: text is null, not empty
    assert got["Ses01F_impro01_F002"].text is None
    # CRLF never leaks into the text; LF-only dialogs parse the same
    assert all("\r" not in (u.text or "") for u in got.values())
    assert got["Ses02F_impro02_F000"].text == "Lovely."
    # XX turns, 'M: Yeah.' and ids without '_' never become utterances
    assert not any("XX" in k for k in got) and all("_" in k for k in got)


def test_irregular_transcription_lines_are_reported(tmp_path: Path) -> None:
    tree = build_iemocap_tree(
        tmp_path / "r",
        extra_transcript_lines={
            "Ses01F_impro01": ["Ses01F_impro01_F009 [oops]: no times", "F: [LAUGHTER]", "", "just words"],
        },
    )
    result = IemocapReader().read(tree.root, cfg())
    malformed = [i for i in result.issues if i.kind == "malformed"]
    assert len(malformed) == 1 and "no times" in malformed[0].message
    path, line = malformed[0].source.rsplit(":", 1)
    assert path.endswith("Session1/dialog/transcriptions/Ses01F_impro01.txt")
    lines = Path(path).read_bytes().decode().split("\r\n")
    assert lines[int(line) - 1].startswith("Ses01F_impro01_F009 [oops]")


def test_four_classes_merge_excited_into_happy(tree) -> None:
    result = IemocapReader().read(tree.root, cfg(classes="4"))
    assert result.label_names == ("anger", "happy", "neutral", "sad")
    got = {u.utterance_id: u for u in result.utterances}
    assert set(got) == {t.turn for t in tree.turns if t.code in FOUR}
    exc = got["Ses01M_script01_1_F000"]
    assert exc.labels.category == "exc" and exc.labels.emotions == (0, 1, 0, 0)
    assert result.counts["outside_classes"] == sum(t.code not in FOUR for t in tree.turns)
    with pytest.raises(SetupError):
        IemocapReader().read(tree.root, cfg(classes="5"))


def test_random_split_matches_paper_sizes_and_is_seeded() -> None:
    ids = [f"Ses0{i % 5 + 1}F_x_{i:05d}" for i in range(7380)]
    split = random_split(ids, seed=0)
    assert Counter(split.values()) == {"train": 5162, "valid": 737, "test": 1481}
    assert random_split(list(reversed(ids)), seed=0) == split  # order of discovery does not matter
    assert random_split(ids, seed=1) != split


def test_random_split_on_a_tree(tree) -> None:
    a = IemocapReader().read(tree.root, cfg())
    b = IemocapReader().read(tree.root, cfg(seed="7"))
    assert {u.split for u in a.utterances} <= {"train", "valid", "test"}
    assert sum(a.counts[f"split_{s}"] for s in ("train", "valid", "test")) == len(a.utterances)
    assert [u.split for u in IemocapReader().read(tree.root, cfg()).utterances] == [
        u.split for u in a.utterances
    ]
    assert {u.utterance_id for u in a.utterances} == {u.utterance_id for u in b.utterances}


@pytest.mark.parametrize(
    "option,test,valid", [("session:2", 2, 3), ("session:5", 5, 1), ("session:1:4", 1, 4)]
)
def test_leave_one_session_out(tree, option: str, test: int, valid: int) -> None:
    result = IemocapReader().read(tree.root, cfg(split=option))
    for u in result.utterances:
        session = int(u.video_id[3:5])
        assert u.split == ("test" if session == test else "valid" if session == valid else "train")
    speakers = {s: {u.speaker for u in result.utterances if u.split == s} for s in ("train", "valid", "test")}
    assert (
        speakers["test"]
        and not (speakers["test"] & speakers["train"])
        and not (speakers["valid"] & speakers["train"])
    )


@pytest.mark.parametrize("bad", ["session:6", "session:x", "session:2:2", "session:1:2:3"])
def test_bad_split_options(tree, bad: str) -> None:
    with pytest.raises(SetupError):
        IemocapReader().read(tree.root, cfg(split=bad))


def test_split_file(tree, tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("Ses01F_impro01\ttest\nSes02F_impro02_F000\tvalid\n")
    got = {u.utterance_id: u.split for u in IemocapReader().read(tree.root, cfg(split=str(f))).utterances}
    assert got["Ses01F_impro01_F000"] == "test" and got["Ses02F_impro02_F000"] == "valid"
    assert got["Ses02F_impro02_M000"] == "none"


def test_missing_media(tmp_path: Path) -> None:
    tree = build_iemocap_tree(
        tmp_path / "m", no_video=("Ses02F_impro02", "Ses03M_impro03"), no_wav=("Ses03M_impro03",)
    )
    result = IemocapReader().read(tree.root, cfg())
    got = {u.utterance_id: u for u in result.utterances}
    u = got["Ses02F_impro02_M000"]
    assert u.video_path is None and u.video_region is None and u.audio_channel == 1
    assert not any(k.startswith("Ses03M_impro03") for k in got)
    failed = {i.utterance_id for i in result.issues if i.kind == "missing_media" and i.utterance_id}
    assert failed == {t.turn for t in tree.turns if t.dialog == "Ses03M_impro03" and t.code in SIX}
    with pytest.raises(DatasetError, match="Session"):
        IemocapReader().read(tmp_path / "empty", cfg())


def test_media_are_decodable_and_sides_differ(tmp_path: Path) -> None:
    import av
    import numpy as np

    turns = [t for t in build_iemocap_tree(tmp_path / "spec").turns if t.dialog == "Ses02F_impro02"]
    tree = build_iemocap_tree(tmp_path / "m", turns, media=True)
    u = IemocapReader().read(tree.root, cfg(split="none")).utterances[0]
    with av.open(u.video_path) as f:
        frame = next(f.decode(video=0)).to_ndarray(format="rgb24")
    w = frame.shape[1]
    left, right = frame[:, : w // 2].mean(axis=(0, 1)), frame[:, w // 2 :].mean(axis=(0, 1))
    assert left[0] > left[2] and right[2] > right[0]  # red left actor, blue right actor
    with av.open(u.audio_path) as f:
        channels = f.streams.audio[0].codec_context.channels
        # PCM WAV decodes to packed (interleaved) samples: one row of n * channels values
        samples = np.concatenate(
            [fr.to_ndarray().reshape(-1, channels).T for fr in f.decode(audio=0)], axis=1
        )
    assert channels == 2 and samples.shape[0] == 2
    peak = [np.argmax(np.abs(np.fft.rfft(ch.astype(float)))) * 16000 / len(ch) for ch in samples]
    assert peak[0] == pytest.approx(300, abs=5) and peak[1] == pytest.approx(600, abs=5)


def test_mesm_split_uses_the_papers_turn_lists(tmp_path: Path) -> None:
    """A tree of turns named in the shipped MESM lists (plus one that is not): each turn gets the
    list's split, the unlisted one ``none``, and the listed turns not in the tree are counted."""
    import random
    from importlib import resources

    from emoprep.testing import IemocapTurn

    lists = resources.files("emoprep.pipelines").joinpath("splits", "IEMOCAP_split")
    listed = {s: random.Random(1).sample(lists.joinpath(f"{s}_split.txt").read_text().split(), 3) for s in ("train", "valid", "test")}
    ids = [i for split in listed.values() for i in split]
    # every listed turn becomes a turn of its own dialog; one unlisted turn joins the first dialog
    unlisted = ids[0].rsplit("_", 1)[0] + "_F999"
    turns = [IemocapTurn(t, float(k), k + 0.8, "neu") for k, t in enumerate(sorted(ids) + [unlisted])]
    tree = build_iemocap_tree(tmp_path / "m", turns)
    result = IemocapReader().read(tree.root, cfg(split="mesm"))
    got = {u.utterance_id: u.split for u in result.utterances}
    assert got == {**{i: s for s, split_ids in listed.items() for i in split_ids}, unlisted: "none"}
    assert result.counts["listed_ids_not_found"] == 5162 + 737 + 1481 - 9
    assert "listed_ids_not_found" not in IemocapReader().read(tree.root, cfg()).counts  # random: no list
