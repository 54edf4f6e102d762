"""OpenFace AU backend: CSV import (real OpenFace output), timestamp matching, the binary mode."""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video, shared_or_skip  # noqa: E402

from emoprep.extraction.config import ExtractConfig, VisualConfig
from emoprep.errors import MediaError, SetupError, UtteranceError
from emoprep.extraction.extractors import build_extractor
from emoprep.extraction.extractors.au import AU_NAMES, AURequest, build_au_backend
from emoprep.extraction.extractors.au.openface import OpenFaceBackend, OpenFaceTable
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import Frame, VideoFrameSource
from emoprep.extraction.records import Utterance

FPS = 25


def real_csv() -> Path:
    return shared_or_skip("faces", "OpenFace_Test.csv")


def parse_by_hand(path: Path) -> tuple[list[str], list[list[str]]]:
    """Plain csv-module parse, independent of the pandas code under test."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    return [h.strip() for h in rows[0]], rows[1:]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text(", ".join(header) + "\n" + "\n".join(", ".join(r) for r in rows) + "\n")
    return path


def expected_vectors(header: list[str], rows: list[list[str]]) -> list[list[float]]:
    idx = [header.index(n) for n in AU_NAMES]
    return [[float(r[i]) for i in idx] for r in rows]


def config(**visual: object) -> ExtractConfig:
    return ExtractConfig(dataset="demo", modalities=("visual",), visual=replace(VisualConfig(), **visual))


def test_real_csv_is_parsed_to_the_35_au_columns() -> None:
    path = real_csv()
    header, rows = parse_by_hand(path)
    assert header[-35:] == list(AU_NAMES)
    table = OpenFaceTable.read(path)
    assert table.values.shape == (len(rows), 35) == (100, 35)
    np.testing.assert_array_equal(table.values, np.array(expected_vectors(header, rows)))
    assert table.timestamps[1] == pytest.approx(0.001) and table.default_tolerance() == pytest.approx(0.02)


def test_lookup_matches_nearest_within_tolerance_and_honours_success(tmp_path: Path) -> None:
    header, rows = parse_by_hand(real_csv())
    rows = [list(r) for r in rows[:5]]
    for k, r in enumerate(rows):
        r[header.index("timestamp")] = f"{k * 0.04:.3f}"
    rows[2][header.index("success")] = "0"
    rows[3][header.index("confidence")] = "0.2"
    path = write_csv(tmp_path / "v.csv", header, rows)
    want = expected_vectors(header, rows)
    table = OpenFaceTable.read(path)
    got = table.lookup([0.0, 0.041, 0.08, 0.12, 0.16, 0.19, 0.5], tolerance=0.015)
    assert got[0] == want[0] and got[1] == want[1]
    assert got[2] is None  # success == 0
    assert got[3] == want[3]  # confidence only counts with min_confidence
    assert got[4] == want[4] and got[5] is None and got[6] is None  # 0.19 is 30 ms away: beyond tolerance
    strict = OpenFaceTable.read(path, min_confidence=0.5)
    assert strict.lookup([0.12], 0.015) == [None]


def test_missing_au_columns_become_none(tmp_path: Path) -> None:
    header = ["frame", "timestamp", "confidence", "success", "AU12_r", "AU45_c"]
    path = write_csv(tmp_path / "v.csv", header, [["1", "0", "0.9", "1", "2.5", "1"]])
    vec = OpenFaceTable.read(path).lookup([0.0], 0.02)[0]
    assert vec[AU_NAMES.index("AU12_r")] == 2.5 and vec[AU_NAMES.index("AU45_c")] == 1.0
    assert sum(v is None for v in vec) == 33
    (tmp_path / "bad.csv").write_text("a, b\n1, 2\n")
    with pytest.raises(MediaError):
        OpenFaceTable.read(tmp_path / "bad.csv")


def test_real_csv_round_trips_through_the_extractor(tmp_path: Path) -> None:
    """Every sampled frame of a 25 fps video gets exactly its row of the real OpenFace CSV."""
    header, rows = parse_by_hand(real_csv())
    ts = header.index("timestamp")
    for k, r in enumerate(rows):  # the test CSV was written at 1 ms steps: restamp it to 25 fps
        r[ts] = f"{k / FPS:.3f}"
    csv_dir = tmp_path / "of"
    csv_dir.mkdir()
    write_csv(csv_dir / "vid.csv", header, rows)
    video = make_video(tmp_path / "vid.mp4", n_frames=len(rows), fps=FPS)
    ex = build_extractor("visual", config(au_backend="openface", au_options=(("csv_dir", str(csv_dir)),)))
    ex.check()
    u = Utterance("vid_0", "demo", "vid", 0.0, len(rows) / FPS, video_path=str(video))
    out = ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=1 / FPS), VideoFrameSource()))
    assert len(out["aus"]) == len(rows) == 100
    assert out["face_missing"] == [None] * 100
    assert out["aus"] == expected_vectors(header, rows)
    d = ex.describe()
    assert d["au_backend"] == "openface" and d["aus"]["mode"] == "csv"
    # A video without a CSV: a recorded failure at stage "aus" that still carries the faces found.
    u2 = Utterance("other_0", "demo", "other", 0.0, 1.0, video_path=str(video))
    with pytest.raises(UtteranceError, match="other.csv") as info:
        ex.extract(UtteranceMedia(u2, MediaOptions(), VideoFrameSource()))
    assert info.value.stage == "aus"
    assert info.value.partial["aus"] is None and info.value.partial["face_crops"][0] is not None
    assert ex.run_stats()["aus_failed"] == 1


def test_region_specific_csv_is_preferred(tmp_path: Path) -> None:
    header = ["frame", "timestamp", "confidence", "success", "AU01_r"]
    write_csv(tmp_path / "v.csv", header, [["1", "0", "0.9", "1", "1.0"]])
    write_csv(tmp_path / "v.left.csv", header, [["1", "0", "0.9", "1", "4.0"]])
    backend = build_au_backend("openface", {"csv_dir": str(tmp_path)})
    frame = Frame(0.0, np.zeros((4, 4, 3), np.uint8))
    face = [None]
    left = backend.predict(AURequest("u", "v", None, "left", [frame], face))
    right = backend.predict(AURequest("u", "v", None, "right", [frame], face))
    assert left[0][0] == 4.0 and right[0][0] == 1.0


def test_check_explains_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SetupError, match="csv_dir"):
        OpenFaceBackend({"csv_dir": str(tmp_path / "nope")}).check()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError, match="FeatureExtraction"):
        OpenFaceBackend({}).check()
    with pytest.raises(SetupError):
        build_au_backend("nonsense")
    assert build_au_backend("none") is None


FAKE_OPENFACE = """\
#!{python}
# Stand-in for OpenFace's FeatureExtraction: checks the arguments it gets and writes one row of the
# real OpenFace CSV per input image, in OpenFace's output format.
import glob, os, sys
args = sys.argv[1:]
fdir = args[args.index("-fdir") + 1]
out = args[args.index("-out_dir") + 1]
assert "-aus" in args
images = sorted(glob.glob(os.path.join(fdir, "*.png")))
lines = open({csv!r}).read().splitlines()
with open(os.path.join(out, os.path.basename(fdir) + ".csv"), "w") as f:
    f.write(lines[0] + "\\n")
    for i, _ in enumerate(images):
        cells = [c.strip() for c in lines[1 + i].split(",")]
        cells[0] = str(i + 1)
        if i == 1:
            cells[3] = "0"  # OpenFace lost the face on the second image
        f.write(", ".join(cells) + "\\n")
open(os.path.join(out, "n_images.txt"), "w").write(str(len(images)))
"""


def test_binary_mode_runs_featureextraction_on_sampled_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header, rows = parse_by_hand(real_csv())
    fake = tmp_path / "bin" / "FeatureExtraction"
    fake.parent.mkdir()
    fake.write_text(FAKE_OPENFACE.format(python=sys.executable, csv=str(real_csv())))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    video = make_video(tmp_path / "v.mp4", n_frames=50)
    ex = build_extractor("visual", config(au_backend="openface"))
    ex.check()
    u = Utterance("v_0", "demo", "v", 0.0, 2.0, video_path=str(video))
    out = ex.extract(UtteranceMedia(u, MediaOptions(), VideoFrameSource()))
    want = expected_vectors(header, rows)
    assert out["aus"] is not None, ex.run_stats()
    assert out["aus"][0] == want[0] and out["aus"][1] is None and out["aus"][2:] == want[2:4]
    assert ex.describe()["aus"]["mode"] == "binary"
    broken = tmp_path / "bin2" / "FeatureExtraction"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'model files missing' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(MediaError, match="exited 3"):
        OpenFaceBackend({"binary": str(broken)}).predict(
            AURequest("u", "v", None, None, [Frame(0.0, np.zeros((8, 8, 3), np.uint8))], [None])
        )


def test_real_csv_round_trips_into_the_shard(tmp_path: Path) -> None:
    """Through the whole pipeline (manifest dataset, --au-backend openface csv_dir=...): the shard's
    aus column holds the real CSV's 35 values of every sampled frame."""
    import pyarrow.parquet as pq

    from emoprep.extraction.config import build_config
    from emoprep.extraction import run_extract

    header, rows = parse_by_hand(real_csv())
    ts = header.index("timestamp")
    for k, r in enumerate(rows):
        r[ts] = f"{k / FPS:.3f}"
    (tmp_path / "of").mkdir()
    write_csv(tmp_path / "of" / "talk.csv", header, rows)
    make_video(tmp_path / "talk.mp4", n_frames=len(rows), fps=FPS)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"utterance_id,video,start,end,text,split\ntalk_0,talk.mp4,0.0,{len(rows) / FPS},hello,train\n")
    cfg = build_config(
        "manifest",
        {"modalities": ["visual"],
         "visual": {"au_backend": "openface", "au_options": {"csv_dir": str(tmp_path / "of")}, "frame_interval_s": 1 / FPS}},
    )
    summary = run_extract(cfg, manifest, tmp_path / "shards", synchronous=True)
    assert summary.complete and summary.failure_records == 0
    table = pq.read_table(next((tmp_path / "shards").glob("train-*.parquet")))
    stored = np.asarray(table.column("aus")[0].as_py(), dtype=np.float32)  # the schema stores float32
    np.testing.assert_array_equal(stored, np.asarray(expected_vectors(header, rows), dtype=np.float32))
    assert stored.shape == (100, 35)
    backends = json.loads(table.schema.metadata[b"emoprep.backends"])
    assert backends["visual"]["au_backend"] == "openface"
