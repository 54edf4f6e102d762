"""From shard columns to model inputs: which column feeds each branch, and the fitted featuriser.

Choice (recorded in the run, never silent): text takes ``glove`` vectors when the shards hold them,
else a trainable embedding over ``tokens`` with the training split's vocabulary; acoustic takes the
142-dim ``acoustic`` windows (invalid, i.e. digitally silent, windows masked); visual takes the 35
``aus`` when an AU backend wrote them, else MediaPipe ``face_mesh`` landmarks normalised for
position and scale (the best hand-crafted facial features the shards hold), else it is an error
that says how to get visual features or how to train without them.  An end-to-end model whose text
encoder is ALBERT (``settings.text_encoder=albert``, see :mod:`.albert`) reads the raw ``text``
column instead, tokenised by ALBERT's own tokenizer from its local folder.

The featuriser is fitted on the training split only (vocabulary, per-feature mean and standard
deviation of the dense hand-crafted features) and saved as JSON in the run, so that evaluation on
other shards applies exactly the same transform.  Frames without a face, invalid windows and
padding are masked; nothing is filled in for them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..errors import SetupError
from ..format.codecs import MESH_POINTS, decode_crop, mesh_from_flat
from ..format.manifest import Manifest
from ..format.schema import utterance_schema
from . import albert
from .batch import Batch, InputSpec, ModalityInput
from .data import ShardStream, column_values, whole_row_groups

PAD, UNK = 0, 1

DENSE_COLUMNS = {
    **{c: utterance_schema().field(c).type.value_type.list_size
       for c in ("glove", "acoustic", "egemaps_lld", "compare_lld", "aus")},
    "face_mesh": 2 * MESH_POINTS,
}
"""Model-side width of each dense column: the schema's, except face_mesh (x, y of the normalised points)."""
IMAGE_COLUMNS = ("face_crops", "logmel")
"""Columns fed to end-to-end models as one image per position (face crop, log-mel chunk)."""
VALID_COLUMNS = {"acoustic": "acoustic_valid", "logmel": "logmel_frames"}
"""Columns whose rows carry a per-position validity flag (or valid frame count) beside them."""
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "handcrafted": {
        "text": ("glove", "tokens"),
        "acoustic": ("acoustic", "egemaps_lld", "compare_lld"),
        "visual": ("aus", "face_mesh"),
    },
    "end_to_end": {
        "text": ("glove", "tokens"),
        "acoustic": ("logmel",),
        "visual": ("face_crops",),
    },
}
"""Columns each kind of model can read per modality, best first (a model's registry entry names its family)."""
HOW_TO_GET = {
    "text": "extract with the text modality (and --glove for vectors)",
    "acoustic": "extract with the acoustic (hand-crafted) or logmel (end-to-end) modality",
    "visual": "extract with --au-backend openface|pyfeat for action units, or with the setting "
    "visual.face_mesh: true for landmarks (hand-crafted), or with the visual modality for face crops (end-to-end)",
}


@dataclass(frozen=True)
class Branch:
    """One modality's input as chosen for a run, and the statistics fitted for it."""

    modality: str
    column: str
    reason: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    image_shape: tuple[int, ...] = ()
    """``(C, H, W)`` of one position for image columns (from the shards' configuration)."""
    tokenizer: str = ""
    """The ALBERT folder whose tokenizer turns the raw ``text`` column into ids (ALBERT text only)."""
    max_tokens: int = 0
    """Most ids per text, ``[CLS]`` and ``[SEP]`` included (ALBERT text only)."""

    @property
    def kind(self) -> str:
        if self.column in ("tokens", "text"):
            return "tokens"
        return "images" if self.column in IMAGE_COLUMNS else "dense"

    @property
    def normalised(self) -> bool:
        """GloVe vectors and face crops are used as they are (models normalise crops with the
        paper's constants); hand-crafted features and log-mel are standardised on training data."""
        return self.column not in ("glove", "tokens", "text", "face_crops")

    @property
    def stat_width(self) -> int:
        """Length of ``mean``/``std``: one per feature, or one per mel band for log-mel."""
        return self.image_shape[1] if self.column == "logmel" else DENSE_COLUMNS[self.column]


def _image_shape(manifest: Manifest, column: str) -> tuple[int, ...]:
    if column == "face_crops":
        return (3, manifest.face_size, manifest.face_size)
    return (1, *manifest.logmel_shape)


def choose_branches(manifest: Manifest, modalities: tuple[str, ...], wanted: dict[str, str],
                    family: str = "handcrafted", text_albert: albert.AlbertChoice | None = None) -> dict[str, Branch]:
    """Pick the column of each modality from what the manifest says the shards hold.

    ``text_albert`` (the checked folder, from :func:`.albert.text_choice`): text is the raw ``text``
    column, tokenised by that folder's ALBERT tokenizer.
    """
    non_null = manifest.counts.non_null_per_column
    if non_null is None:
        raise SetupError("the shards' manifest.json has no per-column counts (written by an older emoprep); re-run extract")
    out = {}
    for modality in modalities:
        want = wanted.get(modality, "auto")
        if modality == "text" and text_albert is not None:
            out[modality] = _albert_branch(non_null, want, text_albert)
            continue
        options = FAMILIES[family][modality]
        if want != "auto" and want not in options:
            raise SetupError(f"inputs.{modality} must be auto or one of {', '.join(options)} for this model, got {want!r}")
        held = [c for c in options if non_null.get(c, 0) > 0]
        if want != "auto":
            if want not in held:
                raise SetupError(f"inputs.{modality}={want}: the shards hold no {want!r} values; {HOW_TO_GET[modality]}")
            column, reason = want, "asked for in the configuration"
        elif not held:
            raise SetupError(
                f"the shards hold no {modality} features ({' or '.join(options)} are all null): {HOW_TO_GET[modality]}, "
                f"or train without it: --set modalities=[{','.join(m for m in modalities if m != modality)}]"
            )
        else:
            skipped = options[: options.index(held[0])]
            column = held[0]
            reason = "the best column the shards hold" + (f" ({', '.join(skipped)} not written)" if skipped else "")
        shape = _image_shape(manifest, column) if column in IMAGE_COLUMNS else ()
        out[modality] = Branch(modality, column, reason, image_shape=shape)
    return out


def _albert_branch(non_null: dict[str, int], want: str, choice: albert.AlbertChoice) -> Branch:
    if want != "auto":
        raise SetupError(f"inputs.text={want} conflicts with settings.text_encoder=albert, which reads the raw text "
                         "column with ALBERT's tokenizer; leave inputs.text at auto")
    if non_null.get("text", 0) == 0:
        raise SetupError("settings.text_encoder=albert: the shards hold no text (column 'text' is null); "
                         f"{HOW_TO_GET['text']}")
    return Branch("text", "text", f"ALBERT tokenizer from {choice.folder}", tokenizer=choice.folder,
                  max_tokens=choice.max_len)


def normalise_landmarks(points: np.ndarray) -> np.ndarray:
    """``(n, 1404)`` MediaPipe face mesh -> ``(n, 936)`` x, y with the centroid removed and the RMS
    distance to it scaled to 1: expression and head pose remain, position and face size do not."""
    xy = mesh_from_flat(points)[:, :, :2].astype(np.float32)
    xy = xy - xy.mean(axis=1, keepdims=True)
    scale = np.sqrt((xy**2).sum(axis=2).mean(axis=1))[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = xy / scale
    return out.reshape(len(points), -1).astype(np.float32)


def _decode_crop(crop: dict[str, Any] | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A stored face crop (PNG/JPEG bytes) as float32 ``(3, S, S)`` RGB in [0, 255]; None for no face."""
    rgb = decode_crop(crop)
    if rgb is None:
        return None
    pixels = rgb.astype(np.float32).transpose(2, 0, 1)
    if pixels.shape != shape:
        raise SetupError(f"a face crop is {pixels.shape[1]}x{pixels.shape[2]} px where the shards' manifest says "
                         f"{shape[1]}x{shape[2]}: the shard folder is inconsistent; re-run extract")
    return pixels


def read_rows(table: pa.Table, branch: Branch) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per row of a row group: raw (not yet standardised) ``(values, valid)``, or None for a null row.

    ``values`` is ``(n, d)`` for dense columns (face mesh already normalised for position and scale),
    ``(n, C, H, W)`` for image columns; ``valid`` ``(n,)`` is False for frames without a face, silent
    windows and non-finite values.
    """
    column = branch.column
    if column == "face_crops":
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        for crops in table.column(column).to_pylist():
            if not crops:
                out.append(None)
                continue
            decoded = [_decode_crop(c, branch.image_shape) for c in crops]
            valid = np.asarray([d is not None for d in decoded])
            empty = np.zeros(branch.image_shape, dtype=np.float32)
            out.append((np.stack([empty if d is None else d for d in decoded]), valid))
        return out
    values = column_values(table.column(column))
    if column == "face_mesh":
        values = _landmarks_per_row(values)
    flags = table.column(VALID_COLUMNS[column]).to_pylist() if column == "acoustic" else None
    out = []
    for i, v in enumerate(values):
        if v is None or len(v) == 0:
            out.append(None)
            continue
        v = np.asarray(v, dtype=np.float32)
        valid = np.isfinite(v).all(axis=1)
        if flags is not None and flags[i] is not None:
            valid &= np.asarray(flags[i], dtype=bool)
        out.append((v.reshape((len(v), *branch.image_shape)) if branch.image_shape else v, valid))
    return out


def _landmarks_per_row(rows: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """:func:`normalise_landmarks` once over all frames of a row group, split back into rows."""
    present = [r for r in rows if r is not None and len(r)]
    if not present:
        return rows
    flat = iter(np.split(normalise_landmarks(np.concatenate(present)), np.cumsum([len(r) for r in present])[:-1]))
    return [next(flat) if r is not None and len(r) else r for r in rows]


def _stat_samples(table: pa.Table, branch: Branch, keep: set[int], max_len: int) -> np.ndarray:
    """Rows ``(m, stat_width)`` whose per-column mean and std standardise ``branch``: valid positions
    of dense features; for log-mel, one row per real (not padding) frame, so statistics are per band."""
    frames = table.column("logmel_frames").to_pylist() if branch.column == "logmel" else None
    samples = []
    for i, row in enumerate(read_rows(table, branch)):
        if row is None or i not in keep:
            continue
        values, valid = row[0][:max_len], row[1][:max_len]
        if frames is None:
            samples.append(values[valid])
            continue
        for chunk, n in zip(values[:, 0], frames[i][:max_len]):  # chunk: (mels, frames)
            samples.append(chunk[:, :n].T)
    width = branch.stat_width
    return np.concatenate(samples).astype(np.float64) if samples else np.zeros((0, width))


@dataclass
class Featurizer:
    """Turns one row group into examples ``(utterance_id, split, target, {modality: (values, mask)})``."""

    branches: dict[str, Branch]
    label_names: tuple[str, ...]
    max_len: int
    vocab: tuple[str, ...] = ()
    lowercase: bool = True

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.vocab)}

    # --- what it reads -------------------------------------------------------------------------
    def columns(self) -> list[str]:
        cols = ["utterance_id", "split", "emotions"]
        for b in self.branches.values():
            cols.append(b.column)
            if b.column == "acoustic":
                cols.append(VALID_COLUMNS[b.column])
        return cols

    def specs(self) -> dict[str, InputSpec]:
        return {
            m: InputSpec(m, b.kind, b.column, dim=DENSE_COLUMNS.get(b.column, 0),
                         vocab_size=self._vocab_size(b), image_shape=b.image_shape)
            for m, b in self.branches.items()
        }

    def _vocab_size(self, branch: Branch) -> int:
        if branch.tokenizer:
            return albert.vocab_size(branch.tokenizer)
        return len(self.vocab) if branch.kind == "tokens" else 0

    # --- fitting on the training split -----------------------------------------------------------
    @classmethod
    def fit(cls, folder: Path, branches: dict[str, Branch], label_names: tuple[str, ...], max_len: int,
            min_token_count: int = 1, lowercase: bool = True) -> tuple[Featurizer, np.ndarray]:
        """Vocabulary and standardisation statistics from the training split, in one streaming pass.

        Returns the featuriser and the training targets ``(N, C)`` (for ``pos_weight`` and the task).
        """
        columns = ["emotions"]
        stats: dict[str, list[Any]] = {}
        for b in branches.values():
            if b.column == "tokens" or b.normalised:
                columns.append(b.column)
                columns += [VALID_COLUMNS[b.column]] if b.column in VALID_COLUMNS else []
            if b.normalised:
                stats[b.column] = [0, np.zeros(b.stat_width), np.zeros(b.stat_width)]
        tokens: Counter[str] = Counter()
        targets = []
        # all of the split on every rank (not the rank's share): every rank must fit the same featuriser
        stream = ShardStream(folder, "train", columns, transform=whole_row_groups, rank=0, world_size=1)
        for table in stream:
            labels = table.column("emotions").to_pylist()
            keep = {i for i, y in enumerate(labels) if y is not None}
            targets += [y for y in labels if y is not None]
            for b in branches.values():
                if b.column == "tokens":
                    for i, toks in enumerate(table.column("tokens").to_pylist()):
                        if i in keep and toks:
                            tokens.update(t.lower() if lowercase else t for t in toks[:max_len])
                elif b.normalised:
                    acc, v = stats[b.column], _stat_samples(table, b, keep, max_len)
                    acc[0] += len(v)
                    acc[1] += v.sum(axis=0)
                    acc[2] += (v**2).sum(axis=0)
        if not targets:
            raise SetupError(f"the training split of {folder} has no labelled rows (column 'emotions' is null): nothing to learn from")
        fitted = {}
        for m, b in branches.items():
            if b.column in stats:
                n, s, ss = stats[b.column]
                if n == 0:
                    raise SetupError(f"no valid {b.column} values in the training split: cannot use it for {m}")
                mean = s / n
                std = np.sqrt(np.maximum(ss / n - mean**2, 0.0))
                std = np.where(std < 1e-6, 1.0, std)  # constant features: centre only
                b = replace(b, mean=tuple(map(float, mean)), std=tuple(map(float, std)))
            fitted[m] = b
        vocab: tuple[str, ...] = ()
        if any(b.column == "tokens" for b in branches.values()):
            kept = sorted((w for w, c in tokens.items() if c >= min_token_count), key=lambda w: (-tokens[w], w))
            vocab = ("<pad>", "<unk>", *kept)
        featurizer = cls(fitted, label_names, max_len, vocab, lowercase)
        return featurizer, np.asarray(targets, dtype=np.float32)

    # --- applying it -----------------------------------------------------------------------------
    def __call__(self, table: pa.Table) -> list[tuple]:
        return self.examples(table)

    def examples(self, table: pa.Table, labelled_only: bool = True) -> list[tuple]:
        """The row group's examples.  Training and scoring skip unlabelled rows (they cannot be learnt
        from or scored); prediction (``labelled_only=False``) keeps every row, its target all NaN."""
        ids = table.column("utterance_id").to_pylist()
        splits = table.column("split").to_pylist()
        labels = table.column("emotions").to_pylist()
        per_modality = {m: self._modality(table, b) for m, b in self.branches.items()}
        unknown = np.full(len(self.label_names), np.nan, dtype=np.float32)
        out = []
        for i, y in enumerate(labels):
            if y is None and labelled_only:
                continue
            inputs = {m: rows[i] for m, rows in per_modality.items()}
            out.append((ids[i], splits[i], unknown if y is None else np.asarray(y, dtype=np.float32), inputs))
        return out

    def _modality(self, table: pa.Table, branch: Branch) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row ``(values, mask)`` cut to ``max_len``; an absent row is ``(empty, empty)``."""
        L = self.max_len
        if branch.tokenizer:
            rows = albert.tokenize(branch.tokenizer, table.column(branch.column).to_pylist(), branch.max_tokens)
            return [(np.asarray(ids, dtype=np.int64), np.ones(len(ids), dtype=bool)) for ids in rows]
        if branch.kind == "tokens":
            out = []
            for toks in table.column("tokens").to_pylist():
                toks = (toks or [])[:L]
                ids = np.asarray([self._index.get(t.lower() if self.lowercase else t, UNK) for t in toks], dtype=np.int64)
                out.append((ids, np.ones(len(ids), dtype=bool)))
            return out
        trailing = branch.image_shape or (DENSE_COLUMNS[branch.column],)
        mean = std = None
        if branch.mean is not None:
            # per feature for dense columns; per mel band, broadcast over channel and frames, for log-mel
            stat_shape = (1, 1, -1, 1) if branch.column == "logmel" else (1, -1)
            mean = np.asarray(branch.mean, dtype=np.float32).reshape(stat_shape)
            std = np.asarray(branch.std, dtype=np.float32).reshape(stat_shape)
        out = []
        for row in read_rows(table, branch):
            if row is None:
                out.append((np.zeros((0, *trailing), dtype=np.float32), np.zeros(0, dtype=bool)))
                continue
            values, valid = row[0][:L], row[1][:L]
            # a new array either way: never write into Arrow's (read-only) buffers
            values = (values - mean) / std if mean is not None else np.array(values, dtype=np.float32)
            values[~valid] = 0.0  # masked positions hold 0
            out.append((values.astype(np.float32, copy=False), valid))
        return out

    # --- persistence -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "label_names": list(self.label_names),
            "max_len": self.max_len,
            "lowercase": self.lowercase,
            "branches": {m: asdict(b) for m, b in self.branches.items()},
            "vocab": list(self.vocab),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Featurizer:
        branches = {
            m: Branch(b["modality"], b["column"], b["reason"],
                      tuple(b["mean"]) if b["mean"] else None, tuple(b["std"]) if b["std"] else None,
                      tuple(b.get("image_shape") or ()), b.get("tokenizer", ""), b.get("max_tokens", 0))
            for m, b in d["branches"].items()
        }
        return cls(branches, tuple(d["label_names"]), d["max_len"], tuple(d["vocab"]), d["lowercase"])

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        return cls.from_json(json.loads(Path(path).read_text()))


def collate(examples: list[tuple]) -> Batch:
    """Pad every modality to the batch's longest sequence (at least 1) with a mask; stack targets."""
    ids = [e[0] for e in examples]
    splits = [e[1] for e in examples]
    targets = torch.from_numpy(np.stack([e[2] for e in examples]))
    inputs = {}
    for modality in examples[0][3]:
        rows = [e[3][modality] for e in examples]
        T = max(1, max(len(v) for v, _ in rows))
        first = rows[0][0]
        shape = (len(rows), T) + tuple(first.shape[1:])
        values = np.zeros(shape, dtype=first.dtype)
        mask = np.zeros((len(rows), T), dtype=bool)
        for i, (v, m) in enumerate(rows):
            values[i, : len(v)] = v
            mask[i, : len(m)] = m
        inputs[modality] = ModalityInput(torch.from_numpy(values), torch.from_numpy(mask))
    return Batch(ids, inputs, targets, splits)
