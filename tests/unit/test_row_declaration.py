"""The output row has one owner per column: the identity columns the worker copies from the reader's
record, and each extractor's ``columns``.  Together they are exactly the published schema, once each,
so a column added to the schema without an owner (or to an extractor without the schema) fails here."""

from __future__ import annotations

from importlib import import_module

from emoprep.extraction.extractors import EXTRACTORS
from emoprep.extraction.records import Utterance
from emoprep.format.schema import utterance_schema
from emoprep.extraction.engine.worker import identity_row


def test_identity_and_extractor_columns_are_exactly_the_schema() -> None:
    owners: dict[str, list[str]] = {}
    for column in identity_row(Utterance("u", "demo", "v", 0.0, 1.0)):
        owners.setdefault(column, []).append("identity")
    for name, target in EXTRACTORS.items():
        module, _, cls = target.partition(":")
        for column in getattr(import_module(module), cls).columns:
            owners.setdefault(column, []).append(name)
    assert {c: o for c, o in owners.items() if len(o) > 1} == {}  # no column has two owners
    assert sorted(owners) == sorted(utterance_schema().names)
