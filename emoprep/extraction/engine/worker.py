"""The tasks Dask runs for a shard: check it, extract its parts, write it, report.

A shard's utterances are extracted in *parts* of a few utterances each (:func:`extract_part`, one
task per part, see :func:`~emoprep.extraction.engine.plan.part_ranges`), so that the work spreads evenly over the
workers whatever the shard sizes; one task per shard (:func:`write_parts`) then joins its parts in
order and writes the file.  Rows depend only on their own utterance, so the parts change nothing in
the output.  The write task returns a :class:`~emoprep.extraction.records.ShardReport` (a few hundred bytes),
never the data: workers write their shards straight to the output folder, a local one or a prefix on
object storage (staged on the worker's disk, checked, then put in place in one step: see
:mod:`~emoprep.extraction.engine.writer`).  Extractors are built once per worker process and
reused by every shard that process runs (:func:`extractors_for`), which is how TensorFlow, mediapipe
and the GloVe memory map are loaded once per worker rather than once per shard.

Failure policy, per utterance: an extractor that raises leaves its columns null for that row and adds
one ``(utterance_id, stage, error_type, message)`` record; the row and the shard are still written.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from ...errors import SchemaError, UtteranceError
from ...format.files import sha256_stream
from ...format.names import shard_stem
from ...format.schema import SCHEMA_VERSION, utterance_schema, validate_table
from ...format.storage import Folder, is_url
from ...version import __version__
from ..config import ExtractConfig
from ..extractors import Extractor, build_extractor, extractor_names
from ..glove import ensure_remote_glove
from ..media.fetch import MediaAccess
from ..media.segment import MediaOptions, UtteranceMedia
from ..records import COLUMN_NAMES, Failure, ShardReport, ShardSpec, Utterance, record_values
from .columns import rows_to_table
from .plan import ids_digest
from .writer import Written, footer_in, is_complete, write_table


@dataclass(frozen=True)
class ShardJob:
    """What every shard task of a run shares (small, pickled once per task)."""

    config: ExtractConfig
    out: Folder
    """The output: a local folder or an object-storage prefix (its storage options travel with it)."""
    label_names: tuple[str, ...]
    backends: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    media: MediaAccess = field(default_factory=MediaAccess)
    """How workers fetch media given as URLs (storage options, cache bound); never written out."""


@lru_cache(maxsize=2)
def extractors_for(config: ExtractConfig) -> tuple[Extractor, ...]:
    """The enabled extractors, built once per process per configuration."""
    return tuple(build_extractor(name, config) for name in extractor_names(config))


def fetch_resources(config: ExtractConfig, access: MediaAccess | None) -> None:
    """Fetch what this worker's extractors read from object storage (a GloVe URL, into this
    machine's GloVe cache, once) with the run's storage options, before the extractors are built."""
    glove = config.text.glove
    if access is not None and glove and is_url(glove) and "text" in config.modalities:
        ensure_remote_glove(glove, access.options, config.text.glove_checksum)


def probe_extractors(config: ExtractConfig) -> dict[str, Any]:
    """Build and check every enabled extractor; return their descriptions for the manifest.

    Runs first, once on every worker at the same time (or in-process with ``--synchronous``): a
    missing model or resource fails the run before any shard is written, and every worker starts its
    shard tasks with its extractors already loaded (loading TensorFlow and MediaPipe takes seconds;
    done one worker after another, it would hold back the second worker's first tasks).
    """
    descriptions = {}
    for extractor in extractors_for(config):
        extractor.check()
        descriptions[extractor.name] = extractor.describe()
    return descriptions


def identity_row(u: Utterance) -> dict[str, Any]:
    """The columns every row has, straight from the reader's record: the record's fields that are
    output columns (:data:`~emoprep.extraction.records.COLUMN_NAMES` renames the one that differs)."""
    names = set(utterance_schema().names)
    row = {COLUMN_NAMES.get(k, k): v for k, v in record_values(u).items()}
    return {k: v for k, v in row.items() if k in names}


def _failure(u: Utterance, stage: str, exc: BaseException) -> Failure:
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, UtteranceError):
        # An unexpected exception is a bug or a library failure: keep where it happened.
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            message += f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})"
    return Failure(u.utterance_id, stage, type(exc).__name__, message[:2000])


@dataclass(frozen=True)
class PartResult:
    """The rows of one part of a shard as a validated table, the failures met and the counters."""

    table: pa.Table
    failures: tuple[Failure, ...]
    stats: dict[str, int]


def extract_rows(
    utterances: tuple[Utterance, ...], config: ExtractConfig, access: MediaAccess | None = None
) -> tuple[list[dict[str, Any]], list[Failure], dict]:
    """Rows of ``utterances``, the failures met and the extractors' counters (``access``: how to
    fetch media given as URLs)."""
    fetch_resources(config, access)  # a worker that joined after the probe fetches here
    extractors = extractors_for(config)
    for ex in extractors:
        ex.run_stats()  # reset counters left by an earlier task in this process
    options = MediaOptions(sample_rate=config.sample_rate, frame_interval_s=config.visual.frame_interval_s)
    video_source = None
    if "visual" in config.modalities:
        from ..media.video import VideoFrameSource

        video_source = VideoFrameSource.from_config(config)  # one per task: a video is opened once
    rows, failures = [], []
    try:
        for u in utterances:
            row = identity_row(u)
            media = UtteranceMedia(u, options, video_source, access)
            failed_stages: set[str] = set()
            for ex in extractors:
                try:
                    row.update(ex.extract(media))
                except Exception as exc:  # noqa: BLE001 - one utterance must never stop the shard
                    stage = exc.stage if isinstance(exc, UtteranceError) else ex.name
                    if stage not in failed_stages:
                        failed_stages.add(stage)
                        failures.append(_failure(u, stage, exc))
                    row.update(dict.fromkeys(ex.columns))
                    if isinstance(exc, UtteranceError) and exc.partial:
                        row.update({k: v for k, v in exc.partial.items() if k in ex.columns})
            rows.append(row)
    finally:
        if video_source is not None:
            video_source.close()
    stats: dict[str, Any] = {}
    for ex in extractors:
        for key, value in ex.run_stats().items():
            stats[f"{ex.name}.{key}"] = value
    return rows, failures, stats


def extract_part(spec: ShardSpec, start: int, stop: int, job: ShardJob) -> PartResult:
    """Utterances ``start:stop`` of ``spec`` as a table that satisfies the schema: a row whose
    values an extractor made invalid has that extractor's columns nulled and a recorded failure."""
    rows, failures, stats = extract_rows(spec.utterances[start:stop], job.config, job.media)
    table = rows_to_table(rows, utterance_schema())
    try:
        validate_table(table, job.label_names)
    except SchemaError:
        failures += quarantine_invalid_values(rows, extractors_for(job.config), job.label_names)
        table = rows_to_table(rows, utterance_schema())
        validate_table(table, job.label_names)
    return PartResult(table, tuple(failures), stats)


def quarantine_invalid_values(
    rows: list[dict[str, Any]], extractors: tuple[Extractor, ...], label_names: tuple[str, ...]
) -> list[Failure]:
    """Null the columns of the extractor that put invalid values (NaN, wrong shape) into a row.

    Runs only when a shard's table fails validation: each row is checked alone, and for a bad row
    the first extractor whose columns, once nulled, make it valid is blamed and recorded (stage =
    the extractor's name).  A row that no extractor explains is a real bug: the error propagates.
    """
    schema = utterance_schema()
    failures = []
    for i, row in enumerate(rows):
        try:
            validate_table(rows_to_table([row], schema), label_names)
            continue
        except SchemaError as exc:
            error = exc
        for ex in extractors:
            trial = {**row, **dict.fromkeys(ex.columns)}
            try:
                validate_table(rows_to_table([trial], schema), label_names)
            except SchemaError:
                continue
            rows[i] = trial
            failures.append(Failure(row["utterance_id"], ex.name, "SchemaError", f"invalid output, columns nulled: {error}"))
            break
        else:
            raise error
    return failures


def _report(spec: ShardSpec, written: Written, skipped: bool, t0: float, failures, stats) -> ShardReport:
    return ShardReport(
        filename=spec.filename,
        split=spec.split,
        rows=len(spec.utterances),
        bytes=written.bytes,
        sha256=written.sha256,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        failures=tuple(failures),
        stats=stats,
    )


def complete_shard(spec: ShardSpec, job: ShardJob) -> ShardReport | None:
    """The report of ``spec``'s file when a complete copy written by this configuration for these
    utterances is already there (a resumed run skips it), else None.  Reads the footer (on object
    storage: only the footer is fetched), then the sha256 for the manifest: on S3 the one the upload
    kept with the object (:meth:`~emoprep.format.storage.Folder.recorded_sha256`), elsewhere by
    reading the file once."""
    if job.overwrite:
        return None
    t0 = time.perf_counter()
    meta = footer_in(job.out, spec.filename)
    if not is_complete(meta, job.config.config_hash, ids_digest(spec.utterance_ids), len(spec.utterances)):
        return None
    digest = job.out.recorded_sha256(spec.filename)
    if digest is None:
        with job.out.open(spec.filename) as f:
            digest = sha256_stream(f)
    written = Written(job.out.size(spec.filename), digest)
    failures = [Failure(**f) for f in meta.get("failures", [])]
    return _report(spec, written, True, t0, failures, meta.get("stats", {}))


def _merged_stats(parts: list[PartResult]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for part in parts:
        for key, value in part.stats.items():
            stats[key] = stats.get(key, 0) + value
    return stats


def write_parts(spec: ShardSpec, job: ShardJob, parts: list[PartResult]) -> ShardReport:
    """Join ``parts`` (in order: together they are ``spec``'s utterances) and write the shard."""
    t0 = time.perf_counter()
    table = pa.concat_tables([p.table for p in parts]) if parts else utterance_schema().empty_table()
    validate_table(table, job.label_names)  # each part is valid; this checks ids across parts
    failures = [f for p in parts for f in p.failures]
    stats = _merged_stats(parts)
    # Non-null rows per column: lets `inspect` and the manifest say how complete each modality is
    # without reading the data back.
    stats["non_null"] = {name: table.num_rows - table.column(name).null_count for name in table.column_names}
    written = write_table(
        table,
        job.out,
        spec.filename,
        {
            "schema_version": str(SCHEMA_VERSION),
            "version": __version__,
            "config_hash": job.config.config_hash,
            "dataset": job.config.dataset,
            "label_names": list(job.label_names),
            "backends": job.backends,
            "shard": {"index": spec.index, "split": spec.split, "ids_sha256": ids_digest(spec.utterance_ids),
                      "rows": table.num_rows},
            "failures": [dataclasses.asdict(f) for f in failures],
            "stats": stats,
        },
    )
    return _report(spec, written, False, t0, failures, stats)


def shard_graph(spec: ShardSpec, job: ShardJob, ranges: list[tuple[int, int]]) -> Any:
    """The Dask graph that writes ``spec``: one :func:`extract_part` task per range, then
    :func:`write_parts` over their results (a ``dask.delayed`` object)."""
    import dask

    stem = shard_stem(spec.filename)
    parts = [dask.delayed(extract_part, pure=False)(spec, a, b, job, dask_key_name=f"part-{stem}-{a}") for a, b in ranges]
    return dask.delayed(write_parts, pure=False)(spec, job, parts, dask_key_name=f"write-{stem}")
