"""The segment clean-up every reader shares: the same rules, messages and counts whatever the corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from emoprep.extraction.config import ExtractConfig
from emoprep.extraction.readers.segments import SegmentCleaner
from emoprep.extraction.records import ReaderIssue
from emoprep.testing import IemocapTurn, build_iemocap_tree


def _cleaner(ends: dict[str, float | None]) -> tuple[SegmentCleaner, list[ReaderIssue], Counter]:
    issues: list[ReaderIssue] = []
    counts: Counter = Counter()
    probed: list[str] = []

    def media_end(path: str) -> float | None:
        probed.append(path)
        return ends[path]

    cleaner = SegmentCleaner(issues, counts, media_end)
    cleaner.probed = probed  # type: ignore[attr-defined]
    return cleaner, issues, counts


def test_each_rule_repairs_or_refuses_and_is_counted() -> None:
    cleaner, issues, counts = _cleaner({"a.mp4": 10.0, "a.wav": 12.0, "unknown.mp4": None})
    assert cleaner.times("ok", 1.0, 2.0, "f:1", ("a.mp4",)) == (1.0, 2.0)
    assert cleaner.times("neg", -0.5, 2.0, "f:2", ("a.mp4",)) == (0.0, 2.0)
    assert cleaner.times("empty", 3.0, 3.0, "f:3", ("a.mp4",)) is None
    assert cleaner.times("late", 12.0, 13.0, "f:4", ("a.mp4", "a.wav")) is None  # the latest file's end counts
    assert cleaner.times("long", 9.0, 15.0, "f:5", ("a.mp4", "a.wav")) == (9.0, 12.0)
    assert cleaner.times("unknown", 9.0, 99.0, "f:6", ("a.mp4", "unknown.mp4")) == (9.0, 99.0)
    assert cleaner.times("no media", 9.0, 99.0, "f:7", (None, None)) == (9.0, 99.0)
    assert [(i.kind, i.utterance_id, i.source) for i in issues] == [
        ("clamped", "neg", "f:2"), ("invalid", "empty", "f:3"), ("invalid", "late", "f:4"), ("clamped_end", "long", "f:5")]
    assert counts == {"clamped": 1, "invalid": 2, "clamped_end": 1}
    assert sorted(cleaner.probed) == ["a.mp4", "a.wav", "unknown.mp4"]  # each file probed once per read


def test_a_corpus_reader_reports_what_the_recordings_reader_reports(tmp_path: Path) -> None:
    """IEMOCAP once clamped a negative start silently; through the shared step it is reported and
    counted like everywhere else."""
    from emoprep.extraction.readers.iemocap import IemocapReader

    turns = [IemocapTurn("Ses01F_impro01_F000", -0.5, 1.0, "neu"), IemocapTurn("Ses01F_impro01_M000", 2.0, 2.0, "hap"),
             IemocapTurn("Ses02F_impro02_F000", 1.0, 2.5, "hap")]
    tree = build_iemocap_tree(tmp_path / "IEMOCAP_full_release", turns)
    result = IemocapReader().read(tree.root, ExtractConfig(dataset="iemocap"))
    kinds = [(i.kind, i.utterance_id) for i in result.issues if i.kind in ("clamped", "invalid", "clamped_end")]
    assert kinds == [("clamped", "Ses01F_impro01_F000"), ("invalid", "Ses01F_impro01_M000")]
    assert result.counts["clamped"] == 1 and result.counts["invalid"] == 1
    kept = {u.utterance_id: u for u in result.utterances}
    assert kept["Ses01F_impro01_F000"].start_s == 0.0 and "Ses01F_impro01_M000" not in kept
