"""The reports of the demo shards, of a demo training run and of a predictions file (a timeline), opened
in a real headless Chromium:
no console errors, every image decoded, a screenshot saved.

Needs Debian's ``chromium`` (or ``$EMOPREP_CHROMIUM``) and the ``playwright`` package (a test extra);
skips with the reason otherwise.  Screenshots go to the test's temporary folder, and also to
``$EMOPREP_SCREENSHOTS`` when it is set, for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emoprep.report import build_report
from emoprep.train.config import parse_sets
from emoprep.train.run import train

TINY_MESM = ["optim.epochs=2", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
             "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"]


def _chromium() -> str:
    for candidate in (os.environ.get("EMOPREP_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    pytest.skip("no Chromium installed (apt-get install chromium, or set EMOPREP_CHROMIUM)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')")
    executable = _chromium()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, page_file: Path, shot: Path) -> dict:  # noqa: ANN001 - a playwright Browser
    """Load ``page_file``, wait for every image to decode, screenshot it; what the page reported."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    messages = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.goto(page_file.resolve().as_uri(), wait_until="load")
    decoded = page.evaluate("""async () => Promise.all(Array.from(document.images).map(
        img => img.decode().then(() => img.naturalWidth > 0 && img.naturalHeight > 0, () => false)))""")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    if os.environ.get("EMOPREP_SCREENSHOTS"):
        target = Path(os.environ["EMOPREP_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    return {"messages": messages, "decoded": decoded, "overflow": overflow}


def _check(result: dict, shot: Path, min_images: int) -> None:
    assert not [m for m in result["messages"] if m.startswith(("error", "pageerror"))], result["messages"]
    assert len(result["decoded"]) >= min_images and all(result["decoded"]), result["decoded"]
    assert result["overflow"] <= 0, "the page scrolls sideways on a 1366-pixel screen"
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"))
    assert pixels.shape[1] == 1366 and pixels.shape[0] > 900 and pixels.std() > 20  # a page, not a blank


def test_demo_shards_report_renders_in_chromium(browser, demo_shards: Path, tmp_path: Path) -> None:  # noqa: ANN001
    page = build_report(demo_shards, tmp_path / "shards.html")
    result = _open(browser, page, tmp_path / "report-demo-shards.png")
    # labels, durations, contact sheet, log-mel, acoustic features (the demo writes no AUs)
    _check(result, tmp_path / "report-demo-shards.png", min_images=5)


def test_demo_run_report_renders_in_chromium(browser, demo_shards: Path, tmp_path: Path) -> None:  # noqa: ANN001
    run = tmp_path / "mesm"
    train("mesm", demo_shards, run, sets=parse_sets(TINY_MESM), quiet=True)
    page = build_report(run, tmp_path / "run.html")
    html = page.read_text()
    assert "MESM attention" in html and "Wrong predictions" in html
    result = _open(browser, page, tmp_path / "report-demo-run.png")
    # learning curves and at least one attention picture
    _check(result, tmp_path / "report-demo-run.png", min_images=2)


def _predictions_file(path: Path) -> Path:
    """A predictions file as `emoprep predict` writes it: two media, 40 s of windows with faces and
    probabilities that drift, three transcript lines, and a failure row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emoprep.format.codecs import encode_crop
    from emoprep.format.predictions import predictions_metadata, predictions_schema

    labels = ("anger", "happiness", "sadness")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(19):
        start = 2.0 * k
        p = 0.5 + 0.45 * np.sin(np.arange(3) + k / 3)
        face = encode_crop(rng.integers(0, 255, size=(48, 48, 3), dtype=np.uint8))["bytes"]
        rows.append({"id": f"long.mp4/{k:05d}", "media": "/data/long.mp4", "start": start, "end": start + 4.0,
                     **{f"prob_{n}": float(p[i]) for i, n in enumerate(labels)},
                     **{f"pred_{n}": int(p[i] > 0.5) for i, n in enumerate(labels)},
                     "modalities": "acoustic,visual", "face": face})
    for k, (a, b, text) in enumerate([(0.5, 2.0, "I cannot believe it"), (2.5, 4.0, "that is wonderful"), (4.5, 6.0, "oh no")]):
        rows.append({"id": f"talk.mp4/{k:05d}", "media": "/data/talk.mp4", "start": a, "end": b, "text": text,
                     **{f"prob_{n}": 0.3 + 0.2 * i for i, n in enumerate(labels)},
                     **{f"pred_{n}": int(i == 2) for i, n in enumerate(labels)}, "modalities": "text,acoustic"})
    rows.append({"id": "broken.mp4", "media": "/data/broken.mp4", "error": "media: no decoder can open it as audio or video"})
    table = pa.Table.from_pylist(rows, schema=predictions_schema(labels))
    pq.write_table(table.replace_schema_metadata(predictions_metadata(labels, [0.5, 0.5, 0.5], "/runs/mesm", "mesm")), path)
    return path


def test_predictions_timeline_renders_in_chromium(browser, tmp_path: Path) -> None:  # noqa: ANN001
    page = build_report(_predictions_file(tmp_path / "preds.parquet"), tmp_path / "timeline.html")
    html = page.read_text()
    assert "long.mp4" in html and "that is wonderful" in html and "no decoder can open it" in html
    result = _open(browser, page, tmp_path / "report-predictions-timeline.png")
    _check(result, tmp_path / "report-predictions-timeline.png", min_images=2)  # one timeline per readable media
