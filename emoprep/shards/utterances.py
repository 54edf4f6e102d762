"""``utterances.parquet``: the reader's output, written before any media is touched.

It is the plan of record of a run — every utterance that will become a row, with its media paths,
times, split and labels — so a user can check what a run will do (``emoprep check-raw`` prints the
same counts) and a later run can be compared against it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pyarrow as pa

from ..records import Utterance

UTTERANCE_PLAN_SCHEMA = pa.schema(
    [
        ("utterance_id", pa.string()),
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("text", pa.string()),
        ("speaker", pa.string()),
        ("split", pa.string()),
        ("video_path", pa.string()),
        ("audio_path", pa.string()),
        ("audio_channel", pa.int8()),
        ("video_region", pa.string()),
        ("emotions", pa.list_(pa.int8())),
        ("emotion_intensity", pa.list_(pa.float32())),
        ("sentiment", pa.float32()),
        ("valence", pa.float32()),
        ("arousal", pa.float32()),
        ("dominance", pa.float32()),
        ("category", pa.string()),
    ]
)


def utterances_table(utterances: list[Utterance]) -> pa.Table:
    rows = []
    for u in utterances:
        d = asdict(u)
        d.update(d.pop("labels"))
        rows.append(d)
    return pa.Table.from_pylist(rows, schema=UTTERANCE_PLAN_SCHEMA)


def write_utterances(utterances: list[Utterance], path: Path) -> None:
    from .writer import write_atomic

    write_atomic(utterances_table(utterances), path, {})
