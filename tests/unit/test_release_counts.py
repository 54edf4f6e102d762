"""A run on a subset compares its counts with the full release once, in one line, everywhere."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from emoprep.report import folder_summary as inspect_module
from emoprep.extraction import progress as extraction_progress
from emoprep.extraction.readers.check import ExpectedCount
from emoprep.extraction import RunSummary
from emoprep.format.release_counts import count_differences, describe_count_differences
from emoprep.testing.shards import build_shard_folder

MOSEI_SUBSET = {
    "utterances": {"read": 10, "full_release": 23259},
    "split_train": {"read": 6, "full_release": 16327},
    "split_valid": {"read": 2, "full_release": 1871},
    "split_test": {"read": 2, "full_release": 4662},
}


def test_only_differing_counts_are_kept_in_spec_order() -> None:
    compared = [
        ExpectedCount("turns", 10039, 10039),
        ExpectedCount("utterances", 7380, 12),
        ExpectedCount("split_train", 5162, 8),
        ExpectedCount("unlabelled_skipped", 5, None),
    ]
    assert count_differences(compared) == {
        "utterances": {"read": 12, "full_release": 7380},
        "split_train": {"read": 8, "full_release": 5162},
        "unlabelled_skipped": {"read": None, "full_release": 5},
    }


def test_one_line_with_splits_inside_the_total() -> None:
    assert describe_count_differences(MOSEI_SUBSET) == (
        "read/full release: utterances 10/23,259 (train 6/16,327, valid 2/1,871, test 2/4,662); "
        "a subset, other options or missing files"
    )
    assert describe_count_differences({}) is None


def test_splits_alone_and_unknown_counts() -> None:
    line = describe_count_differences({"turns": {"read": None, "full_release": 10039},
                                       "split_test": {"read": 3, "full_release": 1481}})
    assert line is not None
    assert line.startswith("read/full release: turns ?/10,039, per split test 3/1,481;")


def _wide_console(monkeypatch: pytest.MonkeyPatch, module: object) -> io.StringIO:
    """Route a module's console to a wide in-memory one, so wrapping cannot split the line."""
    buf = io.StringIO()
    wide = Console(file=buf, width=400, highlight=False)
    monkeypatch.setattr(module, "console", lambda: wide)
    return buf


def test_run_summary_prints_the_comparison_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    buf = _wide_console(monkeypatch, extraction_progress)
    extraction_progress.print_summary(RunSummary(out_dir=tmp_path, utterances=10, count_differences=MOSEI_SUBSET))
    lines = [line for line in buf.getvalue().splitlines() if "full release" in line]
    assert len(lines) == 1 and "utterances 10/23,259 (train 6/16,327" in lines[0]


def test_inspect_prints_the_manifest_comparison_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = build_shard_folder(tmp_path / "s", {"train": 6, "valid": 2, "test": 2})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["created"] = "2026-01-01T00:00:00+00:00"
    manifest["counts"]["differences_from_full_release"] = MOSEI_SUBSET
    (folder / "manifest.json").write_text(json.dumps(manifest))
    buf = _wide_console(monkeypatch, inspect_module)
    inspect_module.inspect_output(folder)
    lines = [line for line in buf.getvalue().splitlines() if "full release" in line]
    assert len(lines) == 1 and lines[0].startswith("counts: read/full release: utterances 10/23,259")


def test_inspect_reads_the_older_list_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = build_shard_folder(tmp_path / "s", {"train": 2, "valid": 1, "test": 1})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["created"] = "2026-01-01T00:00:00+00:00"
    manifest["counts"]["differences_from_full_release"] = ["utterances: read 4, the full release has 23259"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    buf = _wide_console(monkeypatch, inspect_module)
    inspect_module.inspect_output(folder)
    assert "counts: utterances: read 4, the full release has 23259" in buf.getvalue()
