""":func:`predict`: a trained run applied to new recordings, from raw media to one row per utterance.

Four steps, each in its own module: segment the media (:mod:`.segments`: transcript cues or windows;
or take the user's recordings list as it is), extract their features with the run's extraction
configuration (:mod:`.features`, on the Dask runtime of ``extract``), apply the run's model
(:mod:`.apply`), return the table (:mod:`emoprep.format.predictions`).  Everything that can be checked
before the media are touched is checked first: the run folder, its weights, the GloVe file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa

from ..errors import SetupError
from ..extraction import RunObserver
from ..format.manifest import StorageOptions
from ..format.working_copy import working_copy
from ..train.trained import TrainedModel, load_trained
from .apply import apply_model, output_table
from .features import (
    FEATURES,
    RECORDINGS_LIST,
    check_glove,
    extract_features,
    prediction_config,
    recorded_extraction,
    write_recordings_list,
)
from .segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, segment_media


def predict(
    run: str | Path,
    media: list[str | Path] | tuple[str | Path, ...] = (),
    *,
    recordings: str | Path | None = None,
    transcript: str | Path | None = None,
    window: float = DEFAULT_WINDOW_S,
    hop: float = DEFAULT_HOP_S,
    glove: str | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    synchronous: bool = False,
    work_dir: str | Path | None = None,
    device: str = "cpu",
    observer: RunObserver | None = None,
    storage_options: StorageOptions = None,
) -> pa.Table:
    """Per-utterance emotions of ``media`` (or of the rows of a ``recordings`` list) by the run ``run``.

    ``work_dir`` keeps the extracted features (a shard folder under ``work_dir/features``, reused when
    the same command runs again); by default they go to a temporary folder that is removed.  Returns the
    table described in :mod:`emoprep.format.predictions`; rows that could not be scored are in it too,
    with their ``error``.  ``run`` may be a URL (``s3://bucket/runs/x``, ``storage_options`` for its
    store): its files are read from a temporary local copy, removed once the model is loaded.
    """
    if bool(media) == (recordings is not None):
        raise SetupError("give MEDIA files or --recordings LIST (one of the two)")
    observer = observer or RunObserver()
    model = load_run_model(run, device, storage_options)
    columns = {m: b.column for m, b in model.featurizer.branches.items()}
    extraction = recorded_extraction(model.record, model.source or run, storage_options)
    glove_file = check_glove(extraction, columns, glove)
    config = prediction_config(extraction, columns, glove_file)
    observer.stage(f"{model.config.model} run {Path(run).name}: extracting {', '.join(config.modalities)} as for "
                   f"training (shards config {model.record.shards.config_hash})")
    temporary = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="emoprep-predict-")) if temporary else Path(work_dir)
    try:
        failures: list[dict] = []
        if recordings is not None:
            listed = Path(recordings)
        else:
            segmentation = segment_media(list(media), transcript, window, hop)
            failures = segmentation.failures
            if not segmentation.rows:
                return output_table(model, failures)  # no media could be read: nothing to extract
            listed = write_recordings_list(segmentation.rows, work / RECORDINGS_LIST)
        extract_features(config, listed, work / FEATURES, scheduler=scheduler, scheduler_file=scheduler_file,
                         workers=workers, synchronous=synchronous, observer=observer)
        observer.stage("applying the model")
        return apply_model(model, work / FEATURES, failures)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


def load_run_model(run: str | Path, device: str, storage_options: StorageOptions = None) -> TrainedModel:
    """The trained model of the run folder ``run`` (local, or a URL read through a local copy)."""
    with working_copy(run, storage_options) as copy:
        model = load_trained(copy.path, device)
    if copy.remote:
        model.source = copy.url
    return model

