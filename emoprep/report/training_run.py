"""The report of a training run: how it learned, how it scores per class, where it goes wrong (with the
utterances' text and faces from the shards it was scored on), and, for MESM, where it looked.

Everything comes from the run folder's files (``run.json``, ``history.jsonl``, ``metrics.json``,
``predictions.parquet``); the shards are opened only for the few utterances shown, and the model is
loaded only to draw MESM attention pictures.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import EmoprepError, SetupError
from ..format.codecs import decode_crop
from ..format.manifest import StorageOptions, has_manifest
from ..format.names import BEST_WEIGHTS, FINISHED_RUN_FILES, HISTORY, METRICS, PREDICTIONS, RUN_CONFIG
from ..format.reader import read_row_group, row_groups
from ..format.storage import Folder
from ..format.run_record import RunRecord, read_run_record
from . import page, plots

WRONG_SHOWN = 6
FACES_PER_ROW = 6
ATTENTION_SHOWN = 2


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def overview(run: RunRecord, metrics: dict[str, Any], run_dir: Path, name: str) -> page.Section:
    """``name``: the run folder's name (``run_dir`` may be a local copy of it)."""
    s = page.Section("Overview")
    shards = run.shards
    test_avg = metrics.get("test", {}).get("average", {})
    acc = "wacc" if metrics.get("task") == "multilabel" else "acc"
    rows = [
        ("model", run.model),
        ("run folder", name),
        ("status", run.status),
        ("task", metrics.get("task")),
        ("chosen epoch", f"{metrics.get('chosen_epoch')} of {metrics.get('epochs_run')} run"),
        (f"test average {acc.upper() if acc == 'acc' else 'WAcc'} / F1",
         f"{test_avg.get(acc, float('nan')):.3f} / {test_avg.get('f1', float('nan')):.3f}"),
        ("all-positive test F1", f"{metrics.get('test', {}).get('all_positive', {}).get('f1', float('nan')):.3f}"),
        ("shards", f"{Path(shards.folder or '?').name} ({shards.dataset}, config {shards.config_hash})"),
        ("parameters", run.parameters),
        ("device / processes", f"{run.device} / {run.processes}"),
        ("versions", f"emoprep {run.emoprep_version}, torch {run.torch_version}, Python {run.python}"),
        ("created / finished", f"{run.created} / {run.finished}"),
    ]
    s.add(page.table(["", ""], rows, text_columns=(1,)))
    inputs = run.inputs
    if inputs:
        s.add("<h3>Inputs</h3>", page.table(["modality", "column", "why"],
                                             [(m, d.get("column"), d.get("reason", "")) for m, d in inputs.items()],
                                             text_columns=(2,)))
    config = run_dir / RUN_CONFIG
    if config.is_file():
        s.add(page.details(f"resolved {RUN_CONFIG}", config.read_text()))
    return s


def curves_section(history: list[dict[str, Any]], chosen: int | None) -> page.Section:
    s = page.Section("Learning curves")
    if not history:
        return s.add(page.paragraph(f"{HISTORY} is empty."))
    epochs = [h["epoch"] for h in history]
    png = plots.learning_curves(epochs, {"train": [h["train_loss"] for h in history], "valid": [h["valid_loss"] for h in history]},
                                [h["valid_f1"] for h in history], chosen)
    seconds = sum(h.get("seconds", 0.0) for h in history)
    return s.add(page.image(png, "learning curves", f"{len(history)} epoch(s), {seconds:.0f} s of training; the dashed "
                                                     "line is the epoch kept (best validation average F1)."))


def metrics_section(metrics: dict[str, Any]) -> page.Section:
    s = page.Section("Per-class metrics")
    acc = "wacc" if metrics.get("task") == "multilabel" else "acc"
    s.add(page.note(f"A class is predicted when its probability is above its threshold, chosen on validation F1. "
                    f"{'WAcc' if acc == 'wacc' else 'Acc'} and the positive-class F1 per class; averages are unweighted."))
    for split in ("valid", "test"):
        m = metrics.get(split)
        if not m:
            continue
        rows = [(name, c["threshold"], c[acc], c["f1"], c["precision"], c["recall"], c["tp"], c["fp"], c["fn"], c["tn"])
                for name, c in m["per_class"].items()]
        avg, base = m.get("average", {}), m.get("all_positive", {})
        rows.append(("average", "", avg.get(acc), avg.get("f1"), "", "", "", "", "", ""))
        if base:
            rows.append(("all-positive baseline", "", base.get(acc), base.get("f1"), "", "", "", "", "", ""))
        s.add(f"<h3>{page.esc(split)} ({m['rows']} utterances)</h3>",
              page.table(["class", "threshold", "WAcc" if acc == "wacc" else "Acc", "F1", "precision", "recall",
                          "TP", "FP", "FN", "TN"], rows))
    return s


def flops_section(metrics: dict[str, Any]) -> page.Section | None:
    flops = metrics.get("flops")
    if not flops:
        return None
    s = page.Section("FLOPs")
    s.add(page.paragraph(f"Counted {flops['counted_gflops_per_sample']:.2f} GFLOPs per utterance against "
                         f"{flops['dense_gflops_per_sample']:.2f} dense, on {flops.get('split', 'test')} utterances."))
    stages = flops.get("stages") or []
    if stages:
        s.add(page.table(["stage", "dense GFLOPs", "counted GFLOPs", "kept"],
                         [(st["stage"], st["dense_gflops"], st["counted_gflops"], st["kept_fraction"]) for st in stages]))
    return s


def wrong_predictions(predictions_path: Path, labels: list[str], split: str = "test", n: int = WRONG_SHOWN) -> list[dict[str, Any]]:
    """The ``n`` rows of ``split`` whose probabilities are furthest from the truth among the rows with
    at least one wrong class, worst first."""
    table = pq.read_table(predictions_path)
    table = table.filter(pc.equal(table.column("split"), split))
    probs = np.stack([table.column(f"prob_{c}").to_numpy() for c in labels], axis=1)
    preds = np.stack([table.column(f"pred_{c}").to_numpy() for c in labels], axis=1)
    truth = np.stack([table.column(f"true_{c}").to_numpy() for c in labels], axis=1)
    wrong = np.flatnonzero((preds != truth).any(axis=1))
    order = wrong[np.argsort(-np.abs(probs[wrong] - truth[wrong]).sum(axis=1), kind="stable")][:n]
    ids = table.column("utterance_id").to_pylist()
    return [{"utterance_id": ids[i], "probs": probs[i], "pred": preds[i], "true": truth[i]} for i in order]


def shard_rows(folder: Folder, split: str, ids: list[str], columns: list[str]) -> dict[str, dict[str, Any]]:
    """The rows ``ids`` of ``split`` (``columns`` only), reading the id column of each row group and
    then only the groups that hold one of them."""
    wanted, out = set(ids), {}
    for group in row_groups(folder, split):
        found = set(read_row_group(group, ["utterance_id"]).column("utterance_id").to_pylist()) & wanted
        if found:
            for row in read_row_group(group, ["utterance_id", *columns]).to_pylist():
                if row["utterance_id"] in found:
                    out[row["utterance_id"]] = row
        if len(out) == len(wanted):
            break
    return out


def _names(labels: list[str], flags: np.ndarray) -> str:
    return ", ".join(name for name, f in zip(labels, flags) if f) or "none"


def wrong_section(run_dir: Path, labels: list[str], shards: Folder | None, wrong: list[dict[str, Any]]) -> page.Section:
    s = page.Section("Wrong predictions")
    if not wrong:
        return s.add(page.paragraph("Every test utterance is predicted right on every class."))
    rows: dict[str, dict[str, Any]] = {}
    if shards is not None:
        try:
            rows = shard_rows(shards, "test", [w["utterance_id"] for w in wrong], ["text", "face_crops"])
        except (EmoprepError, OSError) as e:
            s.add(page.note(f"the shards could not be read for text and faces: {e}"))
    else:
        s.add(page.note("The run's shard folder is not here (pass --shards to show text and faces)."))
    s.add(page.note(f"The {len(wrong)} test utterances whose probabilities are furthest from the truth among those with "
                    "at least one wrong class."))
    cards = []
    for w in wrong:
        row = rows.get(w["utterance_id"], {})
        faces = [c for c in (row.get("face_crops") or []) if c is not None and c.get("bytes")]
        pick = [faces[i] for i in np.unique(np.linspace(0, len(faces) - 1, min(FACES_PER_ROW, len(faces))).astype(int))] if faces else []
        strip = page.image(plots.image_strip([decode_crop(f) for f in pick]), f"faces of {w['utterance_id']}") if pick else ""
        top = ", ".join(f"{labels[k]} {w['probs'][k]:.2f}" for k in np.argsort(-w["probs"])[:3])
        text = row.get("text")
        cards.append(
            f'<div class="card"><b>{page.esc(w["utterance_id"])}</b><br>'
            f'true: <span class="good">{page.esc(_names(labels, w["true"]))}</span><br>'
            f'predicted: <span class="bad">{page.esc(_names(labels, w["pred"]))}</span><br>'
            f'<span class="note">top probabilities: {page.esc(top)}</span><br>'
            + (f"“{page.esc(text)}”" if text else ('<i>empty transcript</i>' if row else "")) + strip + "</div>")
    return s.add('<div class="grid">' + "".join(cards) + "</div>")


def attention_section(run_dir: Path, shards: Folder | None, ids: list[str]) -> page.Section:
    """MESM's attention pictures for a few test utterances (the model is loaded for this)."""
    from ..train.inspection import attention_picture

    s = page.Section("MESM attention")
    s.add(page.note("Each sparse stage's text-queried attention over the faces and the log-mel chunks; white outlines "
                    "are the positions the nucleus keeps."))
    with tempfile.TemporaryDirectory() as tmp:
        for i, uid in enumerate(ids[:ATTENTION_SHOWN] or [None]):
            try:
                path = attention_picture(run_dir, Path(tmp) / f"{i}.png", uid, shards_dir=shards)
            except (EmoprepError, OSError) as e:
                s.add(page.note(f"no attention picture{f' for {uid}' if uid else ''}: {e}"))
                continue
            s.add(page.image(path.read_bytes(), f"attention of {uid or 'the first test utterance'}",
                             f"{uid or 'The first test utterance'}: faces (top) and log-mel chunks (bottom), stage by stage."))
    return s


def run_report(run_dir: Path, out: Path, shards: str | Path | None = None, *,
               storage_options: StorageOptions = None, shown: str | None = None) -> Path:
    """Write the HTML report of the training run ``run_dir`` to ``out``.

    ``run_dir`` is local (a run folder on object storage is reported from its local working copy,
    ``shown`` then names it); its shards may be a URL, read with ``storage_options``."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    shown = shown or str(run_dir)
    name = Folder.of(shown).name
    missing = [f for f in FINISHED_RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        raise SetupError(f"{shown} is not a finished run ({', '.join(missing)} missing); "
                         "finish it with `emoprep train ... --resume`")
    run = read_run_record(run_dir)
    metrics = json.loads((run_dir / METRICS).read_text())
    labels = list(metrics["label_names"])
    folder = Folder.of(shards or run.shards.folder, storage_options)
    shards_dir = folder if has_manifest(folder) else None
    wrong = wrong_predictions(run_dir / PREDICTIONS, labels)
    sections = [
        overview(run, metrics, run_dir, name),
        curves_section(_read_json_lines(run_dir / HISTORY), metrics.get("chosen_epoch")),
        metrics_section(metrics),
        wrong_section(run_dir, labels, shards_dir, wrong),
        flops_section(metrics),
    ]
    if run.model == "mesm" and (run_dir / BEST_WEIGHTS).is_file():
        sections.append(attention_section(run_dir, shards_dir, [w["utterance_id"] for w in wrong]))
    sections = [s for s in sections if s is not None]
    sections[0].add(page.note(f"Rendered in {time.perf_counter() - started:.1f} s."))
    return page.write_page(out, f"emoprep run: {name}", f"{run.model} on {folder.name}", sections)
