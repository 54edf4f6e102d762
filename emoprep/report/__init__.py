"""``emoprep report``: one self-contained HTML page about a shard folder, a training run or predictions.

* :mod:`.page` assembles the page (tables, embedded PNGs, no JavaScript);
* :mod:`.plots` draws the figures with matplotlib;
* :mod:`.shard_folder` and :mod:`.training_run` decide what each kind of folder shows;
  :mod:`.timeline` draws a predictions file (``emoprep predict``) as a timeline per media file.

Read-only: a report never writes next to the data it describes unless ``out`` says so.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SetupError
from ..format.manifest import StorageOptions, has_manifest
from ..format.names import MANIFEST, RUN_RECORD
from ..format.predictions import is_predictions_file
from ..format.run_record import is_run_folder
from ..format.storage import Folder, is_url
from ..format.working_copy import working_copy


def build_report(path: str | Path, out: str | Path, shards: str | Path | None = None, sample_groups: int = 12,
                 storage_options: StorageOptions = None) -> Path:
    """Write the report of ``path`` (a shard folder, a training run folder or a predictions file) to the
    HTML file ``out``.

    ``shards`` points a run's report at its shard folder when the run was moved from where it was
    trained; ``sample_groups`` is how many Parquet row groups (16 rows each) a shard folder's
    pictures are drawn from.  A shard folder or a run folder may be a URL (``s3://bucket/prefix``),
    read with ``storage_options``; the page is the same as for a local copy.
    """
    if is_url(path):
        return _remote_report(Folder.of(path, storage_options), Path(out), shards, sample_groups)
    path = Path(path)
    if is_predictions_file(path):
        from .timeline import timeline_report

        return timeline_report(path, Path(out))
    if is_run_folder(path):
        from .training_run import run_report

        return run_report(path, Path(out), shards, storage_options=storage_options)
    if has_manifest(path):
        from .shard_folder import shard_folder_report

        return shard_folder_report(path, Path(out), sample_groups)
    raise _not_reportable(str(path))


def _remote_report(folder: Folder, out: Path, shards: str | Path | None, sample_groups: int) -> Path:
    """The report of a run folder or a shard folder on object storage (a run is read from a local copy)."""
    if folder.exists(RUN_RECORD):
        from .training_run import run_report

        with working_copy(folder) as work:
            return run_report(work.path, out, shards, storage_options=folder.options, shown=work.url)
    if has_manifest(folder):
        from .shard_folder import shard_folder_report

        return shard_folder_report(folder, out, sample_groups)
    raise _not_reportable(folder.url)


def _not_reportable(shown: str) -> SetupError:
    return SetupError(f"{shown} is neither a finished shard folder (no {MANIFEST}), a training run (no {RUN_RECORD}) nor "
                      "a predictions file; give the --out folder of `emoprep extract` or of `emoprep train`, or the --out "
                      "file of `emoprep predict`")
