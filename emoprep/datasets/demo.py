"""``--dataset demo``: the built-in synthetic corpus, read by the real CMU-MOSEI reader.

The corpus is built on first use into the cache (``emoprep.cache.cache_dir() / "demo"``) or into
``--root`` when given, and is then read exactly like a raw MOSEI download, with the demo's own
video-disjoint split file (``splits.json`` in the tree).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..cache import cache_dir
from ..config import ExtractConfig
from ..demo.corpus import DEMO_VERSION, build_demo
from .base import ReadResult
from .mosei import MoseiReader


def demo_root(root: Path | None = None) -> Path:
    """The demo tree, built now if it does not exist yet."""
    root = Path(root) if root is not None else cache_dir() / "demo" / f"v{DEMO_VERSION}"
    if not (root / "DEMO.json").is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        build_demo(root)
    return root


class DemoReader:
    name = "demo"

    def read(self, root: Path | None, config: ExtractConfig) -> ReadResult:
        tree = demo_root(root)
        options = dict(config.dataset_options)
        options.setdefault("splits", str(tree / "splits.json"))
        options.setdefault("labels", "mturk")
        mosei_config = dataclasses.replace(config, dataset_options=tuple(sorted(options.items())))
        result = MoseiReader().read(tree, mosei_config)
        result.utterances = [dataclasses.replace(u, dataset="demo") for u in result.utterances]
        return result
