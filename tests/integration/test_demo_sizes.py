"""The demo's ``videos`` option: validated, one cached tree per size, video-disjoint splits, and
expected counts compared only for sizes whose counts are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoprep.extraction.cache import cache_dir
from emoprep.extraction.config import ExtractConfig, build_config
from emoprep.extraction.readers.base import ReadResult
from emoprep.extraction.readers.check import compare_expected
from emoprep.extraction.readers.demo.reader import DemoReader
from emoprep.extraction.readers.demo.corpus import DEMO_VERSION
from emoprep.errors import SetupError


def _config(videos: str | None = None) -> ExtractConfig:
    return build_config("demo", {"dataset_options": {"videos": videos}} if videos is not None else None)


@pytest.mark.parametrize("value", ["5", "0", "-12", "ten", "6.5", ""])
def test_videos_must_be_a_whole_number_of_at_least_six(value: str) -> None:
    with pytest.raises(SetupError, match="at least 6"):
        DemoReader().read(None, _config(value))


def test_a_size_gets_its_own_tree_with_video_disjoint_splits() -> None:
    result = DemoReader().read(None, _config("6"))
    tree = cache_dir() / "demo" / f"v{DEMO_VERSION}-6videos"
    assert json.loads((tree / "DEMO.json").read_text())["videos"] == 6
    assert len(result.utterances) == 23  # 24 clips, one of every 4th video unlabelled
    videos = {s: {u.video_id for u in result.utterances if u.split == s} for s in ("train", "valid", "test")}
    assert [len(v) for v in videos.values()] == [4, 1, 1]
    assert not (
        videos["train"] & videos["valid"]
        or videos["train"] & videos["test"]
        or videos["valid"] & videos["test"]
    )
    assert all(Path(u.video_path).is_relative_to(tree) for u in result.utterances)
    assert compare_expected("demo", _config("6"), result) == []  # no known count for this size: no note


@pytest.mark.parametrize(("videos", "n"), [(None, 45), ("12", 45), ("60", 225)])
def test_expected_counts_follow_the_size(videos: str | None, n: int) -> None:
    found = ReadResult(utterances=[object()] * n, label_names=())  # type: ignore[list-item]
    [entry] = compare_expected("demo", _config(videos), found)
    assert (entry.key, entry.expected, entry.matches) == ("utterances", n, True)
