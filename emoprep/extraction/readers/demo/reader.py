"""``--dataset demo``: the built-in synthetic corpus, read by the real CMU-MOSEI reader.

The corpus is built on first use into the cache (``emoprep.extraction.cache.cache_dir() / "demo"``, one tree
per size) or into ``--root`` when given, and is then read exactly like a raw MOSEI download, with
the demo's own video-disjoint split file (``splits.json`` in the tree).

Options: :class:`emoprep.extraction.readers.options.DemoOptions`.  ``videos`` sizes a tree being built; an
existing ``--root`` tree is read as it is (its ``DEMO.json`` says its size).  Every other option
goes to the MOSEI reader, with the demo's defaults ``labels=mturk`` (the tree has no ``.csd``) and
``splits=`` the tree's own ``splits.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ...cache import cache_dir
from ...config import ExtractConfig
from ...config.reader_options import DemoOptions, parse_options
from ..base import ReadResult
from ..mosei import MoseiReader
from .corpus import DEMO_VERSION, build_demo

DEFAULT_VIDEOS: int = DemoOptions.videos  # the dataclass default (a class attribute)


def demo_root(root: Path | None = None, n_videos: int = DEFAULT_VIDEOS) -> Path:
    """The demo tree, built now (with ``n_videos`` videos) if it does not exist yet."""
    root = Path(root) if root is not None else cache_dir() / "demo" / f"v{DEMO_VERSION}-{n_videos}videos"
    if not (root / "DEMO.json").is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        build_demo(root, n_videos=n_videos)
    return root


class DemoReader:
    name = "demo"

    def read(self, root: Path | None, config: ExtractConfig) -> ReadResult:
        demo_options = parse_options(DemoOptions, config.dataset_options)  # fails before building
        options = dict(config.dataset_options)
        options.pop("videos", None)
        tree = demo_root(root, demo_options.videos)
        options.setdefault("splits", str(tree / "splits.json"))
        options.setdefault("labels", "mturk")
        mosei_config = dataclasses.replace(config, dataset_options=tuple(sorted(options.items())))
        result = MoseiReader().read(tree, mosei_config)
        result.utterances = [dataclasses.replace(u, dataset="demo") for u in result.utterances]
        return result
