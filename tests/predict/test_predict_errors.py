"""What `emoprep predict` refuses, before touching the media, with a message that says what to do: a run
folder without weights or configuration, a checkpoint that ``torch.load(weights_only=True)`` refuses
(it is never loaded any other way), a run trained on AUs when the AU backend is missing, a GloVe-based
run given no GloVe file or one with another checksum.  And what it does not refuse: the right GloVe
file, with a transcript, gives text-only predictions.

Runs are tiny lf-lstm models trained for a second on synthetic shard folders (emoprep.testing.shards)
whose manifests record the extraction they stand for (an AU backend, a GloVe checksum).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import emoprep
from emoprep.errors import SetupError
from emoprep.format.names import BEST_WEIGHTS, RUN_CONFIG
from emoprep.testing.media import write_tone_video
from emoprep.testing.shards import FILLER, WORDS, build_shard_folder
from emoprep.train.config import parse_sets
from emoprep.train.run import train

TINY = ["optim.epochs=1", "optim.batch_size=8", "settings.hidden=4"]
ROWS = {"train": 16, "valid": 8, "test": 4}


def _glove(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    words = [*FILLER, *WORDS.values(), "hello", "."]
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=300))}\n" for w in words))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("predict-media")
    video = write_tone_video(folder / "talk.mp4", 3.0)
    (folder / "talk.vtt").write_text("WEBVTT\n\n00:00.200 --> 00:01.500\nhello today\n\n"
                                     "00:01.600 --> 00:02.900\n<v Ann>we saw that</v>\n")
    return video


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("predict-errors")
    shards = build_shard_folder(base / "shards", ROWS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a module fixture: the per-test one_torch_thread has not started yet
    try:
        train("lf-lstm", shards, base / "run", sets=parse_sets(TINY), quiet=True)
    finally:
        torch.set_num_threads(threads)
    return base / "run"


@pytest.mark.parametrize("missing", [BEST_WEIGHTS, RUN_CONFIG])
def test_a_run_folder_without_weights_or_config_is_refused(run: Path, media: Path, tmp_path: Path, missing: str) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / missing).unlink()
    with pytest.raises(SetupError, match=f"not a finished training run: {missing} missing"):
        emoprep.predict(copy, [media], synchronous=True)


class _Payload:
    """What a tampered checkpoint could hold: unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_a_tampered_checkpoint_is_refused_and_never_run(run: Path, media: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    marker = tmp_path / "code-ran"
    weights = torch.load(copy / BEST_WEIGHTS, weights_only=True)
    torch.save({**weights, "extra": _Payload(marker)}, copy / BEST_WEIGHTS)
    with pytest.raises(SetupError, match="weights_only=True refused it"):
        emoprep.predict(copy, [media], synchronous=True)
    assert not marker.exists()


def test_a_run_trained_on_aus_needs_its_au_backend(tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shards = build_shard_folder(tmp_path / "shards", ROWS, aus=True, face_mesh=False,
                                config={"visual": {"au_backend": "openface"}})
    train("lf-lstm", shards, tmp_path / "run", sets=parse_sets([*TINY, "modalities=[visual]"]), quiet=True)
    monkeypatch.setenv("PATH", str(tmp_path))  # no OpenFace FeatureExtraction anywhere
    with pytest.raises(SetupError, match="AU backend 'openface' needs OpenFace"):
        emoprep.predict(tmp_path / "run", [media], synchronous=True)


def test_a_glove_run_needs_the_same_vectors(tmp_path: Path, media: Path) -> None:
    right, other = _glove(tmp_path / "right.txt", 0), _glove(tmp_path / "other.txt", 1)
    sha = hashlib.sha256(right.read_bytes()).hexdigest()
    shards = build_shard_folder(tmp_path / "shards", ROWS, glove=True, config={"text": {"glove_checksum": sha}})
    run = tmp_path / "run"
    train("lf-lstm", shards, run, sets=parse_sets([*TINY, "modalities=[text]"]), quiet=True)
    with pytest.raises(SetupError, match="reads GloVe vectors: give the same GloVe file"):
        emoprep.predict(run, [media], synchronous=True)
    with pytest.raises(SetupError, match=f"not the GloVe file .* the run's is {sha}"):
        emoprep.predict(run, [media], glove=str(other), synchronous=True)

    table = emoprep.predict(run, [media], glove=str(right), synchronous=True)  # the .vtt beside it gives the text
    rows = table.to_pylist()
    assert [(r["start"], r["end"], r["text"]) for r in rows] == [(0.2, 1.5, "hello today"), (1.6, 2.9, "we saw that")]
    assert all(r["modalities"] == "text" and r["error"] is None and 0 <= r["prob_anger"] <= 1 for r in rows)


def test_predict_joins_a_cluster_by_scheduler_file_like_extract(run: Path, media: Path, tmp_path: Path) -> None:
    """``--scheduler-file`` reaches the runtime: a file no scheduler wrote is refused, naming it (the join
    itself is extract's, tested with a running cluster in tests/storage)."""
    from click.testing import CliRunner

    from emoprep.cli import main

    missing = tmp_path / "scheduler.json"
    result = CliRunner().invoke(main, ["predict", str(run), str(media), "--out", str(tmp_path / "p.parquet"),
                                       "--scheduler-file", str(missing), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "scheduler file not found" in result.output and "scheduler.json" in result.output
    assert not (tmp_path / "p.parquet").exists()
