"""Tiny, valid, learnable shard folders in a second: for tests of the trainer and of shard readers.

Extraction of even the small demo takes tens of seconds (DisVoice, MediaPipe); consumers of the
shards only need files that satisfy the published schema and carry a manifest.  These folders are
written with the same writer, schema validation and manifest layout as a real run, and their labels
are learnable from every modality (a class word in the tokens, a class offset in the acoustic
windows, AUs and face-mesh landmarks), so a trainer test can tell learning from noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..extraction.engine.columns import rows_to_table
from ..extraction.engine.writer import write_table
from ..format.codecs import LOGMEL_FRAMES, LOGMEL_MELS, MESH_COORDINATES, MESH_POINTS, encode_crop, logmel_to_flat, mesh_to_flat
from ..format.manifest import Counts, Manifest, ShardEntry, TextSummary, write_manifest
from ..format.names import shard_name
from ..format.schema import SCHEMA_VERSION, utterance_schema, validate_table
from ..format.storage import Folder

LABELS = ("anger", "happiness", "sadness")
WORDS = {"anger": "furious", "happiness": "delighted", "sadness": "gloomy"}
FILLER = ("the", "a", "it", "was", "today", "and", "then", "we", "saw", "that")
CROP_SIZE = 48
OOV_WORD = "saw"
"""With ``glove=True`` this filler word is written as out of the GloVe vocabulary (a zero vector)."""


def _row(rng: np.random.Generator, i: int, split: str, label: int | None, opts: dict[str, Any]) -> dict[str, Any]:
    """One utterance; ``label`` None = neutral (no class present), -1 = unlabelled."""
    n_labels = len(LABELS)
    emotions = None if label == -1 else [int(label == k) for k in range(n_labels)]
    cls = None if label in (None, -1) else label
    n_tok, n_win, n_frames = int(rng.integers(3, 9)), int(rng.integers(2, 7)), int(rng.integers(2, 6))
    tokens = list(rng.choice(FILLER, size=n_tok))
    if cls is not None:
        tokens[int(rng.integers(n_tok))] = WORDS[LABELS[cls]]
    signal = np.zeros(n_labels, dtype=np.float32)
    if cls is not None:
        signal[cls] = opts["signal"]
    row: dict[str, Any] = {
        "utterance_id": f"v{i // 4:03d}_{i % 4}",
        "dataset": "synthetic",
        "video_id": f"v{i // 4:03d}",
        "speaker": f"s{i % 5}",
        "split": split,
        "start_s": float(i),
        "end_s": float(i) + 0.4 * n_win,
        "text": " ".join(tokens),
        "tokens": tokens,
        "emotions": emotions,
        "emotion_intensity": None if emotions is None else [float(e) for e in emotions],
    }
    acoustic = rng.normal(size=(n_win, 142)).astype(np.float32) * 3 + 10
    acoustic[:, :n_labels] += signal * 3
    valid = [True] * n_win
    if n_win > 2 and rng.random() < 0.3:
        valid[-1] = False  # a silent window: flagged, as DisVoice output is
    row.update(acoustic=acoustic, acoustic_valid=valid, acoustic_onset_frames=[0] * n_win)
    if opts["glove"]:
        glove = rng.normal(size=(n_tok, 300)).astype(np.float32) * 0.1
        if cls is not None:
            glove[:, cls] += 0.5
        oov = [t == OOV_WORD for t in tokens]  # as in GloVe output: out-of-vocabulary tokens get zero vectors
        glove[oov] = 0.0
        row.update(glove=glove, glove_oov=oov)
    frames = np.arange(n_frames) * 0.5
    no_face = n_frames > 2 and rng.random() < 0.3
    row.update(frame_times_s=list(frames), face_missing=[None] * n_frames)
    if opts["aus"]:
        aus = rng.random(size=(n_frames, 35)).astype(np.float32)
        aus[:, :n_labels] += signal
        row["aus"] = [None if (no_face and f == 0) else aus[f] for f in range(n_frames)]
    if opts["face_mesh"]:
        base = opts["mesh"] * (1 + 0.2 * rng.random()) + np.append(rng.normal(size=2) * 30, 0.0)  # scale, position vary
        mesh = np.repeat(base[None], n_frames, axis=0) + rng.normal(size=(n_frames, MESH_POINTS, MESH_COORDINATES)) * 0.5
        if cls is not None:
            mesh[:, 10 * cls : 10 * cls + 10, 1] += signal[cls] * 8  # an expression: points move
        row["face_mesh"] = [None if (no_face and f == 0) else mesh_to_flat(mesh[f]) for f in range(n_frames)]
    if opts["crops"]:
        row["face_crops"] = [None if (no_face and f == 0) else _crop(rng, cls, opts["signal"]) for f in range(n_frames)]
    if opts["logmel"]:
        n_chunks = n_win
        logmel = rng.normal(size=(n_chunks, LOGMEL_MELS, LOGMEL_FRAMES)).astype(np.float32) * 2 - 10
        if cls is not None:
            logmel[:, 20 * cls : 20 * cls + 20, :] += 3 * signal[cls]
        logmel[-1, :, 20:] = np.log(1e-10)  # the last chunk is padded with the log floor, as extraction does
        row.update(logmel=logmel_to_flat(logmel), logmel_frames=[LOGMEL_FRAMES] * (n_chunks - 1) + [20])
    if no_face:
        row["face_missing"] = ["no_face_detected"] + [None] * (n_frames - 1)
    return row


def _crop(rng: np.random.Generator, cls: int | None, signal: float, size: int = CROP_SIZE) -> dict[str, Any]:
    """A PNG face crop: noise around skin tone, with a per-class colour cast."""
    pixels = rng.normal(loc=(180, 130, 110), scale=25, size=(size, size, 3))
    if cls is not None:
        pixels[..., cls] += 40 * signal
    return encode_crop(np.clip(pixels, 0, 255).astype(np.uint8))


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s sections merged in, one level deep."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in extra.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def build_shard_folder(
    out: str | Path,
    rows: dict[str, int] | None = None,
    *,
    shard_size: int = 24,
    glove: bool = False,
    aus: bool = False,
    face_mesh: bool = True,
    crops: bool = False,
    logmel: bool = False,
    unlabelled: int = 1,
    signal: float = 1.0,
    seed: int = 0,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a complete shard folder (shards + manifest) of synthetic utterances; returns ``out``.

    ``rows`` per split (default 48/16/16).  Classes cycle through the three :data:`LABELS` and a
    neutral row (no class); ``crops`` and ``logmel`` add 48x48 face crops and log-mel chunks (for
    end-to-end models); ``unlabelled`` rows per split have null labels; ``signal`` scales how
    strongly the features carry the class (0: labels are pure noise).  ``config``: sections merged
    into the extraction configuration the manifest records (e.g. ``{"visual": {"au_backend":
    "openface"}}`` for AUs said to come from OpenFace, ``{"text": {"glove_checksum": sha}}`` for GloVe
    vectors said to come from the file with that sha256), as a real extraction would record them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = rows or {"train": 48, "valid": 16, "test": 16}
    rng = np.random.default_rng(seed)
    opts = {"glove": glove, "aus": aus, "face_mesh": face_mesh, "crops": crops, "logmel": logmel, "signal": signal,
            "mesh": rng.normal(size=(MESH_POINTS, MESH_COORDINATES)) * 40}
    schema = utterance_schema()
    shards, non_null, index = [], dict.fromkeys(schema.names, 0), 0
    tokens = oov = 0
    for split, n in rows.items():
        split_rows = []
        for k in range(n):
            label = -1 if k >= n - unlabelled else (k % (len(LABELS) + 1) if k % (len(LABELS) + 1) < len(LABELS) else None)
            split_rows.append(_row(rng, index, split, label, opts))
            index += 1
        chunks = [split_rows[i : i + shard_size] for i in range(0, len(split_rows), shard_size)]
        for c, chunk in enumerate(chunks):
            table = rows_to_table(chunk, schema)
            validate_table(table, LABELS)
            name = shard_name(split, c, len(chunks))
            meta = {"schema_version": str(SCHEMA_VERSION), "config_hash": "synthetic", "dataset": "synthetic",
                    "label_names": list(LABELS), "shard": {"index": c, "split": split, "rows": len(chunk)}}
            written = write_table(table, Folder.of(out), name, meta)
            shards.append(ShardEntry(name, split, len(chunk), written.bytes, written.sha256))
            for col in schema.names:
                non_null[col] += table.num_rows - table.column(col).null_count
            flags = [f for row in table.column("glove_oov").to_pylist() if row for f in row]
            tokens, oov = tokens + len(flags), oov + sum(flags)
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        emoprep_version="synthetic",
        dataset="synthetic",
        config_hash=f"synthetic-{seed}",
        label_names=LABELS,
        config=_merged({"visual": {"face_size": CROP_SIZE}, "logmel": {"n_mels": LOGMEL_MELS, "chunk_frames": LOGMEL_FRAMES}},
                       config or {}),
        text=TextSummary(glove="synthetic.txt" if glove else None, vectors_written=glove, tokens=tokens,
                         oov_tokens=oov if glove else None, oov_rate=oov / tokens if glove and tokens else None),
        counts=Counts(utterances=index, rows_per_split=dict(rows), non_null_per_column=non_null),
        shards=tuple(shards),
    )
    write_manifest(out, manifest)
    return out
