"""``run_extract``: read -> plan -> Dask (parts of each shard, then one write per shard) -> failures
-> manifest (last).

The output is a :class:`~emoprep.format.storage.Folder`: a local folder, or a prefix on object storage
(``s3://bucket/prefix``) with the same guarantees (whole files only, resume, one writer, manifest last).

This module is the whole DAG; everything it calls is a pure step that can be tested alone:
dataset readers (:mod:`emoprep.extraction.readers`), the planner (:mod:`emoprep.extraction.engine.plan`), the shard tasks
(:mod:`emoprep.extraction.engine.worker`) and the manifest (:mod:`emoprep.format.manifest`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import SetupError
from ..format.failures import FAILURES_SCHEMA
from ..format.manifest import Counts, Manifest, ShardEntry, TextSummary, dataset_card, remove_manifest, write_manifest
from ..format.names import CARD, FAILURES, TMP_MARKER, UTTERANCES, is_shard_name
from ..format.release_counts import count_differences
from ..format.schema import SCHEMA_VERSION
from ..format.storage import Folder, redact
from ..version import __version__
from .config import ALL_MODALITIES, ExtractConfig
from .engine.compat import agreed_backends, worker_report
from .engine.lease import DEFAULT_TTL_S, OutputLease
from .engine.lock import OutputLock
from .engine.plan import part_ranges, part_rows, plan_shards
from .engine.replace import check_replacement
from .engine.utterances import utterances_table
from .engine.worker import ShardJob, complete_shard, shard_graph
from .engine.writer import write_table
from .glove import ensure_glove_cache, ensure_remote_glove, file_checksum, resolve_glove_path
from .media.fetch import MediaAccess, parse_cache_size
from .readers import ReadResult, read_dataset
from .readers.check import compare_expected
from .records import ReaderIssue, ShardReport, ShardSpec
from .runtime import Outcome, open_executor

FAILING_READER_ISSUES = ("invalid", "missing_media")


@dataclass
class RunSummary:
    """What a run did; the CLI prints it and derives the exit status from it."""

    out_dir: Path | str
    """The output folder, or the URL of the object-storage prefix (never with credentials)."""
    utterances: int = 0
    shards: int = 0
    written: int = 0
    skipped: int = 0
    failure_records: int = 0
    """Rows of failures.parquet (one per utterance and failed stage); see ``failed_utterances``."""
    failed_utterances: int = 0
    reader_issues: dict[str, int] = field(default_factory=dict)
    non_null: dict[str, int] = field(default_factory=dict)
    """Rows with a value, per column, over all shards."""
    count_differences: dict[str, dict[str, int | None]] = field(default_factory=dict)
    """Counts that differ from the full release's known ones, ``{key: {"read", "full_release"}}``
    (information, not errors; said in one line by :mod:`emoprep.format.release_counts`)."""
    shard_errors: dict[str, str] = field(default_factory=dict)
    rows_per_split: dict[str, int] = field(default_factory=dict)
    oov_rate: float | None = None
    glove: str | None = None
    executor: str = ""
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.shard_errors


class RunObserver:
    """Told what a run is doing; the CLI draws it (a bar over shards, a line per stage).

    The base class ignores everything, so library callers and tests need not pass one.
    """

    def stage(self, message: str) -> None:
        """A step before the shards start (reading the dataset, building caches, loading models)."""

    def shards(self, done: int, total: int) -> None:
        """``done`` of ``total`` shard tasks have finished (``done == 0`` when they are submitted)."""

    def warning(self, message: str) -> None:
        """Something the user must know even with ``--quiet`` (a lock or lease taken over); by
        default a stage line."""
        self.stage(f"warning: {message}")


def prepare_text(config: ExtractConfig, glove_flag: str | None, observer: RunObserver | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> ExtractConfig:
    """Resolve the GloVe file and build its cache once, in the client, before any task runs (a URL:
    fetched into this machine's cache; workers elsewhere fetch it into theirs)."""
    path = resolve_glove_path(glove_flag if glove_flag is not None else config.text.glove, storage_options)
    if path is None or "text" not in config.modalities:
        return dataclasses.replace(config, text=dataclasses.replace(config.text, glove=None, glove_checksum=None))
    if observer:
        observer.stage(f"GloVe: checking {Path(str(path)).name} (the cache is built once per file; 840B takes a few minutes)")
    if isinstance(path, str):
        checksum = ensure_remote_glove(path, storage_options)[1]
    else:
        checksum = file_checksum(path)
        ensure_glove_cache(path, checksum)
    return dataclasses.replace(config, text=dataclasses.replace(config.text, glove=str(path), glove_checksum=checksum))


def _remove_leftovers(out: Folder, keep: set[str]) -> None:
    """Delete temporary files of killed runs and shards that the current plan no longer has."""
    for name in out.names():
        if TMP_MARKER in name or (is_shard_name(name) and name not in keep):
            out.remove(name)


def _failures_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=FAILURES_SCHEMA)


def run_extract(
    config: ExtractConfig,
    root: Path | str | None,
    out: str | Path | Folder,
    *,
    glove: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    media_cache: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    synchronous: bool = False,
    overwrite: bool = False,
    limit: int | None = None,
    observer: RunObserver | None = None,
    break_lock: bool = False,
    lease_ttl_s: float = DEFAULT_TTL_S,
) -> RunSummary:
    """Extract ``config.dataset`` from ``root`` into shards under ``out``; resumable and atomic.

    ``out`` is a local folder or an fsspec URL (``s3://bucket/prefix``; ``storage_options`` reach
    its store).  The run holds ``out`` from before reading to the end — a local lock
    (:mod:`emoprep.extraction.engine.lock`) or, on object storage, a renewed lease
    (:mod:`emoprep.extraction.engine.lease`, ``lease_ttl_s``) — so a second run into the same output
    fails at once instead of replacing this one's shards.  ``break_lock`` takes over the lock or
    lease of a run that the user says is gone.
    ``root``, media and ``glove`` may be URLs, read with ``storage_options``; workers fetch media
    into a local cache of at most ``media_cache`` bytes each (default: ``$EMOPREP_MEDIA_CACHE``, else
    10 GB; :mod:`emoprep.extraction.media.fetch`).
    """
    access = MediaAccess(dict(storage_options or {}), media_cache or parse_cache_size(None))
    folder = Folder.of(out, storage_options)
    observer = observer or RunObserver()
    created = not folder.exists()
    folder.mkdir()
    holder = (OutputLease(folder, ttl_s=lease_ttl_s, break_lock=break_lock) if folder.remote
              else OutputLock(Path(folder.location), break_lock=break_lock))
    try:
        with holder:
            if holder.cleared is not None:
                observer.warning(f"took over the output of a run that is gone ({holder.cleared.describe()})")
            return _extract_locked(config, root, folder, glove=glove, access=access, scheduler=scheduler,
                                   scheduler_file=scheduler_file, workers=workers, synchronous=synchronous,
                                   overwrite=overwrite, limit=limit, observer=observer, still_held=holder.confirm)
    finally:
        if created:
            folder.rmdir_if_empty()  # refused or failed before writing anything: leave no empty folder behind


def _extract_locked(
    config: ExtractConfig,
    root: Path | str | None,
    out: Folder,
    *,
    glove: str | None,
    access: MediaAccess,
    scheduler: str | None,
    scheduler_file: str | None,
    workers: int | None,
    synchronous: bool,
    overwrite: bool,
    limit: int | None,
    observer: RunObserver,
    still_held: Callable[[], None],
) -> RunSummary:
    """:func:`run_extract`'s five steps, run while holding the output folder's lock; ``still_held``
    raises when this run has lost it (a lease taken over), checked before the manifest is written."""
    t0 = time.perf_counter()

    # 1. read: utterance records and everything the reader could not use
    observer.stage(f"reading the {config.dataset} dataset" + (f" from {redact(str(root))}" if root else ""))
    result = read_dataset(config.dataset, root, config, access.options)
    utterances = result.utterances[:limit] if limit else result.utterances
    if not utterances:
        raise SetupError(f"the {config.dataset} reader found no utterances to extract under {redact(str(root))}")
    config = prepare_text(config, glove, observer, access.options)
    replacing = check_replacement(out, config, overwrite)  # refuses, before any write, without --overwrite
    if replacing:
        observer.stage(replacing)

    # 2. plan: the record of what this run will write, and a deterministic shard plan
    remove_manifest(out)  # its presence means complete; this run is not, yet
    # The plan records its configuration: a rerun of it may resume replacing other configs' shards.
    write_table(utterances_table(utterances), out, UTTERANCES, {"config_hash": config.config_hash})
    specs = plan_shards(utterances, config.shard_size)
    _remove_leftovers(out, {s.filename for s in specs})
    summary = RunSummary(out_dir=out.local or out.url, utterances=len(utterances), shards=len(specs))
    summary.count_differences = count_differences(compare_expected(config.dataset, config, result))
    summary.reader_issues = dict(Counter(issue.kind for issue in result.issues))

    # 3. run: shards already complete are skipped; the others are extracted in parts of a few
    #    utterances (tasks small enough to keep every worker busy), then written by one task each
    reports: list[ShardReport] = []
    rows_per_part = part_rows(len(utterances))
    observer.stage(f"{len(utterances)} utterances in {len(specs)} shards; starting workers")
    with open_executor(scheduler, workers, synchronous, len(utterances) // rows_per_part + 1,
                       scheduler_file) as executor:
        summary.executor = executor.description
        observer.stage(f"running on {executor.description}; loading models ({', '.join(config.modalities)})")
        installs = executor.call_on_every_worker(worker_report, config, access)
        backends = agreed_backends(installs, worker_report(config, access) if executor.remote else None)
        job = ShardJob(config, out, tuple(result.label_names), backends, overwrite, access)
        observer.shards(0, len(specs))

        def record(outcome: Outcome, done: list[ShardReport]) -> None:
            if outcome.error is not None:
                summary.shard_errors[outcome.key] = f"{type(outcome.error).__name__}: {outcome.error}"
            elif outcome.value is not None:
                done.append(outcome.value)

        todo: list[ShardSpec] = []
        by_name = {s.filename: s for s in specs}
        for outcome in executor.map_unordered(complete_shard, [(s.filename, (s, job)) for s in specs]):
            record(outcome, reports)
            if outcome.error is None and outcome.value is None:
                todo.append(by_name[outcome.key])
        observer.shards(len(reports), len(specs))
        todo.sort(key=lambda s: s.index)
        graphs = [(s.filename, shard_graph(s, job, part_ranges(len(s.utterances), rows_per_part))) for s in todo]
        for outcome in executor.compute_unordered(graphs):
            record(outcome, reports)
            observer.shards(len(reports) + len(summary.shard_errors), len(specs))
    reports.sort(key=lambda r: r.filename)

    # 4. collect: failures of the reader and of every shard, counts, OOV rate
    failure_rows = _failure_rows(result.issues, reports)
    write_table(_failures_table(failure_rows), out, FAILURES, {"schema_version": str(SCHEMA_VERSION)})
    for r in reports:
        summary.rows_per_split[r.split] = summary.rows_per_split.get(r.split, 0) + r.rows
    summary.written = sum(not r.skipped for r in reports)
    summary.skipped = sum(r.skipped for r in reports)
    summary.failure_records = len(failure_rows)
    summary.failed_utterances = len({f["utterance_id"] for f in failure_rows})
    for r in reports:
        for column, n in r.stats.get("non_null", {}).items():
            summary.non_null[column] = summary.non_null.get(column, 0) + n
    tokens = sum(r.stats.get("text.tokens", 0) for r in reports)
    oov = sum(r.stats.get("text.oov_tokens", 0) for r in reports)
    summary.glove = config.text.glove
    summary.oov_rate = (oov / tokens) if (config.text.glove and tokens) else None
    summary.seconds = time.perf_counter() - t0

    # 5. manifest, last: only a complete run gets one
    if summary.complete:
        manifest = build_manifest(config, result, summary, reports, backends, text_counts=(tokens, oov))
        still_held()
        out.write_text(CARD, dataset_card(manifest))
        try:
            write_manifest(out, manifest)
        except FileExistsError as exc:
            raise SetupError(f"{exc}: two runs finished into one output; rerun to check it") from None
    return summary


def _failure_rows(issues: list[ReaderIssue], reports: list[ShardReport]) -> list[dict[str, Any]]:
    """Rows of ``failures.parquet``: reader-stage failures first, then each shard's, in shard order."""
    rows = [
        {"utterance_id": i.utterance_id, "shard": None, "stage": "reader", "error_type": i.kind, "message": i.message}
        for i in issues
        if i.utterance_id and i.kind in FAILING_READER_ISSUES
    ]
    for r in reports:
        rows += [dict(dataclasses.asdict(f), shard=r.filename) for f in r.failures]
    return rows


def build_manifest(
    config: ExtractConfig,
    result: ReadResult,
    summary: RunSummary,
    reports: list[ShardReport],
    backends: dict[str, Any],
    text_counts: tuple[int, int],
) -> Manifest:
    """The run's :class:`~emoprep.format.manifest.Manifest`."""
    tokens, oov = text_counts
    return Manifest(
        schema_version=SCHEMA_VERSION,
        emoprep_version=__version__,
        dataset=config.dataset,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config_hash=config.config_hash,
        config=config.hashed_dict(),
        label_names=tuple(result.label_names),
        modalities={m: (m in config.modalities) for m in ALL_MODALITIES},
        backends=backends,
        text=TextSummary(
            glove=Path(config.text.glove).name if config.text.glove else None,
            glove_sha256=config.text.glove_checksum,
            vectors_written=bool(config.text.glove),
            tokens=tokens,
            oov_tokens=oov if config.text.glove else None,
            oov_rate=summary.oov_rate,
        ),
        counts=Counts(
            utterances=summary.utterances,
            rows_per_split=dict(sorted(summary.rows_per_split.items())),
            non_null_per_column=summary.non_null,
            failures=summary.failure_records,
            failed_utterances=summary.failed_utterances,
            reader_issues=summary.reader_issues,
            differences_from_full_release=summary.count_differences,
            reader=dict(result.counts),
        ),
        shards=tuple(ShardEntry(r.filename, r.split, r.rows, r.bytes, r.sha256) for r in reports),
    )
