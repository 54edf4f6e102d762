"""``emoprep report``: one self-contained HTML page about a shard folder or a training run.

* :mod:`.page` assembles the page (tables, embedded PNGs, no JavaScript);
* :mod:`.plots` draws the figures with matplotlib;
* :mod:`.shard_folder` and :mod:`.training_run` decide what each kind of folder shows.

Read-only: a report never writes next to the data it describes unless ``out`` says so.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SetupError
from ..format.manifest import has_manifest
from ..format.names import MANIFEST, RUN_RECORD
from ..format.run_record import is_run_folder


def build_report(path: str | Path, out: str | Path, shards: str | Path | None = None, sample_groups: int = 12) -> Path:
    """Write the report of ``path`` (a shard folder or a training run folder) to the HTML file ``out``.

    ``shards`` points a run's report at its shard folder when the run was moved from where it was
    trained; ``sample_groups`` is how many Parquet row groups (16 rows each) a shard folder's
    pictures are drawn from.
    """
    path = Path(path)
    if is_run_folder(path):
        from .training_run import run_report

        return run_report(path, Path(out), Path(shards) if shards else None)
    if has_manifest(path):
        from .shard_folder import shard_folder_report

        return shard_folder_report(path, Path(out), sample_groups)
    raise SetupError(f"{path} is neither a finished shard folder (no {MANIFEST}) nor a training run (no {RUN_RECORD}); "
                     "give the --out folder of `emoprep extract` or of `emoprep train`")
