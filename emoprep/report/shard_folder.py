"""The report of a shard folder: what was extracted, from which rows, and whether it looks right.

Two kinds of evidence, kept apart so the page stays fast on a full MOSEI folder:

* **exact** figures from light columns of every row (split, times, labels, per-frame no-face reasons)
  and from ``manifest.json`` / ``failures.parquet``;
* **pictures from a sample**: the middle Parquet row group of shards spread evenly over every split, of
  which only the heavy columns a figure needs (face crops, log-mel, 142-dim windows, AUs) are decoded.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..format.codecs import decode_crop, logmel_from_flat
from ..format.failures import read_failures
from ..format.manifest import Manifest, ShardEntry, read_manifest
from ..format.reader import RowGroup, read_row_group, read_shards, shard_location, shard_row_groups
from ..format.storage import Folder
from ..format.release_counts import describe_manifest_differences
from ..format.schema import feature_names
from . import page, plots

LIGHT_COLUMNS = ["split", "start_s", "end_s", "emotions", "face_missing"]
SAMPLE_COLUMNS = ["utterance_id", "split", "text", "tokens", "glove_oov", "emotions", "face_crops", "face_missing",
                  "logmel", "logmel_frames", "acoustic", "acoustic_valid", "aus"]
ACOUSTIC_SHOWN = ("BBEon_2", "BBEon_12", "MFCCon_1", "MFCCon_2", "voice_mean", "pause_mean")
"""A few of the 142 DisVoice features whose meaning is easy to read: low/high Bark-band energy at
voice onsets, the first two onset MFCCs, and how voiced / how paused the window is (phonological)."""
AU_INTENSITIES = tuple(name.removesuffix("_r") for name in feature_names("aus") if name.endswith("_r"))
"""OpenFace's 17 intensity AUs (``AU01_r`` ...), the first values of an ``aus`` row, as the schema names them."""
CROPS_PER_LABEL = 10


@dataclass(frozen=True)
class ShardSample:
    """The sampled rows (a pyarrow table of ``SAMPLE_COLUMNS`` that were written): one row group from
    each of ``groups`` shards out of ``shards``."""

    table: pa.Table
    groups: int
    shards: int


def sample_row_groups(root: Folder, manifest: Manifest, max_groups: int) -> list[RowGroup]:
    """Up to ``max_groups`` row groups: the middle row group of shards spread evenly over each split
    (every split in proportion to its shards, at least one each).  Chosen from the manifest, so only the chosen shards' footers are read (a MOSEI folder
    has hundreds), and deterministic, so two reports of one folder agree."""
    by_split: dict[str, list[ShardEntry]] = {}
    for shard in manifest.shards:
        by_split.setdefault(shard.split, []).append(shard)
    total = len(manifest.shards)
    chosen = []
    for split, shards in by_split.items():
        k = min(len(shards), max(1, round(max_groups * len(shards) / max(1, total))))
        for i in np.unique(np.linspace(0, len(shards) - 1, k).round().astype(int)):
            groups = shard_row_groups(shard_location(root, shards[i].file), split, storage_options=root.options,
                                      sha256=shards[i].sha256)
            chosen.append(groups[len(groups) // 2])
    return chosen


def read_sample(root: Folder, manifest: Manifest, max_groups: int) -> ShardSample:
    columns = [c for c in SAMPLE_COLUMNS if manifest.counts.present(c) or c in ("utterance_id", "split", "emotions")]
    groups = sample_row_groups(root, manifest, max_groups)
    tables = [read_row_group(g, columns) for g in groups]
    table = pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})
    return ShardSample(table, len(groups), len(manifest.shards))


def label_groups(emotions: list[list[int] | None], label_names: list[str]) -> dict[str, list[int]]:
    """Row indices per label name (a row with several labels is in each), plus ``none`` for rows
    whose labels are all zero and ``unlabelled`` for rows without labels."""
    out: dict[str, list[int]] = {name: [] for name in label_names}
    for i, row in enumerate(emotions):
        if row is None:
            out.setdefault("unlabelled", []).append(i)
        elif not any(row):
            out.setdefault("none", []).append(i)
        else:
            for name, v in zip(label_names, row):
                if v:
                    out[name].append(i)
    return out


# --- sections -------------------------------------------------------------------------------------


def overview(manifest: Manifest, root: Folder) -> page.Section:
    counts = manifest.counts
    per_split = counts.rows_per_split
    shards = Counter(s.split for s in manifest.shards)
    s = page.Section("Overview")
    s.add(page.table(["", ""], [
        ("dataset", manifest.dataset),
        ("folder", root.name),
        ("utterances", counts.utterances or sum(per_split.values())),
        ("shards", f"{len(manifest.shards)} ({manifest.total_bytes / 1e6:,.1f} MB)"),
        ("labels", ", ".join(manifest.label_names) or "none"),
        ("emoprep", manifest.emoprep_version),
        ("schema", f"v{manifest.schema_version}"),
        ("config hash", manifest.config_hash),
        ("created", manifest.created),
    ], text_columns=(1,)))
    s.add("<h3>Rows per split</h3>", page.table(
        ["split", "utterances", "shards"], [(k, per_split[k], shards.get(k, 0)) for k in sorted(per_split)]))
    issues = counts.reader_issues
    if issues:
        s.add(page.note("reader: " + ", ".join(f"{k} {v}" for k, v in sorted(issues.items()))))
    release = describe_manifest_differences(counts.differences_from_full_release)
    if release:
        s.add(page.note(release))
    return s


def labels_section(light: pa.Table, label_names: list[str]) -> page.Section:
    s = page.Section("Labels")
    if not label_names:
        return s.add(page.paragraph("This dataset has no emotion labels."))
    splits = sorted(set(light.column("split").to_pylist()))
    emotions = light.column("emotions").to_pylist()
    split_of = light.column("split").to_pylist()
    share: dict[str, list[float]] = {}
    rows = []
    for split in splits:
        labelled = [e for e, sp in zip(emotions, split_of) if sp == split and e is not None]
        totals = np.sum(labelled, axis=0) if labelled else np.zeros(len(label_names))
        share[split] = list(totals / max(1, len(labelled)))
        unlabelled = sum(1 for e, sp in zip(emotions, split_of) if sp == split and e is None)
        rows.append((split, len(labelled), unlabelled, *[int(t) for t in totals]))
    s.add(page.image(plots.grouped_bars(label_names, share, "share of labelled utterances", percent=True),
                     "label distribution per split", "Share of labelled utterances carrying each label, per split "
                     "(multi-label rows count once per label)."))
    s.add(page.table(["split", "labelled", "unlabelled", *label_names], rows))
    return s


def durations_section(light: pa.Table) -> page.Section:
    dur = (np.asarray(light.column("end_s").to_numpy()) - np.asarray(light.column("start_s").to_numpy()))
    split_of = np.asarray(light.column("split").to_pylist())
    by_split = {sp: dur[split_of == sp] for sp in sorted(set(split_of))}
    s = page.Section("Durations")
    if not dur.size:
        return s.add(page.paragraph("No rows."))
    s.add(page.image(plots.histograms(by_split, "utterance duration (s)"), "durations", "Utterance durations per split."))
    s.add(page.table(["split", "utterances", "median s", "min s", "max s", "total h"],
                     [(sp, len(v), float(np.median(v)), float(v.min()), float(v.max()), float(v.sum() / 3600))
                      for sp, v in by_split.items() if len(v)]))
    return s


def faces_section(light: pa.Table, sample: ShardSample, label_names: list[str], written: bool) -> page.Section:
    s = page.Section("Faces")
    if not written:
        return s.add(page.paragraph("No face crops in this folder (the visual modality was not extracted)."))
    reasons: Counter[str] = Counter()
    per_split: dict[str, list[int]] = {}
    no_frames = 0
    for split, missing in zip(light.column("split").to_pylist(), light.column("face_missing").to_pylist()):
        if not missing:
            no_frames += 1
            continue
        found = sum(m is None for m in missing)
        reasons.update(m for m in missing if m is not None)
        acc = per_split.setdefault(split, [0, 0])
        acc[0] += found
        acc[1] += len(missing)
    rows = [(sp, t, f, f / t if t else 0.0) for sp, (f, t) in sorted(per_split.items())]
    s.add(page.table(["split", "sampled frames", "with a face", "share"], rows))
    if reasons:
        s.add("<h3>Frames without a face, by reason</h3>",
              page.table(["reason", "frames"], reasons.most_common()))
    if no_frames:
        s.add(page.note(f"{no_frames} utterance(s) have no sampled frames (no video or a failed visual stage)."))
    t = sample.table
    if "face_crops" not in t.column_names:
        return s
    groups = label_groups(t.column("emotions").to_pylist(), label_names)
    crops = t.column("face_crops").to_pylist()
    sheet: dict[str, list[np.ndarray]] = {}
    for label, idx in groups.items():
        picked = []
        for i in idx:
            faces = [c for c in (crops[i] or []) if c is not None and c.get("bytes")]
            if faces:
                picked.append(decode_crop(faces[len(faces) // 2]))
            if len(picked) == CROPS_PER_LABEL:
                break
        if picked:
            sheet[label] = picked
    if sheet:
        s.add("<h3>Contact sheet</h3>", page.image(
            plots.contact_sheet(sheet, CROPS_PER_LABEL), "face crops per label",
            f"The middle face crop of up to {CROPS_PER_LABEL} sampled utterances per label."))
    return s


def logmel_section(sample: ShardSample, mel_shape: tuple[int, int]) -> page.Section:
    s = page.Section("Log-mel example")
    t = sample.table
    if "logmel" not in t.column_names:
        return s.add(page.paragraph("No log-mel chunks in this folder."))
    logmel = t.column("logmel")
    texts = t.column("text").to_pylist()
    best = next((i for i in range(t.num_rows) if logmel[i].is_valid and len(logmel[i]) and texts[i]), None)
    if best is None:
        best = next((i for i in range(t.num_rows) if logmel[i].is_valid and len(logmel[i])), None)
    if best is None:
        return s.add(page.paragraph("Every sampled log-mel value is null."))
    chunks = logmel_from_flat(logmel[best], *mel_shape)
    frames = t.column("logmel_frames")[best].as_py()
    uid = t.column("utterance_id")[best].as_py()
    s.add(page.paragraph(f"“{texts[best]}”" if texts[best] else "(empty transcript)"))
    s.add(page.image(plots.spectrogram(chunks, frames, uid), "log-mel spectrogram",
                     f"{uid}: {len(frames)} chunk(s) of {mel_shape[0]} mels x {mel_shape[1]} frames (12.5 ms hop)."))
    return s


def acoustic_section(sample: ShardSample, label_names: list[str]) -> page.Section:
    s = page.Section("Acoustic features")
    t = sample.table
    if "acoustic" not in t.column_names:
        return s.add(page.paragraph("No DisVoice features in this folder."))
    means: list[np.ndarray | None] = []
    for windows, valid in zip(t.column("acoustic").to_pylist(), t.column("acoustic_valid").to_pylist()):
        good = [w for w, ok in zip(windows or [], valid or []) if ok and w is not None]
        means.append(np.mean(np.asarray(good, dtype=np.float32), axis=0) if good else None)
    groups = label_groups(t.column("emotions").to_pylist(), label_names)
    panels = {}
    for name in ACOUSTIC_SHOWN:
        j = feature_names("acoustic").index(name)
        panels[name] = {label: np.asarray([means[i][j] for i in idx if means[i] is not None]) for label, idx in groups.items()}
    if not any(len(v) for p in panels.values() for v in p.values()):
        return s.add(page.paragraph("No analysable (non-silent) window in the sample."))
    s.add(page.image(plots.boxplots(panels), "acoustic features per label",
                     "Per-utterance mean over analysable 400 ms windows, by label (sample; outliers hidden)."))
    return s


def aus_section(sample: ShardSample, label_names: list[str]) -> page.Section | None:
    t = sample.table
    if "aus" not in t.column_names:
        return None
    s = page.Section("Action units")
    groups = label_groups(t.column("emotions").to_pylist(), label_names)
    aus = t.column("aus").to_pylist()
    means, names = [], []
    for label, idx in groups.items():
        frames = [f for i in idx for f in (aus[i] or []) if f is not None]
        if frames:
            n = len(AU_INTENSITIES)
            values = np.asarray([[np.nan if v is None else v for v in f[:n]] for f in frames], dtype=float)
            means.append(np.nanmean(values, axis=0))
            names.append(f"{label} ({len(frames)} frames)")
    if not means:
        return s.add(page.paragraph("Every sampled AU value is null."))
    return s.add(page.image(plots.heatmap(np.asarray(means), names, AU_INTENSITIES, "mean intensity (0-5)"),
                            "AU intensities per label", "Mean AU intensity over sampled frames with a face, by label."))


def text_section(manifest: Manifest, sample: ShardSample) -> page.Section:
    s = page.Section("Text")
    text = manifest.text
    if text.vectors_written:
        s.add(page.paragraph(f"GloVe vectors from {Path(str(text.glove)).name}: {text.oov_tokens:,} of "
                             f"{text.tokens:,} tokens out of vocabulary ({text.oov_rate:.2%})."))
        t = sample.table
        if "glove_oov" in t.column_names:
            oov: Counter[str] = Counter()
            for toks, flags in zip(t.column("tokens").to_pylist(), t.column("glove_oov").to_pylist()):
                oov.update(tok for tok, f in zip(toks or [], flags or []) if f)
            if oov:
                s.add("<h3>Most frequent out-of-vocabulary tokens (sample)</h3>",
                      page.table(["token", "count"], oov.most_common(15)))
    else:
        s.add(page.paragraph("Tokens only: no GloVe file was given at extraction, so the vector columns are null."))
    return s


def failures_section(root: Folder, manifest: Manifest) -> page.Section:
    s = page.Section("Failures")
    table = read_failures(root, manifest.failures_file)
    if table is None or not table.num_rows:
        return s.add(page.paragraph("No failures were recorded."))
    rows = table.to_pylist()
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["stage"], r["error_type"]), []).append(r)
    s.add(page.paragraph(f"{len(rows)} failure record(s) for {len({r['utterance_id'] for r in rows})} utterance(s)."))
    out = []
    for (stage, err), recs in sorted(by.items(), key=lambda kv: -len(kv[1])):
        ex = recs[0]
        out.append((stage, err, len(recs), ex["utterance_id"], ex["message"][:240]))
    return s.add(page.table(["stage", "error", "records", "example utterance", "example message"], out, text_columns=(3, 4)))


def backends_section(manifest: Manifest) -> page.Section:
    import yaml

    s = page.Section("Backends and versions")
    s.add(page.note("What produced each column, as recorded in manifest.json (open a block for its parameters)."))
    for name, desc in manifest.backends.items():
        backend = desc.get("backend", "") if isinstance(desc, dict) else str(desc)
        s.add(page.details(f"{name}: {backend}", yaml.safe_dump(desc, sort_keys=True, width=110, allow_unicode=True)))
    off = [m for m, on in manifest.modalities.items() if not on]
    if off:
        s.add(page.note(f"disabled modalities: {', '.join(off)} (their columns are null)"))
    return s


def shard_folder_report(root: Path | Folder, out: Path, max_groups: int = 12) -> Path:
    """Write the HTML report of the shard folder ``root`` (local, or a :class:`Folder` on object storage)
    to ``out``."""
    started = time.perf_counter()
    root = Folder.of(root)
    manifest = read_manifest(root)
    label_names = list(manifest.label_names)
    light = read_shards(root, columns=LIGHT_COLUMNS)
    sample = read_sample(root, manifest, max_groups)
    sections = [
        overview(manifest, root),
        labels_section(light, label_names),
        durations_section(light),
        faces_section(light, sample, label_names, manifest.counts.present("face_crops")),
        logmel_section(sample, manifest.logmel_shape),
        acoustic_section(sample, label_names),
        aus_section(sample, label_names),
        text_section(manifest, sample),
        failures_section(root, manifest),
        backends_section(manifest),
    ]
    sections = [s for s in sections if s is not None]
    sections[0].add(page.note(
        f"Counts, labels, durations and face shares are exact over all {light.num_rows:,} rows; pictures and feature "
        f"distributions come from {sample.table.num_rows:,} rows: one row group from each of {sample.groups} of the "
        f"{sample.shards} shards, spread over every split. Rendered in {time.perf_counter() - started:.1f} s."))
    subtitle = f"{manifest.dataset} shards, {light.num_rows:,} utterances, emoprep {manifest.emoprep_version}"
    return page.write_page(out, f"emoprep report: {root.name}", subtitle, sections)
