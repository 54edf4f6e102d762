"""``utterances.parquet``: the reader's output, written before any media is touched.

It is the plan of record of a run — every utterance that will become a row, with its media paths,
times, split and labels — so a user can check what a run will do (``emoprep check-raw`` prints the
same counts) and a later run can be compared against it.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from ...format.schema import utterance_schema
from ..records import COLUMN_NAMES, Utterance, record_fields, record_values

PLAN_ONLY_TYPES: dict[str, pa.DataType] = {
    "video_path": pa.string(),
    "audio_path": pa.string(),
    "audio_channel": pa.int8(),
    "video_region": pa.string(),
}
"""Types of the record fields that are not output columns (where the media is, and which part of
it); every other column takes its type from the published schema."""


@lru_cache(maxsize=1)
def plan_schema() -> pa.Schema:
    """The schema of ``utterances.parquet``: one column per record field (:func:`record_fields`)."""
    shard = utterance_schema()
    columns = []
    for name in record_fields():
        typ = PLAN_ONLY_TYPES.get(name) or shard.field(COLUMN_NAMES.get(name, name)).type
        columns.append(pa.field(name, typ))
    return pa.schema(columns)


def utterances_table(utterances: list[Utterance]) -> pa.Table:
    return pa.Table.from_pylist([record_values(u) for u in utterances], schema=plan_schema())
