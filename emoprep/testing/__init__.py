"""Test factories: miniature raw dataset trees, byte-for-byte in the layout of the real releases.

They ship inside the package so that users (and emoprep's own tests) can check a reader, a split
file or a whole extraction against fake data without the licensed corpora.  Every builder writes
exactly what the real release contains, irregularities included (CRLF, trailing spaces, ids that
start with ``-``/``_`` or are numbers, negative starts, overlapping and unlabelled segments), and
can optionally write tiny *decodable* media with PyAV (``media=True``) for end-to-end runs.

The specs passed in are the ground truth a test checks the reader's output against; the builders
never compute labels themselves beyond writing what they are given.

Split by concern: :mod:`.media` (tiny decodable media), :mod:`.mosei` and :mod:`.iemocap` (raw
release trees) and :mod:`.shards` (tiny, learnable shard folders for trainer tests); the raw-tree
builders are re-exported here.
"""

from __future__ import annotations

from .iemocap import IemocapTree, IemocapTurn, build_iemocap_tree, default_iemocap_turns
from .media import MEDIA_FPS, MEDIA_RATE, write_tone_video, write_tone_wav
from .mosei import (
    DEFAULT_MOSEI_STD_SPLITS,
    MOSEI_EMOTIONS,
    MTURK_EXTRA_COLUMNS,
    SDK_MOSEI_ORDER,
    MoseiSegment,
    MoseiTree,
    build_mosei_tree,
    default_mosei_segments,
    sdk_features_from_votes,
    write_mosei_csd,
    write_mturk_csvs,
)

__all__ = [
    "MEDIA_RATE",
    "MEDIA_FPS",
    "write_tone_wav",
    "write_tone_video",
    "MOSEI_EMOTIONS",
    "MoseiSegment",
    "DEFAULT_MOSEI_STD_SPLITS",
    "default_mosei_segments",
    "MTURK_EXTRA_COLUMNS",
    "write_mturk_csvs",
    "SDK_MOSEI_ORDER",
    "write_mosei_csd",
    "sdk_features_from_votes",
    "MoseiTree",
    "build_mosei_tree",
    "IemocapTurn",
    "default_iemocap_turns",
    "IemocapTree",
    "build_iemocap_tree",
]
