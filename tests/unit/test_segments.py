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


def test_media_urls_are_probed_ahead_concurrently_and_local_files_are_not() -> None:
    """``probe_ahead`` learns the ends of URLs several at a time (a probe waits on the store, not the
    CPU); the ends and what ``times`` decides are those of one probe after another."""
    import threading
    import time

    urls = [f"s3://bucket/MOSEI/Raw/Videos/Full/Combined/v{i}.mp4" for i in range(8)]
    calls: list[str] = []
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow_end(path: str) -> float:
        with lock:
            calls.append(path)
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return 10.0 + int(path[-5])

    ahead = SegmentCleaner([], {}, slow_end)
    ahead.probe_ahead([*urls, None, urls[0], "/data/local.mp4"])
    assert sorted(calls) == sorted(urls) and most[0] > 1, "each URL once, several at a time; no local file"
    one_by_one = SegmentCleaner([], {}, slow_end)
    for i, url in enumerate(urls):
        assert ahead.times(f"u{i}", 5.0, 30.0, "t", [url]) == one_by_one.times(f"u{i}", 5.0, 30.0, "t", [url]) == (5.0, 10.0 + i)
    assert len(calls) == 2 * len(urls), "the ends probed ahead are not probed again"
    assert ahead.counts == one_by_one.counts == {"clamped_end": len(urls)}
