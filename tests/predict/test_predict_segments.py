"""Media -> utterances for `emoprep predict`: windows, .srt/.vtt cues, files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoprep.errors import SetupError
from emoprep.prediction.segments import segment_media, windows
from emoprep.prediction.transcripts import read_transcript, transcript_beside
from emoprep.testing.media import write_tone_wav


@pytest.mark.parametrize("duration, window, hop, expected", [
    (10.0, 4.0, 2.0, [(0, 4), (2, 6), (4, 8), (6, 10)]),
    (9.0, 4.0, 2.0, [(0, 4), (2, 6), (4, 8), (6, 9)]),
    (3.0, 4.0, 2.0, [(0, 3)]),
    (4.0, 4.0, 2.0, [(0, 4)]),
    (7.0, 2.0, 2.0, [(0, 2), (2, 4), (4, 6), (6, 7)]),
])
def test_windows_cover_the_media_and_end_at_its_end(duration: float, window: float, hop: float, expected: list) -> None:
    assert windows(duration, window, hop) == [(float(a), float(b)) for a, b in expected]


def test_windows_refuse_non_positive_lengths() -> None:
    with pytest.raises(SetupError, match="positive"):
        windows(10.0, 4.0, 0.0)


def test_srt_and_vtt_cues(tmp_path: Path) -> None:
    srt = tmp_path / "a.srt"
    srt.write_bytes("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> there\r\nsecond line\r\n\r\n"
                    "2\r\n01:00:00,250 --> 01:00:03,000 X:1\r\n{\\an8}Bye\r\n".encode())
    vtt = tmp_path / "b.vtt"
    vtt.write_text("WEBVTT\n\nNOTE a comment\n\ncue-1\n00:01.5 --> 00:02.000 align:start\n<v Bob>Hi</v>\n")
    assert [(c.start, c.end, c.text) for c in read_transcript(srt)] == [(1.0, 2.5, "Hello there second line"),
                                                                       (3600.25, 3603.0, "Bye")]
    assert [(c.start, c.end, c.text) for c in read_transcript(vtt)] == [(1.5, 2.0, "Hi")]
    empty = tmp_path / "c.srt"
    empty.write_text("no cues here\n")
    with pytest.raises(SetupError, match="no timed cue"):
        read_transcript(empty)


def test_segmentation_uses_the_transcript_beside_the_media_and_fails_unreadable_files(tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "x.wav", 5.0)
    (tmp_path / "x.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nyes\n")
    plain = write_tone_wav(tmp_path / "y.wav", 5.0)
    junk = tmp_path / "z.mp4"
    junk.write_bytes(b"z" * 100)
    assert transcript_beside(wav) == tmp_path / "x.vtt" and transcript_beside(plain) is None
    seg = segment_media([wav, plain, junk, tmp_path / "missing.mp4"])
    assert [r for r in seg.rows if r["audio"] == str(wav)] == [
        {"utterance_id": "x.wav/00000", "audio": str(wav), "start": 0.0, "end": 1.0, "text": "yes"}]
    plain_rows = [r for r in seg.rows if r["audio"] == str(plain)]
    assert [(r["start"], r["end"]) for r in plain_rows] == [(0.0, 4.0), (2.0, 5.0)]
    assert all("text" not in r and "video" not in r for r in plain_rows)  # no transcript: no text column
    assert [(f["id"], f["error"].split(":")[0]) for f in seg.failures] == [("z.mp4", "media"), ("missing.mp4", "media")]
    with pytest.raises(SetupError, match="one MEDIA"):
        segment_media([wav, plain], transcript=tmp_path / "x.vtt")
