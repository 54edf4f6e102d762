"""A dataset's media on object storage, for tests and benchmarks of extraction from URLs.

:func:`publish_recordings` turns a reader's utterances (the demo corpus, typically) into the same
recordings list twice: one naming the local files, one uploaded beside the uploaded media and naming
them relative to itself.  Extracting both must give equal shards; the explicit ``video_id`` keeps the
ids independent of where the files are.  :func:`pretend_other_install` makes one Dask worker report
another emoprep version or librosa, as a worker with another installation would.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..extraction.records import Utterance
from ..format.storage import filesystem

COLUMNS = ("utterance_id", "video_id", "video", "audio", "audio_channel", "start", "end", "text", "split",
           "emotions", "sentiment")


@dataclass(frozen=True)
class PublishedRecordings:
    """Where :func:`publish_recordings` put things."""

    local_list: Path
    remote_list: str
    media: dict[str, str]
    """Local media file -> its URL."""


def _list_text(utterances: Sequence[Utterance], label_names: Sequence[str], media: Mapping[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for u in utterances:
        emotions = u.labels.emotions
        writer.writerow({
            "utterance_id": u.utterance_id, "video_id": u.video_id,
            "video": media[u.video_path] if u.video_path else "", "audio": media[u.audio_path] if u.audio_path else "",
            "audio_channel": "" if u.audio_channel is None else u.audio_channel,
            "start": repr(u.start_s), "end": repr(u.end_s), "text": u.text or "", "split": u.split,
            "emotions": "" if emotions is None else (";".join(n for n, on in zip(label_names, emotions) if on) or "none"),
            "sentiment": "" if u.labels.sentiment is None else repr(u.labels.sentiment),
        })
    return out.getvalue()


def publish_recordings(utterances: Sequence[Utterance], label_names: Sequence[str], folder: Path, url: str,
                       options: Mapping[str, Any]) -> PublishedRecordings:
    """Upload the utterances' media under ``url`` and write the two lists (local, and ``url/list.csv``)."""
    fs, base = filesystem(url, options)
    files = sorted({p for u in utterances for p in (u.video_path, u.audio_path) if p})
    names = {f: f"media/{Path(f).parent.name}/{Path(f).name}" for f in files}
    for f, name in names.items():
        fs.put_file(f, f"{base}/{name}")
    folder.mkdir(parents=True, exist_ok=True)
    local_list = folder / "list.csv"
    local_list.write_text(_list_text(utterances, label_names, {f: f for f in files}))
    fs.pipe_file(f"{base}/list.csv", _list_text(utterances, label_names, names).encode())
    return PublishedRecordings(local_list, f"{url}/list.csv", {f: f"{url}/{n}" for f, n in names.items()})


_REAL: dict[str, Any] = {}
"""What :func:`pretend_other_install` replaced in this process, for :func:`restore_install`."""


def pretend_other_install(emoprep_version: str | None = None, librosa: str | None = None) -> str:
    """Make this process report another emoprep version and/or librosa version (run it on one worker
    with ``client.run(..., workers=[address])``); returns the process id, to show where it ran."""
    from .. import version
    from ..extraction.extractors import logmel

    _REAL.setdefault("version", version.__version__)
    _REAL.setdefault("librosa", logmel.version)
    if emoprep_version is not None:
        version.__version__ = emoprep_version
    if librosa is not None:
        real = _REAL["librosa"]
        logmel.version = lambda name: librosa if name == "librosa" else real(name)
    return str(os.getpid())


def restore_install() -> None:
    """Undo :func:`pretend_other_install` in this process."""
    from .. import version
    from ..extraction.extractors import logmel

    if _REAL:
        version.__version__, logmel.version = _REAL["version"], _REAL["librosa"]
