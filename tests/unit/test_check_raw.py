"""check-raw: layout validation, counts per split and class, problems with file:line, expected counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from emoprep.extraction.config import build_config
from emoprep.extraction.readers import check as check_module
from emoprep.extraction.readers.check import check_raw
from emoprep.testing import DEFAULT_MOSEI_STD_SPLITS, build_iemocap_tree, build_mosei_tree

STD_SPLIT = DEFAULT_MOSEI_STD_SPLITS


def test_mosei_counts_per_split_and_class(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "m", extra_lines={"81406": ["broken line"]})
    report = check_raw("mosei", tree.root, build_config("mosei"))
    assert report.ok
    usable = [s for s in tree.segments if s.votes is not None and s.end > max(s.start, 0)]
    assert report.per_split == dict(Counter(STD_SPLIT[s.video_id] for s in usable))
    # per class: an utterance counts for an emotion when any annotator gave it > 0
    for name in ("anger", "happiness", "surprise"):
        want = Counter(STD_SPLIT[s.video_id] for s in usable if any((v.get(name) or 0) > 0 for v in s.votes))
        assert report.per_class[name] == dict(want), name
    text = report.render()
    assert "81406.txt:3" in text and "unparseable lines: 1" in text
    assert "[81406_1]" in text and "[_0efYOjQYRc_0]" in text  # invalid and clamped, with ids
    # the full-release counts do not match a mini tree: reported as information, still OK
    assert report.expected and not any(e.matches for e in report.expected)
    info = [line for line in text.splitlines() if "full release" in line]
    assert len(info) == 1 and info[0].startswith("info: read/full release: utterances ")  # said once
    assert "/23,259 (train " in info[0] and "ERROR" not in text
    assert text.rstrip().endswith("result: OK")


def test_matching_expected_counts_are_confirmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = build_mosei_tree(tmp_path / "m")
    n = len(check_raw("mosei", tree.root, build_config("mosei")).result.utterances)
    monkeypatch.setattr(
        check_module, "pipeline_defaults", lambda d: {"expected": {"utterances": n, "unlabelled_skipped": 5}}
    )
    report = check_raw("mosei", tree.root, build_config("mosei"))
    assert [(e.key, e.matches) for e in report.expected] == [
        ("utterances", True),
        ("unlabelled_skipped", False),
    ]
    assert f"expected utterances: {n}  found {n}" in report.render()


@pytest.mark.parametrize("classes,full", [("6", 7380), ("4", 5531)])
def test_iemocap_expected_depends_on_class_set(tmp_path: Path, classes: str, full: int) -> None:
    tree = build_iemocap_tree(tmp_path / "i")
    report = check_raw(
        "iemocap", tree.root, build_config("iemocap", {"dataset_options": {"classes": classes}})
    )
    expected = {e.key: e.expected for e in report.expected}
    assert expected["utterances"] == full and expected["turns"] == 10039
    assert ("split_train" in expected) == (classes == "6")  # paper split sizes only for the 6 classes
    assert report.per_category["exc"] == sum(t.code == "exc" for t in tree.turns)
    assert report.ok


def test_layout_errors_and_unreadable_trees(tmp_path: Path) -> None:
    report = check_raw("mosei", tmp_path / "absent", build_config("mosei"))
    assert not report.ok and "not a folder" in report.render()
    (tmp_path / "empty").mkdir()
    report = check_raw("mosei", tmp_path / "empty", build_config("mosei"))
    assert not report.ok and "Raw/Transcript/Segmented/Combined" in report.render()
    # transcripts but no labels at all: the reader's actionable error is shown
    tree = build_mosei_tree(tmp_path / "nolabels", mturk=False)
    report = check_raw("mosei", tree.root, build_config("mosei"))
    assert not report.ok and "keep_unlabelled=true" in report.render()
    # a partial IEMOCAP (sessions 1-2 only) is readable, with a note
    turns = [t for t in build_iemocap_tree(tmp_path / "spec").turns if t.session <= 2]
    report = check_raw("iemocap", build_iemocap_tree(tmp_path / "i", turns).root, build_config("iemocap"))
    assert report.ok and "sessions not present: Session3, Session4, Session5" in report.render()


def test_cli_command(tmp_path: Path) -> None:
    import cli

    tree = build_mosei_tree(tmp_path / "m")
    runner = CliRunner()
    ok = runner.invoke(
        cli.main, ["check-raw", "--dataset", "mosei", "--root", str(tree.root), "--option", "splits=none"]
    )
    assert ok.exit_code == 0, ok.output
    assert "utterances: " in ok.output and "none 9" in ok.output
    bad = runner.invoke(cli.main, ["check-raw", "--dataset", "iemocap", "--root", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "ERROR" in bad.output
