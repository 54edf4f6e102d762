"""emoprep.format owns the output contract: the files' names, the typed manifest and run record (old
files still read), the column codecs; and no module outside it spells a contract file or a shard name."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from emoprep.format import names
from emoprep.format.codecs import (
    LOGMEL_FRAMES,
    LOGMEL_MELS,
    MESH_COORDINATES,
    MESH_POINTS,
    decode_crop,
    encode_crop,
    logmel_from_flat,
    logmel_to_flat,
    mesh_from_flat,
    mesh_to_flat,
)
from emoprep.format.manifest import Manifest, read_manifest, write_manifest
from emoprep.format.run_record import RunRecord, read_run_record, write_run_record
from emoprep.format.schema import feature_names, utterance_schema

PACKAGE = Path(__file__).resolve().parents[2] / "emoprep"
CONTRACT_FILES = {names.MANIFEST, names.RUN_RECORD, names.FAILURES, names.UTTERANCES, names.METRICS,
                  names.HISTORY, names.PREDICTIONS, names.FEATURIZER, names.RUN_CONFIG, names.BEST_WEIGHTS,
                  names.LAST_STATE}

SHARD_PATTERN = re.compile(r"-\d{5}-of-\d{5}\.parquet")
SHARD_TEMPLATE = re.compile(r"\}-of-\{")
"""``"{}-{:05d}-of-{:05d}.parquet".format(...)``: a shard name formatted without an f-string."""

# A manifest as this emoprep writes it (key order included), with a key it does not know.
CURRENT_MANIFEST = {
    "schema_version": 1, "emoprep_version": "0.2.0", "dataset": "mosei", "created": "2026-11-01T10:00:00+00:00",
    "config_hash": "abc123", "config": {"visual": {"face_size": 224}}, "label_names": ["happy", "sad"],
    "modalities": {"text": True, "visual": False}, "backends": {"text": {"backend": "glove"}},
    "text": {"glove": None, "glove_sha256": None, "vectors_written": False, "tokens": 10, "oov_tokens": None,
             "oov_rate": None},
    "counts": {"utterances": 3, "rows_per_split": {"train": 3}, "non_null_per_column": {"text": 3, "face_crops": 0},
               "failures": 0, "failed_utterances": 0, "reader_issues": {"clamped": 1},
               "differences_from_full_release": {"utterances": {"read": 3, "full_release": 23259}},
               "reader.listed_ids_not_found": 7},
    "shards": [{"file": "train-00000-of-00001.parquet", "split": "train", "rows": 3, "bytes": 10, "sha256": "x"}],
    "files": {"utterances": "utterances.parquet", "failures": "failures.parquet"},
    "future_key": {"kept": True},
}
# The same run as emoprep 0.1 wrote it: no per-column or reader counts, no GloVe checksum, the
# differences from the full release as sentences, no ``files``.
OLD_MANIFEST = {k: v for k, v in CURRENT_MANIFEST.items() if k not in ("files", "future_key")}
OLD_MANIFEST["text"] = {k: v for k, v in CURRENT_MANIFEST["text"].items() if k != "glove_sha256"}
OLD_MANIFEST["counts"] = {"utterances": 3, "rows_per_split": {"train": 3}, "failures": 0,
                          "differences_from_full_release": ["utterances: read 3, the full release has 23259"]}


def _strings_outside_docstrings(tree: ast.AST) -> list[ast.AST]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Constant, ast.JoinedStr)) and id(n) not in docstrings]


def _parses_a_contract_file(tree: ast.AST) -> list[str]:
    """``json.load(s)`` calls whose argument mentions a contract file's name constant (``MANIFEST``,
    ``RUN_RECORD``): parsing them is :func:`read_manifest`'s and :func:`read_run_record`'s job."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("load", "loads")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"):
            named = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if named & {"MANIFEST", "RUN_RECORD"}:
                out.append(f"line {node.lineno}: json parses a contract file by hand")
    return out


def contract_violations(source: str) -> list[str]:
    """Lines of ``source`` that name a contract file by its literal name, parse one by hand, or format
    a shard name."""
    tree = ast.parse(source)
    out = _parses_a_contract_file(tree)
    for node in _strings_outside_docstrings(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in CONTRACT_FILES or SHARD_PATTERN.search(node.value) or SHARD_TEMPLATE.search(node.value):
                out.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if ("-of-" in text and ".parquet" in text) or any(text.endswith(f) for f in CONTRACT_FILES):
                out.append(f"line {node.lineno}: an f-string {text!r}")
    return out


def test_only_the_contract_package_spells_its_files_and_shard_names() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "format" in path.relative_to(PACKAGE).parts:
            continue
        found = contract_violations(path.read_text())
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert offenders == {}, "use emoprep.format.names / read_manifest / shard_name instead"


@pytest.mark.parametrize("source", [
    'json.loads((out / "manifest.json").read_text())',
    'name = f"{split}-{i:05d}-of-{n:05d}.parquet"',
    'p = root / f"{run}.json" if x else root / "run.json"',
    'name = "{}-{:05d}-of-{:05d}.parquet".format(split, i, n)',
    'from emoprep.format.names import MANIFEST\nm = json.loads((folder / MANIFEST).read_text())',
    'm = json.load(open(names.RUN_RECORD))',
])
def test_the_scan_finds_a_contract_spelled_by_hand(source: str) -> None:
    assert contract_violations(source)
    assert contract_violations('"""Reads manifest.json."""\nx = 1') == []  # docs may name the file


def test_shard_names() -> None:
    assert names.shard_name("train", 3, 10) == "train-00003-of-00010.parquet"
    assert names.is_shard_name(names.shard_name("valid", 0, 1))
    for other in (names.UTTERANCES, names.FAILURES, ".train-00000-of-00001.parquet.tmp-12", "train-0-of-1.parquet"):
        assert not names.is_shard_name(other)


def test_old_manifest_reads(tmp_path: Path) -> None:
    (tmp_path / names.MANIFEST).write_text(json.dumps(OLD_MANIFEST))
    m = read_manifest(tmp_path)
    assert m.counts.non_null_per_column is None and m.counts.present("face_crops") and m.counts.reader == {}
    assert m.face_size == 224 and m.logmel_shape == (LOGMEL_MELS, LOGMEL_FRAMES)
    assert m.label_names == ("happy", "sad") and m.splits == {"train"} and m.total_bytes == 10
    assert m.failures_file == names.FAILURES and m.text.glove_sha256 is None and m.extra == {}
    assert m.counts.differences_from_full_release == OLD_MANIFEST["counts"]["differences_from_full_release"]
    assert read_manifest(tmp_path / names.MANIFEST) == m  # the file itself works as the path too


def test_manifest_round_trips_exactly(tmp_path: Path) -> None:
    m = Manifest.from_dict(CURRENT_MANIFEST)
    assert m.counts.reader == {"listed_ids_not_found": 7} and not m.counts.present("face_crops")
    assert m.extra == {"future_key": {"kept": True}}
    write_manifest(tmp_path, m)
    text = (tmp_path / names.MANIFEST).read_text()
    assert json.loads(text) == CURRENT_MANIFEST
    assert list(json.loads(text)) == list(CURRENT_MANIFEST) and list(json.loads(text)["counts"]) == list(
        CURRENT_MANIFEST["counts"])


def test_no_manifest_is_an_unfinished_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has not finished"):
        read_manifest(tmp_path)


def test_old_run_record_reads_and_new_fields_are_written_only_when_set(tmp_path: Path) -> None:
    old = {"emoprep_version": "0.1.0", "torch_version": "2.3", "python": "3.11.9", "model": "lf_lstm",
           "created": "2025-11-01", "shards": {"folder": "/data/shards", "config_hash": "abc", "dataset": "mosei",
                                               "label_names": ["happy"]},
           "inputs": {"text": {"column": "glove", "reason": "best"}}, "vocabulary_size": None, "task": "multilabel",
           "train_rows_labelled": 5, "pos_weight": [2.0], "device": "cpu", "processes": 1, "status": "complete",
           "finished": "2025-11-02", "someday": 1}
    (tmp_path / names.RUN_RECORD).write_text(json.dumps(old))
    record = read_run_record(tmp_path)
    assert record.shards.folder == "/data/shards" and record.shards.label_names == ("happy",)
    assert record.param_groups is None and record.compute is None and record.extra == {"someday": 1}
    write_run_record(tmp_path, record)
    again = json.loads((tmp_path / names.RUN_RECORD).read_text())
    assert {k: v for k, v in again.items() if k != "shards"} == {k: v for k, v in old.items() if k != "shards"}
    assert again["shards"]["rows_per_split"] is None and again["shards"]["config_hash"] == "abc"
    assert list(RunRecord.from_dict(again).to_dict()) == list(again)  # key order is stable


def test_codec_sizes_are_the_schemas() -> None:
    schema = utterance_schema()
    assert schema.field("logmel").type.value_type.list_size == LOGMEL_MELS * LOGMEL_FRAMES
    assert schema.field("face_mesh").type.value_type.list_size == MESH_POINTS * MESH_COORDINATES
    assert len(feature_names("acoustic")) == schema.field("acoustic").type.value_type.list_size == 142


def test_crop_codec_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    crop = encode_crop(rgb)
    assert crop["path"] is None and crop["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_crop(crop), rgb) and np.array_equal(decode_crop(crop["bytes"]), rgb)
    assert decode_crop(None) is None and decode_crop({"bytes": None, "path": None}) is None


def test_logmel_and_mesh_codecs_round_trip() -> None:
    rng = np.random.default_rng(1)
    chunks = rng.normal(size=(3, LOGMEL_MELS, LOGMEL_FRAMES)).astype(np.float16)
    flat = logmel_to_flat(chunks)
    assert flat.shape == (3, LOGMEL_MELS * LOGMEL_FRAMES) and flat[0, 1] == chunks[0, 0, 1]  # mel-major
    stored = pa.array([list(flat)], type=utterance_schema().field("logmel").type)[0]
    assert np.array_equal(logmel_from_flat(stored), chunks.astype(np.float32))
    points = rng.normal(size=(MESH_POINTS, MESH_COORDINATES)).astype(np.float32)
    assert np.array_equal(mesh_from_flat(np.stack([mesh_to_flat(points)]))[0], points)
