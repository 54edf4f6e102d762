"""``--dataset demo``: the built-in synthetic corpus, read by the real CMU-MOSEI reader.

The corpus is built on first use into the cache (``emoprep.cache.cache_dir() / "demo"``, one tree
per size) or into ``--root`` when given, and is then read exactly like a raw MOSEI download, with
the demo's own video-disjoint split file (``splits.json`` in the tree).

Option ``videos`` (default 12, at least 6): how many videos (4 clips each) the corpus has; 60 gives
a corpus big enough to train on.  It sizes a tree being built; an existing ``--root`` tree is read
as it is (its ``DEMO.json`` says its size).  Every other option goes to the MOSEI reader.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..cache import cache_dir
from ..config import ExtractConfig
from ..demo.corpus import DEMO_VERSION, build_demo
from ..errors import SetupError
from .base import ReadResult
from .mosei import MoseiReader

DEFAULT_VIDEOS = 12
MIN_VIDEOS = 6
"""The fewest videos that still give every split a video of its own (4/1/1)."""


def demo_root(root: Path | None = None, n_videos: int = DEFAULT_VIDEOS) -> Path:
    """The demo tree, built now (with ``n_videos`` videos) if it does not exist yet."""
    root = Path(root) if root is not None else cache_dir() / "demo" / f"v{DEMO_VERSION}-{n_videos}videos"
    if not (root / "DEMO.json").is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        build_demo(root, n_videos=n_videos)
    return root


def parse_videos(value: str | None) -> int:
    """The ``videos`` option as a number of videos, or a SetupError that says what is allowed."""
    if value is None:
        return DEFAULT_VIDEOS
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < MIN_VIDEOS:
        raise SetupError(
            f"option videos={value!r}: use a whole number of videos, at least {MIN_VIDEOS} (default {DEFAULT_VIDEOS})"
        )
    return n


class DemoReader:
    name = "demo"

    def read(self, root: Path | None, config: ExtractConfig) -> ReadResult:
        options = dict(config.dataset_options)
        tree = demo_root(root, parse_videos(options.pop("videos", None)))
        options.setdefault("splits", str(tree / "splits.json"))
        options.setdefault("labels", "mturk")
        mosei_config = dataclasses.replace(config, dataset_options=tuple(sorted(options.items())))
        result = MoseiReader().read(tree, mosei_config)
        result.utterances = [dataclasses.replace(u, dataset="demo") for u in result.utterances]
        return result
