"""ManifestReader: CSV and JSONL manifests, relative media paths, labels and file:line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoprep.config import ExtractConfig
from emoprep.datasets import get_reader
from emoprep.errors import DatasetError


def cfg(**options: str) -> ExtractConfig:
    return ExtractConfig(dataset="manifest", dataset_options=tuple(sorted(options.items())))


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for rel in ("videos/call01.mp4", "audio/call02.wav"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


CSV = (
    "utterance_id,video,audio,start,end,text,speaker,split,emotions,sentiment,audio_channel,video_region\r\n"
    'call01_000,videos/call01.mp4,,0.0,3.2,"Hello, how are you?",alice,train,happiness,1.5,,left\r\n'
    "call01_001,videos/call01.mp4,,-0.2,6.0,,bob,dev,none,0,,\r\n"
    'call02_000,,audio/call02.wav,1.25,4.75,"multi\nline ""quoted""",carol,test,happiness;surprise,,1,\r\n'
    "call02_001,,audio/call02.wav,5.0,5.0,x,carol,,,,,\r\n"
    "call03_000,videos/missing.mp4,,0,1,y,dan,train,anger,,,\r\n"
)


def test_csv_fields_labels_and_paths(media: Path) -> None:
    path = media / "m.csv"
    path.write_text(CSV, newline="")
    result = get_reader("manifest").read(path, cfg())
    assert result.label_names == ("anger", "happiness", "surprise")  # sorted union of names in the file
    got = {u.utterance_id: u for u in result.utterances}
    assert list(got) == ["call01_000", "call01_001", "call02_000"]
    a, b, c = got["call01_000"], got["call01_001"], got["call02_000"]
    assert a.video_path == str(media.resolve() / "videos/call01.mp4") and a.audio_path is None
    assert (a.start_s, a.end_s, a.text, a.speaker, a.split, a.video_id) == (
        0.0,
        3.2,
        "Hello, how are you?",
        "alice",
        "train",
        "call01",
    )
    assert a.labels.emotions == (0, 1, 0) and a.labels.sentiment == 1.5 and a.video_region == "left"
    assert b.start_s == 0.0 and b.split == "valid" and b.text == "" and b.labels.emotions == (0, 0, 0)
    assert c.text == 'multi\nline "quoted"' and c.audio_channel == 1 and c.labels.emotions == (0, 1, 1)
    assert c.audio_path == str(media.resolve() / "audio/call02.wav") and c.labels.sentiment is None
    kinds = {(i.kind, i.utterance_id) for i in result.issues}
    assert kinds == {("clamped", "call01_001"), ("invalid", "call02_001"), ("missing_media", "call03_000")}
    # the issue of the row after a two-line quoted cell points at that row's own first line
    invalid = next(i for i in result.issues if i.kind == "invalid")
    assert invalid.source.endswith("m.csv:6")


def test_jsonl_and_fixed_label_names(media: Path) -> None:
    path = media / "m.jsonl"
    rows = [
        {
            "utterance_id": "u1",
            "video": "videos/call01.mp4",
            "start": 0,
            "end": 2,
            "emotions": ["sad"],
            "valence": 2.5,
        },
        {
            "utterance_id": "u2",
            "audio": str(media / "audio/call02.wav"),
            "start": 1,
            "end": 2,
            "split": "test",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    result = get_reader("manifest").read(path, cfg(label_names="happy,sad"))
    assert result.label_names == ("happy", "sad")
    u1, u2 = result.utterances
    assert u1.labels.emotions == (0, 1) and u1.labels.valence == 2.5 and u1.text is None
    assert u2.labels.emotions is None and u2.split == "test" and u2.video_path is None


def test_syntax_errors_are_all_listed_with_file_and_line(media: Path) -> None:
    path = media / "bad.csv"
    path.write_text(
        "utterance_id,video,start,end,split,emotions\n"
        "a,videos/call01.mp4,0,1,train,happy\n"
        "b,videos/call01.mp4,0,4;75,train,\n"
        "a,videos/call01.mp4,0,1,train,\n"
        "c,videos/call01.mp4,0,1,holdout,\n"
        "d,,0,1,train,\n"
        "e,videos/call01.mp4,0,1,train,angry\n"
    )
    with pytest.raises(DatasetError) as err:
        get_reader("manifest").read(path, cfg(label_names="happy,sad"))
    msg = str(err.value)
    for line, words in (
        (3, "'end' must be a number"),
        (4, "duplicate utterance_id 'a'"),
        (5, "unknown split"),
        (6, "'video' or an 'audio'"),
        (7, "not in label_names"),
    ):
        assert f"bad.csv:{line}: " in msg and words in msg, (line, msg)
    assert msg.startswith("5 error(s)")


def test_header_and_file_errors(media: Path, tmp_path: Path) -> None:
    path = media / "nohdr.csv"
    path.write_text("id,video,begin,end\nx,videos/call01.mp4,0,1\n")
    with pytest.raises(DatasetError, match="utterance_id"):
        get_reader("manifest").read(path, cfg())
    bad = media / "bad.jsonl"
    bad.write_text('{"utterance_id": "x", "video": "videos/call01.mp4", "start": 0, "end": 1}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        get_reader("manifest").read(bad, cfg())
    with pytest.raises(DatasetError, match="not found"):
        get_reader("manifest").read(tmp_path / "nope.csv", cfg())


def test_errors_in_multiline_rows_point_at_the_rows_first_line(media: Path) -> None:
    path = media / "ml.csv"
    path.write_text(
        "utterance_id,video,start,end,text\n"
        'a,videos/call01.mp4,0,1,"two\nlines"\n'
        'b,videos/call01.mp4,0,x,"three\nlines\nhere"\n'
        "c,videos/call01.mp4,0,y,one\n"
    )
    with pytest.raises(DatasetError) as err:
        get_reader("manifest").read(path, cfg())
    assert "ml.csv:4: 'end'" in str(err.value) and "ml.csv:7: 'end'" in str(err.value)
