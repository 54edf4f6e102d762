"""The report of a predictions file (``emoprep predict --out``): one timeline per media file.

For each file: the class probabilities over time with the predicted labels (the run's validation
thresholds dotted), face crops under the curve at their times, then the transcript lines with what was
predicted for each, and the rows that could not be scored with their reason.  Everything comes from the
predictions file itself (it carries a face crop per row), so the report needs neither the run nor the
media.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..format.codecs import decode_crop
from ..format.predictions import PredictionsInfo, pred_column, prob_column, read_predictions
from . import page, plots


def _predicted(row: dict[str, Any], labels: tuple[str, ...]) -> str:
    return ", ".join(n for n in labels if row.get(pred_column(n))) or "-"


def _media_section(media: str, rows: list[dict[str, Any]], info: PredictionsInfo) -> page.Section:
    labels = info.label_names
    scored = sorted((r for r in rows if r["error"] is None), key=lambda r: (r["start"], r["end"]))
    failed = [r for r in rows if r["error"] is not None]
    s = page.Section(f"{Path(media).name}" if media else "without media")
    s.add(page.note(f"{media}: {len(scored)} utterance(s) scored, {len(failed)} failure row(s)"))
    if scored:
        spans = [(r["start"], r["end"]) for r in scored]
        faces = [((r["start"] + r["end"]) / 2, decode_crop(r["face"])) for r in scored if r["face"]]
        png = plots.timeline(
            spans,
            {n: [r[prob_column(n)] for r in scored] for n in labels},
            {n: [r[pred_column(n)] for r in scored] for n in labels},
            dict(zip(labels, info.thresholds)),
            faces,
            Path(media).name,
        )
        s.add(page.image(png, f"timeline of {Path(media).name}",
                         "Probability of each class per utterance (at its middle); dotted: the class's threshold. "
                         "Bars: where the class is predicted. Faces: one crop per utterance, at its time."))
        lines = [r for r in scored if r["text"]]
        if lines:
            s.add("<h3>Transcript</h3>", page.table(
                ["start", "end", "text", "predicted", "modalities"],
                [(f"{r['start']:.1f}", f"{r['end']:.1f}", r["text"], _predicted(r, labels), r["modalities"]) for r in lines],
                text_columns=(2, 3)))
        else:
            used = sorted({r["modalities"] or "" for r in scored})
            s.add(page.note(f"no transcript: windows of {scored[0]['end'] - scored[0]['start']:.1f} s scored from "
                            f"{' / '.join(used)}"))
    if failed:
        s.add("<h3>Failure rows</h3>", page.table(
            ["id", "start", "end", "error"],
            [(r["id"], r["start"], r["end"], r["error"]) for r in failed], text_columns=(3,)))
    return s


def timeline_report(path: Path, out: Path) -> Path:
    """Write the timeline page of the predictions file ``path`` to ``out``."""
    table, info = read_predictions(path)
    by_media: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in table.to_pylist():
        by_media[row["media"] or ""].append(row)
    overview = page.Section("Overview").add(page.table(["", ""], [
        ("predictions", Path(path).name),
        ("run", info.run),
        ("model", info.model),
        ("labels (threshold)", ", ".join(f"{n} ({t:.2f})" for n, t in zip(info.label_names, info.thresholds))),
        ("media files", len([m for m in by_media if m])),
        ("rows", table.num_rows),
        ("failure rows", sum(e is not None for e in table.column("error").to_pylist())),
    ], text_columns=(1,)))
    sections = [overview] + [_media_section(m, rows, info) for m, rows in sorted(by_media.items())]
    return page.write_page(out, f"Predictions: {Path(path).name}", f"{info.model} run {Path(info.run).name}", sections)
