"""RecordingsReader (`--dataset recordings`, old name `manifest`): CSV and JSONL lists of recordings, relative media paths, labels and file:line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from emoprep.extraction.config import ExtractConfig
from emoprep.extraction.readers import get_reader
from emoprep.errors import DatasetError


def cfg(dataset: str = "recordings", **options: str) -> ExtractConfig:
    return ExtractConfig(dataset=dataset, dataset_options=tuple(sorted(options.items())))


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
    result = get_reader("recordings").read(path, cfg())
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
        "videos/call01",  # the path relative to the manifest, without extension
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
    result = get_reader("recordings").read(path, cfg(label_names="happy,sad"))
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
        get_reader("recordings").read(path, cfg(label_names="happy,sad"))
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
        get_reader("recordings").read(path, cfg())
    bad = media / "bad.jsonl"
    bad.write_text('{"utterance_id": "x", "video": "videos/call01.mp4", "start": 0, "end": 1}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        get_reader("recordings").read(bad, cfg())
    with pytest.raises(DatasetError, match="not found"):
        get_reader("recordings").read(tmp_path / "nope.csv", cfg())


def test_errors_in_multiline_rows_point_at_the_rows_first_line(media: Path) -> None:
    path = media / "ml.csv"
    path.write_text(
        "utterance_id,video,start,end,text\n"
        'a,videos/call01.mp4,0,1,"two\nlines"\n'
        'b,videos/call01.mp4,0,x,"three\nlines\nhere"\n'
        "c,videos/call01.mp4,0,y,one\n"
    )
    with pytest.raises(DatasetError) as err:
        get_reader("recordings").read(path, cfg())
    assert "ml.csv:4: 'end'" in str(err.value) and "ml.csv:7: 'end'" in str(err.value)


# --- default video ids ---------------------------------------------------------------------------
def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def test_default_video_ids_are_unique_per_file(tmp_path: Path) -> None:
    """MOSEI-like ``Raw/<video>/<clip>.mp4`` trees reuse clip names in every folder."""
    root = tmp_path / "set"
    _touch(root, "Raw/vidA/0.mp4", "Raw/vidA/1.mp4", "Raw/vidB/0.mp4", "Raw/vidB/0.wav", "x/a.mp4", "x/a.mov")
    outside = tmp_path / "elsewhere" / "far.mp4"
    _touch(tmp_path, "elsewhere/far.mp4")
    path = root / "m.csv"
    path.write_text(
        "utterance_id,video,audio,start,end\n"
        "a0,Raw/vidA/0.mp4,,0,1\n"
        "a0b,./Raw/vidA/0.mp4,,1,2\n"  # the same file written differently: the same id
        "a1,Raw/vidA/1.mp4,,0,1\n"
        "b0,Raw/vidB/0.mp4,Raw/vidB/0.wav,0,1\n"  # the video names the recording
        "xa,x/a.mp4,,0,1\n"
        "xb,x/a.mov,,0,1\n"  # same path but the extension: both keep it
        f"far,{outside},,0,1\n"
        f"abs,{root / 'Raw/vidA/1.mp4'},,1,2\n"  # absolute but inside the folder
    )
    ids = {u.utterance_id: u.video_id for u in get_reader("recordings").read(path, cfg()).utterances}
    assert ids == {
        "a0": "Raw/vidA/0",
        "a0b": "Raw/vidA/0",
        "a1": "Raw/vidA/1",
        "b0": "Raw/vidB/0",
        "xa": "x/a.mp4",
        "xb": "x/a.mov",
        "far": outside.with_suffix("").as_posix(),  # outside the folder: the absolute path
        "abs": "Raw/vidA/1",
    }


def test_explicit_video_ids_are_kept_but_may_not_name_two_files(tmp_path: Path) -> None:
    _touch(tmp_path, "v/0.mp4", "w/0.mp4", "w/1.mp4")
    ok = tmp_path / "ok.csv"
    ok.write_text(
        "utterance_id,video,video_id,start,end\n"
        "a,v/0.mp4,interview 1,0,1\n"
        "b,v/0.mp4,interview 1,1,2\n"
        "c,w/0.mp4,,0,1\n"
    )
    got = [u.video_id for u in get_reader("recordings").read(ok, cfg()).utterances]
    assert got == ["interview 1", "interview 1", "w/0"]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "utterance_id,video,video_id,start,end\n"
        "a,v/0.mp4,s1,0,1\n"
        "b,w/0.mp4,s1,0,1\n"  # one explicit id, two recordings
        "c,w/1.mp4,,0,1\n"
        "d,v/0.mp4,w/1,1,2\n"  # an explicit id that is another file's default
    )
    with pytest.raises(DatasetError) as err:
        get_reader("recordings").read(bad, cfg())
    msg = str(err.value)
    assert msg.startswith("2 error(s)")
    assert "bad.csv:3: video_id 's1' names" in msg and "bad.csv:2" in msg
    assert "bad.csv:5: video_id 'w/1' names" in msg and "own video_id" in msg


# --- times against the media's end ---------------------------------------------------------------
def _wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    import wave

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())
    return path


def test_ends_past_the_media_are_clamped_and_late_starts_fail(tmp_path: Path) -> None:
    _wav(tmp_path / "a/two_seconds.wav", 2.0)
    (tmp_path / "a/empty.wav").write_bytes(b"")  # no readable duration: times left as given
    path = tmp_path / "m.csv"
    path.write_text(
        "utterance_id,audio,start,end\n"
        "inside,a/two_seconds.wav,0.5,1.5\n"
        "past,a/two_seconds.wav,1.5,3.25\n"
        "both,a/two_seconds.wav,-0.5,9\n"
        "late,a/two_seconds.wav,2.0,2.5\n"
        "unknown,a/empty.wav,5,6\n"
    )
    result = get_reader("recordings").read(path, cfg())
    got = {u.utterance_id: (u.start_s, u.end_s) for u in result.utterances}
    assert got == {"inside": (0.5, 1.5), "past": (1.5, 2.0), "both": (0.0, 2.0), "unknown": (5.0, 6.0)}
    issues = sorted((i.kind, i.utterance_id, i.source.rsplit(":", 1)[1]) for i in result.issues)
    assert issues == [
        ("clamped", "both", "4"),
        ("clamped_end", "both", "4"),
        ("clamped_end", "past", "3"),
        ("invalid", "late", "5"),
    ]
    assert result.counts["clamped_end"] == 2 and result.counts["clamped"] == 1 and result.counts["invalid"] == 1
    late = next(i for i in result.issues if i.utterance_id == "late")
    assert "end of the media (2.000 s)" in late.message


def test_the_old_name_reads_the_same_and_records_the_name_it_was_given(media: Path, tmp_path: Path) -> None:
    """``manifest`` (the old name) is the same reader: same utterances, and rows that say
    ``manifest`` as they did before the rename; the CLI says so in a note."""
    from click.testing import CliRunner

    import cli
    from emoprep.extraction.config import build_config

    path = media / "m.csv"
    path.write_text(CSV, newline="")
    new = get_reader("recordings").read(path, cfg())
    old = get_reader("manifest").read(path, cfg("manifest"))
    assert [u.utterance_id for u in new.utterances] == [u.utterance_id for u in old.utterances] != []
    assert {u.dataset for u in new.utterances} == {"recordings"} and {u.dataset for u in old.utterances} == {"manifest"}
    assert [dataclasses.replace(u, dataset="x") for u in new.utterances] == [dataclasses.replace(u, dataset="x") for u in old.utterances]
    assert build_config("manifest", {}).dataset_options == build_config("recordings", {}).dataset_options
    result = CliRunner().invoke(cli.main, ["check-raw", "--dataset", "manifest", "--root", str(path)])
    assert "note: --dataset manifest is now --dataset recordings" in result.output
    assert "note:" not in CliRunner().invoke(cli.main, ["check-raw", "--dataset", "recordings", "--root", str(path)]).output
